// The coordinator's per-round cost for the McMahan CNN (1,663,370 floats,
// 6.65 MB per update) with a cohort of 10 clients, against the local
// training it accompanies:
//   BM_AggregationRound  encode 10 updates (EncodeParameters), StartRound,
//                        10 x RoundEngine::SubmitUpdate (decode, validate,
//                        FedAvg absorb), Poll (Finish, check, re-encode,
//                        SHA-256). Counters give each stage in ms per round.
//   BM_Memcpy            a 6.65 MB memcpy: the memory-bandwidth bound each
//                        copy of an update costs at least.
//   BM_TrainCnn          Model::Train of the CNN over one client's 600
//                        samples (batch 32, lr 0.05, 1 thread).
// After the runs it prints the aggregation time as a share of one round of
// local training (10 clients x 600 samples at the measured samples/s, run
// sequentially on one thread).
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/codec.h"
#include "coordinator/round_engine.h"
#include "coordinator/strategy.h"
#include "models/model.h"

namespace samverka::bench {
namespace {

constexpr int kClients = 10;
constexpr int64_t kCnnParameters = 1'663'370;

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

ModelParameters CnnParameters(uint64_t seed, float scale) {
  absl::StatusOr<std::unique_ptr<models::Model>> model =
      models::CreateModel(FashionMnistSpec("cnn"), /*seed=*/1);
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    std::exit(1);
  }
  ModelParameters out{(*model)->layout(),
                      std::vector<float>((*model)->layout().num_elements())};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (float& v : out.values) v = normal(rng);
  return out;
}

void BM_AggregationRound(benchmark::State& state) {
  const ModelParameters global = CnnParameters(/*seed=*/100, 0.05f);
  if (global.layout.num_elements() != kCnnParameters) {
    state.SkipWithError("the CNN no longer has 1,663,370 parameters");
    return;
  }
  // Updates (local model minus global) are small.
  std::vector<ModelParameters> updates;
  for (int c = 0; c < kClients; ++c) updates.push_back(CnnParameters(200 + c, 0.001f));

  coordinator::RoundOptions options;
  options.clients_per_round = kClients;
  options.min_clients = kClients;
  auto engine = coordinator::RoundEngine::Create(options, coordinator::MakeFedAvg(), global,
                                                 /*seed=*/1);
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return;
  }
  for (int c = 0; c < kClients; ++c) (*engine)->AddClient("client-" + std::to_string(c));

  const absl::Time now = absl::UnixEpoch();
  const std::map<std::string, double> metrics = {{"train_loss", 1.0}};
  double encode_ms = 0, start_ms = 0, submit_ms = 0, poll_ms = 0;
  uint64_t bytes_up = 0;
  std::vector<std::string> encoded(kClients);
  for (auto _ : state) {
    Clock::time_point t = Clock::now();
    for (int c = 0; c < kClients; ++c) encoded[c] = EncodeParameters(updates[c]);
    encode_ms += MsSince(t);

    t = Clock::now();
    absl::StatusOr<coordinator::RoundPlan> plan = (*engine)->StartRound(now);
    start_ms += MsSince(t);
    if (!plan.ok()) {
      state.SkipWithError(std::string(plan.status().message()).c_str());
      return;
    }

    t = Clock::now();
    for (int c = 0; c < kClients; ++c) {
      absl::Status s =
          (*engine)->SubmitUpdate(plan->cohort[c], plan->round, kClientSamples, encoded[c], metrics);
      if (!s.ok()) {
        state.SkipWithError(std::string(s.message()).c_str());
        return;
      }
    }
    submit_ms += MsSince(t);

    t = Clock::now();
    std::optional<coordinator::RoundResult> result = (*engine)->Poll(now);
    poll_ms += MsSince(t);
    if (!result || !result->succeeded) {
      state.SkipWithError("the round did not close successfully");
      return;
    }
    bytes_up += result->bytes_up;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["encode10_ms"] = encode_ms / n;
  state.counters["start_ms"] = start_ms / n;
  state.counters["submit10_ms"] = submit_ms / n;
  state.counters["poll_ms"] = poll_ms / n;
  state.counters["MB_up"] = static_cast<double>(bytes_up) / n / 1e6;
}

void BM_Memcpy(benchmark::State& state) {
  std::vector<float> src(kCnnParameters, 1.0f), dst(kCnnParameters);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(src.size() * sizeof(float)));
}

void BM_TrainCnn(benchmark::State& state) {
  models::SetTorchThreads(1);
  const Dataset data = FashionMnistShapedData(kClientSamples, /*seed=*/7);
  auto model = models::CreateModel(FashionMnistSpec("cnn"), /*seed=*/1);
  if (!model.ok()) {
    state.SkipWithError(std::string(model.status().message()).c_str());
    return;
  }
  const TrainOptions options = BenchTrainOptions();
  (void)(*model)->Train(data, {}, options, /*seed=*/0);  // warm-up, not timed
  int64_t samples = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    auto stats = (*model)->Train(data, {}, options, seed++);
    if (!stats.ok()) {
      state.SkipWithError(std::string(stats.status().message()).c_str());
      return;
    }
    samples += stats->samples;
  }
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Memcpy)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AggregationRound)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_TrainCnn)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

// The console output plus, at the end, the aggregation share of a round.
class ShareReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      const std::string name = run.benchmark_name();
      const double seconds = run.real_accumulated_time / static_cast<double>(run.iterations);
      if (name.starts_with("BM_AggregationRound")) aggregation_s_ = seconds;
      if (name.starts_with("BM_Memcpy")) memcpy_s_ = seconds;
      if (name.starts_with("BM_TrainCnn")) {
        if (auto it = run.counters.find("samples_per_s"); it != run.counters.end()) {
          samples_per_s_ = it->second.value;
        }
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    if (aggregation_s_ <= 0 || samples_per_s_ <= 0) return;
    const double training_s = kClients * kClientSamples / samples_per_s_;
    std::ostream& out = GetOutputStream();
    out << "\nCNN round, " << kClients << " clients x " << kClientSamples << " samples:\n"
        << "  aggregation + serialisation: " << aggregation_s_ * 1e3 << " ms per round";
    if (memcpy_s_ > 0) out << " (" << aggregation_s_ / memcpy_s_ << " x one 6.65 MB memcpy)";
    out << "\n  local training (sequential, 1 thread, " << samples_per_s_
        << " samples/s): " << training_s * 1e3 << " ms\n"
        << "  aggregation / training: " << 100 * aggregation_s_ / training_s << " %"
        << "  (share of the round: "
        << 100 * aggregation_s_ / (aggregation_s_ + training_s) << " %; target < 10 %)\n";
  }

 private:
  double aggregation_s_ = 0;
  double memcpy_s_ = 0;
  double samples_per_s_ = 0;
};

}  // namespace
}  // namespace samverka::bench

int main(int argc, char** argv) {
  samverka::bench::EnsureSingleThreadedBlas(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Colour only on a terminal, as Google Benchmark's own console reporter.
  samverka::bench::ShareReporter reporter(isatty(STDOUT_FILENO)
                                              ? benchmark::ConsoleReporter::OO_ColorTabular
                                              : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
