// statistics/privacy.h
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "statistics/spec.h"

namespace samverka::statistics {

// Differential privacy for a statistics study (dp = "distributed",
// docs/statistics.md). Neighbouring data sets differ by one row (added or
// removed). In each group block a row changes the rows count by 1 and, per
// numeric column, the count or missing count by 1, the sum and the sum of
// squares by at most kDpSumUnits each (values are clamped to the edges) and
// one histogram count by 1; per categorical column one count by 1. It is in
// one group, or two with group_by. Element k of the vector has sensitivity
// s_k (1 for a count, kDpSumUnits for a sum); scaled by 1 / s_k, the vector's
// L2 sensitivity is Delta = sqrt(groups x (1 + 4 numeric + categorical)).
//
// The Gaussian mechanism adds noise of standard deviation z Delta s_k to
// element k (z the noise multiplier); its Renyi DP is that of one Gaussian
// step with multiplier z and sampling rate 1, so epsilon is what
// `samverka privacy --rounds 1 --sampling-rate 1 --noise-multiplier z`
// prints. In the federation each of at least `sites` contributing sites adds
// discrete Gaussian noise of variance (z Delta s_k)^2 / sites (Canonne,
// Kamath and Steinke 2020; the sum of the sites' draws is close to one
// discrete Gaussian of the full variance, Kairouz, Liu and Steinke 2021), so
// not even the coordinator sees exact totals.
struct StatisticsNoise {
  double l2_sensitivity = 0;     // Delta
  std::vector<double> stddev;    // per element: z Delta s_k, the total noise
};
StatisticsNoise NoiseOf(const StatisticsSpec& spec);
// Delta alone (NoiseOf without the per-element vector).
double L2Sensitivity(const StatisticsSpec& spec);

// Adds this site's share of the noise to `vector` (one of at least `sites`
// contributors). kInvalidArgument if the spec has no DP, `sites` < 1, the
// vector has another length, or a share's scale is past what the exact
// sampler takes (2^26: lower dp_noise_multiplier or the columns); kInternal
// if the CSPRNG fails (the vector must then be discarded).
absl::Status AddSiteNoise(const StatisticsSpec& spec, int sites, std::vector<uint64_t>* vector);

// Epsilon at `delta` of one release with the spec's noise multiplier.
absl::StatusOr<double> Epsilon(const StatisticsSpec& spec, double delta);

}  // namespace samverka::statistics
