#include "common/metrics.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace samverka {
namespace {

TEST(AucTest, PerfectRandomAndInvertedRankings) {
  const std::vector<int64_t> labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*BinaryAuc(std::vector<float>{0.1f, 0.2f, 0.8f, 0.9f}, labels), 1.0);
  EXPECT_DOUBLE_EQ(*BinaryAuc(std::vector<float>{0.9f, 0.8f, 0.2f, 0.1f}, labels), 0.0);
  EXPECT_DOUBLE_EQ(*BinaryAuc(std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}, labels), 0.5);
}

TEST(AucTest, CountsPairsByHand) {
  // Positives 0.4 and 0.8; negatives 0.3, 0.5 and 0.8 (a tie).
  // Pairs (pos > neg): 0.4>0.3, 0.8>0.3, 0.8>0.5, tie 0.8=0.8 counts 1/2.
  // AUC = 3.5 / 6.
  const std::vector<float> scores = {0.3f, 0.4f, 0.5f, 0.8f, 0.8f};
  const std::vector<int64_t> labels = {0, 1, 0, 1, 0};
  EXPECT_DOUBLE_EQ(*BinaryAuc(scores, labels), 3.5 / 6);
}

TEST(AucTest, OneClassHasNoAuc) {
  EXPECT_FALSE(BinaryAuc(std::vector<float>{0.1f, 0.2f}, std::vector<int64_t>{1, 1}).has_value());
}

TEST(MetricsLogTest, WritesJsonLinesAndCsvWithSameColumns) {
  const auto dir = std::filesystem::temp_directory_path() / "samverka_metrics_test";
  std::filesystem::create_directories(dir);
  auto log = MetricsLog::Create({"round", "acc", "note", "auc"}, (dir / "m.jsonl").string(),
                                (dir / "m.csv").string());
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Append({int64_t{1}, 0.5, std::string("a,b"), MetricValue()}).ok());
  EXPECT_FALSE((*log)->Append({int64_t{1}}).ok());
  log->reset();
  std::ifstream jsonl(dir / "m.jsonl");
  std::string line;
  std::getline(jsonl, line);
  EXPECT_EQ(line, R"({"round":1,"acc":0.5,"note":"a,b","auc":null})");
  std::ifstream csv(dir / "m.csv");
  std::stringstream text;
  text << csv.rdbuf();
  EXPECT_EQ(text.str(), "round,acc,note,auc\n1,0.5,\"a,b\",\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace samverka
