#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/metrics.h"
#include "common/model_names.h"

namespace samverka::models {

std::optional<double> EvalStats::auc() const {
  if (positive_scores.empty()) return std::nullopt;
  return BinaryAuc(positive_scores, labels);
}

void EvalStats::Merge(const EvalStats& other) {
  loss_sum += other.loss_sum;
  correct += other.correct;
  samples += other.samples;
  positive_scores.insert(positive_scores.end(), other.positive_scores.begin(),
                         other.positive_scores.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
}

namespace internal {
bool LooksLikeFile(const std::string& name) { return LooksLikeModelFile(name); }
}  // namespace internal

absl::Status CheckModelName(const std::string& name_or_path) {
  return ::samverka::CheckModelName(name_or_path);
}

ModelParameters Model::GetParameters() const {
  ModelParameters out{layout(), std::vector<float>(layout().num_elements())};
  GetParameters(out.values);
  return out;
}

}  // namespace samverka::models
