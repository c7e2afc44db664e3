#include "coordinator/secure_round.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "security/secagg/encoding.h"
#include "security/secagg/messages.h"

namespace samverka::coordinator {
namespace {

namespace sa = security::secagg;


bool Call(std::function<bool()>* predicate) { return (*predicate)(); }

}  // namespace

absl::Status SecureAggregationOptions::Validate() const {
  if (!enabled) return absl::OkStatus();
  SV_RETURN_IF_ERROR(threat.Validate());
  if (!(clip_range > 0) || !std::isfinite(clip_range)) {
    return absl::InvalidArgumentError("secagg_clip_range must be a positive number");
  }
  if (modulus_bits != 32 && modulus_bits != 64) {
    return absl::InvalidArgumentError("secagg_modulus_bits must be 32 or 64");
  }
  if (neighbours < 0 || threshold < 0) {
    return absl::InvalidArgumentError(
        "secagg_neighbours and secagg_threshold must be >= 0 (0: chosen from the rates)");
  }
  if (stage_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("secagg_stage_deadline_seconds must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SecureRound>> SecureRound::Create(
    const SecureAggregationOptions& options, Setup setup) {
  SV_RETURN_IF_ERROR(options.Validate());
  const int n = static_cast<int>(setup.cohort.size());
  if (n < std::max(setup.min_clients, 3)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secure aggregation needs a cohort of at least ", std::max(setup.min_clients, 3),
        " sites, got ", n));
  }
  sa::RoundConfig config;
  config.federation_id = setup.federation_id;
  config.round = setup.round;
  config.threat = options.threat;
  config.encoding.clip_range = options.clip_range;
  config.encoding.max_weight = std::max(setup.max_weight, 1.0);
  config.encoding.modulus_bits = options.modulus_bits;
  config.vector_length = setup.model_length + kSecureExtraCoordinates;
  config.min_clients = std::max(setup.min_clients, 3);
  config.max_clients = n;
  config.num_neighbours = options.neighbours;
  config.threshold = options.threshold;
  SV_RETURN_IF_ERROR(config.Validate());
  // Check now that the cohort can be served, so the round fails with a clear
  // reason before any site does work.
  SV_ASSIGN_OR_RETURN(sa::GraphParameters chosen,
                      sa::ChooseGraphParameters(n, config.threat, config.min_sparse_clients));
  SV_RETURN_IF_ERROR(
      sa::OverrideGraphParameters(chosen, config.threat, config.num_neighbours, config.threshold)
          .status());

  sa::ServerOptions server_options;
  server_options.config = config;
  for (int i = 0; i < n; ++i) {
    server_options.cohort[static_cast<sa::ParticipantId>(i + 1)] = setup.cohort[i];
  }
  server_options.model_digest = setup.model_digest;
  server_options.ca_pem = setup.ca_pem;
  SV_ASSIGN_OR_RETURN(std::unique_ptr<sa::SecAggServer> server,
                      sa::SecAggServer::Create(std::move(server_options)));
  std::string config_bytes = sa::Serialize(config);
  return std::unique_ptr<SecureRound>(new SecureRound(options, std::move(setup),
                                                      std::move(config_bytes), std::move(server)));
}

SecureRound::SecureRound(const SecureAggregationOptions& options, Setup setup,
                         std::string config_bytes, std::unique_ptr<sa::SecAggServer> server)
    : options_(options), setup_(std::move(setup)), config_bytes_(std::move(config_bytes)), server_(std::move(server)) {
  for (size_t i = 0; i < setup_.cohort.size(); ++i) {
    ids_[setup_.cohort[i]] = static_cast<sa::ParticipantId>(i + 1);
  }
  stage_started_ = setup_.start;
}

SecureRound::~SecureRound() = default;

absl::StatusOr<sa::ParticipantId> SecureRound::IdOf(const std::string& client) const {
  auto it = ids_.find(client);
  if (it == ids_.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat(client, " is not in the secure aggregation of round ", setup_.round));
  }
  return it->second;
}

absl::StatusOr<SecureAggregationTask> SecureRound::TaskFor(const std::string& client) const {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  return SecureAggregationTask{config_bytes_, id};
}

absl::Status SecureRound::CheckOpen() const {
  if (done_ && !result_.ok()) {
    return absl::AbortedError(absl::StrCat("secure aggregation of round ", setup_.round,
                                           " aborted: ", result_.status().message()));
  }
  if (done_ || finishing_) {
    return absl::FailedPreconditionError(
        absl::StrCat("secure aggregation of round ", setup_.round, " has closed"));
  }
  return absl::OkStatus();
}

