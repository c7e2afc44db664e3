// models/tasks/losses.h
#pragma once

#include <span>

namespace samverka::models {

// Cox's log partial likelihood (Breslow) computed by the training loss's own
// LibTorch code (models/tasks/internal/losses.h) in double precision, so it
// can be checked against R's coxph and against CoxLogPartialLikelihood
// (models/tasks/metrics.h) without torch headers. Inputs have one value per
// sample.
double TorchCoxLogPartialLikelihood(std::span<const double> log_risk,
                                    std::span<const float> time, std::span<const float> event);

}  // namespace samverka::models
