// simulation/internal/random.cc
#include "simulation/internal/random.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace samverka::simulation::internal {


double UniformOpen01(std::mt19937_64& rng) {
  // (k + 0.5) / 2^53 for k in [0, 2^53): never exactly 0 or 1.
  return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
}

double StandardNormal(std::mt19937_64& rng) {
  while (true) {
    const double u = 2.0 * UniformOpen01(rng) - 1.0;
    const double v = 2.0 * UniformOpen01(rng) - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

double LogGammaSample(std::mt19937_64& rng, double shape) {
  assert(shape > 0);
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia and Tsang, section 6).
    const double boost = std::log(UniformOpen01(rng)) / shape;
    return LogGammaSample(rng, shape + 1.0) + boost;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    const double x = StandardNormal(rng);
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = UniformOpen01(rng);
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2 ||
        std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) {
      return std::log(d * v);
    }
  }
}

std::vector<double> SymmetricDirichlet(std::mt19937_64& rng, double alpha,
                                       int k) {
  assert(k >= 1);
  std::vector<double> p(static_cast<size_t>(k));
  for (double& log_gamma : p) log_gamma = LogGammaSample(rng, alpha);
  // Normalise in log space: p_i = exp(l_i - max) / sum_j exp(l_j - max).
  const double max_log = *std::max_element(p.begin(), p.end());
  double sum = 0.0;
  for (double& value : p) {
    value = std::exp(value - max_log);
    sum += value;
  }
  for (double& value : p) value /= sum;
  return p;
}

}  // namespace samverka::simulation::internal
