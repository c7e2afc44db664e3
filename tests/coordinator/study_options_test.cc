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

}  // namespace
}  // namespace samverka::coordinator
