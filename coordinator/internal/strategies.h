// coordinator/internal/strategies.h
#pragma once

#include <memory>

#include "coordinator/strategy.h"

// The strategies behind MakeStrategy; callers use MakeStrategy, which
// validates the parameters these constructors take as given.
namespace samverka::coordinator::internal {

// FedAvgM (Hsu et al. 2019, "Measuring the Effects of Non-Identical Data
// Distribution"): v <- momentum * v + mean_update; w <- w + lr * v.
std::unique_ptr<Strategy> MakeFedAvgM(double server_learning_rate, double momentum);

// The adaptive server optimisers of Reddi et al. 2021, "Adaptive Federated
// Optimization", Algorithm 2.
enum class AdaptiveKind { kAdagrad, kAdam, kYogi };
std::unique_ptr<Strategy> MakeFedOpt(AdaptiveKind kind, double server_learning_rate,
                                     double beta1, double beta2, double tau);

// Coordinate-wise median (Yin et al. 2018), unweighted.
std::unique_ptr<Strategy> MakeCoordinateMedian(double server_learning_rate);
// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the
// floor(trim_fraction * n) smallest and largest values, average the rest.
std::unique_ptr<Strategy> MakeTrimmedMean(double server_learning_rate, double trim_fraction);
// Multi-Krum (Blanchard et al. 2017) with `byzantine` = f and `selected` =
// m (0: n - f).
std::unique_ptr<Strategy> MakeMultiKrum(double server_learning_rate, int byzantine, int selected);

}  // namespace samverka::coordinator::internal
