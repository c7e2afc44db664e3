#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/metrics.h"

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
bool LooksLikeFile(const std::string& name) {
  return name.find('/') != std::string::npos || name.ends_with(".pt") ||
         name.ends_with(".pth");
}
}  // namespace internal

absl::Status CheckModelName(const std::string& name_or_path) {
  if (internal::LooksLikeFile(name_or_path)) {
    if (std::filesystem::is_regular_file(name_or_path)) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("model file ", name_or_path, " does not exist"));
  }
  const std::vector<std::string> builtins = BuiltinModelNames();
  if (std::find(builtins.begin(), builtins.end(), name_or_path) != builtins.end()) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name_or_path,
                                          "'; built-in models are ", absl::StrJoin(builtins, ", "),
                                          ", or give a TorchScript file (.pt)"));
}

ModelParameters Model::GetParameters() const {
  ModelParameters out{layout(), std::vector<float>(layout().num_elements())};
  GetParameters(out.values);
  return out;
}

}  // namespace samverka::models
