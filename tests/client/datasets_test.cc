// tests/client/datasets_test.cc
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <iterator>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/datasets/csv.h"
#include "client/datasets/idx.h"
#include "client/datasets/numpy.h"
#include "client/datasets/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace samverka::client {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh directory per test, removed afterwards.
class DatasetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("samverka_datasets_", info->name(), "_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return (dir_ / name).string();
  }

  std::string WriteFile(const std::string& name, const std::string& bytes) {
    const std::string path = Path(name);
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  std::string WriteGzip(const std::string& name, const std::string& bytes) {
    const std::string path = Path(name);
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(file);
    return path;
  }

  fs::path dir_;
};

void AppendBigEndian32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::string IdxHeader(uint8_t dtype, const std::vector<uint32_t>& dims) {
  std::string out = {0, 0, static_cast<char>(dtype),
                     static_cast<char>(dims.size())};
  for (uint32_t d : dims) AppendBigEndian32(out, d);
  return out;
}

// `count` images of rows x cols; pixel i of image n is (n * 7 + i * 51) % 256.
std::string IdxImages(uint32_t count, uint32_t rows, uint32_t cols) {
  std::string out = IdxHeader(0x08, {count, rows, cols});
  for (uint32_t n = 0; n < count; ++n) {
    for (uint32_t i = 0; i < rows * cols; ++i) {
      out.push_back(static_cast<char>((n * 7 + i * 51) % 256));
    }
  }
  return out;
}

std::string IdxLabels(const std::vector<uint8_t>& labels) {
  std::string out = IdxHeader(0x08, {static_cast<uint32_t>(labels.size())});
  out.append(labels.begin(), labels.end());
  return out;
}

TEST_F(DatasetsTest, IdxReadsPlainFiles) {
  const std::string images = WriteFile("images", IdxImages(3, 2, 2));
  const std::string labels = WriteFile("labels", IdxLabels({0, 9, 5}));
  absl::StatusOr<Dataset> data = LoadIdxImagesAndLabels(images, labels);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->sample_shape, ElementsAre(1, 2, 2));
  EXPECT_EQ(data->num_classes, 10);
  EXPECT_THAT(data->labels, ElementsAre(0, 9, 5));
  ASSERT_EQ(data->features.size(), 12u);
  // Image 0: pixels 0, 51, 102, 153 scaled to [0, 1].
  EXPECT_FLOAT_EQ(data->features[0], 0.0f);
  EXPECT_FLOAT_EQ(data->features[1], 0.2f);
  EXPECT_FLOAT_EQ(data->features[3], 0.6f);
  EXPECT_FLOAT_EQ(data->features[4], 7.0f / 255.0f);  // Image 1, pixel 0.
}

TEST_F(DatasetsTest, IdxDetectsGzipByMagicNotName) {
  const std::string plain_images = WriteFile("a", IdxImages(4, 3, 2));
  const std::string plain_labels = WriteFile("b.gz", IdxLabels({1, 2, 3, 4}));
  const std::string gz_images = WriteGzip("c.idx", IdxImages(4, 3, 2));
  const std::string gz_labels = WriteGzip("d", IdxLabels({1, 2, 3, 4}));
  absl::StatusOr<Dataset> plain =
      LoadIdxImagesAndLabels(plain_images, plain_labels);
  absl::StatusOr<Dataset> gz = LoadIdxImagesAndLabels(gz_images, gz_labels);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(gz.ok()) << gz.status();
  EXPECT_EQ(plain->features, gz->features);
  EXPECT_EQ(plain->labels, gz->labels);
  EXPECT_THAT(gz->sample_shape, ElementsAre(1, 3, 2));
}

TEST_F(DatasetsTest, IdxAppliesNormalization) {
  const std::string images = WriteFile("images", IdxImages(1, 1, 2));
  const std::string labels = WriteFile("labels", IdxLabels({3}));
  absl::StatusOr<Dataset> data =
      LoadIdxImagesAndLabels(images, labels, kFashionMnistNormalization);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_NEAR(data->features[0], (0.0f - 0.2860f) / 0.3530f, 1e-6);
  EXPECT_NEAR(data->features[1], (0.2f - 0.2860f) / 0.3530f, 1e-6);
  EXPECT_FALSE(LoadIdxImagesAndLabels(images, labels, {0.0f, 0.0f}).ok());
}

