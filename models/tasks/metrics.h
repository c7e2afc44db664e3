// models/tasks/metrics.h
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace samverka::models {

// The metrics of each task (docs/tasks.md), torch-free and exact: each
// function takes every evaluated sample, so a federated evaluation that
// merges samples (EvalStats::Merge) gets the metric of the union, not a mean
// of per-site values. Conventions follow scikit-learn 1.2 and R's survival
// 3.5 (tests/models/task_metrics_test.cc checks them against both).

// Balanced accuracy from a k x k confusion matrix (row = true class,
// column = predicted; row-major): the mean recall over the classes that
// occur in the true labels (sklearn's balanced_accuracy_score). 0 when empty.
double BalancedAccuracy(std::span<const int64_t> confusion, int64_t k);

// Macro-averaged F1 over the classes that occur in the true or the predicted
// labels; a class never predicted correctly scores 0 (sklearn's
// f1_score(average="macro")). 0 when empty.
double MacroF1(std::span<const int64_t> confusion, int64_t k);

// Regression metrics in the targets' own units, each averaged uniformly over
// the T targets (sklearn's multioutput="uniform_average"): rmse is the mean
// of the per-target RMSEs, r2 the mean of per-target R^2 (a constant target
// scores 1 if predicted exactly, else 0).
struct RegressionMetrics {
  double mse = 0;
  double rmse = 0;
  double mae = 0;
  double r2 = 0;
};
// `predictions` and `targets` hold n * width values, sample after sample.
RegressionMetrics ComputeRegressionMetrics(std::span<const float> predictions,
                                           std::span<const float> targets, int64_t width);

// Harrell's concordance index of `risk` (higher: earlier event) for
// right-censored (time, event) data: over the comparable pairs (i had the
// event, j was still at risk: time_j > time_i, or time_j == time_i and j
// censored), the share where i has the higher risk, ties in risk counting
// 1/2. Pairs of events at the same time are not comparable. As R's
// concordance(Surv(time, event) ~ risk, reverse = TRUE). nullopt with no
// comparable pair. O(n^2).
std::optional<double> HarrellConcordance(std::span<const float> risk,
                                         std::span<const float> time,
                                         std::span<const float> event);

// Cox's log partial likelihood of `log_risk` with Breslow's handling of tied
// event times: sum over events i of log_risk_i - log(sum over j with
// time_j >= time_i of exp(log_risk_j)). As R's coxph(ties = "breslow")
// loglik at the same coefficients. 0 without events.
double CoxLogPartialLikelihood(std::span<const double> log_risk, std::span<const float> time,
                               std::span<const float> event);

// Multi-label metrics for per-label probabilities (n * labels values) and
// 0/1 targets: ROC AUC per label (nullopt where a label's targets are all
// one value), and F1 of the predictions probability >= threshold, micro
// (over all labels' counts) and macro (mean of per-label F1; a label with no
// positives predicted or true scores 0, as sklearn's zero_division default).
struct MultilabelMetrics {
  std::vector<std::optional<double>> auc;
  double micro_f1 = 0;
  double macro_f1 = 0;
};
MultilabelMetrics ComputeMultilabelMetrics(std::span<const float> probabilities,
                                           std::span<const float> targets, int64_t labels,
                                           double threshold = 0.5);

}  // namespace samverka::models
