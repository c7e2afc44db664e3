// statistics/summary.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "statistics/spec.h"

namespace samverka::statistics {

// Turns the consortium's summed vector (sum mod 2^64 of the sites' vectors,
// laid out as statistics/site_statistics.h says) into the released
// statistics, as JSON:
//
//   {"sites": 3, "min_count": 5, "decimals": 4, "groups": [
//     {"group": "all", "rows": 482, "columns": {
//       "age": {"count": 480, "missing": 2, "mean": 53.1, "mean_error_bound": 5e-05,
//               "variance": ..., "variance_error_bound": ..., "sd": ..., "sd_error_bound": ...,
//               "histogram": {"edges": [...], "counts": [12, null, ...], "below": 0, "above": 0},
//               "quantiles": [{"q": 0.5, "value": 52.6, "error_bound": 2.5}]},
//       "grade": {"counts": {"1": 80, "2": 300, "3": 100}, "other": 0, "missing": 2}}}]}
//
// Disclosure control: a count from 1 to min_count - 1 is suppressed (null);
// a group with fewer than min_count rows is released as
// {"group": ..., "suppressed": true} only; mean, variance and sd of a
// column with fewer than min_count values are null; a quantile is released
// only if the bins it rests on hold min_count values or more.
// Quantiles: pandas' default (linear between the order statistics at
// (n - 1) q), estimated by interpolation in the histogram; the true value
// lies within error_bound of the estimate. Mean, variance and sd carry the
// bounds of their fixed-point rounding. kInvalidArgument if `sum` has
// another length than the spec's vector.
absl::StatusOr<nlohmann::json> Summarise(const StatisticsSpec& spec,
                                         const std::vector<uint64_t>& sum, int sites);

// The summary as a table for a terminal: one line per statistic.
std::string SummaryText(const nlohmann::json& summary);
// The summary as CSV: group,column,statistic,value (suppressed: empty).
std::string SummaryCsv(const nlohmann::json& summary);

}  // namespace samverka::statistics