TEST_F(DatasetsTest, IdxRejectsTruncatedPlainFile) {
  std::string bytes = IdxImages(3, 2, 2);
  bytes.pop_back();
  const std::string images = WriteFile("short-images", bytes);
  const std::string labels = WriteFile("labels", IdxLabels({0, 1, 2}));
  absl::Status status = LoadIdxImagesAndLabels(images, labels).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("short-images"), HasSubstr("truncated")));
}

TEST_F(DatasetsTest, IdxRejectsTruncatedHeader) {
  const std::string images =
      WriteFile("tiny", std::string("\0\0\x08\x03\0", 5));
  absl::Status status = ReadIdxFile(images).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("tiny"));
}

TEST_F(DatasetsTest, IdxRejectsTruncatedGzip) {
  const std::string full = WriteGzip("full.gz", IdxImages(50, 28, 28));
  std::ifstream in(full, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string cut =
      WriteFile("cut-images.gz", bytes.substr(0, bytes.size() / 2));
  absl::Status status = ReadIdxFile(cut).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("cut-images.gz"));
}

TEST_F(DatasetsTest, IdxRejectsBadMagic) {
  std::string bytes = IdxImages(1, 2, 2);
  bytes[0] = 'P';
  const std::string path = WriteFile("not-idx", bytes);
  absl::Status status = ReadIdxFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("not-idx"), HasSubstr("magic")));
}

TEST_F(DatasetsTest, IdxRejectsOtherDtypes) {
  std::string bytes = IdxHeader(0x0D, {1});
  bytes.append(4, '\0');
  const std::string path = WriteFile("floats", bytes);
  absl::Status status = ReadIdxFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("floats"), HasSubstr("0x0d")));
}

TEST_F(DatasetsTest, IdxRejectsTrailingBytes) {
  const std::string path = WriteFile("long", IdxLabels({1, 2}) + "x");
  absl::Status status = ReadIdxFile(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("trailing"));
}

TEST_F(DatasetsTest, IdxRejectsCountMismatch) {
  const std::string images = WriteFile("img3", IdxImages(3, 2, 2));
  const std::string labels = WriteFile("lab2", IdxLabels({0, 1}));
  absl::Status status = LoadIdxImagesAndLabels(images, labels).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("img3"), HasSubstr("lab2"),
                                      HasSubstr("count mismatch")));
}

TEST_F(DatasetsTest, IdxRejectsLabelOutOfRange) {
  const std::string images = WriteFile("images", IdxImages(2, 2, 2));
  const std::string labels = WriteFile("bad-labels", IdxLabels({0, 10}));
  absl::Status status = LoadIdxImagesAndLabels(images, labels).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("bad-labels"), HasSubstr("label 10")));
}

TEST_F(DatasetsTest, IdxRejectsWrongRankAndMissingFile) {
  const std::string labels = WriteFile("labels", IdxLabels({0, 1}));
  absl::Status status = LoadIdxImagesAndLabels(labels, labels).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("expected 3 IDX dimensions"));
  status = ReadIdxFile(Path("missing")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("missing"));
}

// --- CSV ---------------------------------------------------------------

TEST_F(DatasetsTest, CsvReadsLabelColumnByName) {
  const std::string path =
      WriteFile("t.csv", "a,label,b\n1,0,2\n3,2,4.5\n-1e2,1,0\n");
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, "label");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(data->sample_shape, ElementsAre(2));
  EXPECT_THAT(data->labels, ElementsAre(0, 2, 1));
  EXPECT_EQ(data->num_classes, 3);
  EXPECT_TRUE(data->class_names.empty());
  EXPECT_THAT(data->features, ElementsAre(1, 2, 3, 4.5, -100, 0));
}

TEST_F(DatasetsTest, CsvMapsStringLabelsToSortedIds) {
  const std::string path =
      WriteFile("t.csv", "x,species\n1,cat\n2,dog\n3,bird\n4,cat\n");
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, "species");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->class_names, ElementsAre("bird", "cat", "dog"));
  EXPECT_THAT(data->labels, ElementsAre(1, 2, 0, 1));
  EXPECT_EQ(data->num_classes, 3);
}

