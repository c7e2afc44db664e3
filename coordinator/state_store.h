// coordinator/state_store.h
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace samverka::coordinator {

// A saved global model. Round 0 is the initial model.
struct Checkpoint {
  int64_t round = 0;
  std::string encoded_model;  // codec bundle (SVTB), as clients download it
  std::string model_digest;   // Sha256Hex(encoded_model)
};

// What the store keeps about one closed round. Never raw updates or data:
// only who took part, digests, counts and metrics.
struct RoundRecord {
  int64_t round = 0;
  bool succeeded = false;
  std::string failure_reason;
  std::vector<std::string> participants;  // clients whose update was aggregated
  std::string model_digest;               // global model after the round
  std::map<std::string, double> metrics;  // e.g. train_loss, eval_accuracy
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
};

struct StateStoreOptions {
  // Checkpoints kept besides round 0; older ones are deleted on commit.
  int keep_last_checkpoints = 5;
  // Time stamps of audit entries and of the federation row.
  std::function<absl::Time()> clock = [] { return absl::Now(); };

  // kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// A submitted study as the store keeps it: the signed envelope (manifest,
// model digest, nonce, operator certificate and signature, so a site can
// check it), what was read from the manifest, and its state.
struct StudyRecord {
  std::string id;
  int64_t seq = 0;  // submission order, from 1 (set by AddStudy)
  std::string name;
  std::string kind;
  std::string dataset;
  std::string model;
  int rounds = 0;
  // queued, running, finished, failed or aborted.
  std::string state = "queued";
  std::string reason;  // why it failed or was aborted
  std::string submitted_by;
  int64_t submitted_unix_ms = 0;
  std::string manifest;
  std::string model_sha256;
  int64_t model_bytes = 0;
  std::string nonce;
  std::string operator_certificate;
  std::string signature;
};

// The result of VerifyAuditLog.
struct AuditSummary {
  int64_t entries = 0;
  std::string head_hash;  // hash of the last entry; 64 zeros for an empty log
  std::map<std::string, int64_t> events;  // entries per event type
};

// The coordinator's durable state in one directory: `state.db` (SQLite, WAL,
// synchronous=FULL) holds the federation, rounds, participants, metrics,
// checkpoint digests and an append-only, hash-chained audit log;
// `checkpoints/round-<N>.svtb` hold the models. A round's checkpoint file is
// written and synced before its row is committed, so after a crash (even
// kill -9 mid-commit) LoadLatest() returns the last committed round, whose
// file matches its digest. One process owns a directory at a time (an flock
// on `LOCK`). Thread-safe: every method takes an internal mutex.
//
// Round numbers only grow: Commit/RecordFailed need a round above
// LastRound(). After a restart, run round LastRound() + 1 from the model of
// LoadLatest() (a failed round leaves the model unchanged).
//
// The store itself appends these audit events (in the same transaction as
// the change): "federation.created" (subject: federation id) when the
// directory is new, "model.initial" (subject "round 0"), "round.committed"
// and "round.failed" (subject "round <N>").
class StateStore {
 public:
  // Creates `state_dir` if needed and takes its lock. kFailedPrecondition if
  // another StateStore (in any process) holds the directory, if it belongs
  // to a different federation or has an unknown schema version;
  // kInvalidArgument for an empty federation id or bad options; kInternal or
  // kPermissionDenied for I/O and SQLite failures. Messages name the dir.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(
      const std::string& state_dir, const std::string& federation_id,
      StateStoreOptions options = {});
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // The newest committed checkpoint; nullopt for a new federation. Checkpoint
  // files without a committed row (a crash mid-commit) are ignored.
  // kDataLoss naming the file if it is missing or does not match its digest.
  absl::StatusOr<std::optional<Checkpoint>> LoadLatest();

  // A committed checkpoint by round (for export); nullopt if the round has
  // none (failed, pruned or never run). kDataLoss as for LoadLatest.
  absl::StatusOr<std::optional<Checkpoint>> LoadCheckpoint(int64_t round);

  // Saves the initial model as round 0. An empty `digest` is computed;
  // kInvalidArgument if it is given and wrong; kAlreadyExists if the
  // federation already has a checkpoint or a round.
  absl::Status SaveInitial(std::string_view encoded_model,
                           std::string_view digest = {});

  // Records a successful round: writes its checkpoint atomically, then
  // commits round, participants, metrics, digest and an audit entry in one
  // transaction, then prunes old checkpoints. `record.model_digest` may be
  // empty (it is computed) and must otherwise match `encoded_model`
  // (kInvalidArgument, as for !succeeded, round < 1 or duplicate
  // participants); kFailedPrecondition if record.round <= LastRound().
  absl::Status CommitRound(const RoundRecord& record,
                           std::string_view encoded_model);

  // Records a failed round (no checkpoint) and an audit entry. Errors as for
  // CommitRound; record.succeeded must be false.
  absl::Status RecordFailedRound(const RoundRecord& record);

  // Up to `limit` (> 0, else kInvalidArgument) recorded rounds, newest first.
  absl::StatusOr<std::vector<RoundRecord>> Rounds(int64_t limit = 100);

  // The highest round recorded, committed or failed; 0 if none.
  absl::StatusOr<int64_t> LastRound();

  // Appends an entry to the audit log: (seq, unix_ms, event, subject,
  // details, prev_hash, hash). Events are short names such as "client.join"
  // or "task.sent"; `details` must not hold secrets or data.
  // kInvalidArgument for an empty event or details that are not valid JSON
  // text (e.g. invalid UTF-8).
  absl::Status Audit(std::string_view event, std::string_view subject,
                     const nlohmann::json& details);

  // --- studies (shared by every view) ---
  // Stores a new study (state "queued" or as given) with the next seq and
  // audits "study.submitted". kAlreadyExists for a known id.
  absl::Status AddStudy(const StudyRecord& study);
  // Sets a study's state (and reason) and audits "study.<state>". kNotFound
  // for an unknown id.
  absl::Status SetStudyState(const std::string& id, const std::string& state,
                             const std::string& reason);
  // Every study, in submission order.
  absl::StatusOr<std::vector<StudyRecord>> Studies();
  absl::StatusOr<std::optional<StudyRecord>> FindStudy(const std::string& id);

  // A view of the same store whose rounds, checkpoints and audit subjects
  // belong to study `id` (its checkpoints in checkpoints/<id>/). This store
  // (study "") is the federation's; views share its database and lock.
  // Id "": the single-run study of a coordinator.toml that names one (its
  // files are where they always were). kInvalidArgument for an id that is
  // not up to 64 of [0-9a-z_-].
  absl::StatusOr<std::unique_ptr<StateStore>> ForStudy(const std::string& id);
  const std::string& study() const { return study_; }

  const std::string& state_dir() const { return state_dir_; }
  const std::string& federation_id() const { return federation_id_; }

 private:
  struct Db;      // the SQLite connection and its prepared statements
  struct Shared;  // Db, its mutex and the directory lock, shared by views

  StateStore(std::string state_dir, std::string federation_id,
             StateStoreOptions options, std::shared_ptr<Shared> shared,
             std::string study);
  // Rows of `studies` in submission order: all, or the one with `id`.
  absl::StatusOr<std::vector<StudyRecord>> SelectStudies(const std::string& id);
  // The audit subject of a round of this view's study.
  std::string RoundSubject(int64_t round) const;
  absl::StatusOr<std::optional<Checkpoint>> LoadCheckpointLocked(bool latest,
                                                                 int64_t round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status CheckNextRound(const RoundRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status InsertRoundRows(const RoundRecord& record,
                               const std::string& digest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status AppendAuditLocked(std::string_view event,
                                 std::string_view subject,
                                 const std::string& details_json)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status PruneLocked(std::vector<std::string>* files_to_delete)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string state_dir_;
  const std::string federation_id_;
  const StateStoreOptions options_;
  const std::shared_ptr<Shared> shared_;
  const std::string study_;
  absl::Mutex& mutex_;       // shared_->mutex
  std::unique_ptr<Db>& db_;  // shared_->db, guarded by mutex_
};

// Recomputes the audit chain of the state dir (read-only; safe while a
// coordinator runs). kDataLoss naming the first bad entry: changed (hash
// mismatch), deleted (gap in seq), reordered or inserted (prev_hash does not
// chain), or entries cut from the end (the recorded head disagrees);
// kNotFound if there is no state database. Without an external anchor, a
// chain rewritten in full cannot be told from the original: keep the
// printed head hash somewhere else to detect that.
absl::StatusOr<AuditSummary> VerifyAuditLog(const std::string& state_dir);

}  // namespace samverka::coordinator
