// client/statistics_task.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/site_policy.h"
#include "statistics/spec.h"

namespace samverka::client {

// A site's vector for a statistics study, and what its log says of it.
struct SiteStatistics {
  std::vector<uint64_t> vector;  // statistics/site_statistics.h's layout
  int64_t rows = 0;
};

// Computes this site's statistics of the CSV file `path` for `spec`, after
// the site's policy has accepted the study: kFailedPrecondition if the
// manifest would release counts below the site's min_count, or the file
// has fewer rows than it; kInvalidArgument / kNotFound from reading and
// encoding the file (a missing column, a cell that is not a number),
// naming the file, line and column. `coordinator_reason` is set to what the
// coordinator may hear of a failure: the rule, never a file name, value or
// row count.
absl::StatusOr<SiteStatistics> ComputeSiteStatistics(const statistics::StatisticsSpec& spec,
                                                     const std::string& path,
                                                     const SitePolicy& policy,
                                                     std::string* coordinator_reason);

}  // namespace samverka::client
