#include "coordinator/sealed_sum_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace samverka::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kModel(64, 'a');
const std::string kOtherModel(64, 'b');

fs::path FreshDir() {
  const fs::path dir =
      fs::temp_directory_path() /
      ("samverka_sealed_" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
       std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

SealedSum MakeSum(const std::string& model, int bits) {
  SealedSum sum;
  sum.round = 7;
  sum.model_digest = model;
  sum.instance = std::string(64, 'c');
  sum.round_config = std::string("SVSA\0\x01config", 13);
  sum.cohort = {"site-a", "site-b", "site-c"};
  sum.contributors = {1, 3};
  sum.dropped = {2};
  sum.commitments = {{1, std::string(64, '1')}, {3, std::string(64, '3')}};
  sum.sum = security::secagg::ModularVector::Zeros(bits, 5);
  for (size_t i = 0; i < 5; ++i) sum.sum.Set(i, (uint64_t{1} << (bits - 1)) + i);
  sum.parameters.num_neighbours = 2;
  sum.parameters.threshold = 2;
  sum.masked_bytes = 1234;
  return sum;
}

TEST(SealedSumStoreTest, ASavedSumAndItsSeedsComeBackAfterAReopen) {
  const fs::path dir = FreshDir();
  for (int bits : {32, 64}) {
    SCOPED_TRACE(bits);
    {
      auto store = SealedSumStore::Open(dir.string());
      ASSERT_TRUE(store.ok()) << store.status();
      ASSERT_TRUE((*store)->Save(MakeSum(kModel, bits)).ok());
      ASSERT_TRUE((*store)->SaveConsent(kModel, 3, security::SecretBytes::CopyFrom(std::string(32, 'z'))).ok());
    }
    auto store = SealedSumStore::Open(dir.string());
    ASSERT_TRUE(store.ok());
    absl::StatusOr<std::optional<SealedSum>> loaded = (*store)->Load(kModel);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_TRUE(loaded->has_value());
    const SealedSum expected = MakeSum(kModel, bits);
    EXPECT_EQ((*loaded)->round, 7);
    EXPECT_EQ((*loaded)->instance, expected.instance);
    EXPECT_EQ((*loaded)->round_config, expected.round_config);
    EXPECT_EQ((*loaded)->cohort, expected.cohort);
    EXPECT_THAT((*loaded)->contributors, ElementsAre(1, 3));
    EXPECT_THAT((*loaded)->dropped, ElementsAre(2));
    EXPECT_EQ((*loaded)->commitments, expected.commitments);
    EXPECT_EQ((*loaded)->sum, expected.sum);
    EXPECT_EQ((*loaded)->masked_bytes, 1234u);
    auto seeds = (*store)->LoadConsents(kModel);
    ASSERT_TRUE(seeds.ok());
    ASSERT_EQ(seeds->size(), 1u);
    EXPECT_TRUE(seeds->at(3).Equals(security::SecretBytes::CopyFrom(std::string(32, 'z'))));
    EXPECT_FALSE((*store)->Load(kOtherModel)->has_value());
    ASSERT_TRUE((*store)->Remove(kModel).ok());
    EXPECT_FALSE((*store)->Load(kModel)->has_value());
    EXPECT_TRUE((*store)->LoadConsents(kModel)->empty());
  }
  fs::remove_all(dir);
}

TEST(SealedSumStoreTest, ADamagedSumIsAnErrorNamingTheFile) {
  const fs::path dir = FreshDir();
  auto store = SealedSumStore::Open(dir.string());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Save(MakeSum(kModel, 32)).ok());
  {
    std::fstream sum(dir / "sealed" / (kModel + ".sum"), std::ios::in | std::ios::out | std::ios::binary);
    sum.seekp(3);
    sum.put('\x55');
  }
  absl::StatusOr<std::optional<SealedSum>> loaded = (*store)->Load(kModel);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr(kModel + ".sum"));
  std::ofstream(dir / "sealed" / (kModel + ".json")) << "{\"round\": ";
  loaded = (*store)->Load(kModel);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr(kModel + ".json"));
  fs::remove_all(dir);
}

TEST(SealedSumStoreTest, OnlyTheCurrentModelsSumSurvivesTheStartUpCleanUp) {
  const fs::path dir = FreshDir();
  auto store = SealedSumStore::Open(dir.string());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Save(MakeSum(kModel, 32)).ok());
  ASSERT_TRUE((*store)->Save(MakeSum(kOtherModel, 32)).ok());
  ASSERT_TRUE((*store)->RemoveAllExcept(kOtherModel).ok());
  EXPECT_FALSE((*store)->Load(kModel)->has_value());
  EXPECT_TRUE((*store)->Load(kOtherModel)->has_value());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace samverka::coordinator
