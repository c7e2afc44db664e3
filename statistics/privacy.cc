// statistics/privacy.cc
#include "statistics/privacy.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "security/dp/accountant.h"
#include "security/dp/noise.h"
#include "statistics/site_statistics.h"

namespace samverka::statistics {

double L2Sensitivity(const StatisticsSpec& spec) {
  const size_t groups_touched = spec.group_by.empty() ? 1 : 2;
  return std::sqrt(static_cast<double>(
      groups_touched * (1 + 4 * spec.numeric.size() + spec.categorical.size())));
}

StatisticsNoise NoiseOf(const StatisticsSpec& spec) {
  StatisticsNoise out;
  out.l2_sensitivity = L2Sensitivity(spec);
  const double scale = spec.dp_noise_multiplier * out.l2_sensitivity;
  const size_t groups = spec.groups().size();
  const size_t per_group = VectorLength(spec) / groups;
  std::vector<double> block(per_group, scale);
  size_t offset = 1;
  for (const NumericColumn& c : spec.numeric) {
    block[offset + 2] = scale * static_cast<double>(kDpSumUnits);
    block[offset + 3] = scale * static_cast<double>(kDpSumUnits);
    offset += 6 + (c.edges.size() - 1);
  }
  for (size_t g = 0; g < groups; ++g) out.stddev.insert(out.stddev.end(), block.begin(), block.end());
  return out;
}

absl::Status AddSiteNoise(const StatisticsSpec& spec, int sites, std::vector<uint64_t>* vector) {
  if (!spec.dp() || sites < 1) {
    return absl::InvalidArgumentError("noise needs dp_noise_multiplier > 0 and at least one site");
  }
  const StatisticsNoise noise = NoiseOf(spec);
  if (vector->size() != noise.stddev.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the vector has ", vector->size(),
                                                   " elements; the spec's has ",
                                                   noise.stddev.size()));
  }
  // One exact sampler per distinct scale (counts, sums).
  std::map<double, security::dp::DiscreteGaussian> samplers;
  for (size_t k = 0; k < vector->size(); ++k) {
    const double share = noise.stddev[k] / std::sqrt(static_cast<double>(sites));
    auto it = samplers.find(share);
    if (it == samplers.end()) {
      absl::StatusOr<security::dp::DiscreteGaussian> made =
          security::dp::DiscreteGaussian::Create(share);
      if (!made.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the noise of one site's share (", share, ") is past what the exact sampler takes: ",
            made.status().message(), "; lower dp_noise_multiplier or the number of columns"));
      }
      it = samplers.emplace(share, *std::move(made)).first;
    }
    SV_ASSIGN_OR_RETURN(const int64_t draw, it->second.Sample());
    (*vector)[k] += static_cast<uint64_t>(draw);  // two's complement: adds a signed draw
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Epsilon(const StatisticsSpec& spec, double delta) {
  SV_ASSIGN_OR_RETURN(security::dp::PrivacySpent spent,
                      security::dp::ComputeEpsilon(1.0, spec.dp_noise_multiplier, 1, delta));
  return spent.epsilon;
}

}  // namespace samverka::statistics