TEST_F(DatasetsTest, CsvHandlesQuotesCrlfAndBom) {
  const std::string path = WriteFile("q.csv",
                                     "\xEF\xBB\xBF\"width, cm\",\"class\"\r\n"
                                     "\"1.5\",\"a \"\"big\"\" one\"\r\n"
                                     "\r\n"
                                     " 2 ,\"two\nlines\"\r\n"
                                     "3,plain\r\n");
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, "class");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("width, cm"));
  EXPECT_THAT(data->features, ElementsAre(1.5, 2, 3));
  EXPECT_THAT(data->class_names,
              ElementsAre("a \"big\" one", "plain", "two\nlines"));
  EXPECT_THAT(data->labels, ElementsAre(0, 2, 1));
}

TEST_F(DatasetsTest, CsvMissingLabelColumnListsColumns) {
  const std::string path = WriteFile("m.csv", "a,b,c\n1,2,3\n");
  absl::Status status = ReadCsvDataset(path, "target").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("m.csv"), HasSubstr("target"),
                                      HasSubstr("a, b, c")));
}

TEST_F(DatasetsTest, CsvNonNumericCellNamesLineAndColumn) {
  const std::string path = WriteFile("n.csv", "y,h,w\n0,1,2\n1,3,abc\n");
  absl::Status status = ReadCsvDataset(path, "y").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("n.csv:3"), HasSubstr("column 3 ('w')"),
                    HasSubstr("'abc'")));
}

TEST_F(DatasetsTest, CsvRejectsEmptyCellsBadRowsAndBadQuotes) {
  const std::string empty = WriteFile("e.csv", "y,a\n0,1\n1,\n");
  EXPECT_THAT(ReadCsvDataset(empty, "y").status().message(),
              AllOf(HasSubstr("e.csv:3"), HasSubstr("empty cell")));
  const std::string ragged = WriteFile("r.csv", "y,a\n0,1,2\n");
  EXPECT_THAT(ReadCsvDataset(ragged, "y").status().message(),
              AllOf(HasSubstr("r.csv:2"), HasSubstr("expected 2 fields")));
  const std::string quote = WriteFile("u.csv", "y,a\n0,\"1\n");
  EXPECT_THAT(ReadCsvDataset(quote, "y").status().message(),
              AllOf(HasSubstr("u.csv:2"), HasSubstr("unterminated")));
  const std::string no_rows = WriteFile("h.csv", "y,a\n");
  EXPECT_FALSE(ReadCsvDataset(no_rows, "y").ok());
  const std::string negative = WriteFile("neg.csv", "y,a\n-1,1\n1,2\n");
  EXPECT_THAT(ReadCsvDataset(negative, "y").status().message(),
              HasSubstr("class id -1"));
  EXPECT_EQ(ReadCsvDataset(Path("none.csv"), "y").status().code(),
            absl::StatusCode::kNotFound);
}

// 200 rows: x = i^2 / 100 (skewed, so any subset has its own mean),
// constant c = 7, label i % 3.
std::string SyntheticCsv() {
  std::string text = "x,c,label\n";
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&text, i * i / 100.0, ",7,", i % 3, "\n");
  }
  return text;
}

double Mean(const std::vector<float>& values, size_t stride, size_t offset) {
  double sum = 0;
  size_t n = 0;
  for (size_t i = offset; i < values.size(); i += stride, ++n) sum += values[i];
  return sum / static_cast<double>(n);
}

TEST_F(DatasetsTest, CsvStandardisesWithTrainStatisticsOnly) {
  CsvOptions options{WriteFile("s.csv", SyntheticCsv()), "label", 0.2, 1};
  absl::StatusOr<DatasetSplit> split = LoadCsvDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.num_samples(), 160);
  EXPECT_EQ(split->test.num_samples(), 40);
  EXPECT_NEAR(Mean(split->train.features, 2, 0), 0.0, 1e-5);
  std::vector<float> squares;
  for (size_t i = 0; i < split->train.features.size(); i += 2) {
    squares.push_back(split->train.features[i] * split->train.features[i]);
  }
  EXPECT_NEAR(Mean(squares, 1, 0), 1.0, 1e-4);
  // The test split is mapped with the train statistics, so it is not
  // centred itself.
  EXPECT_GT(std::abs(Mean(split->test.features, 2, 0)), 1e-3);
  // The constant column is only centred.
  for (size_t i = 1; i < split->test.features.size(); i += 2) {
    EXPECT_NEAR(split->test.features[i], 0.0f, 1e-6);
  }
}

