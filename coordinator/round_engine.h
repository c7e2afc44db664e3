// coordinator/round_engine.h
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/task.h"
#include "common/parameters.h"
#include "coordinator/strategy.h"

namespace samverka::coordinator {

// How rounds select clients and when they succeed.
struct RoundOptions {
  // Cohort size: `clients_per_round` if set, else ceil(fraction * online),
  // then clamped to [min_clients, max_clients].
  int clients_per_round = 0;
  double fraction = 0.0;
  int min_clients = 1;
  int max_clients = 0;  // 0: no upper bound
  // Time the cohort has to return its updates.
  absl::Duration train_deadline = absl::InfiniteDuration();
  TrainOptions train;

  // kInvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// A round the engine has opened: who trains and from which model.
struct RoundPlan {
  int64_t round = 0;
  std::vector<std::string> cohort;
  ClientTask task;  // task_id and round set; same for every member
  // The global model's size, and its encoding (what clients download; its
  // SHA-256 is task.model_digest). RoundEngine::global_model() decodes it.
  size_t num_values = 0;
  std::shared_ptr<const std::string> encoded_global;
  absl::Time deadline;
};

// The outcome of a closed round.
struct RoundResult {
  int64_t round = 0;
  bool succeeded = false;
  std::string failure_reason;
  int selected = 0;
  int updates = 0;
  std::vector<std::string> missing;  // cohort members with no update
  int64_t samples = 0;               // total weight of the updates
  double train_loss = 0;             // sample-weighted mean
  uint64_t bytes_up = 0;             // encoded update bytes received
  uint64_t bytes_down = 0;           // global model bytes sent to the cohort
  std::string model_digest;          // of the global model after the round
};

// The coordinator's round state machine: select a cohort, configure its
// task, collect and validate updates under a deadline, aggregate with a
// Strategy, and move to the next global model, or fail the round and keep
// the last good model. It does no I/O and reads no clock: callers pass the
// time, so simulations and tests are deterministic. The gRPC service and
// the simulation drive the same engine. Thread-safe.
class RoundEngine {
 public:
  // kInvalidArgument for bad options or initial parameters.
  static absl::StatusOr<std::unique_ptr<RoundEngine>> Create(RoundOptions options,
                                                             std::unique_ptr<Strategy> strategy,
                                                             ModelParameters initial,
                                                             uint64_t seed,
                                                             int64_t first_round = 1);

  // Clients available for selection (registered and online).
  void AddClient(const std::string& client_id);
  void RemoveClient(const std::string& client_id);
  std::vector<std::string> clients() const;

  // Gets the strategy ready for the next round (it allocates its sums:
  // seconds for a model of 100M values on a busy machine), so that
  // StartRound, which callers run under their own lock, stays quick.
  // Optional; kFailedPrecondition if a round is open.
  absl::Status PrepareRound();
  // Opens the next round. kFailedPrecondition if a round is open or fewer
  // than min_clients clients are available. Clients in `sitting_out` (whose
  // last tasks failed) do not count towards the cohort size and are drawn
  // only to reach min_clients.
  absl::StatusOr<RoundPlan> StartRound(absl::Time now,
                                       const std::set<std::string>& sitting_out = {});
  // Opens the next round with exactly `cohort` (who need not be online):
  // a secure round completed from its stored sealed sum after a restart.
  // kFailedPrecondition if a round is open.
  absl::StatusOr<RoundPlan> ResumeRound(absl::Time now, std::vector<std::string> cohort);

