#include "coordinator/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/codec.h"

namespace samverka::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kFederation[] = "fed-test";

// A model's bytes for a round: deterministic, a few KiB, distinct per round.
std::string ModelFor(int64_t round) {
  std::string bytes = "SVTB-test-model-" + std::to_string(round) + ":";
  std::mt19937 rng(static_cast<uint32_t>(round));
  bytes.resize(4096 + static_cast<size_t>(round % 7) * 1000);
  for (size_t i = 32; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(rng());
  return bytes;
}

RoundRecord Succeeded(int64_t round) {
  RoundRecord r;
  r.round = round;
  r.succeeded = true;
  r.participants = {"site-b", "site-a"};
  r.model_digest = Sha256Hex(ModelFor(round));
  r.metrics = {{"train_loss", 1.0 / round},
               {"eval_accuracy", 0.5 + 0.01 * round}};
  r.started_unix_ms = 1000 * round;
  r.finished_unix_ms = 1000 * round + 500;
  r.bytes_up = 10 * round;
  r.bytes_down = 20 * round;
  return r;
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::path(::testing::TempDir()) / "state_store_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<StateStore> OpenStore(StateStoreOptions options = {}) {
    options.clock = [this] { return absl::FromUnixMillis(now_ms_++); };
    auto store = StateStore::Open(dir_, kFederation, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Initial model and rounds 1..n committed.
  void CommitRounds(StateStore& store, int64_t first, int64_t last) {
    for (int64_t round = first; round <= last; ++round) {
      ASSERT_TRUE(store.CommitRound(Succeeded(round), ModelFor(round)).ok())
          << round;
    }
  }

  std::string CheckpointPath(int64_t round) const {
    return (fs::path(dir_) / "checkpoints" /
            ("round-" + std::to_string(round) + ".svtb"))
        .string();
  }

  // Runs SQL on the database as an attacker with file access would.
  void RawSql(const std::string& sql, bool expect_ok = true) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((fs::path(dir_) / "state.db").c_str(), &db),
              SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc == SQLITE_OK, expect_ok)
        << sql << ": " << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  std::string dir_;
  int64_t now_ms_ = 1'700'000'000'000;
};

void ExpectCheckpoint(const absl::StatusOr<std::optional<Checkpoint>>& c,
                      int64_t round) {
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->round, round);
  EXPECT_EQ((*c)->encoded_model, ModelFor(round));
  EXPECT_EQ((*c)->model_digest, Sha256Hex(ModelFor(round)));
}

TEST_F(StateStoreTest, NewDirectoryHasNoCheckpoint) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto latest = store->LoadLatest();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_FALSE(latest->has_value());
  EXPECT_EQ(*store->LastRound(), 0);
  EXPECT_TRUE(store->Rounds()->empty());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "state.db"));
}

TEST_F(StateStoreTest, CommitsRoundsAndReloadsTheLatestAfterReopen) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->SaveInitial(ModelFor(0), Sha256Hex(ModelFor(0))).ok());
    ExpectCheckpoint(store->LoadLatest(), 0);
    CommitRounds(*store, 1, 3);
    ExpectCheckpoint(store->LoadLatest(), 3);
    EXPECT_EQ(*store->LastRound(), 3);
  }
  auto store = OpenStore();
  ExpectCheckpoint(store->LoadLatest(), 3);
  ExpectCheckpoint(store->LoadCheckpoint(0), 0);
  ExpectCheckpoint(store->LoadCheckpoint(2), 2);
  EXPECT_FALSE(store->LoadCheckpoint(7)->has_value());
  EXPECT_EQ(store->federation_id(), kFederation);
}

