#include "models/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "common/model_names.h"

namespace samverka::models {
namespace {

using ::testing::HasSubstr;

// Three well-separated Gaussian blobs in 4 dimensions.
Dataset Blobs(int per_class, uint64_t seed) {
  Dataset d;
  d.sample_shape = {4};
  d.num_classes = 3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0, 0.5f);
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < per_class; ++i) {
      for (int j = 0; j < 4; ++j) d.features.push_back((j == c ? 3.0f : 0.0f) + noise(rng));
      d.labels.push_back(c);
    }
  }
  return d;
}

std::unique_ptr<Model> Make(const std::string& name, std::vector<int64_t> shape, int64_t classes,
                            uint64_t seed = 1) {
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel({name, shape, classes}, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

TEST(ModelTest, BuiltinsHaveThePublishedParameterCounts) {
  // McMahan et al. 2017: CNN 1,663,370 parameters; 2NN 199,210 (784-200-200-10).
  EXPECT_EQ(Make("cnn", {1, 28, 28}, 10)->layout().num_elements(), 1663370);
  EXPECT_EQ(Make("mlp", {1, 28, 28}, 10)->layout().num_elements(), 199210);
  // Logistic regression on 30 features, 2 classes: 30*2 + 2.
  EXPECT_EQ(Make("logreg", {30}, 2)->layout().num_elements(), 62);
  EXPECT_EQ(Make("cnn", {1, 28, 28}, 10)->layout().tensors[0].name, "conv1.weight");
}

TEST(ModelTest, TorchFreeNameListMatchesTheBuiltins) {
  // The coordinator validates model names with common/model_names.h and
  // never loads LibTorch; the two lists must agree, and each name builds.
  EXPECT_EQ(samverka::BuiltinModelNames(), BuiltinModelNames());
  for (const std::string& name : samverka::BuiltinModelNames()) {
    EXPECT_TRUE(CreateModel({name, {1, 28, 28}, 10}, 1).ok()) << name;
  }
}

TEST(ModelTest, UnknownModelListsBuiltins) {
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel({"resnet", {4}, 3}, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("cnn, logreg, mlp"));
}

TEST(ModelTest, CnnOnTabularDataIsRejected) {
  absl::StatusOr<std::unique_ptr<Model>> model = CreateModel({"cnn", {30}, 2}, 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("image input"));
}

TEST(ModelTest, MissingTorchScriptFileIsNotFound) {
  EXPECT_EQ(CreateModel({"/nonexistent/model.pt", {4}, 3}, 1).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ModelTest, ParametersRoundTripAndWrongSizeIsRejected) {
  std::unique_ptr<Model> model = Make("mlp", {4}, 3);
  ModelParameters p = model->GetParameters();
  for (float& v : p.values) v = 0.25f;
  ASSERT_TRUE(model->SetParameters(p.values).ok());
  EXPECT_EQ(model->GetParameters().values, p.values);
  p.values.pop_back();
  EXPECT_EQ(model->SetParameters(p.values).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelTest, TrainingLearnsAndIsDeterministicForASeed) {
  const Dataset data = Blobs(100, 3);
  std::unique_ptr<Model> a = Make("mlp", {4}, 3, 5);
  std::unique_ptr<Model> b = Make("mlp", {4}, 3, 5);
  EXPECT_EQ(a->GetParameters().values, b->GetParameters().values) << "same init seed";
  const double before = a->Evaluate(data, {})->loss();
  TrainOptions options;
  options.learning_rate = 0.1;
  options.local_epochs = 5;
  options.batch_size = 16;
  absl::StatusOr<TrainStats> stats = a->Train(data, {}, options, 42);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->samples, 5 * 300);
  EXPECT_EQ(stats->steps, 5 * 19);
  const EvalStats after = *a->Evaluate(data, {});
  EXPECT_LT(after.loss(), before / 2);
  EXPECT_GT(after.accuracy(), 0.95);

  ASSERT_TRUE(b->Train(data, {}, options, 42).ok());
  EXPECT_EQ(a->GetParameters().values, b->GetParameters().values);
  std::unique_ptr<Model> c = Make("mlp", {4}, 3, 5);
  ASSERT_TRUE(c->Train(data, {}, options, 43).ok());
  EXPECT_NE(a->GetParameters().values, c->GetParameters().values) << "another shuffle seed";
}

// FedProx (Li et al. 2020) adds mu/2 * ||w - w_start||^2 to the loss, so an
// SGD step gains -lr * mu * (w - w_start). Full-batch steps: the first step
// starts at w_start, where the term has no gradient, so after two steps
// w2(mu) = w2(0) - lr * mu * (w1 - w0), with w1 the model after one step.
TEST(ModelTest, ProximalTermPullsTowardsTheStartingModel) {
  const Dataset data = Blobs(10, 7);
  TrainOptions options;
  options.learning_rate = 0.1;
  options.batch_size = 30;  // the whole data set: one step per epoch
  std::unique_ptr<Model> one_step = Make("logreg", {4}, 3);
  std::unique_ptr<Model> plain = Make("logreg", {4}, 3);
  std::unique_ptr<Model> proximal = Make("logreg", {4}, 3);
  const std::vector<float> w0 = plain->GetParameters().values;
  ASSERT_TRUE(one_step->Train(data, {}, options, 5).ok());
  options.local_epochs = 2;
  ASSERT_TRUE(plain->Train(data, {}, options, 5).ok());
  options.proximal_mu = 0.5;
  ASSERT_TRUE(proximal->Train(data, {}, options, 5).ok());
  const std::vector<float> w1 = one_step->GetParameters().values;
  const std::vector<float> w2 = plain->GetParameters().values;
  const std::vector<float> w2_mu = proximal->GetParameters().values;
  double largest_pull = 0;
  for (size_t i = 0; i < w0.size(); ++i) {
    const double pull = -0.1 * 0.5 * (w1[i] - w0[i]);
    EXPECT_NEAR(w2_mu[i], w2[i] + pull, 1e-5) << "parameter " << i;
    largest_pull = std::max(largest_pull, std::abs(pull));
  }
  EXPECT_GT(largest_pull, 1e-3) << "the test must exercise the term";
}

TEST(ModelTest, TrainsOnlyTheGivenIndices) {
  const Dataset data = Blobs(50, 4);
  std::unique_ptr<Model> model = Make("logreg", {4}, 3);
  absl::StatusOr<TrainStats> stats = model->Train(data, std::vector<int64_t>{0, 1, 2, 60}, {}, 1);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->samples, 4);
  absl::StatusOr<EvalStats> eval = model->Evaluate(data, std::vector<int64_t>{5, 6});
  EXPECT_EQ(eval->samples, 2);
}

TEST(ModelTest, DataOfAnotherShapeIsRejected) {
  Dataset data = Blobs(5, 1);
  std::unique_ptr<Model> model = Make("logreg", {5}, 3);
  EXPECT_THAT(std::string(model->Train(data, {}, {}, 1).status().message()),
              HasSubstr("does not fit model"));
}

TEST(ModelTest, BadTrainOptionsAreRejected) {
  TrainOptions options;
  options.learning_rate = -1;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("learning_rate"));
  options = {};
  options.batch_size = 0;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("batch_size"));
}

