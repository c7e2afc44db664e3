#include "coordinator/round_engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/random.h"
#include "common/status_macros.h"

namespace samverka::coordinator {

absl::Status RoundOptions::Validate() const {
  if (clients_per_round < 0) {
    return absl::InvalidArgumentError("clients_per_round must be >= 0");
  }
  if (!(fraction >= 0 && fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("fraction ", fraction, " is not in [0, 1]"));
  }
  if (clients_per_round == 0 && fraction == 0) {
    return absl::InvalidArgumentError("set clients_per_round or fraction");
  }
  if (min_clients < 1) return absl::InvalidArgumentError("min_clients must be >= 1");
  if (max_clients != 0 && max_clients < min_clients) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_clients ", max_clients, " is below min_clients ", min_clients));
  }
  if (train_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the training deadline must be positive");
  }
  return train.Validate();
}

absl::StatusOr<std::unique_ptr<RoundEngine>> RoundEngine::Create(
    RoundOptions options, std::unique_ptr<Strategy> strategy, ModelParameters initial,
    uint64_t seed, int64_t first_round) {
  SV_RETURN_IF_ERROR(options.Validate());
  SV_RETURN_IF_ERROR(initial.Validate());
  SV_RETURN_IF_ERROR(CheckFinite(initial.values, "initial model"));
  return std::unique_ptr<RoundEngine>(new RoundEngine(
      std::move(options), std::move(strategy), std::move(initial), seed, first_round));
}

RoundEngine::RoundEngine(RoundOptions options, std::unique_ptr<Strategy> strategy,
                         ModelParameters initial, uint64_t seed, int64_t first_round)
    : options_(std::move(options)),
      layout_(initial.layout),
      num_values_(initial.values.size()),
      strategy_(std::move(strategy)),
      rng_(seed),
      next_round_(first_round) {
  auto encoded = std::make_shared<const std::string>(EncodeParameters(initial));
  global_digest_ = Sha256Hex(*encoded);
  encoded_global_ = std::move(encoded);
}

void RoundEngine::AddClient(const std::string& client_id) {
  absl::MutexLock lock(&mutex_);
  clients_.insert(client_id);
}

void RoundEngine::RemoveClient(const std::string& client_id) {
  absl::MutexLock lock(&mutex_);
  clients_.erase(client_id);
}

std::vector<std::string> RoundEngine::clients() const {
  absl::MutexLock lock(&mutex_);
  return {clients_.begin(), clients_.end()};
}

int RoundEngine::CohortSize(int online) const {
  int size = options_.clients_per_round > 0
                 ? options_.clients_per_round
                 : static_cast<int>(std::ceil(options_.fraction * online));
  size = std::max(size, options_.min_clients);
  if (options_.max_clients > 0) size = std::min(size, options_.max_clients);
  return std::min(size, online);
}

absl::Status RoundEngine::PrepareRound() {
  absl::MutexLock lock(&mutex_);
  if (open_) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", current_.round, " is still open"));
  }
  SV_RETURN_IF_ERROR(strategy_->BeginRound(num_values_));
  prepared_ = true;
  return absl::OkStatus();
}

absl::StatusOr<RoundPlan> RoundEngine::StartRound(absl::Time now,
                                                  const std::set<std::string>& sitting_out) {
  absl::MutexLock lock(&mutex_);
  if (open_) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", current_.round, " is still open"));
  }
  const int online = static_cast<int>(clients_.size());
  if (online < options_.min_clients) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", next_round_, " needs at least ", options_.min_clients,
        " clients; ", online, " are available"));
  }
  // Partial Fisher-Yates over the sorted client list (portable draws),
  // then over those sitting out if min_clients needs some of them.
  std::vector<std::string> pool, reserve;
  for (const std::string& client : clients_) {
    (sitting_out.contains(client) ? reserve : pool).push_back(client);
  }
  const int size = CohortSize(static_cast<int>(pool.size()));
  for (int i = 0; i < size; ++i) {
    std::swap(pool[i], pool[i + UniformBelow(rng_, pool.size() - i)]);
  }
  pool.resize(size);
  const int more = std::max(0, options_.min_clients - size);
  for (int i = 0; i < more; ++i) {
    std::swap(reserve[i], reserve[i + UniformBelow(rng_, reserve.size() - i)]);
    pool.push_back(reserve[i]);
  }
  return OpenRound(now, std::move(pool));
}

absl::StatusOr<RoundPlan> RoundEngine::ResumeRound(absl::Time now,
                                                   std::vector<std::string> cohort) {
  absl::MutexLock lock(&mutex_);
  if (open_) {
    return absl::FailedPreconditionError(
        absl::StrCat("round ", current_.round, " is still open"));
  }
  if (cohort.empty()) return absl::InvalidArgumentError("a resumed round needs its cohort");
  return OpenRound(now, std::move(cohort));
}