absl::Status SecureRound::Send(const std::string& client, SecureStage stage,
                               std::string_view payload) {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  auto claims = [&](sa::ParticipantId sender) -> absl::Status {
    if (sender != id) {
      return absl::PermissionDeniedError(absl::StrCat(
          client, " sent a ", SecureStageName(stage), " message in the name of participant ",
          sender, "; it is participant ", id));
    }
    return absl::OkStatus();
  };
  // Parse outside the lock; the parsers bound every length.
  std::optional<sa::KeyAdvertisement> advertisement;
  std::optional<sa::ShareBundle> bundle;
  std::optional<sa::UnmaskResponse> response;
  switch (stage) {
    case SecureStage::kAdvertiseKeys: {
      SV_ASSIGN_OR_RETURN(advertisement, sa::ParseKeyAdvertisement(payload));
      SV_RETURN_IF_ERROR(claims(advertisement->sender));
      if (advertisement->client_name != client) {
        return absl::PermissionDeniedError(absl::StrCat(
            client, " advertised keys under the name '", advertisement->client_name.substr(0, 64),
            "'"));
      }
      break;
    }
    case SecureStage::kShareKeys: {
      SV_ASSIGN_OR_RETURN(bundle, sa::ParseShareBundle(payload));
      SV_RETURN_IF_ERROR(claims(bundle->sender));
      break;
    }
    case SecureStage::kUnmask: {
      SV_ASSIGN_OR_RETURN(response, sa::ParseUnmaskResponse(payload));
      SV_RETURN_IF_ERROR(claims(response->sender));
      break;
    }
    case SecureStage::kMaskedInput:
      return absl::InvalidArgumentError("masked inputs are uploaded, not sent");
  }
  absl::MutexLock lock(&mutex_);
  SV_RETURN_IF_ERROR(CheckOpen());
  if (stage != stage_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", setup_.round, ": the '", SecureStageName(stage),
        "' stage is not open (the coordinator is at '", SecureStageName(stage_), "')"));
  }
  absl::Status status;
  if (advertisement) status = server_->AcceptAdvertisement(*advertisement);
  if (bundle) status = server_->AcceptShareBundle(*bundle);
  if (response) status = server_->AcceptUnmaskResponse(*response);
  ++changes_;
  if (status.ok()) {
    answered_.insert(client);
  } else if (server_->rejected().contains(id)) {
    dropped_.insert(client);  // excluded for the rest of the round
  }
  return status;
}

absl::Status SecureRound::SubmitMaskedInput(const std::string& client, std::string_view payload) {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  SV_ASSIGN_OR_RETURN(sa::MaskedInput input, sa::ParseMaskedInput(payload));
  if (input.sender != id) {
    return absl::PermissionDeniedError(absl::StrCat(
        client, " uploaded a masked input in the name of participant ", input.sender));
  }
  absl::MutexLock lock(&mutex_);
  SV_RETURN_IF_ERROR(CheckOpen());
  if (stage_ != SecureStage::kMaskedInput) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", setup_.round, ": masked inputs are not being collected (the coordinator is at '",
        SecureStageName(stage_), "')"));
  }
  absl::Status status = server_->AcceptMaskedInput(input);
  ++changes_;
  if (status.ok()) {
    answered_.insert(client);
    masked_bytes_ += payload.size();
  } else if (server_->rejected().contains(id)) {
    dropped_.insert(client);
  }
  return status;
}

absl::StatusOr<std::optional<std::string>> SecureRound::Fetch(const std::string& client,
                                                              SecureStage stage,
                                                              absl::Duration wait) {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  if (stage == SecureStage::kAdvertiseKeys) {
    return absl::InvalidArgumentError("nothing to fetch before advertising keys");
  }
  absl::MutexLock lock(&mutex_);
  std::function<bool()> ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return done_ || finishing_ || static_cast<int>(stage_) >= static_cast<int>(stage);
  };
  mutex_.AwaitWithTimeout(absl::Condition(&Call, &ready), wait);
  if (done_ && !result_.ok()) return CheckOpen();
  if (!ready()) return std::nullopt;
  if (stage == SecureStage::kShareKeys) return roster_;
  // Later stages read the server, which Finish owns once finishing.
  SV_RETURN_IF_ERROR(CheckOpen());
  if (stage == SecureStage::kMaskedInput) {
    if (stage_ != SecureStage::kMaskedInput) {
      return absl::FailedPreconditionError(
          absl::StrCat("round ", setup_.round, ": masked inputs are no longer collected"));
    }
    SV_ASSIGN_OR_RETURN(sa::ShareDelivery delivery, server_->ShareDeliveryFor(id));
    return sa::Serialize(delivery);
  }
  SV_ASSIGN_OR_RETURN(sa::UnmaskRequest request, server_->UnmaskRequestFor(id));
  return sa::Serialize(request);
}

void SecureRound::ReportDropout(const std::string& client) {
  if (!ids_.contains(client)) return;
  absl::MutexLock lock(&mutex_);
  dropped_.insert(client);
  ++changes_;
}

absl::Time SecureRound::StageDeadline() const {
  return stage_ == SecureStage::kMaskedInput ? setup_.input_deadline
                                             : stage_started_ + options_.stage_deadline;
}

