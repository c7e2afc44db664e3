// Robust aggregation: coordinate-wise median, trimmed mean and multi-Krum.
// Each needs every client's update, so the round's updates are buffered
// (O(clients x model) memory) and secure aggregation, which reveals only
// their sum, cannot be used with them. Sample counts are ignored: a
// malicious client could claim any count, and the papers' rules are
// unweighted.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "coordinator/internal/strategies.h"

namespace samverka::coordinator {
namespace {

class BufferingStrategy : public Strategy {
 public:
  explicit BufferingStrategy(double server_learning_rate)
      : server_learning_rate_(server_learning_rate) {}

  bool needs_individual_updates() const override { return true; }

  absl::Status BeginRound(size_t model_size) override {
    size_ = model_size;
    updates_.clear();
    return absl::OkStatus();
  }

  absl::Status Absorb(std::span<const float> update, double weight) override {
    if (update.size() != size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("update has ", update.size(), " values; the model has ", size_));
    }
    if (!(weight > 0) || !std::isfinite(weight)) {
      return absl::InvalidArgumentError(absl::StrCat("update weight ", weight, " is not positive"));
    }
    updates_.emplace_back(update.begin(), update.end());
    return absl::OkStatus();
  }

  absl::Status AbsorbAggregate(std::span<const double>, double) override {
    return absl::FailedPreconditionError(absl::StrCat(
        "strategy ", name(), " needs each client's update and cannot use the sum that "
        "secure aggregation reveals"));
  }

  absl::Status FinishInPlace(std::span<float> model) override {
    if (updates_.empty()) return absl::FailedPreconditionError("no update to aggregate");
    if (model.size() != size_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the round started from ", size_, " values; the model has ", model.size()));
    }
    absl::StatusOr<std::vector<double>> aggregate = Aggregate(updates_);
    std::vector<std::vector<float>>().swap(updates_);
    if (!aggregate.ok()) return aggregate.status();
    for (size_t i = 0; i < model.size(); ++i) {
      model[i] = static_cast<float>(model[i] + server_learning_rate_ * (*aggregate)[i]);
    }
    return absl::OkStatus();
  }

 protected:
  // The round's aggregated update from the buffered ones (at least one).
  virtual absl::StatusOr<std::vector<double>> Aggregate(
      const std::vector<std::vector<float>>& updates) const = 0;

 private:
  const double server_learning_rate_;
  size_t size_ = 0;
  std::vector<std::vector<float>> updates_;
};

// Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal
// Statistical Rates": the median of each coordinate (the mean of the two
// middle values for an even count).
class CoordinateMedian : public BufferingStrategy {
 public:
  using BufferingStrategy::BufferingStrategy;
  std::string name() const override { return "median"; }

 protected:
  absl::StatusOr<std::vector<double>> Aggregate(
      const std::vector<std::vector<float>>& updates) const override {
    const size_t n = updates.size();
    std::vector<double> out(updates[0].size());
    std::vector<float> column(n);
    for (size_t i = 0; i < out.size(); ++i) {
      for (size_t c = 0; c < n; ++c) column[c] = updates[c][i];
      auto middle = column.begin() + n / 2;
      std::nth_element(column.begin(), middle, column.end());
      double value = *middle;
      if (n % 2 == 0) {
        value = (value + *std::max_element(column.begin(), middle)) / 2;
      }
      out[i] = value;
    }
    return out;
  }
};

// Yin et al. 2018: per coordinate, drop the k = floor(beta * n) smallest
// and the k largest values and average the n - 2k left.
class TrimmedMean : public BufferingStrategy {
 public:
  TrimmedMean(double server_learning_rate, double trim_fraction)
      : BufferingStrategy(server_learning_rate), trim_fraction_(trim_fraction) {}
  std::string name() const override { return "trimmed-mean"; }