TEST_F(DatasetsTest, CsvSplitIsDeterministicPerSeed) {
  const std::string path = WriteFile("s.csv", SyntheticCsv());
  absl::StatusOr<DatasetSplit> a = LoadCsvDataset({path, "label", 0.25, 42});
  absl::StatusOr<DatasetSplit> b = LoadCsvDataset({path, "label", 0.25, 42});
  absl::StatusOr<DatasetSplit> c = LoadCsvDataset({path, "label", 0.25, 43});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->test.features, b->test.features);
  EXPECT_EQ(a->train.labels, b->train.labels);
  EXPECT_NE(a->test.features, c->test.features);
}

TEST_F(DatasetsTest, CsvOptionsValidate) {
  EXPECT_TRUE((CsvOptions{.path = "p", .label_column = "y"}).Validate().ok());
  EXPECT_FALSE((CsvOptions{.path = "", .label_column = "y"}).Validate().ok());
  EXPECT_FALSE((CsvOptions{.path = "p", .label_column = ""}).Validate().ok());
  EXPECT_FALSE(
      (CsvOptions{.path = "p", .label_column = "y", .test_fraction = 1.0})
          .Validate()
          .ok());
  EXPECT_FALSE(
      (CsvOptions{.path = "p", .label_column = "y", .test_fraction = -0.1})
          .Validate()
          .ok());
}

TEST(CsvRealDataTest, LoadsBreastCancerExample) {
  const std::string path = std::string(SAMVERKA_SOURCE_DIR) +
                           "/examples/breast-cancer-wisconsin/wdbc.csv";
  absl::StatusOr<DatasetSplit> split =
      LoadCsvDataset({.path = path, .label_column = "malignant"});
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.num_samples() + split->test.num_samples(), 569);
  EXPECT_EQ(split->test.num_samples(), 114);
  EXPECT_THAT(split->train.sample_shape, ElementsAre(30));
  EXPECT_EQ(split->train.num_classes, 2);
  EXPECT_EQ(split->train.feature_names.front(), "radius_mean");
}

// --- Registry ----------------------------------------------------------

DatasetOptions Options(const std::string& spec) {
  DatasetOptions options;
  options.spec = spec;
  return options;
}

TEST_F(DatasetsTest, RegistryLoadsCsvWhosePathHasColons) {
  fs::create_directories(dir_ / "a:b");
  WriteFile("a:b/data.csv", SyntheticCsv());
  const DatasetOptions options =
      Options(absl::StrCat("csv:", Path("a:b/data.csv"), ":label"));
  absl::StatusOr<DatasetSplit> split = LoadDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->test.num_samples(), 40);
  // A relative path is resolved against data_dir.
  DatasetOptions relative{"csv:a:b/data.csv:label", dir_.string(), 0.5, 3};
  split = LoadDataset(relative);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->test.num_samples(), 100);
}

TEST_F(DatasetsTest, RegistryLoadsMnistFromDataDir) {
  WriteGzip("train-images-idx3-ubyte.gz", IdxImages(5, 28, 28));
  WriteGzip("train-labels-idx1-ubyte.gz", IdxLabels({0, 1, 2, 3, 4}));
  WriteFile("t10k-images-idx3-ubyte", IdxImages(2, 28, 28));
  WriteFile("t10k-labels-idx1-ubyte", IdxLabels({9, 8}));
  absl::StatusOr<DatasetSplit> split =
      LoadDataset({.spec = "mnist", .data_dir = dir_.string()});
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.num_samples(), 5);
  EXPECT_THAT(split->test.labels, ElementsAre(9, 8));
  EXPECT_THAT(split->test.sample_shape, ElementsAre(1, 28, 28));
  EXPECT_EQ(split->train.class_names.size(), 10u);
  EXPECT_NEAR(split->train.features[0], -0.1307f / 0.3081f, 1e-6);
}

TEST_F(DatasetsTest, RegistryExplainsMissingFiles) {
  absl::Status status =
      LoadDataset({.spec = "mnist", .data_dir = Path("nowhere")}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("nowhere"), HasSubstr("data_dir"),
                    HasSubstr("train-images-idx3-ubyte")));
  status = LoadDataset({.spec = "mnist", .data_dir = dir_.string()}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no train-images-idx3-ubyte[.gz]"));
}

