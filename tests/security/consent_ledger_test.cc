#include "security/secagg/consent_ledger.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace samverka::security::secagg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const ContributionScope kScope{"fed", "breast", "aaaa"};
const ContributionScope kOtherModel{"fed", "breast", "bbbb"};
const ContributionScope kOtherData{"fed", "lungs", "aaaa"};

fs::path FreshDir() {
  const fs::path dir = fs::temp_directory_path() /
                       ("samverka_ledger_" +
                        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                        "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(ConsentLedgerTest, ASiteReleasesOneInstancePerScope) {
  auto ledger = ConsentLedger::Open("");
  ASSERT_TRUE(ledger.ok());
  // Two runs from one model (the first lost before anything was released).
  absl::StatusOr<SecretBytes> masked1 = (*ledger)->BeginContribution(kScope, "run-1", 4);
  absl::StatusOr<SecretBytes> masked2 = (*ledger)->BeginContribution(kScope, "run-2", 4);
  ASSERT_TRUE(masked1.ok() && masked2.ok());
  absl::StatusOr<SecretBytes> released = (*ledger)->Release(kScope, "run-2", 4);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->Equals(*masked2));
  // The same instance again (a restarted coordinator completing it).
  absl::StatusOr<SecretBytes> again = (*ledger)->Release(kScope, "run-2", 5);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Equals(*released));
  // Another instance of the scope: refused, and so is any new masked input.
  absl::StatusOr<SecretBytes> other = (*ledger)->Release(kScope, "run-1", 5);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("subtract"));
  EXPECT_EQ((*ledger)->BeginContribution(kScope, "run-3", 5).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*ledger)->CheckCanContribute(kScope).ok());
  // Other models and other data sets are other scopes.
  EXPECT_TRUE((*ledger)->CheckCanContribute(kOtherModel).ok());
  EXPECT_TRUE((*ledger)->BeginContribution(kOtherData, "run-1", 5).ok());
}

TEST(ConsentLedgerTest, NothingIsReleasedForAnInstanceTheSiteDidNotMask) {
  auto ledger = ConsentLedger::Open("");
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ((*ledger)->Release(kScope, "never", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // ... and the refusal spent nothing: the scope is still open.
  ASSERT_TRUE((*ledger)->BeginContribution(kScope, "real", 1).ok());
  EXPECT_TRUE((*ledger)->Release(kScope, "real", 1).ok());
}

TEST(ConsentLedgerTest, DecisionsSurviveARestartAndTheKeyStaysPrivate) {
  const fs::path dir = FreshDir();
  std::string seed_hex;
  {
    auto ledger = ConsentLedger::Open(dir.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ASSERT_TRUE((*ledger)->BeginContribution(kScope, "run-1", 1).ok());
    absl::StatusOr<SecretBytes> seed = (*ledger)->Release(kScope, "run-1", 1);
    ASSERT_TRUE(seed.ok());
    seed_hex.assign(reinterpret_cast<const char*>(seed->data()), seed->size());
  }
  struct stat key_stat {};
  ASSERT_EQ(stat((dir / "secagg-consent.key").c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600);
  auto reopened = ConsentLedger::Open(dir.string());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_FALSE((*reopened)->CheckCanContribute(kScope).ok());
  absl::StatusOr<SecretBytes> again = (*reopened)->Release(kScope, "run-1", 2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(again->data()), again->size()), seed_hex);
  fs::remove_all(dir);
}

TEST(ConsentLedgerTest, ATornLastLineIsIgnoredAndACorruptOneIsAnError) {
  const fs::path dir = FreshDir();
  {
    auto ledger = ConsentLedger::Open(dir.string());
    ASSERT_TRUE(ledger.ok());
    ASSERT_TRUE((*ledger)->BeginContribution(kScope, "run-1", 1).ok());
  }
  // A crash in the middle of appending a release: it never happened.
  std::ofstream(dir / "secagg-ledger.jsonl", std::ios::app) << "{\"event\":\"released\",\"sco";
  {
    auto ledger = ConsentLedger::Open(dir.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_TRUE((*ledger)->CheckCanContribute(kScope).ok());
    ASSERT_TRUE((*ledger)->Release(kScope, "run-1", 1).ok());  // appended after the cut
  }
  {
    auto ledger = ConsentLedger::Open(dir.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_FALSE((*ledger)->CheckCanContribute(kScope).ok());
  }
  std::ofstream(dir / "secagg-ledger.jsonl", std::ios::app) << "\nnot json\n";
  auto corrupt = ConsentLedger::Open(dir.string());
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(corrupt.status().message(), HasSubstr("secagg-ledger.jsonl"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace samverka::security::secagg
