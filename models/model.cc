#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/metrics.h"
#include "common/model_names.h"
#include "models/tasks/metrics.h"

namespace samverka::models {

std::optional<double> EvalStats::auc() const {
  if (positive_scores.empty()) return std::nullopt;
  return BinaryAuc(positive_scores, labels);
}

namespace {

// Survival targets (time, event) split into two columns.
void SplitSurvivalTargets(const EvalStats& s, std::vector<float>* time,
                          std::vector<float>* event) {
  const size_t n = s.target_width > 0 ? s.targets.size() / s.target_width : 0;
  for (size_t i = 0; i < n; ++i) {
    time->push_back(s.targets[i * s.target_width]);
    event->push_back(s.targets[i * s.target_width + 1]);
  }
}

}  // namespace

double EvalStats::loss() const {
  if (!cox_loss) return samples ? loss_sum / samples : 0;
  std::vector<float> time, event;
  SplitSurvivalTargets(*this, &time, &event);
  const std::vector<double> log_risk(predictions.begin(), predictions.end());
  double events = 0;
  for (float e : event) events += e != 0;
  return events > 0 ? -CoxLogPartialLikelihood(log_risk, time, event) / events : 0;
}

std::map<std::string, double> EvalStats::Metrics(
    const std::vector<std::string>& target_names) const {
  std::map<std::string, double> out = {{"loss", loss()}};
  switch (task) {
    case TaskType::kClassification:
      out["accuracy"] = accuracy();
      if (!confusion.empty()) {
        out["balanced_accuracy"] = BalancedAccuracy(confusion, num_classes);
        out["macro_f1"] = MacroF1(confusion, num_classes);
      }
      if (std::optional<double> a = auc()) out["auc"] = *a;
      break;
    case TaskType::kRegression: {
      const RegressionMetrics m = ComputeRegressionMetrics(predictions, targets, target_width);
      out["mse"] = m.mse;
      out["rmse"] = m.rmse;
      out["mae"] = m.mae;
      out["r2"] = m.r2;
      break;
    }
    case TaskType::kSurvival: {
      std::vector<float> time, event;
      SplitSurvivalTargets(*this, &time, &event);
      if (std::optional<double> c = HarrellConcordance(predictions, time, event)) {
        out["c_index"] = *c;
      }
      break;
    }
    case TaskType::kMultilabel: {
      const MultilabelMetrics m = ComputeMultilabelMetrics(predictions, targets, target_width);
      out["micro_f1"] = m.micro_f1;
      out["macro_f1"] = m.macro_f1;
      double auc_sum = 0;
      int defined = 0;
      for (size_t l = 0; l < m.auc.size(); ++l) {
        if (!m.auc[l].has_value()) continue;
        const std::string name =
            l < target_names.size() ? target_names[l] : std::to_string(l);
        out["auc_" + name] = *m.auc[l];
        auc_sum += *m.auc[l];
        ++defined;
      }
      if (defined > 0) out["mean_auc"] = auc_sum / defined;
      break;
    }
  }
  return out;
}

void EvalStats::Merge(const EvalStats& other) {
  if (samples == 0 && confusion.empty() && predictions.empty()) {
    task = other.task;
    num_classes = other.num_classes;
    output_width = other.output_width;
    target_width = other.target_width;
    cox_loss = other.cox_loss;
  }
  loss_sum += other.loss_sum;
  correct += other.correct;
  samples += other.samples;
  positive_scores.insert(positive_scores.end(), other.positive_scores.begin(),
                         other.positive_scores.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  if (confusion.empty()) confusion.assign(other.confusion.size(), 0);
  for (size_t i = 0; i < std::min(confusion.size(), other.confusion.size()); ++i) {
    confusion[i] += other.confusion[i];
  }
  predictions.insert(predictions.end(), other.predictions.begin(), other.predictions.end());
  targets.insert(targets.end(), other.targets.begin(), other.targets.end());
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
