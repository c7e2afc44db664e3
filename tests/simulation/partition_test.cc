// tests/simulation/partition_test.cc
#include "simulation/partition.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simulation/internal/random.h"

namespace samverka::simulation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clients = std::vector<std::vector<int64_t>>;

// `per_class` samples of each class, grouped by class.
std::vector<int64_t> GroupedLabels(int64_t num_classes, int64_t per_class) {
  std::vector<int64_t> labels;
  for (int64_t k = 0; k < num_classes; ++k)
    labels.insert(labels.end(), per_class, k);
  return labels;
}

// Classes interleaved: label of sample i is i % num_classes.
std::vector<int64_t> InterleavedLabels(int64_t num_classes, int64_t n) {
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % num_classes;
  return labels;
}

PartitionSpec Spec(const std::string& text) {
  absl::StatusOr<PartitionSpec> spec = ParsePartitionSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.value_or(PartitionSpec{});
}

Clients MustPartition(const std::vector<int64_t>& labels, int64_t num_classes,
                      int num_clients, const std::string& spec, uint64_t seed) {
  absl::StatusOr<Clients> clients =
      Partition(labels, num_classes, num_clients, Spec(spec), seed);
  EXPECT_TRUE(clients.ok()) << spec << ": " << clients.status();
  return clients.value_or(Clients{});
}

// Mean over clients of the entropy (nats) of the client's label histogram.
double MeanLabelEntropy(const Clients& clients,
                        const std::vector<int64_t>& labels,
                        int64_t num_classes) {
  double total = 0;
  for (const auto& counts : LabelCounts(clients, labels, num_classes)) {
    double n = 0;
    for (int64_t c : counts) n += static_cast<double>(c);
    for (int64_t c : counts) {
      if (c > 0) total -= (c / n) * std::log(c / n);
    }
  }
  return total / static_cast<double>(clients.size());
}

class EverySpecTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EverySpecTest, AssignsEveryIndexExactlyOnce) {
  const std::vector<int64_t> labels = InterleavedLabels(10, 2003);
  const Clients clients = MustPartition(labels, 10, 17, GetParam(), 5);
  ASSERT_EQ(clients.size(), 17u);
  std::vector<int> seen(labels.size(), 0);
  for (const auto& client : clients) {
    EXPECT_TRUE(std::is_sorted(client.begin(), client.end()));
    for (int64_t i : client) ++seen.at(static_cast<size_t>(i));
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

TEST_P(EverySpecTest, IsDeterministicPerSeed) {
  const std::vector<int64_t> labels = InterleavedLabels(10, 1000);
  EXPECT_EQ(MustPartition(labels, 10, 8, GetParam(), 11),
            MustPartition(labels, 10, 8, GetParam(), 11));
  EXPECT_NE(MustPartition(labels, 10, 8, GetParam(), 11),
            MustPartition(labels, 10, 8, GetParam(), 12));
}

INSTANTIATE_TEST_SUITE_P(Specs, EverySpecTest,
                         ::testing::Values("iid", "dirichlet:0.1",
                                           "dirichlet:0.5", "dirichlet:100",
                                           "shards:1", "shards:2"));

TEST(PartitionTest, IidSizesAreBalanced) {
  const Clients clients =
      MustPartition(InterleavedLabels(10, 1003), 10, 10, "iid", 0);
  for (const auto& client : clients) {
    EXPECT_GE(client.size(), 100u);
    EXPECT_LE(client.size(), 101u);
  }
}

TEST(PartitionTest, IidOutputIsFixedForASeed) {
  // Pins the exact output: it depends only on std::mt19937_64's standard
  // sequence and our own shuffle, so any platform must produce it.
  const Clients clients =
      MustPartition(InterleavedLabels(2, 10), 2, 2, "iid", 42);
  EXPECT_THAT(clients, ElementsAre(ElementsAre(0, 1, 3, 7, 9),
                                   ElementsAre(2, 4, 5, 6, 8)));
}

TEST(PartitionTest, SmallAlphaIsMoreSkewedThanLargeAlpha) {
  const std::vector<int64_t> labels = InterleavedLabels(10, 5000);
  const double skewed = MeanLabelEntropy(
      MustPartition(labels, 10, 20, "dirichlet:0.1", 3), labels, 10);
  const double medium = MeanLabelEntropy(
      MustPartition(labels, 10, 20, "dirichlet:1", 3), labels, 10);
  const double balanced = MeanLabelEntropy(
      MustPartition(labels, 10, 20, "dirichlet:100", 3), labels, 10);
  EXPECT_LT(skewed, medium);
  EXPECT_LT(medium, balanced);
  EXPECT_LE(balanced, std::log(10.0));
}

TEST(PartitionTest, DirichletMeetsTheMinimum) {
  const std::vector<int64_t> labels = InterleavedLabels(10, 2000);
  PartitionSpec spec = Spec("dirichlet:0.3");
  spec.min_samples_per_client = 25;
  absl::StatusOr<Clients> clients = Partition(labels, 10, 30, spec, 9);
  ASSERT_TRUE(clients.ok()) << clients.status();
  for (const auto& client : *clients) EXPECT_GE(client.size(), 25u);
}

TEST(PartitionTest, DirichletGivesUpWithAClearError) {
  const std::vector<int64_t> labels = InterleavedLabels(10, 600);
  PartitionSpec spec = Spec("dirichlet:0.01");
  spec.max_attempts = 3;
  absl::Status status = Partition(labels, 10, 50, spec, 1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("after 3 draws"));
  // A minimum that cannot be met is refused before drawing.
  spec.min_samples_per_client = 13;
  status = Partition(labels, 10, 50, spec, 1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(PartitionTest, ShardsAlignedWithLabelsGiveAtMostKLabels) {
  const std::vector<int64_t> labels = GroupedLabels(10, 100);
  const Clients clients = MustPartition(labels, 10, 10, "shards:2", 4);
  std::set<int64_t> all_labels;
  for (const auto& client : clients) {
    std::set<int64_t> held;
    for (int64_t i : client) held.insert(labels[i]);
    EXPECT_LE(held.size(), 2u);
    EXPECT_EQ(client.size(), 100u);
    all_labels.insert(held.begin(), held.end());
  }
  EXPECT_EQ(all_labels.size(), 10u);
}

TEST(PartitionTest, RejectsBadInputs) {
  const std::vector<int64_t> labels = InterleavedLabels(3, 5);
  EXPECT_THAT(Partition(labels, 3, 6, Spec("iid"), 0).status().message(),
              HasSubstr("more clients (6) than samples (5)"));
  EXPECT_FALSE(Partition(labels, 3, 0, Spec("iid"), 0).ok());
  EXPECT_FALSE(Partition(labels, 0, 2, Spec("iid"), 0).ok());
  EXPECT_THAT(Partition({0, 1, 3}, 3, 2, Spec("iid"), 0).status().message(),
              HasSubstr("label 3 of sample 2"));
  EXPECT_THAT(Partition(labels, 3, 2, Spec("shards:3"), 0).status().message(),
              HasSubstr("needs 6 shards"));
}

TEST(ParsePartitionSpecTest, ParsesValidForms) {
  EXPECT_EQ(Spec("iid").kind, PartitionSpec::Kind::kIid);
  const PartitionSpec dirichlet = Spec("dirichlet:0.25");
  EXPECT_EQ(dirichlet.kind, PartitionSpec::Kind::kDirichlet);
  EXPECT_DOUBLE_EQ(dirichlet.alpha, 0.25);
  EXPECT_EQ(dirichlet.min_samples_per_client, 10);
  const PartitionSpec shards = Spec("shards:3");
  EXPECT_EQ(shards.kind, PartitionSpec::Kind::kShards);
  EXPECT_EQ(shards.shards_per_client, 3);
  for (const char* text : {"iid", "dirichlet:0.1", "dirichlet:5", "shards:2"}) {
    EXPECT_EQ(Spec(text).ToString(), text);
  }
}

TEST(ParsePartitionSpecTest, RejectsBadSpecs) {
  for (const char* text :
       {"", "IID", "iid:3", "dirichlet", "dirichlet:", "dirichlet:0",
        "dirichlet:-1", "dirichlet:nan", "dirichlet:inf", "dirichlet:x",
        "dirichlet:0.5:1", "shards", "shards:", "shards:0", "shards:-2",
        "shards:2.5", "random"}) {
    absl::StatusOr<PartitionSpec> spec = ParsePartitionSpec(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr("valid forms")) << text;
  }
}

TEST(LabelSummaryTest, CountsAndFormats) {
  const std::vector<int64_t> labels = {0, 1, 1, 2, 2, 2};
  const Clients clients = {{0, 1}, {2, 3, 4, 5}};
  EXPECT_THAT(LabelCounts(clients, labels, 3),
              ElementsAre(ElementsAre(1, 1, 0), ElementsAre(0, 1, 3)));
  const std::string table = FormatLabelSummary(clients, labels, 3);
  EXPECT_EQ(table,
            "client samples |   0   1   2\n"
            "     0       2 |   1   1   0\n"
            "     1       4 |   0   1   3\n"
            " total       6 |   1   2   3\n");
}

TEST(RandomTest, DrawsHaveTheRightMoments) {
  std::mt19937_64 rng(7);
  constexpr int kDraws = 40000;
  for (double shape : {0.05, 0.5, 1.0, 4.0}) {
    double sum = 0;
    for (int i = 0; i < kDraws; ++i) {
      sum += std::exp(internal::LogGammaSample(rng, shape));
    }
    // Gamma(shape, 1) has mean shape and variance shape: 5 standard errors.
    EXPECT_NEAR(sum / kDraws, shape, 5 * std::sqrt(shape / kDraws)) << shape;
  }
  double sum = 0, squares = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double x = internal::StandardNormal(rng);
    sum += x;
    squares += x * x;
  }
  EXPECT_NEAR(sum / kDraws, 0.0, 0.03);
  EXPECT_NEAR(squares / kDraws, 1.0, 0.03);
  const std::vector<double> p = internal::SymmetricDirichlet(rng, 0.001, 50);
  double total = 0;
  for (double v : p) total += v;
  EXPECT_NEAR(total, 1.0, 1e-12);
}

TEST(RandomTest, UniformBelowUsesOnlyTheStandardEngine) {
  // std::mt19937_64's 10000th output is fixed by the C++ standard.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ull);
  std::mt19937_64 a(3), b(3);
  for (int i = 0; i < 100; ++i) {
    const uint64_t bound = 1 + i * 7;
    const uint64_t x = internal::UniformBelow(a, bound);
    EXPECT_LT(x, bound);
    EXPECT_EQ(x, b() % bound);  // No rejection is likely for small bounds.
  }
}

}  // namespace
}  // namespace samverka::simulation