TEST(RegistryTest, ValidateRejectsBadOptions) {
  absl::Status status = Options("imagenet").Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("imagenet"), HasSubstr("fashion-mnist"),
                    HasSubstr("csv:PATH:LABEL_COLUMN")));
  EXPECT_FALSE(Options("csv:only-path").Validate().ok());
  EXPECT_FALSE(Options("csv:path:").Validate().ok());
  EXPECT_FALSE(Options("csv::label").Validate().ok());
  EXPECT_FALSE(Options("").Validate().ok());
  EXPECT_FALSE(
      (DatasetOptions{.spec = "mnist", .data_dir = "", .test_fraction = 1.5})
          .Validate()
          .ok());
  EXPECT_TRUE(Options("fashion-mnist").Validate().ok());
  EXPECT_TRUE(Options("csv:C:\\data.csv:y").Validate().ok());
}

TEST(RegistryTest, LoadsFashionMnistFromDebianPackage) {
  if (!fs::is_directory(kFashionMnistDefaultDir)) {
    GTEST_SKIP() << kFashionMnistDefaultDir
                 << " absent (Debian package dataset-fashion-mnist)";
  }
  absl::StatusOr<DatasetSplit> split = LoadDataset(Options("fashion-mnist"));
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.num_samples(), 60000);
  EXPECT_EQ(split->test.num_samples(), 10000);
  EXPECT_EQ(split->train.num_classes, 10);
  EXPECT_THAT(split->train.sample_shape, ElementsAre(1, 28, 28));
  EXPECT_EQ(split->train.class_names.at(9), "Ankle boot");
  // The normalisation constants are the training set's own statistics.
  const std::vector<float>& x = split->train.features;
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
  double squares = 0;
  for (float v : x) squares += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(squares / x.size()), 1.0, 0.01);
}

// --- CSV targets for regression, survival, multi-label ------------------

using models::TaskType;

TEST_F(DatasetsTest, CsvReadsSeveralTargetColumnsByName) {
  const std::string path = WriteFile("r.csv", "a,y1,b,y2\n1,10,2,-1\n3,20,4,-2\n5,30,6,-3\n");
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, {"y2", "y1"}, TaskType::kRegression);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(data->target_names, ElementsAre("y2", "y1"));
  EXPECT_THAT(data->target_shape, ElementsAre(2));
  EXPECT_THAT(data->features, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(data->targets, ElementsAre(-1, 10, -2, 20, -3, 30));
  EXPECT_EQ(data->num_samples(), 3);
  EXPECT_EQ(data->num_classes, 1);
}

TEST_F(DatasetsTest, CsvReadsSurvivalTimeAndEvent) {
  const std::string path =
      WriteFile("s.csv", "age,event,time\n50,1,100\n60,0,250.5\n70,1,0\n");
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, {"time", "event"}, TaskType::kSurvival);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(data->feature_names, ElementsAre("age"));
  EXPECT_THAT(data->targets, ElementsAre(100, 1, 250.5, 0, 0, 1));
  // The events are the labels, so a partition can stratify by them.
  EXPECT_THAT(data->labels, ElementsAre(1, 0, 1));
  EXPECT_EQ(data->num_classes, 2);
}

TEST_F(DatasetsTest, CsvRejectsBadTargetsWithFileLineAndColumn) {
  const std::string negative = WriteFile("neg.csv", "x,time,event\n1,5,1\n2,-3,0\n");
  EXPECT_THAT(ReadCsvDataset(negative, {"time", "event"}, TaskType::kSurvival).status().message(),
              AllOf(HasSubstr("neg.csv:3"), HasSubstr("column 2 ('time')"),
                    HasSubstr("survival time '-3' is negative")));
  const std::string event = WriteFile("ev.csv", "x,time,event\n1,5,2\n");
  EXPECT_THAT(ReadCsvDataset(event, {"time", "event"}, TaskType::kSurvival).status().message(),
              AllOf(HasSubstr("ev.csv:2"), HasSubstr("('event')"), HasSubstr("'2' is not 0 or 1")));
  const std::string text = WriteFile("t.csv", "x,y\n1,2.5\n2,high\n");
  EXPECT_THAT(ReadCsvDataset(text, {"y"}, TaskType::kRegression).status().message(),
              AllOf(HasSubstr("t.csv:3"), HasSubstr("('y')"),
                    HasSubstr("'high' is not a finite number")));
  const std::string nan = WriteFile("nan.csv", "x,y\n1,nan\n");
  EXPECT_THAT(ReadCsvDataset(nan, {"y"}, TaskType::kRegression).status().message(),
              AllOf(HasSubstr("nan.csv:2"), HasSubstr("not a finite number")));
  const std::string label = WriteFile("ml.csv", "x,a,b\n1,0,1\n2,1,0.5\n");
  EXPECT_THAT(ReadCsvDataset(label, {"a", "b"}, TaskType::kMultilabel).status().message(),
              AllOf(HasSubstr("ml.csv:3"), HasSubstr("('b')"), HasSubstr("not 0 or 1")));
  // Column counts the task does not take, and unknown or repeated columns.
  EXPECT_THAT(ReadCsvDataset(event, {"time"}, TaskType::kSurvival).status().message(),
              HasSubstr("task survival takes two columns, time then event; got 1"));
  EXPECT_THAT(ReadCsvDataset(text, {"z"}, TaskType::kRegression).status().message(),
              AllOf(HasSubstr("no target column 'z'"), HasSubstr("x, y")));
  EXPECT_THAT(ReadCsvDataset(text, {"y", "y"}, TaskType::kRegression).status().message(),
              HasSubstr("named twice"));
  EXPECT_THAT(ReadCsvDataset(text, {"x", "y"}, TaskType::kRegression).status().message(),
              HasSubstr("no feature columns"));
}

