// statistics/spec.h
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace samverka::statistics {

// The most categories one categorical column may list (each is a count in
// the secure sum, for every group).
inline constexpr size_t kMaxCategories = 256;
// The most histogram bins of one numeric column.
inline constexpr size_t kMaxBins = 10'000;
// Decimal places kept of each value in the sums (fixed point); at most 6.
inline constexpr int kMaxDecimals = 6;

// A numeric column: its count, missing count, sum and sum of squares, and a
// histogram over edges fixed in the spec (never taken from a site's data).
// Bin k is [edges[k], edges[k+1]), the last one closed; values below the
// first edge or above the last are counted as below / above, so neither the
// minimum nor the maximum is ever released.
struct NumericColumn {
  std::string name;
  std::vector<double> edges;      // strictly increasing, >= 2
  std::vector<double> quantiles;  // in (0, 1), estimated from the histogram
};

// A categorical column: a count per listed category, plus "other" (a value
// not listed) and missing.
struct CategoricalColumn {
  std::string name;
  std::vector<std::string> categories;
};

// What a statistics study computes, from the `[statistics]` part of its
// manifest (or a spec file of its own for `samverka statistics`):
//
//   min_count = 5            # counts 1..4 are suppressed in the output
//   group_by = "grade"       # optional: every statistic per category too
//   decimals = 4             # fixed point of the sums (default 4)
//   [columns.age]            # numeric: range + bins, or edges
//   range = [20, 90]
//   bins = 14
//   quantiles = [0.25, 0.5, 0.75]
//   [columns.grade]          # categorical
//   categories = ["1", "2", "3"]
struct StatisticsSpec {
  std::vector<NumericColumn> numeric;
  std::vector<CategoricalColumn> categorical;
  // A categorical column of `categorical`, or empty.
  std::string group_by;
  int64_t min_count = 5;
  int decimals = 4;
  // Differential privacy (a study's dp = "distributed",
  // statistics/privacy.h): the noise multiplier z; 0 means no noise. With
  // it, each numeric value is clamped to its column's edges in the sums,
  // which are kept in units of B / 2^16 (B the larger magnitude of the first
  // and last edge), and squares in units of B^2 / 2^16, so that one row
  // changes each by at most 2^16.
  double dp_noise_multiplier = 0;
  bool dp() const { return dp_noise_multiplier > 0; }

  // The groups every statistic is computed for: "all", then group_by's
  // categories.
  std::vector<std::string> groups() const;
};

// Reads the spec from `config`'s keys under `prefix` ("" for a spec file,
// "statistics" in a manifest); marks them known. kInvalidArgument naming
// the file and the key: an unknown key, a column both numeric and
// categorical or neither, edges not increasing, bins < 1 or > kMaxBins, a
// range that is not [low, high] with low < high, a quantile outside (0, 1),
// more than kMaxCategories categories or a repeated one, group_by naming no
// categorical column, min_count < 1, decimals outside [0, kMaxDecimals], no
// column at all, a column name with a '.'.
absl::StatusOr<StatisticsSpec> ReadStatisticsSpec(ConfigFile& config, const std::string& prefix);
// The same for a file of its own; also refuses keys outside the spec.
absl::StatusOr<StatisticsSpec> LoadStatisticsSpec(const std::string& path);
// The [statistics] table of a statistics study's manifest (the site reads
// it from the signed bytes, the coordinator at submit).
absl::StatusOr<StatisticsSpec> ReadManifestStatistics(std::string_view manifest,
                                                      const std::string& source_name);

// One row's largest change of a sum or a sum of squares under DP, in
// units: 2^16.
inline constexpr int64_t kDpSumUnits = int64_t{1} << 16;
// What one unit of a numeric column's sum, and of its sum of squares, is
// worth: 10^-decimals without DP, B / 2^16 and B^2 / 2^16 with it.
double SumUnit(const StatisticsSpec& spec, const NumericColumn& column);
double SquareUnit(const StatisticsSpec& spec, const NumericColumn& column);

// The columns `spec` names, numeric then categorical.
std::vector<std::string> SpecColumns(const StatisticsSpec& spec);
// OK if every column `spec` names is in `columns`; kInvalidArgument naming
// the first that is not, `where` it was looked for, and what is there.
absl::Status CheckSpecColumns(const StatisticsSpec& spec, const std::set<std::string>& columns,
                              const std::string& where);

}  // namespace samverka::statistics
