// coordinator/secure_round.h
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/task.h"
#include "coordinator/sealed_sum_store.h"
#include "security/secagg/graph.h"
#include "security/secagg/server.h"

namespace samverka::coordinator {

// How the coordinator runs secure aggregation (coordinator.toml keys
// secure_aggregation, secagg_*; docs/configuration.md).
struct SecureAggregationOptions {
  bool enabled = true;
  // The dropout and corruption rates the operator expects; they choose the
  // neighbours k and threshold t of each round (docs/protocol.md).
  security::secagg::ThreatModel threat{0.05, 0.10, security::secagg::AdversaryModel::kSemiHonest};
  // Update coordinates are clipped to [-clip_range, clip_range].
  double clip_range = 8.0;
  int modulus_bits = 32;  // 32 or 64
  // Overrides of k and t (0: chosen from the rates).
  int neighbours = 0;
  int threshold = 0;
  // Time for each message stage (keys, shares, unmasking); the masked
  // inputs are due by the round's training deadline.
  absl::Duration stage_deadline = absl::Seconds(120);

  // kInvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// What secure aggregation of a round reveals: sums only.
struct SecureRoundResult {
  std::vector<std::string> contributors;
  std::vector<std::string> dropped;
  std::vector<double> weighted_sum;  // sum_i w_i * clip(update_i), model length
  // Setup::integer_length > 0: the sum of the sites' integer vectors mod
  // 2^64 (weighted_sum and the weights are then empty).
  std::vector<uint64_t> integer_sum;
  double total_weight = 0;
  double weighted_train_loss = 0;    // sum_i w_i * loss_i
  double clipped_fraction = 0;       // weighted share of clipped coordinates
  double weighted_within_clip = 0;   // sum_i w_i * [DP: update within the clip norm]
  uint64_t masked_bytes = 0;
  security::secagg::GraphParameters parameters;
  // The run's instance (roster digest), whose sealed sum this released.
  std::string instance;
};

// One round of SecAgg+ at the coordinator: wraps security::secagg's
// SecAggServer with the site names of the round's cohort (participant ids
// 1..n in cohort order), checks that every message comes from the site it
// claims (the TLS identity), and closes each stage once all its members
// have answered or its deadline passed. Network-free and clock-free: the
// caller passes the time to Advance. Thread-safe; Fetch may block (up to
// its `wait`) until the stage it asks for opens.
//
// The vector the clients mask is the model update followed by three extra
// coordinates, the client's training loss, the fraction of its update that
// was clipped, and (DP-FedAvg) whether its update was within the clip norm,
// so the coordinator learns their weighted sums only.
//
// After unmasking, the sum is still under every contributor's consent mask
// (security/secagg/consent.h): the round hands this sealed sum to
// Setup::seal (which makes it durable) before it opens the consent stage,
// collects each contributor's seed (checked against the commitment sent with
// its masked input; Setup::on_consent makes it durable), and only then
// removes the consent masks. A round resumed after a restart (Resume) starts
// at the consent stage from the stored sealed sum.
class SecureRound {
 public:
  struct Setup {
    std::string federation_id;
    int64_t round = 0;
    std::vector<std::string> cohort;
    uint64_t model_length = 0;  // parameters d
    // > 0: the members sum integer vectors of this length in Z_2^64 as
    // they are (statistics studies), not encoded updates.
    uint64_t integer_length = 0;
    double max_weight = 1;      // the largest weight (training samples) of a member
    std::string model_digest;   // of the global model the cohort trains from
    std::string ca_pem;         // the federation CA
    absl::Time start;
    // When the masked inputs are due.
    absl::Time input_deadline = absl::InfiniteFuture();
    // Rosters below this abort the round (at least 3).
    int min_clients = 3;
    // Makes the sealed sum durable before any site is asked to consent;
    // an error aborts the round (nothing is released). May be empty (tests).
    std::function<absl::Status(const SealedSum&)> seal;
    // Makes a consent seed durable before it counts; an error refuses it
    // (the site retries). May be empty.
    std::function<absl::Status(uint32_t participant, const security::SecretBytes& seed)>
        on_consent;
  };

  // kInvalidArgument for bad options or a cohort the threat model cannot
  // serve; the reason names the rule.
  static absl::StatusOr<std::unique_ptr<SecureRound>> Create(
      const SecureAggregationOptions& options, Setup setup);
  // A round at its consent stage from a stored sealed sum (and the seeds
  // already received for it). `setup.cohort` must be `sealed.cohort`.
  // kDataLoss if the sealed sum is inconsistent.
  static absl::StatusOr<std::unique_ptr<SecureRound>> Resume(
      const SecureAggregationOptions& options, Setup setup, SealedSum sealed,
      std::map<uint32_t, security::SecretBytes> consents);
  ~SecureRound();