TEST_F(DatasetsTest, CsvStandardisesRegressionTargetsWithTrainStatistics) {
  std::string text = "x,y,time,event\n";
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&text, i, ",", 1000 + 10 * i, ",", i + 1, ",", i % 2, "\n");
  }
  const std::string path = WriteFile("d.csv", text);
  CsvOptions options{.path = path, .test_fraction = 0.25, .seed = 1,
                     .task = TaskType::kRegression, .target_columns = {"y"}};
  absl::StatusOr<DatasetSplit> split = LoadCsvDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->train.target_mean.size(), 1u);
  double mean = 0, squares = 0;
  for (float t : split->train.targets) mean += t;
  for (float t : split->train.targets) squares += t * t;
  EXPECT_NEAR(mean / 75, 0, 1e-5);
  EXPECT_NEAR(squares / 75, 1, 1e-4);
  EXPECT_EQ(split->test.target_mean, split->train.target_mean);
  // Undoing the scaling gives the values as read.
  const double y = split->test.targets[0] * split->test.target_scale[0] + split->test.target_mean[0];
  EXPECT_NEAR(std::remainder(y - 1000, 10), 0, 1e-3);
  // Survival times are kept as read.
  options.task = TaskType::kSurvival;
  options.target_columns = {"time", "event"};
  split = LoadCsvDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_TRUE(split->train.target_mean.empty());
  EXPECT_EQ(split->train.targets[0], std::round(split->train.targets[0]));
}

TEST_F(DatasetsTest, RegistryReadsTargetColumnsForTheTask) {
  WriteFile("d.csv", "x,time,event\n1,5,1\n2,6,0\n3,7,1\n4,8,1\n");
  DatasetOptions options = Options(absl::StrCat("csv:", Path("d.csv"), ":time,event"));
  options.task = TaskType::kSurvival;
  options.test_fraction = 0.25;
  absl::StatusOr<DatasetSplit> split = LoadDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->train.target_names, ElementsAre("time", "event"));
  // For classification the same spec is one (missing) label column.
  options.task = TaskType::kClassification;
  EXPECT_THAT(LoadDataset(options).status().message(), HasSubstr("no label column 'time,event'"));
}

TEST(CsvRealDataTest, LoadsBreastCancerSurvivalExample) {
  const std::string path = std::string(SAMVERKA_SOURCE_DIR) +
                           "/examples/breast-cancer-survival/rotterdam.csv";
  absl::StatusOr<Dataset> data = ReadCsvDataset(path, {"time", "event"}, TaskType::kSurvival);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_samples(), 2982);
  int64_t events = 0;
  for (int64_t e : data->labels) events += e;
  EXPECT_EQ(events, 1713);
  EXPECT_EQ(data->feature_names.size(), 9u);  // with the year of surgery
}

// --- NumPy .npy / .npz ------------------------------------------------

