// FedAvg and the server optimisers built on it: every one of them needs only
// the weighted mean of the round's updates, so each absorbs updates into a
// running sum (O(model) memory) and works with secure aggregation.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "coordinator/internal/strategies.h"

namespace samverka::coordinator {
namespace {

// Accumulates sum_i w_i * update_i and sum_i w_i in double precision; the
// subclass turns the weighted mean update into the next model.
class MeanUpdateStrategy : public Strategy {
 public:
  explicit MeanUpdateStrategy(double server_learning_rate)
      : server_learning_rate_(server_learning_rate) {}

  absl::Status BeginRound(size_t model_size) override {
    sum_.assign(model_size, 0.0);
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
      return absl::InvalidArgumentError(
          absl::StrCat("total weight ", total_weight, " is not positive"));
    }
    for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += weighted_sum[i];
    total_weight_ += total_weight;
    return absl::OkStatus();
  }

  absl::Status FinishInPlace(std::span<float> model) override {
    if (total_weight_ <= 0) return absl::FailedPreconditionError("no update to aggregate");
    if (model.size() != sum_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the round started from ", sum_.size(), " values; the model has ", model.size()));
    }
    // sum_ becomes the mean update in place.
    for (double& v : sum_) v /= total_weight_;
    total_weight_ = 0;
    Step(sum_, model);
    // The accumulator (two models' worth of doubles) is not kept between
    // rounds: the coordinator encodes the next model right after this.
    std::vector<double>().swap(sum_);
    return absl::OkStatus();
  }

 protected:
  // Moves `model` (the round's global model on entry) by the round's mean
  // update, in place.
  virtual void Step(const std::vector<double>& mean_update, std::span<float> model) = 0;

  const double server_learning_rate_;

 private:
  std::vector<double> sum_;
  double total_weight_ = 0;
};

// McMahan et al. 2017: w <- w + lr * mean_update.
class FedAvg : public MeanUpdateStrategy {
 public:
  using MeanUpdateStrategy::MeanUpdateStrategy;
  std::string name() const override { return "fedavg"; }

 protected:
  void Step(const std::vector<double>& mean, std::span<float> model) override {
    for (size_t i = 0; i < model.size(); ++i) {
      model[i] = static_cast<float>(model[i] + server_learning_rate_ * mean[i]);
    }
  }
};

// Hsu et al. 2019: v <- beta * v + mean_update; w <- w + lr * v. The
// momentum buffer starts at zero and lives across rounds.
class FedAvgM : public MeanUpdateStrategy {
 public:
  FedAvgM(double server_learning_rate, double momentum)
      : MeanUpdateStrategy(server_learning_rate), momentum_(momentum) {}
  std::string name() const override { return "fedavgm"; }

  absl::Status BeginRound(size_t model_size) override {
    if (!velocity_.empty() && velocity_.size() != model_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fedavgm: the model has ", model_size, " values; its momentum has ",
          velocity_.size()));
    }
    return MeanUpdateStrategy::BeginRound(model_size);
  }

 protected:
  void Step(const std::vector<double>& mean, std::span<float> model) override {
    if (velocity_.empty()) velocity_.assign(mean.size(), 0.0);
    for (size_t i = 0; i < model.size(); ++i) {
      velocity_[i] = momentum_ * velocity_[i] + mean[i];
      model[i] = static_cast<float>(model[i] + server_learning_rate_ * velocity_[i]);
    }
  }

 private:
  const double momentum_;
  std::vector<double> velocity_;
};

// Reddi et al. 2021, Algorithm 2, with the pseudo-gradient Delta = the
// weighted mean update:
//   m <- beta1 * m + (1 - beta1) * Delta                    (m starts at 0)
//   v <- v + Delta^2                                        FedAdagrad
//   v <- v - (1 - beta2) * Delta^2 * sign(v - Delta^2)      FedYogi
//   v <- beta2 * v + (1 - beta2) * Delta^2                  FedAdam
//   w <- w + lr * m / (sqrt(v) + tau)
// v starts at tau^2 (the paper asks v_{-1} >= tau^2); no bias correction,
// as in the paper.
class FedOpt : public MeanUpdateStrategy {
 public:
  FedOpt(internal::AdaptiveKind kind, double server_learning_rate, double beta1, double beta2,
         double tau)
      : MeanUpdateStrategy(server_learning_rate),
        kind_(kind),
        beta1_(beta1),
        beta2_(beta2),
        tau_(tau) {}

  std::string name() const override {
    switch (kind_) {
      case internal::AdaptiveKind::kAdagrad: return "fedadagrad";
      case internal::AdaptiveKind::kAdam: return "fedadam";
      case internal::AdaptiveKind::kYogi: return "fedyogi";
    }
    return "fedopt";
  }

  absl::Status BeginRound(size_t model_size) override {
    if (!m_.empty() && m_.size() != model_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(), ": the model has ", model_size, " values; its moments have ", m_.size()));
    }
    return MeanUpdateStrategy::BeginRound(model_size);
  }

 protected:
  void Step(const std::vector<double>& delta, std::span<float> model) override {
    if (m_.empty()) {
      m_.assign(delta.size(), 0.0);
      v_.assign(delta.size(), tau_ * tau_);
    }
    for (size_t i = 0; i < model.size(); ++i) {
      const double d = delta[i];
      const double d2 = d * d;
      m_[i] = beta1_ * m_[i] + (1 - beta1_) * d;
      switch (kind_) {
        case internal::AdaptiveKind::kAdagrad:
          v_[i] += d2;
          break;
        case internal::AdaptiveKind::kYogi: {
          const double diff = v_[i] - d2;
          const double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
          v_[i] -= (1 - beta2_) * d2 * sign;
          break;
        }
        case internal::AdaptiveKind::kAdam:
          v_[i] = beta2_ * v_[i] + (1 - beta2_) * d2;
          break;
      }
      model[i] = static_cast<float>(model[i] +
                                    server_learning_rate_ * m_[i] / (std::sqrt(v_[i]) + tau_));
    }
  }

 private:
  const internal::AdaptiveKind kind_;
  const double beta1_;
  const double beta2_;
  const double tau_;
  std::vector<double> m_;
  std::vector<double> v_;
};

}  // namespace

std::unique_ptr<Strategy> MakeFedAvg(double server_learning_rate) {
  return std::make_unique<FedAvg>(server_learning_rate);
}

namespace internal {

std::unique_ptr<Strategy> MakeFedAvgM(double server_learning_rate, double momentum) {
  return std::make_unique<FedAvgM>(server_learning_rate, momentum);
}

std::unique_ptr<Strategy> MakeFedOpt(AdaptiveKind kind, double server_learning_rate,
                                     double beta1, double beta2, double tau) {
  return std::make_unique<FedOpt>(kind, server_learning_rate, beta1, beta2, tau);
}

}  // namespace internal
}  // namespace samverka::coordinator
