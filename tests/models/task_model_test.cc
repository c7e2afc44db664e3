// Models trained for each task (models/tasks/task_type.h), and a scripted
// module that brings its own loss.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "models/model.h"

namespace samverka::models {
namespace {

using ::testing::HasSubstr;

TrainOptions Sgd(double lr, int epochs, int batch = 32) {
  TrainOptions o;
  o.learning_rate = lr;
  o.local_epochs = epochs;
  o.batch_size = batch;
  return o;
}

std::unique_ptr<Model> MakeFor(const std::string& name, const Dataset& data, TaskOptions task) {
  absl::StatusOr<int64_t> width = OutputWidth(task, data);
  EXPECT_TRUE(width.ok()) << width.status();
  if (!width.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Model>> model =
      CreateModel({name, data.sample_shape, *width}, 1, task);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// y = 3 x0 - 2 x1 + 100 + N(0, 0.1^2), stored standardised as a loader does.
Dataset LinearRegression(int n, uint64_t seed) {
  Dataset d;
  d.sample_shape = {2};
  d.target_shape = {1};
  d.num_classes = 1;
  d.target_names = {"y"};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> y;
  for (int i = 0; i < n; ++i) {
    const float x0 = normal(rng), x1 = normal(rng);
    d.features.insert(d.features.end(), {x0, x1});
    y.push_back(3 * x0 - 2 * x1 + 100 + 0.1f * normal(rng));
    d.labels.push_back(0);
  }
  double mean = 0, var = 0;
  for (float v : y) mean += v;
  mean /= n;
  for (float v : y) var += (v - mean) * (v - mean);
  const double scale = std::sqrt(var / n);
  for (float v : y) d.targets.push_back(static_cast<float>((v - mean) / scale));
  d.target_mean = {mean};
  d.target_scale = {scale};
  return d;
}

TEST(TaskModelTest, RegressionLearnsAndReportsOriginalUnits) {
  const Dataset data = LinearRegression(400, 1);
  for (double huber : {0.0, 1.0}) {
    TaskOptions task{.type = TaskType::kRegression, .huber_delta = huber};
    std::unique_ptr<Model> model = MakeFor("logreg", data, task);
    ASSERT_NE(model, nullptr);
    ASSERT_TRUE(model->Train(data, {}, Sgd(0.05, 30), 1).ok());
    absl::StatusOr<EvalStats> eval = model->Evaluate(data, {});
    ASSERT_TRUE(eval.ok()) << eval.status();
    const auto m = eval->Metrics();
    EXPECT_GT(m.at("r2"), 0.99) << "huber " << huber;
    // Noise 0.1 in the target's own units (its deviation is about 3.6).
    EXPECT_LT(m.at("rmse"), 0.2) << "huber " << huber;
    EXPECT_NEAR(m.at("mse"), m.at("rmse") * m.at("rmse"), 1e-9);
    // The targets come back in their own units: about 100 on average.
    double mean = 0;
    for (float t : eval->targets) mean += t;
    EXPECT_NEAR(mean / eval->targets.size(), 100, 0.5);
  }
}

// Cox data: hazard exp(x0 - x1), exponential times, 30% censored at random.
Dataset CoxData(int n, uint64_t seed) {
  Dataset d;
  d.sample_shape = {2};
  d.target_shape = {2};
  d.num_classes = 2;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> uniform(0, 1);
  for (int i = 0; i < n; ++i) {
    const float x0 = normal(rng), x1 = normal(rng);
    const float time = -std::log(uniform(rng)) / std::exp(x0 - x1);
    const float event = uniform(rng) < 0.7f ? 1.0f : 0.0f;
    d.features.insert(d.features.end(), {x0, x1});
    d.targets.insert(d.targets.end(), {time, event});
    d.labels.push_back(static_cast<int64_t>(event));
  }
  return d;
}

TEST(TaskModelTest, SurvivalLearnsTheRiskOrder) {
  const Dataset data = CoxData(500, 2);
  std::unique_ptr<Model> model = MakeFor("logreg", data, {.type = TaskType::kSurvival});
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->layout().num_elements(), 3);  // a linear Cox model
  const EvalStats before = *model->Evaluate(data, {});
  absl::StatusOr<TrainStats> trained = model->Train(data, {}, Sgd(0.1, 40, 128), 1);
  ASSERT_TRUE(trained.ok()) << trained.status();
  const EvalStats after = *model->Evaluate(data, {});
  EXPECT_LT(after.loss(), before.loss());
  // The true risk x0 - x1 has C about 0.78 on such data.
  EXPECT_GT(after.Metrics().at("c_index"), 0.74);
  // Evaluating in two halves and merging gives the C of the whole.
  std::vector<int64_t> first, second;
  for (int64_t i = 0; i < data.num_samples(); ++i) (i % 2 ? second : first).push_back(i);
  EvalStats merged = *model->Evaluate(data, first);
  merged.Merge(*model->Evaluate(data, second));
  std::vector<int64_t> all = first;
  all.insert(all.end(), second.begin(), second.end());
  const EvalStats whole = *model->Evaluate(data, all);
  EXPECT_DOUBLE_EQ(merged.Metrics().at("c_index"), whole.Metrics().at("c_index"));
  EXPECT_DOUBLE_EQ(merged.loss(), whole.loss());
}

TEST(TaskModelTest, MultilabelLearnsTwoLabels) {
  Dataset data;
  data.sample_shape = {2};
  data.target_shape = {2};
  data.num_classes = 1;
  data.target_names = {"a", "b"};
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0, 1);
  for (int i = 0; i < 400; ++i) {
    const float x0 = normal(rng), x1 = normal(rng);
    data.features.insert(data.features.end(), {x0, x1});
    data.targets.insert(data.targets.end(), {x0 > 0 ? 1.0f : 0.0f, x1 > 0.5f ? 1.0f : 0.0f});
    data.labels.push_back(0);
  }
  std::unique_ptr<Model> model = MakeFor("mlp", data, {.type = TaskType::kMultilabel});
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->Train(data, {}, Sgd(0.1, 20), 1).ok());
  const auto m = model->Evaluate(data, {})->Metrics(data.target_names);
  EXPECT_GT(m.at("micro_f1"), 0.85);
  EXPECT_GT(m.at("auc_a"), 0.95);
  EXPECT_GT(m.at("auc_b"), 0.95);
  EXPECT_GT(m.at("mean_auc"), 0.95);
}

TEST(TaskModelTest, ClassificationReportsBalancedMetricsAndTakesClassWeights) {
  Dataset data;
  data.sample_shape = {1};
  data.num_classes = 2;
  std::mt19937_64 rng(4);
  std::normal_distribution<float> normal(0, 1);
  for (int i = 0; i < 300; ++i) {
    const int64_t y = i % 10 == 0 ? 1 : 0;  // 10% positives
    data.features.push_back(normal(rng) + 2.0f * y);
    data.labels.push_back(y);
  }
  TaskOptions weighted{.class_weights = {1.0, 9.0}};
  std::unique_ptr<Model> model = MakeFor("logreg", data, weighted);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->Train(data, {}, Sgd(0.1, 20), 1).ok());
  const auto m = model->Evaluate(data, {})->Metrics();
  for (const char* name : {"accuracy", "balanced_accuracy", "macro_f1", "auc", "loss"}) {
    EXPECT_TRUE(m.contains(name)) << name;
  }
  // Weighting the rare class makes the model find most of it.
  EXPECT_GT(m.at("balanced_accuracy"), 0.75);