  // Validates and absorbs one cohort member's encoded update (the codec
  // bundle of local model minus global model). The update is rejected,
  // and nothing is stored, with kFailedPrecondition for the wrong round or
  // a closed one, kPermissionDenied for a client outside the cohort,
  // kAlreadyExists for a second update, kInvalidArgument for a malformed
  // bundle, a wrong layout, NaN/Inf or a non-positive weight.
  absl::Status SubmitUpdate(const std::string& client_id, int64_t round, int64_t num_samples,
                            std::string_view encoded_update,
                            const std::map<std::string, double>& metrics);
  // The same for an update already decoded into the model's flat layout
  // (UpdateReceiver checked its layout while it streamed in);
  // `encoded_bytes` is its size on the wire. kInvalidArgument for a wrong
  // size, NaN/Inf or a non-positive weight; the other errors as above.
  absl::Status SubmitUpdate(const std::string& client_id, int64_t round, int64_t num_samples,
                            std::span<const float> update, uint64_t encoded_bytes,
                            const std::map<std::string, double>& metrics);

  // Absorbs the result of secure aggregation: the weighted sum of the
  // updates of `contributors` (cohort members), their total weight and the
  // sum of weight * train_loss. The coordinator never sees one client's
  // update. kFailedPrecondition for a closed round or a contributor that
  // already answered, kPermissionDenied for one outside the cohort,
  // kInvalidArgument for a wrong size or a non-finite value.
  absl::Status SubmitAggregate(int64_t round, const std::vector<std::string>& contributors,
                               std::span<const double> weighted_sum, double total_weight,
                               double weighted_train_loss, uint64_t bytes_up);

  // Records that a cohort member gave up on the round (it counts as missing).
  void ReportFailure(const std::string& client_id, int64_t round, std::string_view reason);

  // Closes the open round once every member answered or the deadline
  // passed; nullopt while it is still open (or none is). Closing runs the
  // strategy and encodes the next model (seconds for a large model).
  std::optional<RoundResult> Poll(absl::Time now);
  // Whether Poll(now) would close the open round (cheap).
  bool ReadyToClose(absl::Time now) const;

  // The current global model, decoded (a copy: the engine keeps only the
  // encoded form, one model's worth of memory), and the next round's number.
  std::shared_ptr<const ModelParameters> global_model() const;
  // The current global model as clients download it, and its SHA-256.
  std::shared_ptr<const std::string> encoded_global_model() const;
  std::string global_digest() const;
  int64_t next_round() const;
  bool round_open() const;

 private:
  RoundEngine(RoundOptions options, std::unique_ptr<Strategy> strategy, ModelParameters initial,
              uint64_t seed, int64_t first_round);
  int CohortSize(int online) const;
  // OK if `client_id` may still submit to `round` with this weight (the
  // checks that need no decoding).
  absl::Status CheckSubmission(const std::string& client_id, int64_t round,
                               int64_t num_samples) const;
  RoundResult Close() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<RoundPlan> OpenRound(absl::Time now, std::vector<std::string> cohort)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool ReadyToCloseLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The next global model: the strategy's step from the round's model.
  absl::StatusOr<ModelParameters> FinishRound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const RoundOptions options_;
  mutable absl::Mutex mutex_;
  // The model's tensors never change between rounds.
  const ParameterLayout layout_;
  const size_t num_values_;
  std::unique_ptr<Strategy> strategy_ ABSL_GUARDED_BY(mutex_);
  // The global model, encoded only: the strategy gets it decoded when a
  // round closes.
  std::shared_ptr<const std::string> encoded_global_ ABSL_GUARDED_BY(mutex_);
  std::string global_digest_ ABSL_GUARDED_BY(mutex_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> clients_ ABSL_GUARDED_BY(mutex_);
  int64_t next_round_ ABSL_GUARDED_BY(mutex_);
  // The open round, if any.
  bool open_ ABSL_GUARDED_BY(mutex_) = false;
  // PrepareRound ran since the last round opened.
  bool prepared_ ABSL_GUARDED_BY(mutex_) = false;
  RoundResult current_ ABSL_GUARDED_BY(mutex_);
  absl::Time deadline_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> cohort_ ABSL_GUARDED_BY(mutex_);
  // Members that answered (an update or a failure), and those with an update.
  std::set<std::string> answered_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> submitted_ ABSL_GUARDED_BY(mutex_);
  double loss_sum_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace samverka::coordinator
