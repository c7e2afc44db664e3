// simulation/internal/random.h
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "common/random.h"

namespace samverka::simulation::internal {

using ::samverka::Shuffle;
using ::samverka::UniformBelow;

// Draws built only on std::mt19937_64's raw output, whose sequence the C++
// standard fixes, so a seed gives the same partition with any standard
// library (the std:: distributions are implementation-defined). Only the
// libm functions log, exp, sqrt and pow remain platform-dependent, and on
// glibc they are deterministic. Not thread-safe: callers own the engine.

// A uniform double in the open interval (0, 1) with 53 random bits.
double UniformOpen01(std::mt19937_64& rng);

// A standard normal draw (Marsaglia's polar method, one value per call).
double StandardNormal(std::mt19937_64& rng);

// The logarithm of a Gamma(shape, 1) draw, shape > 0, by Marsaglia and Tsang
// (ACM TOMS 26(3), 2000), with the u^(1/shape) boost for shape < 1. Working in
// logs keeps tiny shapes (e.g. 0.01) from underflowing to 0.
double LogGammaSample(std::mt19937_64& rng, double shape);

// A draw from the symmetric Dirichlet(alpha, ..., alpha) over `k` >= 1
// categories, alpha > 0; the result sums to 1.
std::vector<double> SymmetricDirichlet(std::mt19937_64& rng, double alpha,
                                       int k);


}  // namespace samverka::simulation::internal
