#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace samverka {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, ReadsTypedKeysIncludingDottedOnes) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse(
      "rounds = 7\nlr = 0.1\nname = \"x\"\n[tls]\nverify = true\nsans = [\"a\", \"b\"]\n",
      "test.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  int rounds = 0;
  double lr = 0;
  std::string name;
  bool verify = false;
  std::vector<std::string> sans;
  ASSERT_TRUE(file->Get("rounds", &rounds).ok());
  ASSERT_TRUE(file->Get("lr", &lr).ok());
  ASSERT_TRUE(file->Get("name", &name).ok());
  ASSERT_TRUE(file->Get("tls.verify", &verify).ok());
  ASSERT_TRUE(file->Get("tls.sans", &sans).ok());
  EXPECT_EQ(rounds, 7);
  EXPECT_DOUBLE_EQ(lr, 0.1);
  EXPECT_EQ(name, "x");
  EXPECT_TRUE(verify);
  EXPECT_EQ(sans, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(file->CheckNoUnknownKeys().ok());
}

TEST(ConfigTest, AStringTableMarksEachEntryKnown) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse(
      "[datasets]\nbreast = \"csv:b.csv:y\"\n\"icu-2025\" = \"mnist\"\n", "site.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<std::pair<std::string, std::string>> entries;
  ASSERT_TRUE(file->GetStringTable("datasets", &entries).ok());
  EXPECT_EQ(entries, (std::vector<std::pair<std::string, std::string>>{
                         {"breast", "csv:b.csv:y"}, {"icu-2025", "mnist"}}));
  EXPECT_TRUE(file->CheckNoUnknownKeys().ok());
  // Absent: unchanged.
  std::vector<std::pair<std::string, std::string>> none = {{"x", "y"}};
  ASSERT_TRUE(file->GetStringTable("other", &none).ok());
  EXPECT_EQ(none.size(), 1u);
  // Not a table, or an entry that is not a string: errors naming the key.
  absl::StatusOr<ConfigFile> scalar = ConfigFile::Parse("datasets = 3\n", "site.toml");
  ASSERT_TRUE(scalar.ok());
  EXPECT_THAT(std::string(scalar->GetStringTable("datasets", &entries).message()),
              HasSubstr("site.toml: key 'datasets' must be a table"));
  absl::StatusOr<ConfigFile> nested =
      ConfigFile::Parse("[datasets]\na = 1\n[datasets.b]\nc = \"x\"\n", "site.toml");
  ASSERT_TRUE(nested.ok());
  EXPECT_THAT(std::string(nested->GetStringTable("datasets", &entries).message()),
              HasSubstr("key 'datasets.a' must be a string"));
}

TEST(ConfigTest, AbsentKeyLeavesDefault) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("", "empty.toml");
  ASSERT_TRUE(file.ok());
  int rounds = 50;
  ASSERT_TRUE(file->Get("rounds", &rounds).ok());
  EXPECT_EQ(rounds, 50);
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingKeyAndFile) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("rounds = 3\nrouns = 4\n", "sim.toml");
  ASSERT_TRUE(file.ok());
  int rounds = 0;
  ASSERT_TRUE(file->Get("rounds", &rounds).ok());
  absl::Status s = file->CheckNoUnknownKeys();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sim.toml: unknown key 'rouns'"));
}

TEST(ConfigTest, WrongTypeIsAnError) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("rounds = \"many\"\n", "sim.toml");
  ASSERT_TRUE(file.ok());
  int rounds = 0;
  absl::Status s = file->Get("rounds", &rounds);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'rounds' must be an integer"));
}

TEST(ConfigTest, SyntaxErrorHasLineNumber) {
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("a = 1\nb = = 2\n", "bad.toml");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("bad.toml:2:"));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(ConfigFile::Load("/nonexistent/x.toml").status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigTest, TomlQuoteRoundTrips) {
  const std::string tricky = "a \"quoted\" \\ path\n";
  absl::StatusOr<ConfigFile> file = ConfigFile::Parse("v = " + TomlQuote(tricky), "q.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  std::string v;
  ASSERT_TRUE(file->Get("v", &v).ok());
  EXPECT_EQ(v, tricky);
}

}  // namespace
}  // namespace samverka
