// client/statistics_task.cc
#include "client/statistics_task.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "statistics/site_statistics.h"

namespace samverka::client {

absl::StatusOr<SiteStatistics> ComputeSiteStatistics(const statistics::StatisticsSpec& spec,
                                                     const std::string& path,
                                                     const SitePolicy& policy,
                                                     std::string* coordinator_reason) {
  if (spec.min_count < policy.min_count) {
    *coordinator_reason = absl::StrCat(
        "site policy: the study suppresses only counts below ", spec.min_count,
        "; this site releases no count below ", policy.min_count, " (min_count)");
    return absl::FailedPreconditionError(*coordinator_reason);
  }
  absl::StatusOr<statistics::Table> table = statistics::ReadTable(path);
  if (!table.ok()) {
    *coordinator_reason = "the site could not read its data set";
    return table.status();
  }
  const int64_t rows = static_cast<int64_t>(table->rows.size());
  if (rows < policy.min_count) {
    *coordinator_reason = absl::StrCat("site policy: the data set has fewer rows than this site's "
                                       "min_count (", policy.min_count, ")");
    return absl::FailedPreconditionError(
        absl::StrCat(path, " has ", rows, " rows, fewer than min_count = ", policy.min_count));
  }
  absl::StatusOr<std::vector<uint64_t>> vector = statistics::EncodeSiteStatistics(spec, *table);
  if (!vector.ok()) {
    *coordinator_reason =
        "the site could not compute the study's statistics on its data set (its log says why)";
    return vector.status();
  }
  return SiteStatistics{*std::move(vector), rows};
}

}  // namespace samverka::client
