// tests/client/model_fit_test.cc
#include "client/datasets/model_fit.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace samverka::client {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// `rows` samples of `features` values with these labels in the train split
// (and one more with the first label in the test split).
DatasetSplit Data(int64_t features, std::vector<int64_t> labels,
                  std::vector<std::string> class_names = {}) {
  DatasetSplit split;
  for (Dataset* part : {&split.train, &split.test}) {
    part->sample_shape = {features};
    part->class_names = class_names;
    part->num_classes = class_names.empty() ? 1 : static_cast<int64_t>(class_names.size());
  }
  split.train.labels = labels;
  split.train.features.assign(features * labels.size(), 0.5f);
  split.test.labels = {labels.front()};
  split.test.features.assign(features, 0.5f);
  for (int64_t label : labels) {
    split.train.num_classes = std::max(split.train.num_classes, label + 1);
  }
  return split;
}

FederationModel Logreg(std::vector<std::string> class_labels = {}) {
  return {"logreg", {30}, 2, std::move(class_labels)};
}

TEST(ModelFitTest, WrongFeatureCountNamesFileAndShapes) {
  DatasetSplit data = Data(29, {0, 1});
  std::string reason;
  const absl::Status fit = FitDatasetToModel(Logreg(), "the CSV file /srv/x.csv", &data, &reason);
  EXPECT_EQ(fit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fit.message(), AllOf(HasSubstr("/srv/x.csv"), HasSubstr("29 features per sample"),
                                   HasSubstr("input_shape [30]")));
  // The coordinator hears the shapes, not the site's file.
  EXPECT_THAT(reason, AllOf(HasSubstr("29 features"), HasSubstr("[30]"), Not(HasSubstr("/srv"))));
  EXPECT_EQ(data.train.sample_shape, std::vector<int64_t>{29});  // unchanged
}

TEST(ModelFitTest, OneClassSiteGetsTheModelsClasses) {
  DatasetSplit data = Data(30, {0, 0, 0});
  ASSERT_EQ(data.train.num_classes, 1);
  ASSERT_TRUE(FitDatasetToModel(Logreg(), "f.csv", &data, nullptr).ok());
  EXPECT_EQ(data.train.num_classes, 2);
  EXPECT_EQ(data.test.num_classes, 2);
  EXPECT_THAT(data.train.labels, ElementsAre(0, 0, 0));
}

TEST(ModelFitTest, SamplesTakeTheModelsShape) {
  DatasetSplit data = Data(784, {3, 1});
  FederationModel cnn{"cnn", {1, 28, 28}, 10, {}};
  ASSERT_TRUE(FitDatasetToModel(cnn, "f.csv", &data, nullptr).ok());
  EXPECT_THAT(data.train.sample_shape, ElementsAre(1, 28, 28));
}

TEST(ModelFitTest, LabelBeyondNumClassesIsRefused) {
  DatasetSplit data = Data(30, {0, 2});
  const absl::Status fit = FitDatasetToModel(Logreg(), "f.csv", &data, nullptr);
  EXPECT_EQ(fit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fit.message(), AllOf(HasSubstr("f.csv"), HasSubstr("label 2"),
                                   HasSubstr("num_classes = 2")));
}

TEST(ModelFitTest, LabelNamesMapThroughClassLabels) {
  // A site with malignant cases only: "M" is id 0 in its own data, id 1 in
  // the federation's.
  DatasetSplit data = Data(30, {0, 0}, {"M"});
  ASSERT_TRUE(FitDatasetToModel(Logreg({"B", "M"}), "f.csv", &data, nullptr).ok());
  EXPECT_THAT(data.train.labels, ElementsAre(1, 1));
  EXPECT_THAT(data.test.labels, ElementsAre(1));
  EXPECT_THAT(data.train.class_names, ElementsAre("B", "M"));
  // Idempotent: a second registration changes nothing.
  ASSERT_TRUE(FitDatasetToModel(Logreg({"B", "M"}), "f.csv", &data, nullptr).ok());
  EXPECT_THAT(data.train.labels, ElementsAre(1, 1));
}

TEST(ModelFitTest, UnknownLabelNameIsRefused) {
  DatasetSplit data = Data(30, {0, 1}, {"B", "X"});
  const absl::Status fit = FitDatasetToModel(Logreg({"B", "M"}), "f.csv", &data, nullptr);
  EXPECT_EQ(fit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fit.message(), AllOf(HasSubstr("'X'"), HasSubstr("class_labels")));
}

TEST(ModelFitTest, LabelNamesWithoutClassLabelsNeedEveryClass) {
  DatasetSplit both = Data(30, {0, 1}, {"B", "M"});
  EXPECT_TRUE(FitDatasetToModel(Logreg(), "f.csv", &both, nullptr).ok());
  DatasetSplit one = Data(30, {0, 0}, {"M"});
  std::string reason;
  const absl::Status fit = FitDatasetToModel(Logreg(), "f.csv", &one, &reason);
  EXPECT_EQ(fit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fit.message(), HasSubstr("set class_labels in coordinator.toml"));
  EXPECT_THAT(reason, Not(HasSubstr("M")));  // no label names to the coordinator
}

}  // namespace
}  // namespace samverka::client
