// common/dataset.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace samverka {

// An in-memory data set: row-major float features and one integer label per
// sample, and for tasks other than classification (models/tasks/task_type.h)
// float targets of a fixed shape per sample. It holds no LibTorch types, so loaders,
// partitioners and the network code never include torch headers; models/
// wraps the same memory as tensors without copying.
// Not thread-safe for mutation; concurrent readers are fine.
struct Dataset {
  // Shape of one sample, e.g. {1, 28, 28} for an image or {30} for a row.
  std::vector<int64_t> sample_shape;
  // num_samples() * sample_size() values, sample after sample.
  std::vector<float> features;
  // One label per sample, each in [0, num_classes).
  std::vector<int64_t> labels;
  int64_t num_classes = 0;
  // Human-readable class names where the source has them (may be empty).
  std::vector<std::string> class_names;
  // Feature names where the source has them (CSV header), else empty.
  std::vector<std::string> feature_names;

  // Regression, survival, multi-label: shape of one sample's targets (e.g.
  // {3} for three regression targets, {2} for survival's time and event);
  // empty for a classification data set. `labels` still has one entry per
  // sample (survival: the event; otherwise 0) so partitioners work.
  std::vector<int64_t> target_shape;
  // num_samples() * target_size() values, sample after sample.
  std::vector<float> targets;
  // Names of the target values where the source has them (CSV columns).
  std::vector<std::string> target_names;
  // Regression: targets are stored standardised, t = (y - mean) / scale,
  // one entry per target value; empty when they are stored as read.
  std::vector<double> target_mean;
  std::vector<double> target_scale;

  int64_t num_samples() const { return static_cast<int64_t>(labels.size()); }
  int64_t sample_size() const {
    int64_t n = 1;
    for (int64_t d : sample_shape) n *= d;
    return n;
  }
  // Values in one sample's targets; 0 without targets.
  int64_t target_size() const {
    if (target_shape.empty()) return 0;
    int64_t n = 1;
    for (int64_t d : target_shape) n *= d;
    return n;
  }
};

// A train/test pair as produced by the loaders.
struct DatasetSplit {
  Dataset train;
  Dataset test;
};

}  // namespace samverka
