#include "coordinator/studies/study_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace samverka::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

CoordinatorOptions Federation() {
  CoordinatorOptions o;
  o.federation_id = "consortium";
  o.state_dir = "/var/lib/samverka";
  o.ca_pem = "-----BEGIN CERTIFICATE-----";  // only its presence is checked here
  o.dp_population = 10;
  return o;
}

constexpr char kGood[] = R"(
name = "breast-mlp"
kind = "train"
dataset = "breast"
model = "mlp"
input_shape = [30]
num_classes = 2
rounds = 4
min_clients = 3
clients_per_round = 3
lr = 0.1
)";

absl::StatusOr<Study> Read(const std::string& text, const std::string& model_file = "") {
  return ReadStudy(text, "study.toml", Federation(), {"breast", "cardio"}, model_file);
}

std::string Error(const std::string& text, const std::string& model_file = "") {
  absl::StatusOr<Study> study = Read(text, model_file);
  EXPECT_FALSE(study.ok()) << text;
  EXPECT_EQ(study.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(study.status().message());
}

TEST(StudyOptionsTest, AGoodManifestKeepsTheFederationsOptionsAndAddsItsOwn) {
  absl::StatusOr<Study> study = Read(kGood);
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_EQ(study->manifest.name, "breast-mlp");
  EXPECT_EQ(study->manifest.dataset, "breast");
  EXPECT_EQ(study->options.federation_id, "consortium");
  EXPECT_EQ(study->options.rounds, 4);
  EXPECT_EQ(study->options.round.min_clients, 3);
  EXPECT_DOUBLE_EQ(study->options.round.train.learning_rate, 0.1);
  EXPECT_TRUE(study->options.secure_aggregation.enabled);  // on by default
  EXPECT_EQ(study->manifest.train.learning_rate, study->options.round.train.learning_rate);
}

TEST(StudyOptionsTest, BadStudiesAreRefusedWithOneClearMessage) {
  const std::string good = kGood;
  EXPECT_THAT(Error(good + "learning_rate = 0.1\n"),
              AllOf(HasSubstr("study.toml"), HasSubstr("learning_rate")));
  EXPECT_THAT(Error(good + "listen = \"0.0.0.0:1\"\n"), HasSubstr("listen"));  // a federation key
  std::string text = good;
  text.replace(text.find("\"mlp\""), 5, "\"resnet9000\"");
  EXPECT_THAT(Error(text), AllOf(HasSubstr("resnet9000"), HasSubstr("built-in")));
  text = good;
  text.replace(text.find("\"breast\""), 8, "\"lung\"");
  EXPECT_THAT(Error(text), AllOf(HasSubstr("lung"), HasSubstr("breast, cardio")));
  text = good;
  text.replace(text.find("rounds = 4"), 10, "rounds = 0");
  EXPECT_THAT(Error(text), HasSubstr("rounds must be >= 1"));
  EXPECT_THAT(Error(good + "strategy = \"median\"\n"), HasSubstr("secure aggregation"));
  EXPECT_THAT(Error(good + "secure_aggregation = false\ndp = \"central\"\n"),
              HasSubstr("needs secure_aggregation = true"));
  EXPECT_THAT(Error(good + "kind = \"survey\"\n"), HasSubstr("kind"));  // TOML itself: defined twice
  text = good;
  text.replace(text.find("kind = \"train\""), 14, "kind = \"survey\"");
  EXPECT_THAT(Error(text), HasSubstr("survey"));
}

TEST(StudyOptionsTest, ATorchScriptModelComesWithItsFile) {
  std::string text = kGood;
  text.replace(text.find("\"mlp\""), 5, "\"tiny_cnn.pt\"");
  EXPECT_THAT(Error(text), HasSubstr("--model-file"));
  text = kGood;
  text.replace(text.find("\"mlp\""), 5, "\"models/tiny_cnn.pt\"");
  EXPECT_THAT(Error(text, "/tmp/x.pt"), HasSubstr("file name alone"));
  EXPECT_THAT(Error(kGood, "/tmp/x.pt"), HasSubstr("built-in"));
}

constexpr char kStatistics[] = R"(
name = "cohort-profile"
kind = "statistics"
dataset = "breast"
min_clients = 4
[statistics]
min_count = 10
group_by = "grade"
[statistics.columns.age]
range = [20, 100]
bins = 16
quantiles = [0.5]
[statistics.columns.grade]
categories = ["1", "2", "3"]
)";

