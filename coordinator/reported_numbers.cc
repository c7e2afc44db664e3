// coordinator/reported_numbers.cc
#include "coordinator/reported_numbers.h"

#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/peer_text.h"

namespace samverka::coordinator {
namespace {

struct Range {
  double low;
  double high;
  bool integral;  // only low or high (a flag)
};

std::optional<Range> KnownRange(TaskKind kind, const std::string& name) {
  constexpr double kInf = HUGE_VAL;
  if (kind == TaskKind::kTrain) {
    if (name == "train_loss") return Range{0, kInf, false};
    if (name == "dp_within_clip") return Range{0, 1, true};
  } else if (kind == TaskKind::kEvaluate) {
    if (name == "loss") return Range{0, kInf, false};
    if (name == "accuracy" || name == "auc") return Range{0, 1, false};
  }
  return std::nullopt;
}

}  // namespace

absl::Status CheckRegisteredSamples(int64_t train_samples, int64_t eval_samples,
                                    int64_t max_samples_per_site) {
  for (const auto& [what, n] : {std::pair{"training", train_samples}, std::pair{"evaluation", eval_samples}}) {
    if (n < 0 || n > max_samples_per_site) {
      return absl::InvalidArgumentError(absl::StrCat(
          "registered ", n, " ", what, " samples; this federation accepts 0 to ",
          max_samples_per_site, " per site (max_samples_per_site)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckResultSamples(TaskKind kind, bool masked, int64_t num_samples,
                                int64_t registered) {
  if (masked) {
    if (num_samples != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a masked input carries its weight inside; its header said ", num_samples, " samples"));
    }
    return absl::OkStatus();
  }
  if (kind != TaskKind::kTrain && kind != TaskKind::kEvaluate) return absl::OkStatus();
  const char* what = kind == TaskKind::kTrain ? "training" : "evaluation";
  if (num_samples < 1 || num_samples > registered) {
    return absl::InvalidArgumentError(
        absl::StrCat("result claims ", num_samples, " ", what, " samples; the site registered ",
                     registered));
  }
  return absl::OkStatus();
}

absl::Status CheckResultMetrics(TaskKind kind, std::map<std::string, double>* metrics,
                                std::vector<std::string>* dropped) {
  for (auto it = metrics->begin(); it != metrics->end();) {
    std::optional<Range> range = KnownRange(kind, it->first);
    if (!range.has_value()) {
      dropped->push_back(PeerText(it->first, 64));
      it = metrics->erase(it);
      continue;
    }
    const double v = it->second;
    const bool ok = std::isfinite(v) && (range->integral ? (v == range->low || v == range->high)
                                                          : (v >= range->low && v <= range->high));
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric ", it->first, " = ", v, " is out of range (",
          range->integral ? absl::StrCat(range->low, " or ", range->high)
                          : absl::StrCat(range->low, " to ", range->high),
          ")"));
    }
    ++it;
  }
  return absl::OkStatus();
}

}  // namespace samverka::coordinator
