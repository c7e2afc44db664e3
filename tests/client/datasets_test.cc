// tests/client/datasets_test.cc
#include <unistd.h>
#include <zlib.h>

#include <cmath>
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

}  // namespace
}  // namespace samverka::client