TEST(StudyOptionsTest, AStatisticsStudyReadsItsSpecAndAlwaysSumsSecurely) {
  absl::StatusOr<Study> study = Read(kStatistics);
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_TRUE(study->manifest.statistics());
  ASSERT_TRUE(study->statistics.has_value());
  EXPECT_EQ(study->statistics->min_count, 10);
  EXPECT_EQ(study->statistics->group_by, "grade");
  ASSERT_EQ(study->statistics->numeric.size(), 1u);
  EXPECT_EQ(study->statistics->numeric[0].edges.size(), 17u);
  EXPECT_EQ(study->options.rounds, 1);
  EXPECT_EQ(study->options.round.min_clients, 4);
  EXPECT_TRUE(study->options.secure_aggregation.enabled);
  // Fewer than three sites never sum: each would learn the other's numbers.
  std::string text = kStatistics;
  text.replace(text.find("min_clients = 4"), 15, "min_clients = 2");
  study = Read(text);
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_EQ(study->options.round.min_clients, 3);
}

TEST(StudyOptionsTest, BadStatisticsStudiesAreRefusedWithOneClearMessage) {
  const std::string good = kStatistics;
  const std::string head = good.substr(0, good.find("[statistics]"));
  EXPECT_THAT(Error(head), HasSubstr("statistics.columns names no column"));
  EXPECT_THAT(Error("model = \"mlp\"\n" + good),
              HasSubstr("model is a key of training studies"));
  EXPECT_THAT(Error("rounds = 3\n" + good), HasSubstr("rounds is a key of training studies"));
  EXPECT_THAT(Error("secure_aggregation = false\n" + good),
              HasSubstr("always uses secure aggregation"));
  EXPECT_THAT(Error("dp = \"central\"\n" + good), HasSubstr("takes dp = \"distributed\""));
  EXPECT_THAT(Error("dp = \"distributed\"\ndp_noise_multiplier = 0\n" + good),
              HasSubstr("dp_noise_multiplier must be in (0, 1000]"));
  absl::StatusOr<Study> noisy = Read("dp = \"distributed\"\ndp_noise_multiplier = 2.5\n" + good);
  ASSERT_TRUE(noisy.ok()) << noisy.status();
  EXPECT_DOUBLE_EQ(noisy->statistics->dp_noise_multiplier, 2.5);
  EXPECT_EQ(noisy->manifest.dp_sites(), 4);  // min_clients = 4 in the manifest
  EXPECT_DOUBLE_EQ(Read(good)->statistics->dp_noise_multiplier, 0);
  EXPECT_THAT(Error(good + "bins = 3\n"),
              HasSubstr("statistics.columns.grade must be numeric (range and bins, or edges) or "
                        "categorical (categories), and not both"));
  EXPECT_THAT(Error(good + "quantile = [0.5]\n"),
              HasSubstr("unknown key 'statistics.columns.grade.quantile'"));
  std::string text = good;
  text.replace(text.find("min_count = 10"), 14, "min_count = 0");
  EXPECT_THAT(Error(text), HasSubstr("statistics.min_count must be at least 1"));
  text = good;
  text.replace(text.find("range = [20, 100]"), 17, "edges = [1, 5, 3]");
  text.replace(text.find("bins = 16\n"), 10, "");
  EXPECT_THAT(Error(text), HasSubstr("statistics.columns.age.edges must be finite and strictly increasing"));
  EXPECT_THAT(Error(good, "/tmp/x.pt"), HasSubstr("takes no model file"));
}

}  // namespace
}  // namespace samverka::coordinator