TEST(ModelTest, ExportedTorchScriptReloadsWithSameOutputs) {
  const Dataset data = Blobs(30, 9);
  for (const std::string name : {"logreg", "mlp"}) {
    std::unique_ptr<Model> model = Make(name, {4}, 3);
    ASSERT_TRUE(model->Train(data, {}, {}, 1).ok());
    const auto path = std::filesystem::temp_directory_path() / ("samverka_export_" + name + ".pt");
    ASSERT_TRUE(model->SaveTorchScript(path.string()).ok());
    absl::StatusOr<std::unique_ptr<Model>> loaded = CreateModel({path.string(), {4}, 3}, 0);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->layout(), model->layout());
    EXPECT_EQ((*loaded)->GetParameters().values, model->GetParameters().values);
    EXPECT_EQ((*loaded)->Evaluate(data, {})->loss_sum, model->Evaluate(data, {})->loss_sum);
    // The reloaded TorchScript model trains too.
    absl::StatusOr<TrainStats> trained = (*loaded)->Train(data, {}, {}, 2);
    ASSERT_TRUE(trained.ok()) << trained.status();
    EXPECT_NE((*loaded)->GetParameters().values, model->GetParameters().values);
    std::filesystem::remove(path);
  }
}

TEST(ModelTest, CnnExportsAndReloads) {
  Dataset images;
  images.sample_shape = {1, 28, 28};
  images.num_classes = 10;
  images.features.assign(4 * 784, 0.5f);
  images.labels = {0, 1, 2, 3};
  std::unique_ptr<Model> model = Make("cnn", {1, 28, 28}, 10);
  ASSERT_TRUE(model->Train(images, {}, {}, 1).ok());
  const auto path = std::filesystem::temp_directory_path() / "samverka_export_cnn.pt";
  ASSERT_TRUE(model->SaveTorchScript(path.string()).ok());
  absl::StatusOr<std::unique_ptr<Model>> loaded = CreateModel({path.string(), {1, 28, 28}, 10}, 0);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->Evaluate(images, {})->loss_sum, model->Evaluate(images, {})->loss_sum);
  std::filesystem::remove(path);
}

TEST(ModelTest, CloneIsIndependent) {
  const Dataset data = Blobs(20, 2);
  std::unique_ptr<Model> model = Make("mlp", {4}, 3);
  std::unique_ptr<Model> copy = *model->Clone();
  EXPECT_EQ(copy->GetParameters().values, model->GetParameters().values);
  ASSERT_TRUE(copy->Train(data, {}, {}, 1).ok());
  EXPECT_NE(copy->GetParameters().values, model->GetParameters().values);
}

TEST(EvalStatsTest, MergeAddsAndAucUsesScores) {
  EvalStats a{.loss_sum = 1, .correct = 1, .samples = 2, .positive_scores = {0.9f, 0.1f}, .labels = {1, 0}};
  EvalStats b{.loss_sum = 3, .correct = 2, .samples = 2, .positive_scores = {0.8f, 0.2f}, .labels = {1, 0}};
  a.Merge(b);
  EXPECT_EQ(a.samples, 4);
  EXPECT_DOUBLE_EQ(a.loss(), 1.0);
  EXPECT_DOUBLE_EQ(a.accuracy(), 0.75);
  EXPECT_DOUBLE_EQ(*a.auc(), 1.0);
}

}  // namespace
}  // namespace samverka::models