absl::StatusOr<RoundPlan> RoundEngine::OpenRound(absl::Time now, std::vector<std::string> pool) {
  const int size = static_cast<int>(pool.size());
  open_ = true;
  current_ = RoundResult{};
  current_.round = next_round_;
  current_.selected = size;
  current_.bytes_down = static_cast<uint64_t>(size) * encoded_global_->size();
  cohort_ = {pool.begin(), pool.end()};
  answered_.clear();
  submitted_.clear();
  loss_sum_ = 0;
  deadline_ = now + options_.train_deadline;
  if (!prepared_) SV_RETURN_IF_ERROR(strategy_->BeginRound(num_values_));
  prepared_ = false;

  RoundPlan plan;
  plan.round = current_.round;
  plan.cohort = std::move(pool);
  plan.task.task_id = absl::StrCat("round-", current_.round, "-train");
  plan.task.round = current_.round;
  plan.task.kind = TaskKind::kTrain;
  plan.task.model_digest = global_digest_;
  plan.task.train = options_.train;
  plan.num_values = num_values_;
  plan.encoded_global = encoded_global_;
  plan.deadline = deadline_;
  return plan;
}

absl::Status RoundEngine::CheckSubmission(const std::string& client_id, int64_t round,
                                          int64_t num_samples) const {
  {
    absl::MutexLock lock(&mutex_);
    if (!open_ || round != current_.round) {
      return absl::FailedPreconditionError(absl::StrCat(
          "update from ", client_id, " is for round ", round, ", which is not open"));
    }
    if (!cohort_.contains(client_id)) {
      return absl::PermissionDeniedError(
          absl::StrCat(client_id, " is not in the cohort of round ", round));
    }
    if (answered_.contains(client_id)) {
      return absl::AlreadyExistsError(absl::StrCat(client_id, " already answered round ", round));
    }
  }
  if (num_samples <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("update from ", client_id, " for round ", round,
                                                   ": sample count ", num_samples,
                                                   " must be positive"));
  }
  return absl::OkStatus();
}

absl::Status RoundEngine::SubmitUpdate(const std::string& client_id, int64_t round,
                                       int64_t num_samples, std::string_view encoded_update,
                                       const std::map<std::string, double>& metrics) {
  SV_RETURN_IF_ERROR(CheckSubmission(client_id, round, num_samples));
  // Decode outside the lock: it is the expensive part.
  const std::string who = absl::StrCat("update from ", client_id, " for round ", round);
  absl::StatusOr<ModelParameters> update = DecodeParameters(encoded_update);
  if (!update.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", update.status().message()));
  }
  if (update->layout != layout_) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": tensors do not match the model; expected\n", layout_.Describe()));
  }
  return SubmitUpdate(client_id, round, num_samples, update->values, encoded_update.size(),
                      metrics);
}

absl::Status RoundEngine::SubmitUpdate(const std::string& client_id, int64_t round,
                                       int64_t num_samples, std::span<const float> update,
                                       uint64_t encoded_bytes,
                                       const std::map<std::string, double>& metrics) {
  SV_RETURN_IF_ERROR(CheckSubmission(client_id, round, num_samples));
  // Validate outside the lock.
  const std::string who = absl::StrCat("update from ", client_id, " for round ", round);
  if (update.size() != num_values_) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", update.size(), " values; the model has ", num_values_));
  }
  SV_RETURN_IF_ERROR(CheckFinite(update, who));

  absl::MutexLock lock(&mutex_);
  if (!open_ || round != current_.round) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": the round closed meanwhile"));
  }
  if (!answered_.insert(client_id).second) {
    return absl::AlreadyExistsError(absl::StrCat(client_id, " already answered round ", round));
  }
  SV_RETURN_IF_ERROR(strategy_->Absorb(update, static_cast<double>(num_samples)));
  submitted_.insert(client_id);
  ++current_.updates;
  current_.samples += num_samples;
  current_.bytes_up += encoded_bytes;
  if (auto it = metrics.find("train_loss"); it != metrics.end() && std::isfinite(it->second)) {
    loss_sum_ += it->second * static_cast<double>(num_samples);
  }
  return absl::OkStatus();
}