  TaskOptions wrong{.class_weights = {1.0, 2.0, 3.0}};
  EXPECT_THAT(OutputWidth(wrong, data).status().message(), HasSubstr("3 class_weights for 2"));
  TaskOptions negative{.class_weights = {1.0, -1.0}};
  EXPECT_THAT(negative.Validate().message(), HasSubstr("class_weights[1]"));
}

TEST(TaskModelTest, DataThatTheTaskCannotServeIsRejected) {
  const Dataset regression = LinearRegression(20, 1);
  // Survival needs (time, event) targets.
  EXPECT_THAT(OutputWidth({.type = TaskType::kSurvival}, regression).status().message(),
              HasSubstr("task survival needs a time and an event"));
  // Classification needs labels of at least two classes.
  EXPECT_THAT(OutputWidth({}, regression).status().message(),
              HasSubstr("task classification needs integer class labels"));
  // A model built for 3 outputs does not take one target.
  absl::StatusOr<std::unique_ptr<Model>> model =
      CreateModel({"logreg", {2}, 3}, 1, {.type = TaskType::kRegression});
  ASSERT_TRUE(model.ok());
  EXPECT_THAT((*model)->Train(regression, {}, Sgd(0.1, 1), 1).status().message(),
              HasSubstr("does not fit model"));
  EXPECT_EQ(ParseTaskType("segmentation").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseTaskType("survival"), TaskType::kSurvival);
  EXPECT_THAT(TaskOptions{.huber_delta = 1}.Validate().message(), HasSubstr("huber_delta"));
}

