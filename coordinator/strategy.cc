#include "coordinator/strategy.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace samverka::coordinator {
namespace {

class FedAvg : public Strategy {
 public:
  explicit FedAvg(double server_learning_rate) : server_learning_rate_(server_learning_rate) {}

  std::string name() const override { return "fedavg"; }

  absl::Status BeginRound(const ModelParameters& global) override {
    global_ = global.values;
    sum_.assign(global_.size(), 0.0);
    total_weight_ = 0;
    return absl::OkStatus();
  }

  absl::Status Absorb(std::span<const float> update, double weight) override {
    if (update.size() != sum_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("update has ", update.size(), " values; the model has ", sum_.size()));
    }
    if (!(weight > 0) || !std::isfinite(weight)) {
      return absl::InvalidArgumentError(absl::StrCat("update weight ", weight, " is not positive"));
    }
    for (size_t i = 0; i < update.size(); ++i) sum_[i] += weight * update[i];
    total_weight_ += weight;
    return absl::OkStatus();
  }

  absl::Status AbsorbAggregate(std::span<const double> weighted_sum,
                               double total_weight) override {
    if (weighted_sum.size() != sum_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "aggregate has ", weighted_sum.size(), " values; the model has ", sum_.size()));
    }
    if (!(total_weight > 0) || !std::isfinite(total_weight)) {
      return absl::InvalidArgumentError(absl::StrCat("total weight ", total_weight, " is not positive"));
    }
    for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += weighted_sum[i];
    total_weight_ += total_weight;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<float>> Finish() override {
    if (total_weight_ <= 0) return absl::FailedPreconditionError("no update to aggregate");
    std::vector<float> next(global_.size());
    const double scale = server_learning_rate_ / total_weight_;
    for (size_t i = 0; i < next.size(); ++i) {
      next[i] = static_cast<float>(global_[i] + scale * sum_[i]);
    }
    total_weight_ = 0;
    return next;
  }

 private:
  double server_learning_rate_;
  std::vector<float> global_;
  std::vector<double> sum_;
  double total_weight_ = 0;
};

}  // namespace

std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate) {
  return std::make_unique<FedAvg>(server_learning_rate);
}

}  // namespace samverka::coordinator