// A .npy 1.0 file: magic, version, header length, padded header, data.
std::string Npy(const std::string& descr, const std::string& shape, const std::string& data,
                const std::string& fortran = "False") {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + fortran +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out.push_back('\0');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + data;
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(NumpyTest, ParsesFloatIntegerAndBoolArrays) {
  absl::StatusOr<NumpyArray> f =
      ParseNpy(Npy("<f4", "(2, 3)", Raw<float>({1, 2, 3, 4, 5, 6.5f})), "a.npy");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->shape, ElementsAre(2, 3));
  EXPECT_THAT(f->values, ElementsAre(1, 2, 3, 4, 5, 6.5f));
  EXPECT_FALSE(f->integral);
  absl::StatusOr<NumpyArray> i = ParseNpy(Npy("<i8", "(3,)", Raw<int64_t>({0, -2, 7})), "b.npy");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_THAT(i->values, ElementsAre(0, -2, 7));
  EXPECT_TRUE(i->integral);
  absl::StatusOr<NumpyArray> d = ParseNpy(Npy("<f8", "(2,)", Raw<double>({0.25, -3})), "c.npy");
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->values, ElementsAre(0.25f, -3));
  absl::StatusOr<NumpyArray> b = ParseNpy(Npy("|b1", "(2,)", std::string("\x01\x00", 2)), "d");
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(b->values, ElementsAre(1, 0));
  absl::StatusOr<NumpyArray> s = ParseNpy(Npy("<i2", "(1,)", Raw<int16_t>({-5})), "e");
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->values, ElementsAre(-5));
}

TEST(NumpyTest, RejectsBadFilesWithOneMessageNamingThem) {
  const std::string six = Raw<float>({1, 2, 3, 4, 5, 6});
  EXPECT_THAT(ParseNpy("PK\x03\x04 not npy", "a.npy").status().message(),
              AllOf(HasSubstr("a.npy"), HasSubstr("bad magic")));
  EXPECT_THAT(ParseNpy(Npy(">f4", "(2, 3)", six), "b.npy").status().message(),
              AllOf(HasSubstr("b.npy"), HasSubstr("dtype '>f4' is not supported")));
  EXPECT_THAT(ParseNpy(Npy("<c8", "(3,)", six), "c.npy").status().message(),
              HasSubstr("dtype '<c8'"));
  EXPECT_THAT(ParseNpy(Npy("<U5", "(1,)", six), "u.npy").status().message(),
              HasSubstr("dtype '<U5'"));
  EXPECT_THAT(ParseNpy(Npy("<f4", "(2, 3)", six, "True"), "f.npy").status().message(),
              HasSubstr("Fortran"));
  EXPECT_THAT(ParseNpy(Npy("<f4", "(2, 3)", six.substr(0, 20)), "t.npy").status().message(),
              AllOf(HasSubstr("t.npy"), HasSubstr("truncated"), HasSubstr("needs 24 bytes"),
                    HasSubstr("has 20")));
  EXPECT_THAT(ParseNpy(Npy("<f4", "(2, 2)", six), "x.npy").status().message(),
              HasSubstr("needs 16 bytes of data, the file has 24"));
  EXPECT_THAT(ParseNpy(Npy("<f4", "(2, 3)", six).substr(0, 40), "h.npy").status().message(),
              AllOf(HasSubstr("h.npy"), HasSubstr("truncated .npy header")));
  std::string no_shape = Npy("<f4", "(2, 3)", six);
  no_shape.replace(no_shape.find("'shape'"), 7, "'sh4pe'");
  EXPECT_THAT(ParseNpy(no_shape, "s.npy").status().message(), HasSubstr("no 'shape'"));
}

TEST(NumpyTest, DatasetChecksLengthsValuesAndTheTask) {
  const NumpyArray x{.dtype = "<f4", .shape = {3, 2}, .values = {1, 2, 3, 4, 5, 6}};
  const NumpyArray labels{.dtype = "<i8", .integral = true, .shape = {3}, .values = {0, 2, 1}};
  absl::StatusOr<Dataset> d =
      NumpyDataset(x, labels, models::TaskType::kClassification, "x", "y");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->num_classes, 3);
  EXPECT_THAT(d->sample_shape, ElementsAre(2));
  const NumpyArray short_y{.dtype = "<i8", .shape = {2}, .values = {0, 1}};
  EXPECT_THAT(NumpyDataset(x, short_y, models::TaskType::kClassification, "f.npz: x", "f.npz: y")
                  .status()
                  .message(),
              AllOf(HasSubstr("f.npz: y"), HasSubstr("targets shaped [2] for 3 samples"),
                    HasSubstr("agree in length")));
  NumpyArray nan_x = x;
  nan_x.values[3] = std::nanf("");
  EXPECT_THAT(NumpyDataset(nan_x, labels, models::TaskType::kClassification, "f.npz: x", "y")
                  .status()
                  .message(),
              AllOf(HasSubstr("f.npz: x"), HasSubstr("sample 1, value 1 is NaN")));
  const NumpyArray survival{.dtype = "<f4", .shape = {3, 2}, .values = {5, 1, -1, 0, 3, 1}};
  EXPECT_THAT(NumpyDataset(x, survival, models::TaskType::kSurvival, "x", "t.npy")
                  .status()
                  .message(),
              AllOf(HasSubstr("t.npy"), HasSubstr("sample 1: survival time -1 is negative")));
  EXPECT_THAT(NumpyDataset(x, labels, models::TaskType::kSurvival, "x", "y").status().message(),
              HasSubstr("task survival needs targets shaped [N, 2]"));
  const NumpyArray multi{.dtype = "<f4", .shape = {3, 2}, .values = {0, 1, 1, 1, 0, 0.5}};
  EXPECT_THAT(NumpyDataset(x, multi, models::TaskType::kMultilabel, "x", "m").status().message(),
              HasSubstr("sample 2, value 1: 0.5 is not 0 or 1"));
  absl::StatusOr<Dataset> regression =
      NumpyDataset(x, survival, models::TaskType::kRegression, "x", "y");
  ASSERT_TRUE(regression.ok()) << regression.status();
  EXPECT_THAT(regression->target_shape, ElementsAre(2));
}

