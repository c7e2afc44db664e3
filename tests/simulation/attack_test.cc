#include "simulation/attack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "common/codec.h"
#include "simulation/virtual_clients.h"

namespace samverka::simulation {
namespace {

using ::testing::HasSubstr;

// Four Gaussian blobs in 3 dimensions (class c has feature c % 3 raised).
Dataset Blobs() {
  Dataset d;
  d.sample_shape = {3};
  d.num_classes = 4;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> noise(0, 0.5f);
  for (int i = 0; i < 80; ++i) {
    const int c = i % 4;
    for (int j = 0; j < 3; ++j) d.features.push_back((j == c % 3 ? 2.0f : 0.0f) + noise(rng));
    d.labels.push_back(c);
  }
  return d;
}

std::vector<std::vector<int64_t>> TwoShards() {
  std::vector<std::vector<int64_t>> shards(2);
  for (int64_t i = 0; i < 80; ++i) shards[i % 2].push_back(i);
  return shards;
}

ClientTask TrainTask() {
  ClientTask task;
  task.round = 3;
  task.train.learning_rate = 0.1;
  task.train.batch_size = 8;
  return task;
}

std::vector<float> UpdateOf(const VirtualClients& clients, int index, models::Model& model,
                            const ModelParameters& global) {
  absl::StatusOr<TaskOutcome> outcome = clients.Run(index, TrainTask(), global, model);
  EXPECT_TRUE(outcome.ok()) << outcome.status();
  if (!outcome.ok()) return {};
  return DecodeParameters(outcome->update)->values;
}

class VirtualClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<models::Model>> model =
        models::CreateModel({"logreg", {3}, 4}, 1);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    global_ = model_->GetParameters();
  }
  const Dataset data_ = Blobs();
  std::unique_ptr<models::Model> model_;
  ModelParameters global_;
};

TEST_F(VirtualClientsTest, SignFlipSendsTheNegatedHonestUpdate) {
  const VirtualClients honest(&data_, TwoShards(), 9, 0.0, *ParseAttack("sign-flip"));
  const VirtualClients attackers(&data_, TwoShards(), 9, 1.0, *ParseAttack("sign-flip"));
  EXPECT_EQ(honest.num_malicious(), 0);
  EXPECT_EQ(attackers.num_malicious(), 2);
  const std::vector<float> u = UpdateOf(honest, 1, *model_, global_);
  const std::vector<float> bad = UpdateOf(attackers, 1, *model_, global_);
  ASSERT_EQ(u.size(), bad.size());
  bool nonzero = false;
  for (size_t i = 0; i < u.size(); ++i) {
    EXPECT_EQ(bad[i], -u[i]) << i;
    nonzero |= u[i] != 0;
  }
  EXPECT_TRUE(nonzero);
}

TEST_F(VirtualClientsTest, ScaleMultipliesTheHonestUpdate) {
  const VirtualClients honest(&data_, TwoShards(), 9, 0.0, *ParseAttack("scale:-4"));
  const VirtualClients attackers(&data_, TwoShards(), 9, 1.0, *ParseAttack("scale:-4"));
  const std::vector<float> u = UpdateOf(honest, 0, *model_, global_);
  const std::vector<float> bad = UpdateOf(attackers, 0, *model_, global_);
  ASSERT_EQ(u.size(), bad.size());
  for (size_t i = 0; i < u.size(); ++i) EXPECT_FLOAT_EQ(bad[i], -4 * u[i]) << i;
}

TEST_F(VirtualClientsTest, LabelFlipTrainsOnLabelsMirroredByHand) {
  // The same data with label y replaced by 3 - y (4 classes), written out here.
  Dataset mirrored = data_;
  for (int64_t& y : mirrored.labels) y = 3 - y;
  const VirtualClients on_mirrored(&mirrored, TwoShards(), 9, 0.0, *ParseAttack("label-flip"));
  const VirtualClients flippers(&data_, TwoShards(), 9, 1.0, *ParseAttack("label-flip"));
  const VirtualClients honest(&data_, TwoShards(), 9, 0.0, *ParseAttack("label-flip"));
  const std::vector<float> expected = UpdateOf(on_mirrored, 1, *model_, global_);
  EXPECT_EQ(UpdateOf(flippers, 1, *model_, global_), expected);
  EXPECT_NE(UpdateOf(honest, 1, *model_, global_), expected);
  EXPECT_EQ(flippers.num_train_samples(1), 40);
}

TEST(FlipLabelsTest, CopiesTheShardWithMirroredLabels) {
  const Dataset data = Blobs();
  const Dataset flipped = FlipLabels(data, std::vector<int64_t>{5, 2});
  EXPECT_EQ(flipped.labels, (std::vector<int64_t>{3 - 1, 3 - 2}));
  ASSERT_EQ(flipped.features.size(), 6u);
  EXPECT_EQ(flipped.features[0], data.features[15]);
  EXPECT_EQ(flipped.features[3], data.features[6]);
}

TEST(ChooseMaliciousTest, FixedShareFixedBySeed) {
  const std::vector<bool> a = ChooseMalicious(100, 0.2, 1);
  EXPECT_EQ(std::count(a.begin(), a.end(), true), 20);
  EXPECT_EQ(ChooseMalicious(100, 0.2, 1), a);
  EXPECT_NE(ChooseMalicious(100, 0.2, 2), a);
  const std::vector<bool> none = ChooseMalicious(10, 0.0, 1);
  EXPECT_EQ(std::count(none.begin(), none.end(), true), 0);
  const std::vector<bool> all = ChooseMalicious(10, 1.0, 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), true), 10);
  // round(0.25 * 10) = 3 (2.5 rounds away from zero).
  const std::vector<bool> some = ChooseMalicious(10, 0.25, 4);
  EXPECT_EQ(std::count(some.begin(), some.end(), true), 3);
}

TEST(ParseAttackTest, FormsAndErrors) {
  EXPECT_EQ(ParseAttack("sign-flip")->kind, AttackSpec::Kind::kSignFlip);
  EXPECT_EQ(ParseAttack("label-flip")->kind, AttackSpec::Kind::kLabelFlip);
  absl::StatusOr<AttackSpec> scale = ParseAttack("scale:10");
  ASSERT_TRUE(scale.ok());
  EXPECT_EQ(scale->kind, AttackSpec::Kind::kScale);
  EXPECT_EQ(scale->scale, 10);
  EXPECT_EQ(scale->ToString(), "scale:10");
  EXPECT_THAT(std::string(ParseAttack("flip").status().message()),
              HasSubstr("unknown attack 'flip'; attacks are sign-flip, scale:S, label-flip"));
  EXPECT_THAT(std::string(ParseAttack("scale:x").status().message()), HasSubstr("scale:x"));
  EXPECT_EQ(ParseAttack("scale:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAttack("scale:0").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::simulation