bool SecureRound::StageComplete() const {
  std::vector<sa::ParticipantId> expected;
  switch (stage_) {
    case SecureStage::kAdvertiseKeys:
      for (const auto& [name, id] : ids_) expected.push_back(id);
      break;
    case SecureStage::kShareKeys: expected = server_->roster(); break;
    case SecureStage::kMaskedInput: expected = server_->share_senders(); break;
    case SecureStage::kUnmask: expected = server_->contributors(); break;
  }
  for (sa::ParticipantId id : expected) {
    const std::string& name = setup_.cohort[id - 1];
    if (!answered_.contains(name) && !dropped_.contains(name)) return false;
  }
  return true;
}

bool SecureRound::Advance(absl::Time now) {
  auto log = Logger("secagg");
  sa::SecAggServer* server = nullptr;
  {
    absl::MutexLock lock(&mutex_);
    if (done_ || finishing_) return done_;
    auto abort = [&](const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      result_ = why;
      done_ = true;
      ++changes_;
      log->warn("round {}: secure aggregation aborted, nothing is revealed: {}", setup_.round,
                why.message());
      return true;
    };
    while (true) {
      if (!StageComplete() && now < StageDeadline()) return false;
      absl::Status closed;
      switch (stage_) {
        case SecureStage::kAdvertiseKeys: {
          absl::StatusOr<sa::KeyRoster> roster = server_->CloseAdvertisements();
          if (!roster.ok()) return abort(roster.status());
          roster_ = sa::Serialize(*roster);
          const sa::GraphParameters& p = server_->parameters();
          log->info(
              "round {}: secure aggregation among {} sites: {} graph, {} neighbours, threshold {}, "
              "at least {} must stay (assumed dropout {:.0f}%, corrupt {:.0f}%, {})",
              setup_.round, p.num_clients, p.complete ? "complete" : "Harary", p.num_neighbours,
              p.threshold, p.min_survivors, 100 * options_.threat.dropout_rate,
              100 * options_.threat.corrupt_rate, sa::AdversaryModelName(options_.threat.adversary));
          stage_ = SecureStage::kShareKeys;
          break;
        }
        case SecureStage::kShareKeys:
          closed = server_->CloseShareKeys();
          stage_ = SecureStage::kMaskedInput;
          break;
        case SecureStage::kMaskedInput:
          closed = server_->CloseMaskedInputs();
          stage_ = SecureStage::kUnmask;
          break;
        case SecureStage::kUnmask:
          finishing_ = true;
          server = server_.get();
          break;
      }
      if (!closed.ok()) return abort(closed);
      if (server != nullptr) break;
      stage_started_ = now;
      answered_.clear();
      ++changes_;
    }
  }
  // Unmasking regenerates every mask: run it without the lock, so sites'
  // calls are answered (with "closed") meanwhile.
  absl::StatusOr<SecureRoundResult> out = [&]() -> absl::StatusOr<SecureRoundResult> {
    SV_ASSIGN_OR_RETURN(sa::AggregateResult aggregate, server->Finish());
    SV_ASSIGN_OR_RETURN(sa::DecodedSum sum,
                        sa::DecodeSum(aggregate.sum, server->encoding(),
                                      static_cast<int>(aggregate.contributors.size())));
    SecureRoundResult r;
    for (sa::ParticipantId id : aggregate.contributors) r.contributors.push_back(setup_.cohort[id - 1]);
    for (sa::ParticipantId id : aggregate.dropped) r.dropped.push_back(setup_.cohort[id - 1]);
    r.weighted_train_loss = sum.weighted_sum[setup_.model_length];
    r.clipped_fraction =
        sum.total_weight > 0 ? sum.weighted_sum[setup_.model_length + 1] / sum.total_weight : 0;
    r.weighted_within_clip = sum.weighted_sum[setup_.model_length + 2];
    sum.weighted_sum.resize(setup_.model_length);
    r.weighted_sum = std::move(sum.weighted_sum);
    r.total_weight = sum.total_weight;
    r.parameters = aggregate.parameters;
    return r;
  }();
  absl::MutexLock lock(&mutex_);
  finishing_ = false;
  done_ = true;
  ++changes_;
  if (!out.ok()) {
    log->warn("round {}: secure aggregation aborted, nothing is revealed: {}", setup_.round,
              out.status().message());
  } else {
    out->masked_bytes = masked_bytes_;
  }
  result_ = std::move(out);
  return true;
}

void SecureRound::WaitForChange(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  const uint64_t seen = changes_;
  std::function<bool()> changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return changes_ != seen;
  };
  mutex_.AwaitWithTimeout(absl::Condition(&Call, &changed), timeout);
}

absl::StatusOr<SecureRoundResult> SecureRound::result() const {
  absl::MutexLock lock(&mutex_);
  return result_;
}

}  // namespace samverka::coordinator
