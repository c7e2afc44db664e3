// coordinator/reported_numbers.h
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/task.h"

namespace samverka::coordinator {

// What a site says about itself is bounded before it counts. A site's
// sample count is its weight in FedAvg: a weight of 2^63 - 1 once erased
// every honest update of a round, and an accuracy of 999999.99 was stored.
// These checks are the coordinator's; secure rounds bound the weight inside
// the masked vector by the encoding's largest weight instead.

// A site's registration: kInvalidArgument unless 0 <= count <=
// `max_samples_per_site` for both counts, naming the count and the key.
absl::Status CheckRegisteredSamples(int64_t train_samples, int64_t eval_samples,
                                    int64_t max_samples_per_site);

// The sample count of a result: a plain update or an evaluation needs
// 1 <= n <= what the site registered for that kind (training or evaluation
// samples); a masked input carries its weight inside and must say 0.
// kInvalidArgument naming both numbers otherwise.
absl::Status CheckResultSamples(TaskKind kind, bool masked, int64_t num_samples,
                                int64_t registered);

// Keeps the metrics the coordinator knows for `kind` and checks each one's
// range: train_loss >= 0; dp_within_clip 0 or 1; evaluation loss >= 0,
// accuracy and auc in [0, 1]; all finite. A value out of range is
// kInvalidArgument naming the metric and the value (the result is refused:
// a site that lies about one number is not trusted with the rest). Metrics
// of other names are removed from `metrics` and their names (escaped)
// appended to `dropped`, so a newer site does not lose its round.
absl::Status CheckResultMetrics(TaskKind kind, std::map<std::string, double>* metrics,
                                std::vector<std::string>* dropped);

}  // namespace samverka::coordinator
