// Local training throughput of Model::Train for the built-in "cnn" and "mlp"
// on Fashion-MNIST-shaped random data: batch 32, SGD lr 0.05, one LibTorch
// thread and one OpenBLAS thread. bench/pytorch_training.py runs the same
// workload in PyTorch eager mode; bench/compare_training.py runs both
// interleaved and prints the ratio.
//
// One benchmark iteration is one Model::Train call: one epoch over a
// client's 600 samples (19 steps: 18 of 32 and one of 24). The iteration
// count is fixed so that both sides train the same number of samples:
//   training_bench [--cnn_calls=5] [--mlp_calls=100] [benchmark flags]
// Counters: samples_per_s (wall clock) and the last call's mean loss.
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "models/model.h"

namespace samverka::bench {
namespace {

void BM_Train(benchmark::State& state, const char* model_name) {
  models::SetTorchThreads(1);
  const Dataset data = FashionMnistShapedData(kClientSamples, /*seed=*/7);
  absl::StatusOr<std::unique_ptr<models::Model>> model =
      models::CreateModel(FashionMnistSpec(model_name), /*seed=*/1);
  if (!model.ok()) {
    state.SkipWithError(std::string(model.status().message()).c_str());
    return;
  }
  const TrainOptions options = BenchTrainOptions();
  // Warm-up call (allocator, OpenBLAS buffers), not timed; PyTorch side too.
  if (auto warm = (*model)->Train(data, {}, options, /*seed=*/0); !warm.ok()) {
    state.SkipWithError(std::string(warm.status().message()).c_str());
    return;
  }
  int64_t samples = 0;
  double loss = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    absl::StatusOr<models::TrainStats> stats = (*model)->Train(data, {}, options, seed++);
    if (!stats.ok()) {
      state.SkipWithError(std::string(stats.status().message()).c_str());
      return;
    }
    samples += stats->samples;
    loss = stats->mean_loss;
  }
  if (!std::isfinite(loss)) state.SkipWithError("training diverged (non-finite loss)");
  state.counters["samples_per_s"] = benchmark::Counter(static_cast<double>(samples),
                                                       benchmark::Counter::kIsRate);
  state.counters["samples"] = static_cast<double>(samples);
  state.counters["loss"] = loss;
}

// Value of "--name=N" in argv, or `fallback`.
int FlagValue(int argc, char** argv, std::string_view name, int fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=') {
      return std::atoi(argv[i] + name.size() + 1);
    }
  }
  return fallback;
}

}  // namespace
}  // namespace samverka::bench

int main(int argc, char** argv) {
  samverka::bench::EnsureSingleThreadedBlas(argv);
  using samverka::bench::BM_Train;
  using samverka::bench::FlagValue;
  const int cnn_calls = FlagValue(argc, argv, "--cnn_calls", 5);
  const int mlp_calls = FlagValue(argc, argv, "--mlp_calls", 100);
  benchmark::RegisterBenchmark("BM_Train/cnn", BM_Train, "cnn")
      ->Iterations(cnn_calls)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_Train/mlp", BM_Train, "mlp")
      ->Iterations(mlp_calls)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