bool HaveNumpy() {
  return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

TEST_F(DatasetsTest, NpzWrittenByNumpyLoadsThroughTheRegistry) {
  if (!HaveNumpy()) GTEST_SKIP() << "NumPy is not installed for /usr/bin/python3 (python3-numpy)";
  const std::string script = WriteFile("make.py", R"(
import sys, numpy as np
d = sys.argv[1]
x = np.arange(40 * 16, dtype=np.float32).reshape(40, 1, 4, 4) / 100
y = (np.arange(40) % 3).astype(np.int64)
np.savez(d + "/plain.npz", x=x, y=y)
t = np.stack([np.arange(40, dtype=np.float64) + 1, np.arange(40) % 2], axis=1)
np.savez_compressed(d + "/survival.npz", features=x.astype(np.float64), times=t)
np.save(d + "/x.npy", x)
np.save(d + "/y.npy", y.astype(np.uint8))
np.savez(d + "/short.npz", x=x, y=y[:39])
)");
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + dir_.string()).c_str()), 0);
  DatasetOptions options = Options("npz:" + Path("plain.npz"));
  options.test_fraction = 0.25;
  absl::StatusOr<DatasetSplit> split = LoadDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->train.sample_shape, ElementsAre(1, 4, 4));
  EXPECT_EQ(split->train.num_classes, 3);
  EXPECT_EQ(split->test.num_samples(), 10);
  // Features are kept as stored: every value is a multiple of 0.01.
  EXPECT_NEAR(std::fmod(split->train.features[5] * 100 + 0.5, 1.0), 0.5, 1e-3);

  options.spec = "npz:" + Path("survival.npz") + ":features,times";
  options.task = models::TaskType::kSurvival;
  split = LoadDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->train.target_shape, ElementsAre(2));

  options.spec = "npy:" + Path("x.npy") + ":" + Path("y.npy");
  options.task = models::TaskType::kClassification;
  split = LoadDataset(options);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.num_samples(), 30);

  options.spec = "npz:" + Path("short.npz");
  EXPECT_THAT(LoadDataset(options).status().message(),
              AllOf(HasSubstr("short.npz: y"), HasSubstr("agree in length")));
  options.spec = "npz:" + Path("plain.npz") + ":a,b";
  EXPECT_THAT(LoadDataset(options).status().message(),
              AllOf(HasSubstr("no array 'a'"), HasSubstr("x, y")));
  // A truncated archive.
  std::ifstream in(Path("plain.npz"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  WriteFile("cut.npz", bytes.substr(0, bytes.size() / 2));
  options.spec = "npz:" + Path("cut.npz");
  absl::Status cut = LoadDataset(options).status();
  EXPECT_EQ(cut.code(), absl::StatusCode::kDataLoss) << cut;
  EXPECT_THAT(cut.message(), AllOf(HasSubstr("cut.npz"), HasSubstr("truncated")));
  // A flipped byte inside a member.
  std::string flipped = bytes;
  flipped[200] ^= 0x40;
  WriteFile("flip.npz", flipped);
  options.spec = "npz:" + Path("flip.npz");
  EXPECT_FALSE(LoadDataset(options).ok());
}

}  // namespace
}  // namespace samverka::client