TEST_F(StateStoreTest, ListsRoundsNewestFirstWithParticipantsAndMetrics) {
  auto store = OpenStore();
  ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
  CommitRounds(*store, 1, 2);
  RoundRecord failed;
  failed.round = 3;
  failed.failure_reason = "1 of 2 updates before the deadline (min_clients 2)";
  failed.participants = {"site-a"};
  failed.model_digest = Sha256Hex(ModelFor(2));
  failed.metrics = {{"train_loss", std::nan("")}};
  ASSERT_TRUE(store->RecordFailedRound(failed).ok());
  store.reset();
  store = OpenStore();
  auto rounds = store->Rounds();
  ASSERT_TRUE(rounds.ok()) << rounds.status();
  ASSERT_EQ(rounds->size(), 3u);
  const RoundRecord& f = (*rounds)[0];
  EXPECT_EQ(f.round, 3);
  EXPECT_FALSE(f.succeeded);
  EXPECT_EQ(f.failure_reason, failed.failure_reason);
  EXPECT_THAT(f.participants, ElementsAre("site-a"));
  EXPECT_TRUE(std::isnan(f.metrics.at("train_loss")));
  const RoundRecord& r2 = (*rounds)[1];
  const RoundRecord expected = Succeeded(2);
  EXPECT_EQ(r2.round, 2);
  EXPECT_TRUE(r2.succeeded);
  EXPECT_THAT(r2.participants, ElementsAre("site-b", "site-a"));  // order kept
  EXPECT_EQ(r2.metrics, expected.metrics);
  EXPECT_EQ(r2.model_digest, expected.model_digest);
  EXPECT_EQ(r2.started_unix_ms, expected.started_unix_ms);
  EXPECT_EQ(r2.finished_unix_ms, expected.finished_unix_ms);
  EXPECT_EQ(r2.bytes_up, expected.bytes_up);
  EXPECT_EQ(r2.bytes_down, expected.bytes_down);
  EXPECT_EQ((*store->Rounds(1)).size(), 1u);
  // A failed round keeps the last good model and has no checkpoint.
  ExpectCheckpoint(store->LoadLatest(), 2);
  EXPECT_FALSE(store->LoadCheckpoint(3)->has_value());
  EXPECT_EQ(*store->LastRound(), 3);
}

