// models/tasks/internal/losses.h
#pragma once

// Includes LibTorch: only for models/ translation units that talk to torch.
#include <torch/torch.h>

#include "models/tasks/task_type.h"

namespace samverka::models::internal {

// Sum over samples with an event of log_risk_i - log(sum over j with
// time_j >= time_i of exp(log_risk_j)), negated: Cox's negative log partial
// likelihood with Breslow's ties. `log_risk`, `time`, `event` are [N]; the
// result is a scalar differentiable in `log_risk`, 0 without events.
torch::Tensor CoxNegativeLogPartialLikelihood(const torch::Tensor& log_risk,
                                              const torch::Tensor& time,
                                              const torch::Tensor& event);

// The built-in loss of `task` on one batch, averaged the way the training
// loop minimises it: per sample (classification, weighted by `class_weights`
// when defined), per value (regression, multilabel) or per event (survival).
// `output` is the model's [N, W]; `labels` int64 [N] for classification,
// `targets` float [N, ...] for the other tasks.
torch::Tensor BatchLoss(const TaskOptions& task, const torch::Tensor& class_weights,
                        const torch::Tensor& output, const torch::Tensor& labels,
                        const torch::Tensor& targets);

// The same loss summed per sample for evaluation (classification
// unweighted; regression and multilabel averaged over the values of each
// sample). Survival's loss is not a sum over samples: 0 here, computed from
// all predictions by EvalStats.
double EvaluationLossSum(const TaskOptions& task, const torch::Tensor& output,
                         const torch::Tensor& labels, const torch::Tensor& targets);

}  // namespace samverka::models::internal
