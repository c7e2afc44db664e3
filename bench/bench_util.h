// bench/bench_util.h
#pragma once

// Helpers shared by the benchmarks in bench/ (header-only, no torch types).

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "common/dataset.h"
#include "models/model.h"

namespace samverka::bench {

// OpenBLAS sizes its thread pool from OPENBLAS_NUM_THREADS when the library
// is loaded, i.e. before main; setting the variable in main is too late. If
// it is not "1", set it and re-execute this binary so that the benchmark
// always runs with one BLAS thread (STYLE 10; libtorch notes section 5).
inline void EnsureSingleThreadedBlas(char** argv) {
  const char* value = std::getenv("OPENBLAS_NUM_THREADS");
  if (value != nullptr && std::strcmp(value, "1") == 0) return;
  setenv("OPENBLAS_NUM_THREADS", "1", /*overwrite=*/1);
  execv("/proc/self/exe", argv);
  std::perror("re-exec with OPENBLAS_NUM_THREADS=1 failed");
  std::exit(1);
}

// Fashion-MNIST-shaped random data: `n` samples of [1,28,28] uniform in
// [0,1) and labels uniform in [0,10).
inline Dataset FashionMnistShapedData(int64_t n, uint64_t seed) {
  Dataset data;
  data.sample_shape = {1, 28, 28};
  data.num_classes = 10;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  data.features.resize(static_cast<size_t>(n * data.sample_size()));
  for (float& v : data.features) v = pixel(rng);
  data.labels.resize(static_cast<size_t>(n));
  for (int64_t& y : data.labels) y = static_cast<int64_t>(rng() % 10);
  return data;
}

inline models::ModelSpec FashionMnistSpec(const char* name) {
  models::ModelSpec spec;
  spec.name_or_path = name;
  spec.input_shape = {1, 28, 28};
  spec.num_classes = 10;
  return spec;
}

// The local-training settings the benchmarks and bench/pytorch_training.py
// share: plain SGD, lr 0.05, batch 32, one epoch per Train call over one
// client's 600 samples (McMahan et al.'s MNIST split: 60,000 / 100 clients).
inline constexpr int64_t kClientSamples = 600;
inline TrainOptions BenchTrainOptions() {
  TrainOptions options;
  options.learning_rate = 0.05;
  options.batch_size = 32;
  options.local_epochs = 1;
  return options;
}

}  // namespace samverka::bench
