#include "models/tasks/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/metrics.h"

namespace samverka::models {
namespace {

double F1(int64_t tp, int64_t fp, int64_t fn) {
  const int64_t denominator = 2 * tp + fp + fn;
  return denominator > 0 ? 2.0 * static_cast<double>(tp) / static_cast<double>(denominator) : 0;
}

}  // namespace

double BalancedAccuracy(std::span<const int64_t> confusion, int64_t k) {
  double recall_sum = 0;
  int64_t present = 0;
  for (int64_t c = 0; c < k; ++c) {
    int64_t row = 0;
    for (int64_t p = 0; p < k; ++p) row += confusion[c * k + p];
    if (row == 0) continue;
    recall_sum += static_cast<double>(confusion[c * k + c]) / static_cast<double>(row);
    ++present;
  }
  return present > 0 ? recall_sum / static_cast<double>(present) : 0;
}

double MacroF1(std::span<const int64_t> confusion, int64_t k) {
  double f1_sum = 0;
  int64_t present = 0;
  for (int64_t c = 0; c < k; ++c) {
    int64_t row = 0, column = 0;
    for (int64_t o = 0; o < k; ++o) {
      row += confusion[c * k + o];
      column += confusion[o * k + c];
    }
    if (row == 0 && column == 0) continue;
    const int64_t tp = confusion[c * k + c];
    f1_sum += F1(tp, column - tp, row - tp);
    ++present;
  }
  return present > 0 ? f1_sum / static_cast<double>(present) : 0;
}

RegressionMetrics ComputeRegressionMetrics(std::span<const float> predictions,
                                           std::span<const float> targets, int64_t width) {
  RegressionMetrics m;
  if (width <= 0) return m;
  const auto n = static_cast<int64_t>(targets.size()) / width;
  if (n == 0) return m;
  for (int64_t t = 0; t < width; ++t) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += targets[i * width + t];
    mean /= static_cast<double>(n);
    double sse = 0, sae = 0, sst = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double y = targets[i * width + t];
      const double e = static_cast<double>(predictions[i * width + t]) - y;
      sse += e * e;
      sae += std::abs(e);
      sst += (y - mean) * (y - mean);
    }
    const double mse = sse / static_cast<double>(n);
    m.mse += mse;
    m.rmse += std::sqrt(mse);
    m.mae += sae / static_cast<double>(n);
    m.r2 += sst > 0 ? 1 - sse / sst : (sse == 0 ? 1.0 : 0.0);
  }
  const auto w = static_cast<double>(width);
  m.mse /= w;
  m.rmse /= w;
  m.mae /= w;
  m.r2 /= w;
  return m;
}

std::optional<double> HarrellConcordance(std::span<const float> risk,
                                         std::span<const float> time,
                                         std::span<const float> event) {
  const size_t n = std::min({risk.size(), time.size(), event.size()});
  double concordant = 0;
  int64_t comparable = 0;
  for (size_t i = 0; i < n; ++i) {
    if (event[i] == 0) continue;
    for (size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const bool at_risk = time[j] > time[i] || (time[j] == time[i] && event[j] == 0);
      if (!at_risk) continue;
      ++comparable;
      if (risk[i] > risk[j]) {
        concordant += 1;
      } else if (risk[i] == risk[j]) {
        concordant += 0.5;
      }
    }
  }
  if (comparable == 0) return std::nullopt;
  return concordant / static_cast<double>(comparable);
}

double CoxLogPartialLikelihood(std::span<const double> log_risk, std::span<const float> time,
                               std::span<const float> event) {
  const size_t n = std::min({log_risk.size(), time.size(), event.size()});
  if (n == 0) return 0;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Latest time first, so the risk set of a time is everything seen so far.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return time[a] > time[b]; });
  const double shift = *std::max_element(log_risk.begin(), log_risk.begin() + n);
  double risk_sum = 0;  // sum of exp(log_risk - shift) over the risk set
  double result = 0;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin;
    while (end < n && time[order[end]] == time[order[begin]]) {
      risk_sum += std::exp(log_risk[order[end]] - shift);
      ++end;
    }
    const double log_denominator = std::log(risk_sum) + shift;
    for (size_t k = begin; k < end; ++k) {
      if (event[order[k]] != 0) result += log_risk[order[k]] - log_denominator;
    }
    begin = end;
  }
  return result;
}

MultilabelMetrics ComputeMultilabelMetrics(std::span<const float> probabilities,
                                           std::span<const float> targets, int64_t labels,
                                           double threshold) {
  MultilabelMetrics m;
  if (labels <= 0) return m;
  const auto n = static_cast<int64_t>(targets.size()) / labels;
  int64_t tp_all = 0, fp_all = 0, fn_all = 0;
  double f1_sum = 0;
  for (int64_t l = 0; l < labels; ++l) {
    std::vector<float> scores(n);
    std::vector<int64_t> truth(n);
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; ++i) {
      scores[i] = probabilities[i * labels + l];
      truth[i] = targets[i * labels + l] != 0 ? 1 : 0;
      const bool predicted = scores[i] >= threshold;
      tp += predicted && truth[i];
      fp += predicted && !truth[i];
      fn += !predicted && truth[i];
    }
    m.auc.push_back(BinaryAuc(scores, truth));
    f1_sum += F1(tp, fp, fn);
    tp_all += tp;
    fp_all += fp;
    fn_all += fn;
  }
  m.micro_f1 = F1(tp_all, fp_all, fn_all);
  m.macro_f1 = f1_sum / static_cast<double>(labels);
  return m;
}

}  // namespace samverka::models
