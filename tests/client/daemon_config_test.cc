// tests/client/daemon_config_test.cc: client.toml as LoadClientConfig reads it.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/daemon.h"

namespace samverka::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ClientConfigTest : public ::testing::Test {
 protected:
  ClientConfigTest()
      : dir_(fs::temp_directory_path() /
             ("samverka_client_config_" +
              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
              std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "tls");
    // LoadClientConfig only checks that the TLS files exist.
    for (const char* file : {"ca.crt", "site.crt", "site.key"}) std::ofstream(dir_ / "tls" / file) << "x";
  }
  ~ClientConfigTest() override { fs::remove_all(dir_); }

  // client.toml with `top` (top-level keys) and `datasets` (the lines of
  // its [datasets] table; none if empty).
  absl::StatusOr<ClientDaemonOptions> Load(const std::string& top, const std::string& datasets) {
    const fs::path path = dir_ / "client.toml";
    std::ofstream(path) << "coordinator = \"fl.example:50051\"\n"
                        << top << (datasets.empty() ? "" : "[datasets]\n" + datasets)
                        << "[tls]\nca_certificate = \"tls/ca.crt\"\n"
                        << "certificate = \"tls/site.crt\"\nprivate_key = \"tls/site.key\"\n";
    return LoadClientConfig(path.string());
  }

  fs::path dir_;
};

TEST_F(ClientConfigTest, NamedDataSetsWithPathsRelativeToTheFile) {
  absl::StatusOr<ClientDaemonOptions> o =
      Load("eval_fraction = 0.3\nseed = 7\nallowed_operators = [\"alice\", \"bob\"]\n",
           "breast = \"csv:data/breast.csv:malignant\"\n"
           "abs = \"csv:/srv/lungs.csv:label\"\n"
           "fmnist = \"fashion-mnist\"\n");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->datasets.size(), 3u);
  EXPECT_EQ(o->datasets.at("breast").spec,
            "csv:" + (dir_ / "data/breast.csv").lexically_normal().string() + ":malignant");
  EXPECT_EQ(o->datasets.at("abs").spec, "csv:/srv/lungs.csv:label");
  EXPECT_EQ(o->datasets.at("fmnist").spec, "fashion-mnist");
  EXPECT_EQ(o->datasets.at("breast").test_fraction, 0.3);
  EXPECT_EQ(o->datasets.at("fmnist").seed, 7u);
  EXPECT_EQ(o->allowed_operators, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_TRUE(o->crl.empty());
}

TEST_F(ClientConfigTest, TheCrlPathIsResolvedToo) {
  std::ofstream(dir_ / "tls" / "crl.pem") << "x";
  const fs::path path = dir_ / "client.toml";
  std::ofstream(path) << "coordinator = \"fl.example:50051\"\n[datasets]\nb = \"mnist\"\n"
                      << "[tls]\nca_certificate = \"tls/ca.crt\"\ncertificate = \"tls/site.crt\"\n"
                      << "private_key = \"tls/site.key\"\ncrl = \"tls/crl.pem\"\n";
  absl::StatusOr<ClientDaemonOptions> o = LoadClientConfig(path.string());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->crl, (dir_ / "tls/crl.pem").lexically_normal().string());
}

TEST_F(ClientConfigTest, BadDataSetsAreErrorsNamingTheKey) {
  struct Case {
    std::string top, datasets, message;
  };
  const std::vector<Case> cases = {
      {"", "", "[datasets] must name at least one data set"},
      {"", "breast = \"xls:breast.xls\"\n", "key 'datasets.breast'"},
      {"", "breast = 3\n", "key 'datasets.breast' must be a string"},
      {"", "\"bad name\" = \"mnist\"\n", "data set name 'bad name'"},
      {"", "\"a.b\" = \"mnist\"\n", "data set name 'a.b'"},
      {"datasets = \"mnist\"\n", "", "key 'datasets' must be a table"},
      {"datset = 1\n", "b = \"mnist\"\n", "unknown key 'datset'"},
      {"", "b = \"mnist\"\n[datasets.sub]\nx = \"mnist\"\n", "must be a string"},
      // The keys of before studies say what replaced them.
      {"dataset = \"csv:a.csv:y\"\n", "b = \"mnist\"\n", "'dataset' is gone"},
      {"model_file = \"net.pt\"\n", "b = \"mnist\"\n", "models now arrive with the studies"},
      {"allowed_operators = [\"no/slash\"]\n", "b = \"mnist\"\n", "allowed_operators"},
      {"allowed_models = [\"site.pt\"]\n", "b = \"mnist\"\n", "sha256sum"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.top + c.datasets);
    absl::StatusOr<ClientDaemonOptions> o = Load(c.top, c.datasets);
    ASSERT_FALSE(o.ok());
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("client.toml"));
  }
}

}  // namespace
}  // namespace samverka::client