  // The settings to send with `client`'s task (for a resumed round, its
  // consent task); kPermissionDenied if it is not in the cohort.
  absl::StatusOr<SecureAggregationTask> TaskFor(const std::string& client) const;

  // A message of `stage` (kAdvertiseKeys, kShareKeys, kUnmask) from
  // `client`. kPermissionDenied for a member claiming another's id or name,
  // kFailedPrecondition out of stage, kAborted after an abort, and the
  // server's codes for a malformed or invalid message.
  absl::Status Send(const std::string& client, SecureStage stage, std::string_view payload);
  // The masked input of `client` (serialised MaskedInput) and its
  // commitment to its consent seed (64 hex digits, else kInvalidArgument).
  absl::Status SubmitMaskedInput(const std::string& client, std::string_view payload,
                                 std::string_view consent_commitment);
  // What `client` needs to run `stage`: the roster (kShareKeys), its share
  // delivery (kMaskedInput), its unmask request (kUnmask) or the instance
  // whose sealed sum to release (kConsent, contributors only). nullopt if the
  // previous stage is still open after `wait`; kAborted after an abort,
  // kFailedPrecondition if the client is no longer part of the round.
  absl::StatusOr<std::optional<std::string>> Fetch(const std::string& client, SecureStage stage,
                                                   absl::Duration wait);
  // `client` left the round (gave up, went offline, refused the task).
  void ReportDropout(const std::string& client);

  // Closes the stages that are complete or past their deadline; the last
  // one unmasks the sum (seconds of AES-CTR for large models, run without
  // holding the lock). True once the round has finished or aborted.
  bool Advance(absl::Time now);
  // Blocks until something changed (a message, a dropout) or `timeout`.
  void WaitForChange(absl::Duration timeout);

  // After Advance returned true: the sums, or why the round aborted.
  absl::StatusOr<SecureRoundResult> result() const;
  // The contributors whose consent seed is still missing (consent stage).
  std::vector<std::string> AwaitingConsent() const;
  // True once the sealed sum exists (it is durable if Setup::seal is set).
  bool sealed() const;

 private:
  SecureRound(const SecureAggregationOptions& options, Setup setup, std::string config_bytes,
              std::unique_ptr<security::secagg::SecAggServer> server);
  // Unmasks (server Finish) and seals the sum into `sealed` (which holds
  // the instance and commitments), storing it with Setup::seal; runs
  // without mutex_.
  absl::StatusOr<SealedSum> Seal(security::secagg::SecAggServer* server, SealedSum sealed);
  // Removes the consent masks of `sealed` with `seeds` and decodes it;
  // runs without mutex_.
  absl::StatusOr<SecureRoundResult> Release(
      SealedSum sealed, const std::map<uint32_t, security::SecretBytes>& seeds);
  // Handles a consent message of `client` (under mutex_).
  absl::Status AcceptConsent(const std::string& client, std::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The participant id of `client`, or kPermissionDenied.
  absl::StatusOr<security::secagg::ParticipantId> IdOf(const std::string& client) const;
  bool StageComplete() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Time StageDeadline() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const SecureAggregationOptions options_;
  const Setup setup_;
  const std::string config_bytes_;
  std::map<std::string, security::secagg::ParticipantId> ids_;

  mutable absl::Mutex mutex_;
  std::unique_ptr<security::secagg::SecAggServer> server_ ABSL_GUARDED_BY(mutex_);
  // Which stage is collecting messages; kUnmask then done_.
  SecureStage stage_ ABSL_GUARDED_BY(mutex_) = SecureStage::kAdvertiseKeys;
  absl::Time stage_started_ ABSL_GUARDED_BY(mutex_);
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  std::string roster_ ABSL_GUARDED_BY(mutex_);  // serialised, once fixed
  std::set<std::string> answered_ ABSL_GUARDED_BY(mutex_);  // this stage
  std::set<std::string> dropped_ ABSL_GUARDED_BY(mutex_);
  uint64_t masked_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t changes_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::StatusOr<SecureRoundResult> result_ ABSL_GUARDED_BY(mutex_) =
      absl::UnavailableError("the round has not finished");
  // The run's instance (digest of roster_), once the roster is fixed.
  std::string instance_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string> commitments_ ABSL_GUARDED_BY(mutex_);
  std::optional<SealedSum> sealed_ ABSL_GUARDED_BY(mutex_);
  std::map<uint32_t, security::SecretBytes> consents_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace samverka::coordinator
