// The built-in losses of each task (models/tasks/task_type.h) in LibTorch.
#include "models/tasks/losses.h"

#include <vector>

#include "models/tasks/internal/losses.h"

namespace samverka::models {
namespace internal {

torch::Tensor CoxNegativeLogPartialLikelihood(const torch::Tensor& log_risk,
                                              const torch::Tensor& time,
                                              const torch::Tensor& event) {
  const int64_t n = log_risk.size(0);
  if (n == 0) return log_risk.sum() * 0;
  // Latest time first: the risk set of position i is positions [0, last of
  // i's tie group], whose log-sum-exp is the cumulative one at that end.
  const torch::Tensor order = torch::argsort(time, /*dim=*/0, /*descending=*/true);
  const torch::Tensor eta = log_risk.index_select(0, order);
  const torch::Tensor sorted_time = time.index_select(0, order).to(torch::kDouble).contiguous();
  const torch::Tensor sorted_event = event.index_select(0, order).to(eta.scalar_type());
  const double* t = sorted_time.data_ptr<double>();
  std::vector<int64_t> group_end(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    group_end[i] = (i + 1 < n && t[i + 1] == t[i]) ? group_end[i + 1] : i;
  }
  const torch::Tensor cumulative = torch::logcumsumexp(eta, 0);
  const torch::Tensor log_denominator =
      cumulative.index_select(0, torch::tensor(group_end, torch::kLong));
  return -((eta - log_denominator) * sorted_event).sum();
}

torch::Tensor BatchLoss(const TaskOptions& task, const torch::Tensor& class_weights,
                        const torch::Tensor& output, const torch::Tensor& labels,
                        const torch::Tensor& targets) {
  namespace F = torch::nn::functional;
  switch (task.type) {
    case TaskType::kClassification: {
      F::CrossEntropyFuncOptions options;
      if (class_weights.defined()) options.weight(class_weights);
      return F::cross_entropy(output, labels, options);
    }
    case TaskType::kRegression:
      if (task.huber_delta > 0) {
        return F::huber_loss(output, targets.view_as(output),
                             F::HuberLossFuncOptions().delta(task.huber_delta));
      }
      return F::mse_loss(output, targets.view_as(output));
    case TaskType::kSurvival: {
      const torch::Tensor event = targets.select(1, 1);
      const double events = event.sum().item<double>();
      return CoxNegativeLogPartialLikelihood(output.view({-1}), targets.select(1, 0), event) /
             std::max(1.0, events);
    }
    case TaskType::kMultilabel:
      return F::binary_cross_entropy_with_logits(output, targets.view_as(output));
  }
  return output.sum() * 0;
}

double EvaluationLossSum(const TaskOptions& task, const torch::Tensor& output,
                         const torch::Tensor& labels, const torch::Tensor& targets) {
  namespace F = torch::nn::functional;
  const double width = output.dim() == 2 ? static_cast<double>(output.size(1)) : 1.0;
  switch (task.type) {
    case TaskType::kClassification:
      return F::cross_entropy(output, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum))
          .item<double>();
    case TaskType::kRegression:
      if (task.huber_delta > 0) {
        return F::huber_loss(output, targets.view_as(output),
                             F::HuberLossFuncOptions().delta(task.huber_delta).reduction(
                                 torch::kSum))
                   .item<double>() /
               width;
      }
      return F::mse_loss(output, targets.view_as(output),
                         F::MSELossFuncOptions().reduction(torch::kSum))
                 .item<double>() /
             width;
    case TaskType::kSurvival:
      return 0;
    case TaskType::kMultilabel:
      return F::binary_cross_entropy_with_logits(
                 output, targets.view_as(output),
                 F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum))
                 .item<double>() /
             width;
  }
  return 0;
}

}  // namespace internal

double TorchCoxLogPartialLikelihood(std::span<const double> log_risk,
                                    std::span<const float> time, std::span<const float> event) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(log_risk.size());
  const torch::Tensor eta =
      torch::from_blob(const_cast<double*>(log_risk.data()), {n}, torch::kDouble).clone();
  const torch::Tensor t =
      torch::from_blob(const_cast<float*>(time.data()), {n}, torch::kFloat).clone();
  const torch::Tensor e =
      torch::from_blob(const_cast<float*>(event.data()), {n}, torch::kFloat).clone();
  return -internal::CoxNegativeLogPartialLikelihood(eta, t, e).item<double>();
}

}  // namespace samverka::models
