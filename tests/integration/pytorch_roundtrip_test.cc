// A model scripted in PyTorch loads into Samverka, trains in a simulated
// federation, and its exported result loads back in PyTorch with the test
// accuracy that Samverka reported.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "client/datasets/registry.h"
#include "tests/integration/run_command.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;

constexpr char kPython[] = "/usr/bin/python3";

bool HavePyTorch() { return RunCommand(std::string(kPython) + " -c 'import torch'").exit_code == 0; }

template <typename T>
void WriteRaw(const fs::path& path, const std::vector<T>& values) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(PyTorchRoundTripTest, ScriptedModelTrainsAndScoresTheSameInPyTorch) {
  if (!HavePyTorch()) GTEST_SKIP() << "python3-torch is not installed (scripts/install-deps installs it)";
  const fs::path dir = fs::temp_directory_path() / "samverka_pytorch_roundtrip";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string source = SAMVERKA_SOURCE_DIR;
  const std::string csv = source + "/examples/breast-cancer-wisconsin/wdbc.csv";

  // 1. PyTorch scripts a model.
  CommandResult made = RunCommand(std::string(kPython) + " " + source +
                                  "/examples/pytorch/make_scripted_model.py tabular-mlp "
                                  "--features 30 --classes 2 --out " + (dir / "scripted.pt").string());
  ASSERT_EQ(made.exit_code, 0) << made.output;

  // 2. Samverka trains it across three simulated hospitals.
  CommandResult run = RunCommand(std::string(SAMVERKA_BIN) +
                                 " --log-level warn simulate --dataset csv:" + csv +
                                 ":malignant --model " + (dir / "scripted.pt").string() +
                                 " --clients 3 --clients-per-round 3 --rounds 4 --lr 0.1"
                                 " --partition iid --seed 5 --out " + (dir / "run").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream metrics(dir / "run" / "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  const double reported = nlohmann::json::parse(last)["test_accuracy"].get<double>();

  // 3. PyTorch scores the exported model on the same test split.
  client::DatasetOptions options;
  options.spec = "csv:" + csv + ":malignant";
  options.seed = 5;
  absl::StatusOr<DatasetSplit> data = client::LoadDataset(options);
  ASSERT_TRUE(data.ok()) << data.status();
  WriteRaw(dir / "test.f32", data->test.features);
  WriteRaw(dir / "test.i64", data->test.labels);
  CommandResult eval = RunCommand(std::string(kPython) + " " + source +
                                  "/tests/integration/pytorch_eval.py " +
                                  (dir / "run" / "model.pt").string() + " " +
                                  (dir / "test.f32").string() + " " + (dir / "test.i64").string() + " 30");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  std::istringstream counts(eval.output);
  int64_t correct = 0, total = 0;
  counts >> correct >> total;
  ASSERT_EQ(total, data->test.num_samples());
  EXPECT_DOUBLE_EQ(static_cast<double>(correct) / total, reported);
  EXPECT_GT(reported, 0.8) << "the federation learnt something";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace samverka