// A scripted linear model whose `loss` is the mean absolute error, or a
// constant (to see that it is the one used).
std::filesystem::path WriteScriptedModel(const std::string& loss_body, const std::string& file) {
  torch::jit::Module m("Custom");
  m.register_parameter("weight", torch::zeros({1, 2}).set_requires_grad(true), false);
  m.register_parameter("bias", torch::zeros({1}).set_requires_grad(true), false);
  m.define(
      "def forward(self, x):\n"
      "    return torch.linear(x, self.weight, self.bias)\n"
      "def loss(self, output, target):\n"
      "    return " + loss_body + "\n");
  const auto path = std::filesystem::temp_directory_path() /
                    (file + "_" + std::to_string(getpid()) + ".pt");
  m.save(path.string());
  return path;
}

TEST(TaskModelTest, ScriptedLossMethodIsUsed) {
  const Dataset data = LinearRegression(300, 5);
  const TaskOptions task{.type = TaskType::kRegression};
  const auto constant = WriteScriptedModel("(output * 0.0).sum() + 42.0", "samverka_loss_const");
  std::unique_ptr<Model> model = MakeFor(constant.string(), data, task);
  ASSERT_NE(model, nullptr);
  absl::StatusOr<TrainStats> stats = model->Train(data, {}, Sgd(0.1, 1), 1);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_DOUBLE_EQ(stats->mean_loss, 42.0);
  EXPECT_DOUBLE_EQ(model->Evaluate(data, {})->loss(), 42.0);

  const auto l1 = WriteScriptedModel("torch.abs(output - target).mean()", "samverka_loss_l1");
  model = MakeFor(l1.string(), data, task);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->Train(data, {}, Sgd(0.05, 40), 1).ok());
  EXPECT_GT(model->Evaluate(data, {})->Metrics().at("r2"), 0.99);
  // The export loads back, loss method and all, with the trained weights.
  const auto exported = std::filesystem::temp_directory_path() /
                        ("samverka_loss_export_" + std::to_string(getpid()) + ".pt");
  ASSERT_TRUE(model->SaveTorchScript(exported.string()).ok());
  torch::jit::Module reloaded = torch::jit::load(exported.string());
  EXPECT_TRUE(reloaded.find_method("loss").has_value());
  // y was standardised: about 3/3.6 and -2/3.6 per feature.
  const torch::Tensor weight = reloaded.attr("weight").toTensor();
  EXPECT_NEAR(weight[0][0].item<float>(), 3 / 3.6, 0.1);
  EXPECT_NEAR(weight[0][1].item<float>(), -2 / 3.6, 0.1);
  for (const auto& p : {constant, l1, exported}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace samverka::models