TEST_F(StateStoreTest, RejectsInconsistentRecords) {
  auto store = OpenStore();
  ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
  EXPECT_EQ(store->SaveInitial(ModelFor(0)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->SaveInitial(ModelFor(1), Sha256Hex(ModelFor(0))).code(),
            absl::StatusCode::kInvalidArgument);
  RoundRecord wrong_digest = Succeeded(1);
  EXPECT_EQ(store->CommitRound(wrong_digest, ModelFor(2)).code(),
            absl::StatusCode::kInvalidArgument);
  RoundRecord not_succeeded = Succeeded(1);
  not_succeeded.succeeded = false;
  EXPECT_EQ(store->CommitRound(not_succeeded, ModelFor(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->RecordFailedRound(Succeeded(1)).code(),
            absl::StatusCode::kInvalidArgument);
  RoundRecord duplicate = Succeeded(1);
  duplicate.participants = {"a", "a"};
  EXPECT_EQ(store->CommitRound(duplicate, ModelFor(1)).code(),
            absl::StatusCode::kInvalidArgument);
  // An empty digest is computed.
  RoundRecord no_digest = Succeeded(1);
  no_digest.model_digest.clear();
  ASSERT_TRUE(store->CommitRound(no_digest, ModelFor(1)).ok());
  absl::Status again = store->CommitRound(Succeeded(1), ModelFor(1));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr(dir_));
  EXPECT_EQ(store->Rounds(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ExpectCheckpoint(store->LoadLatest(), 1);
}

TEST_F(StateStoreTest, IgnoresAnOrphanCheckpointAndOverwritesItOnCommit) {
  auto store = OpenStore();
  ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
  CommitRounds(*store, 1, 3);
  // A crash after writing round 4's file but before committing its row.
  {
    std::ofstream(CheckpointPath(4), std::ios::binary)
        << "half-written garbage";
  }
  { std::ofstream(CheckpointPath(5) + ".tmp", std::ios::binary) << "temp"; }
  store.reset();
  store = OpenStore();
  ExpectCheckpoint(store->LoadLatest(), 3);
  EXPECT_FALSE(fs::exists(CheckpointPath(5) + ".tmp"));  // cleaned on open
  CommitRounds(*store, 4, 4);
  ExpectCheckpoint(store->LoadLatest(), 4);
}

TEST_F(StateStoreTest, CorruptCheckpointIsDataLossNamingTheFile) {
  auto store = OpenStore();
  ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
  CommitRounds(*store, 1, 2);
  {
    std::fstream file(CheckpointPath(2),
                      std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x42');
  }
  auto latest = store->LoadLatest();
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(latest.status().message(), HasSubstr(CheckpointPath(2)));
  fs::remove(CheckpointPath(1));
  auto missing = store->LoadCheckpoint(1);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(missing.status().message(), HasSubstr(CheckpointPath(1)));
}

TEST_F(StateStoreTest, KeepsTheLastKCheckpointsAndRoundZero) {
  StateStoreOptions options;
  options.keep_last_checkpoints = 2;
  auto store = OpenStore(options);
  ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
  CommitRounds(*store, 1, 5);
  for (int64_t round : {1, 2, 3}) {
    EXPECT_FALSE(fs::exists(CheckpointPath(round))) << round;
    EXPECT_FALSE(store->LoadCheckpoint(round)->has_value()) << round;
  }
  for (int64_t round : {0, 4, 5})
    ExpectCheckpoint(store->LoadCheckpoint(round), round);
  EXPECT_EQ(store->Rounds()->size(), 5u);  // rounds stay listed
  options.keep_last_checkpoints = 0;
  EXPECT_EQ(options.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, SecondOpenOfTheSameDirectoryFails) {
  auto first = OpenStore();
  auto second = StateStore::Open(dir_, kFederation);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  EXPECT_THAT(second.status().message(), HasSubstr(dir_));
  first.reset();
  EXPECT_TRUE(StateStore::Open(dir_, kFederation).ok());  // released on close
}

TEST_F(StateStoreTest, RefusesADirectoryOfAnotherFederation) {
  OpenStore().reset();
  auto other = StateStore::Open(dir_, "fed-other");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("fed-other"));
  EXPECT_THAT(other.status().message(), HasSubstr(kFederation));
  EXPECT_THAT(other.status().message(), HasSubstr(dir_));
  EXPECT_EQ(StateStore::Open(dir_, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StateStoreTest, AuditChainVerifiesAndTriggersRefuseChanges) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->SaveInitial(ModelFor(0)).ok());
    ASSERT_TRUE(
        store->Audit("client.join", "site-a", {{"cert_sha256", "ab"}}).ok());
    ASSERT_TRUE(store->Audit("task.sent", "site-a", {{"round", 1}}).ok());
    CommitRounds(*store, 1, 1);
    EXPECT_EQ(store->Audit("", "x", {}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Audit("bad", "x", {{"s", "\xff"}}).code(),
              absl::StatusCode::kInvalidArgument);
    // Verifiable while the coordinator runs.
    auto live = VerifyAuditLog(dir_);
    ASSERT_TRUE(live.ok()) << live.status();
    EXPECT_EQ(live->entries,
              5);  // federation.created, model.initial, 2 events, round
  }
  auto summary = VerifyAuditLog(dir_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->entries, 5);
  EXPECT_EQ(summary->head_hash.size(), 64u);
  RawSql("UPDATE audit SET subject = 'site-z' WHERE seq = 3",
         /*expect_ok=*/false);
  RawSql("DELETE FROM audit WHERE seq = 3", /*expect_ok=*/false);
  EXPECT_TRUE(VerifyAuditLog(dir_).ok());
}

TEST_F(StateStoreTest, AuditDetectsAChangedEntry) {
  {
    auto store = OpenStore();
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(store->Audit("client.join", "s", {{"i", i}}).ok());
  }
  RawSql(
      "DROP TRIGGER audit_no_update; UPDATE audit SET details = '{\"i\":9}' "
      "WHERE seq = 3");
  auto result = VerifyAuditLog(dir_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("entry 3 was changed"));
}

TEST_F(StateStoreTest, AuditDetectsADeletedEntry) {
  {
    auto store = OpenStore();
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(store->Audit("client.join", "s", {{"i", i}}).ok());
  }
  RawSql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3");
  auto result = VerifyAuditLog(dir_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr("entry 3 is missing"));
}

TEST_F(StateStoreTest, AuditDetectsReorderedAndTruncatedEntries) {
  {
    auto store = OpenStore();
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(store->Audit("client.join", "s", {{"i", i}}).ok());
  }
  const std::string pristine = dir_ + "-copy";
  fs::copy(dir_, pristine, fs::copy_options::recursive);
  RawSql(
      "DROP TRIGGER audit_no_update; UPDATE audit SET seq = -1 WHERE seq = 2; "
      "UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE "
      "seq = -1");
  auto reordered = VerifyAuditLog(dir_);
  EXPECT_EQ(reordered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reordered.status().message(),
              HasSubstr("entry 2 does not chain"));
  fs::remove_all(dir_);
  fs::rename(pristine, dir_);
  RawSql("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 5");
  auto truncated = VerifyAuditLog(dir_);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.status().message(), HasSubstr("ends at entry 4"));
}

TEST_F(StateStoreTest, VerifyWithoutADatabaseIsNotFound) {
  EXPECT_EQ(VerifyAuditLog(dir_ + "/nothing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StateStoreTest, ConcurrentAuditEntriesFormOneChain) {
  auto store = OpenStore();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(
            store->Audit("task.sent", "site-" + std::to_string(t), {{"i", i}})
                .ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto summary = VerifyAuditLog(dir_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->entries, 101);
}

// Child side of the crash test: commits rounds as fast as it can and reports
// each commit with one byte on `progress`, until it is killed. Never returns.
[[noreturn]] void CommitUntilKilled(const std::string& dir, int progress) {
  auto store = StateStore::Open(dir, kFederation);
  if (!store.ok() || !(*store)->SaveInitial(ModelFor(0)).ok()) _exit(2);
  for (int64_t round = 1;; ++round) {
    if (!(*store)->Audit("task.sent", "site-a", {{"round", round}}).ok())
      _exit(3);
    if (!(*store)->CommitRound(Succeeded(round), ModelFor(round)).ok())
      _exit(4);
    if (write(progress, "+", 1) != 1) _exit(5);
  }
}

TEST_F(StateStoreTest, SurvivesSigkillAtARandomPointOfACommit) {
  std::mt19937 rng(20240601);
  for (int trial = 0; trial < 8; ++trial) {
    SCOPED_TRACE(trial);
    const std::string dir = dir_ + "/trial-" + std::to_string(trial);
    const int committed = std::uniform_int_distribution<int>(2, 12)(rng);
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      CommitUntilKilled(dir, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    // Wait for `committed` acknowledged commits, then kill the child at a
    // random fraction of the time one round takes (the last interval), so
    // the kill lands anywhere in the audit append, file write or commit.
    int seen = 0;
    char byte;
    auto previous = std::chrono::steady_clock::now();
    auto last = previous;
    while (seen < committed && read(pipe_fds[0], &byte, 1) == 1) {
      ++seen;
      previous = std::exchange(last, std::chrono::steady_clock::now());
    }
    const auto kill_at =
        last +
        (last - previous) * std::uniform_real_distribution<double>(0, 1)(rng);
    while (std::chrono::steady_clock::now() < kill_at) {
    }
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int wait_status = 0;
    ASSERT_EQ(waitpid(child, &wait_status, 0), child);
    close(pipe_fds[0]);
    ASSERT_EQ(seen, committed)
        << "child exited early with status " << wait_status;
    ASSERT_TRUE(WIFSIGNALED(wait_status));

    auto store = StateStore::Open(dir, kFederation);
    ASSERT_TRUE(store.ok()) << store.status();
    auto latest = (*store)->LoadLatest();
    ASSERT_TRUE(latest.ok()) << latest.status();
    ASSERT_TRUE(latest->has_value());
    EXPECT_GE((*latest)->round, committed);  // acknowledged commits are durable
    ExpectCheckpoint(latest, (*latest)->round);
    EXPECT_EQ(*(*store)->LastRound(), (*latest)->round);
    auto audit = VerifyAuditLog(dir);
    EXPECT_TRUE(audit.ok()) << audit.status();
    // The federation resumes with the next round.
    const int64_t next = (*latest)->round + 1;
    ASSERT_TRUE((*store)->CommitRound(Succeeded(next), ModelFor(next)).ok());
    ExpectCheckpoint((*store)->LoadLatest(), next);
    EXPECT_TRUE(VerifyAuditLog(dir).ok());
  }
}

}  // namespace
}  // namespace samverka::coordinator

namespace samverka::coordinator {
namespace {

class StudyStateTest : public StateStoreTest {};

StudyRecord Study(const std::string& id, const std::string& name) {
  StudyRecord s;
  s.id = id;
  s.name = name;
  s.kind = "train";
  s.dataset = "breast";
  s.model = "mlp";
  s.rounds = 3;
  s.submitted_by = "operator-1";
  s.submitted_unix_ms = 1'700'000'000'000;
  s.manifest = "name = \"" + name + "\"\n";
  s.nonce = std::string(32, 'a');
  s.operator_certificate = "-----BEGIN CERTIFICATE-----";
  s.signature = std::string("\x30\x45\x00\x01", 4);  // bytes, not text
  return s;
}

TEST_F(StudyStateTest, StudiesKeepTheirOwnRoundsAndCheckpoints) {
  auto store = OpenStore();
  auto a = store->ForStudy("aaaa");
  auto b = store->ForStudy("bbbb");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->SaveInitial(ModelFor(0)).ok());
  ASSERT_TRUE((*b)->SaveInitial(ModelFor(10)).ok());
  CommitRounds(**a, 1, 3);
  ASSERT_TRUE((*b)->CommitRound(Succeeded(1), ModelFor(1)).ok());
  EXPECT_EQ(*(*a)->LastRound(), 3);
  EXPECT_EQ(*(*b)->LastRound(), 1);
  EXPECT_EQ(*store->LastRound(), 0);  // the federation's own view has no rounds
  ExpectCheckpoint((*a)->LoadLatest(), 3);
  auto b0 = (*b)->LoadCheckpoint(0);
  ASSERT_TRUE(b0.ok() && b0->has_value());
  EXPECT_EQ((*b0)->encoded_model, ModelFor(10));
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "checkpoints" / "aaaa" / "round-3.svtb"));
  EXPECT_EQ((*a)->Rounds()->size(), 3u);
  EXPECT_EQ((*b)->Rounds()->size(), 1u);
  // Round numbers are per study: b may commit round 2 after a's round 3.
  EXPECT_TRUE((*b)->CommitRound(Succeeded(2), ModelFor(2)).ok());
  // The audit chain is the federation's one chain and names each study.
  auto summary = VerifyAuditLog(dir_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->events["round.committed"], 5);
}

TEST_F(StudyStateTest, RefusesAStudyIdThatIsNotAName) {
  auto store = OpenStore();
  for (const std::string& id : std::vector<std::string>{"../x", "A", std::string(65, 'a'), "a b"}) {
    EXPECT_EQ(store->ForStudy(id).status().code(), absl::StatusCode::kInvalidArgument) << id;
  }
}

TEST_F(StudyStateTest, StoresStudiesInSubmissionOrderAndTheirStates) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->AddStudy(Study("s2", "second")).ok());
    ASSERT_TRUE(store->AddStudy(Study("s1", "first")).ok());
    EXPECT_EQ(store->AddStudy(Study("s1", "again")).code(), absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(store->SetStudyState("s2", "running", "").ok());
    ASSERT_TRUE(store->SetStudyState("s1", "aborted", "aborted by operator-1").ok());
    EXPECT_EQ(store->SetStudyState("nope", "running", "").code(), absl::StatusCode::kNotFound);
  }
  auto store = OpenStore();
  auto studies = store->Studies();
  ASSERT_TRUE(studies.ok()) << studies.status();
  ASSERT_EQ(studies->size(), 2u);
  EXPECT_EQ((*studies)[0].id, "s2");
  EXPECT_EQ((*studies)[0].seq, 1);
  EXPECT_EQ((*studies)[0].state, "running");
  EXPECT_EQ((*studies)[1].name, "first");
  EXPECT_EQ((*studies)[1].state, "aborted");
  EXPECT_EQ((*studies)[1].reason, "aborted by operator-1");
  EXPECT_EQ((*studies)[1].signature, std::string("\x30\x45\x00\x01", 4));
  auto found = store->FindStudy("s1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->manifest, "name = \"first\"\n");
  auto summary = VerifyAuditLog(dir_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->events["study.submitted"], 2);
  EXPECT_EQ(summary->events["study.aborted"], 1);
}

}  // namespace
}  // namespace samverka::coordinator