absl::Status RoundEngine::SubmitAggregate(int64_t round,
                                          const std::vector<std::string>& contributors,
                                          std::span<const double> weighted_sum,
                                          double total_weight, double weighted_train_loss,
                                          uint64_t bytes_up) {
  for (double v : weighted_sum) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("aggregate has a non-finite value");
  }
  absl::MutexLock lock(&mutex_);
  if (!open_ || round != current_.round) {
    return absl::FailedPreconditionError(absl::StrCat("aggregate for round ", round, ", which is not open"));
  }
  for (const std::string& c : contributors) {
    if (!cohort_.contains(c)) {
      return absl::PermissionDeniedError(absl::StrCat(c, " is not in the cohort of round ", round));
    }
    if (answered_.contains(c)) {
      return absl::FailedPreconditionError(absl::StrCat(c, " already answered round ", round));
    }
  }
  SV_RETURN_IF_ERROR(strategy_->AbsorbAggregate(weighted_sum, total_weight));
  for (const std::string& c : contributors) {
    answered_.insert(c);
    submitted_.insert(c);
  }
  current_.updates += static_cast<int>(contributors.size());
  current_.samples += static_cast<int64_t>(std::llround(total_weight));
  current_.bytes_up += bytes_up;
  if (std::isfinite(weighted_train_loss)) loss_sum_ += weighted_train_loss;
  return absl::OkStatus();
}

void RoundEngine::ReportFailure(const std::string& client_id, int64_t round,
                                std::string_view reason) {
  absl::MutexLock lock(&mutex_);
  if (!open_ || round != current_.round || !cohort_.contains(client_id)) return;
  if (answered_.insert(client_id).second) {
    Logger("coordinator")->warn("round {}: {} gave up: {}", round, client_id, reason);
  }
}

std::optional<RoundResult> RoundEngine::Poll(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  if (!ReadyToCloseLocked(now)) return std::nullopt;
  return Close();
}

bool RoundEngine::ReadyToClose(absl::Time now) const {
  absl::MutexLock lock(&mutex_);
  return ReadyToCloseLocked(now);
}

bool RoundEngine::ReadyToCloseLocked(absl::Time now) const {
  return open_ && (answered_.size() >= cohort_.size() || now >= deadline_);
}

RoundResult RoundEngine::Close() {
  open_ = false;
  RoundResult result = std::move(current_);
  for (const std::string& member : cohort_) {
    if (!submitted_.contains(member)) result.missing.push_back(member);
  }
  if (result.updates < options_.min_clients) {
    result.failure_reason = absl::StrCat("only ", result.updates, " of ", result.selected,
                                         " clients returned an update; ", options_.min_clients,
                                         " needed");
  } else {
    absl::StatusOr<ModelParameters> next = FinishRound();
    if (!next.ok()) {
      result.failure_reason = std::string(next.status().message());
    } else if (absl::Status finite = CheckFinite(next->values, "aggregated model"); !finite.ok()) {
      result.failure_reason = std::string(finite.message());
    } else {
      // The new encoding is made while the old one lives on (clients may
      // still be downloading it); the flat vector goes right after.
      auto encoded = std::make_shared<const std::string>(EncodeParameters(*next));
      std::vector<float>().swap(next->values);
      global_digest_ = Sha256Hex(*encoded);
      encoded_global_ = std::move(encoded);
      result.succeeded = true;
    }
  }
  result.train_loss = result.samples > 0 ? loss_sum_ / static_cast<double>(result.samples) : 0;
  result.model_digest = global_digest_;
  ++next_round_;
  return result;
}

absl::StatusOr<ModelParameters> RoundEngine::FinishRound() {
  // The model the round started from, decoded only now (between rounds the
  // engine holds just its encoding); the strategy moves it in place.
  SV_ASSIGN_OR_RETURN(ModelParameters model, DecodeParameters(*encoded_global_));
  SV_RETURN_IF_ERROR(strategy_->FinishInPlace(model.values));
  return model;
}

std::shared_ptr<const ModelParameters> RoundEngine::global_model() const {
  std::shared_ptr<const std::string> encoded = encoded_global_model();
  absl::StatusOr<ModelParameters> global = DecodeParameters(*encoded);
  // The engine encoded these bytes itself; they always decode.
  return std::make_shared<const ModelParameters>(std::move(global).value());
}

std::shared_ptr<const std::string> RoundEngine::encoded_global_model() const {
  absl::MutexLock lock(&mutex_);
  return encoded_global_;
}

std::string RoundEngine::global_digest() const {
  absl::MutexLock lock(&mutex_);
  return global_digest_;
}

int64_t RoundEngine::next_round() const {
  absl::MutexLock lock(&mutex_);
  return next_round_;
}

bool RoundEngine::round_open() const {
  absl::MutexLock lock(&mutex_);
  return open_;
}

}  // namespace samverka::coordinator