 protected:
  absl::StatusOr<std::vector<double>> Aggregate(
      const std::vector<std::vector<float>>& updates) const override {
    const size_t n = updates.size();
    const size_t k = static_cast<size_t>(std::floor(trim_fraction_ * static_cast<double>(n)));
    std::vector<double> out(updates[0].size());
    std::vector<float> column(n);
    for (size_t i = 0; i < out.size(); ++i) {
      for (size_t c = 0; c < n; ++c) column[c] = updates[c][i];
      std::sort(column.begin(), column.end());
      double sum = 0;
      for (size_t c = k; c < n - k; ++c) sum += column[c];
      out[i] = sum / static_cast<double>(n - 2 * k);
    }
    return out;
  }

 private:
  const double trim_fraction_;
};

// Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent": the score of update i is the sum of its
// squared distances to its n - f - 2 nearest other updates; multi-Krum
// averages the m updates with the lowest scores (ties: the earlier update).
// Needs n > 2f + 2.
class MultiKrum : public BufferingStrategy {
 public:
  MultiKrum(double server_learning_rate, int byzantine, int selected)
      : BufferingStrategy(server_learning_rate), byzantine_(byzantine), selected_(selected) {}
  std::string name() const override { return "krum"; }

 protected:
  absl::StatusOr<std::vector<double>> Aggregate(
      const std::vector<std::vector<float>>& updates) const override {
    const int n = static_cast<int>(updates.size());
    const int f = byzantine_;
    if (n <= 2 * f + 2) {
      return absl::FailedPreconditionError(absl::StrCat(
          "krum with krum_byzantine = ", f, " needs more than 2f + 2 = ", 2 * f + 2,
          " updates; the round has ", n));
    }
    const int m = selected_ > 0 ? selected_ : n - f;
    if (m > n - f) {
      return absl::FailedPreconditionError(absl::StrCat(
          "krum_selected = ", m, " is more than n - f = ", n - f, " for the round's ", n,
          " updates"));
    }
    std::vector<std::vector<double>> distance(n, std::vector<double>(n, 0.0));
    for (int a = 0; a < n; ++a) {
      for (int b = a + 1; b < n; ++b) {
        double d = 0;
        for (size_t i = 0; i < updates[a].size(); ++i) {
          const double diff = static_cast<double>(updates[a][i]) - updates[b][i];
          d += diff * diff;
        }
        distance[a][b] = distance[b][a] = d;
      }
    }
    const int neighbours = n - f - 2;
    std::vector<double> score(n);
    for (int a = 0; a < n; ++a) {
      std::vector<double> others;
      for (int b = 0; b < n; ++b) {
        if (b != a) others.push_back(distance[a][b]);
      }
      std::partial_sort(others.begin(), others.begin() + neighbours, others.end());
      score[a] = std::accumulate(others.begin(), others.begin() + neighbours, 0.0);
    }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return score[a] < score[b]; });
    std::vector<double> out(updates[0].size(), 0.0);
    for (int s = 0; s < m; ++s) {
      const std::vector<float>& u = updates[order[s]];
      for (size_t i = 0; i < out.size(); ++i) out[i] += u[i];
    }
    for (double& v : out) v /= m;
    return out;
  }

 private:
  const int byzantine_;
  const int selected_;
};

}  // namespace

namespace internal {

std::unique_ptr<Strategy> MakeCoordinateMedian(double server_learning_rate) {
  return std::make_unique<CoordinateMedian>(server_learning_rate);
}

std::unique_ptr<Strategy> MakeTrimmedMean(double server_learning_rate, double trim_fraction) {
  return std::make_unique<TrimmedMean>(server_learning_rate, trim_fraction);
}

std::unique_ptr<Strategy> MakeMultiKrum(double server_learning_rate, int byzantine,
                                        int selected) {
  return std::make_unique<MultiKrum>(server_learning_rate, byzantine, selected);
}

}  // namespace internal
}  // namespace samverka::coordinator
