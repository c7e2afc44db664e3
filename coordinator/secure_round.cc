#include "coordinator/secure_round.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "security/secagg/consent.h"
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
  if (setup.integer_length > 0) {
    // Integers in Z_2^64, summed as they are: the last element stands where
    // a training round carries its weight.
    config.encoding.max_weight = 1;
    config.encoding.modulus_bits = 64;
    config.vector_length = setup.integer_length - 1;
  }
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

absl::StatusOr<std::unique_ptr<SecureRound>> SecureRound::Resume(
    const SecureAggregationOptions& options, Setup setup, SealedSum sealed,
    std::map<uint32_t, security::SecretBytes> consents) {
  SV_RETURN_IF_ERROR(options.Validate());
  auto inconsistent = [&](const char* what) {
    return absl::DataLossError(absl::StrCat("the sealed sum of round ", sealed.round, " from model ",
                                            sealed.model_digest.substr(0, 16), " ", what));
  };
  if (setup.cohort != sealed.cohort) return inconsistent("belongs to another cohort");
  SV_ASSIGN_OR_RETURN(sa::RoundConfig config, sa::ParseRoundConfig(sealed.round_config));
  SV_ASSIGN_OR_RETURN(sa::EncodingParameters encoding, sa::EncodingFor(config));
  if (sealed.sum.bits() != encoding.options.modulus_bits ||
      sealed.sum.size() != config.vector_length + 1) {
    return inconsistent("does not fit its round configuration");
  }
  for (uint32_t id : sealed.contributors) {
    if (id < 1 || id > sealed.cohort.size() || !sealed.commitments.contains(id)) {
      return inconsistent("names a contributor outside its cohort or without a commitment");
    }
  }
  std::string config_bytes = sealed.round_config;
  auto round = std::unique_ptr<SecureRound>(
      new SecureRound(options, std::move(setup), std::move(config_bytes), nullptr));
  absl::MutexLock lock(&round->mutex_);
  round->stage_ = SecureStage::kConsent;
  round->instance_ = sealed.instance;
  for (auto& [id, seed] : consents) {
    const std::string& name = sealed.cohort[id - 1];
    if (!sa::CheckConsent(sealed.instance, seed, sealed.commitments[id]).ok()) continue;
    round->answered_.insert(name);
    round->consents_.emplace(id, std::move(seed));
  }
  round->sealed_ = std::move(sealed);
  return round;
}

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
  absl::MutexLock lock(&mutex_);
  if (sealed_.has_value() && stage_ == SecureStage::kConsent && server_ == nullptr) {
    return SecureAggregationTask{config_bytes_, id, instance_};  // a consent task
  }
  return SecureAggregationTask{config_bytes_, id, ""};
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
  if (stage == SecureStage::kConsent) {
    absl::MutexLock lock(&mutex_);
    return AcceptConsent(client, payload);
  }
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
    case SecureStage::kConsent:
      break;  // handled above
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

absl::Status SecureRound::AcceptConsent(const std::string& client, std::string_view payload) {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  if (done_ && !result_.ok()) return CheckOpen();
  if (stage_ != SecureStage::kConsent || !sealed_.has_value() || finishing_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", setup_.round, ": the consent stage is not open (the coordinator is at '",
        SecureStageName(stage_), "')"));
  }
  auto commitment = sealed_->commitments.find(id);
  if (commitment == sealed_->commitments.end() ||
      std::find(sealed_->contributors.begin(), sealed_->contributors.end(), id) ==
          sealed_->contributors.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(client, " is not among the contributors of round ", setup_.round));
  }
  security::SecretBytes seed = security::SecretBytes::CopyFrom(payload);
  SV_RETURN_IF_ERROR(sa::CheckConsent(instance_, seed, commitment->second));
  if (consents_.contains(id)) return absl::OkStatus();  // sent again after a lost answer
  if (setup_.on_consent) SV_RETURN_IF_ERROR(setup_.on_consent(id, seed));
  consents_.emplace(id, std::move(seed));
  answered_.insert(client);
  ++changes_;
  return absl::OkStatus();
}

absl::Status SecureRound::SubmitMaskedInput(const std::string& client, std::string_view payload,
                                            std::string_view consent_commitment) {
  SV_ASSIGN_OR_RETURN(sa::ParticipantId id, IdOf(client));
  if (consent_commitment.size() != 64 ||
      consent_commitment.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        client, " sent a masked input without a commitment to its consent seed"));
  }
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
    commitments_[client] = std::string(consent_commitment);
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
  // Unmasking (finishing_ before the consent stage) does not answer a
  // consent fetch: the site waits for the sealed sum.
  std::function<bool()> ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (stage == SecureStage::kConsent) return done_ || stage_ == SecureStage::kConsent;
    return done_ || finishing_ || static_cast<int>(stage_) >= static_cast<int>(stage);
  };
  mutex_.AwaitWithTimeout(absl::Condition(&Call, &ready), wait);
  if (done_ && !result_.ok()) return CheckOpen();
  if (!ready()) return std::nullopt;
  if (stage == SecureStage::kShareKeys) return roster_;
  if (stage == SecureStage::kConsent) {
    if (done_) return CheckOpen();
    if (std::find(sealed_->contributors.begin(), sealed_->contributors.end(), id) ==
        sealed_->contributors.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(client, " is not among the contributors of round ", setup_.round));
    }
    return instance_;
  }
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

std::vector<std::string> SecureRound::AwaitingConsent() const {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> missing;
  if (!sealed_.has_value()) return missing;
  for (uint32_t id : sealed_->contributors) {
    if (!consents_.contains(id)) missing.push_back(setup_.cohort[id - 1]);
  }
  return missing;
}

bool SecureRound::sealed() const {
  absl::MutexLock lock(&mutex_);
  return sealed_.has_value();
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
    case SecureStage::kConsent:
      // Every contributor's seed is needed; a dropout does not end the wait.
      for (uint32_t id : sealed_->contributors) {
        if (!consents_.contains(id)) return false;
      }
      return true;
  }
  for (sa::ParticipantId id : expected) {
    const std::string& name = setup_.cohort[id - 1];
    if (!answered_.contains(name) && !dropped_.contains(name)) return false;
  }
  return true;
}

bool SecureRound::Advance(absl::Time now) {
  auto log = Logger("secagg");
  enum class Work { kNone, kSeal, kRelease };
  Work work = Work::kNone;
  sa::SecAggServer* server = nullptr;
  SealedSum sealed;
  std::map<uint32_t, security::SecretBytes> seeds;
  auto abort = [&](const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    result_ = why;
    done_ = true;
    finishing_ = false;
    ++changes_;
    log->warn("round {}: secure aggregation aborted, nothing is revealed: {}", setup_.round,
              why.message());
    return true;
  };
  {
    absl::MutexLock lock(&mutex_);
    if (done_ || finishing_) return done_;
    while (true) {
      if (!StageComplete() && now < StageDeadline()) return false;
      absl::Status closed;
      switch (stage_) {
        case SecureStage::kAdvertiseKeys: {
          absl::StatusOr<sa::KeyRoster> roster = server_->CloseAdvertisements();
          if (!roster.ok()) return abort(roster.status());
          roster_ = sa::Serialize(*roster);
          instance_ = sa::ConsentInstance(roster_);
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
          sealed.instance = instance_;
          for (const auto& [name, commitment] : commitments_) {
            sealed.commitments[ids_.at(name)] = commitment;
          }
          work = Work::kSeal;
          break;
        case SecureStage::kConsent: {
          if (!StageComplete()) {
            const std::vector<std::string> missing = [&] {
              std::vector<std::string> names;
              for (uint32_t id : sealed_->contributors) {
                if (!consents_.contains(id)) names.push_back(setup_.cohort[id - 1]);
              }
              return names;
            }();
            return abort(absl::UnavailableError(absl::StrCat(
                missing.size(), " of ", sealed_->contributors.size(),
                " sites did not release the sealed sum in time (", absl::StrJoin(missing, ", "),
                "); it is kept, and the next attempt from this model completes it")));
          }
          finishing_ = true;
          sealed = std::move(*sealed_);
          seeds = std::move(consents_);
          work = Work::kRelease;
          break;
        }
      }
      if (!closed.ok()) return abort(closed);
      if (work != Work::kNone) break;
      stage_started_ = now;
      answered_.clear();
      ++changes_;
    }
  }
  if (work == Work::kSeal) {
    // Unmasking regenerates every mask: run it without the lock, so sites'
    // calls are answered (with "closed") meanwhile; then the sealed sum is
    // made durable before any site is asked for its consent.
    absl::StatusOr<SealedSum> made = Seal(server, std::move(sealed));
    absl::MutexLock lock(&mutex_);
    if (!made.ok()) return abort(made.status());
    log->info("round {}: the sum of {} sites is unmasked but still sealed by their consent "
              "masks; stored it and asked the sites to release it",
              setup_.round, made->contributors.size());
    sealed_ = std::move(*made);
    finishing_ = false;
    stage_ = SecureStage::kConsent;
    stage_started_ = now;
    answered_.clear();
    for (const auto& [id, seed] : consents_) answered_.insert(setup_.cohort[id - 1]);
    ++changes_;
    return false;
  }
  absl::StatusOr<SecureRoundResult> out = Release(std::move(sealed), seeds);
  absl::MutexLock lock(&mutex_);
  if (!out.ok()) return abort(out.status());
  finishing_ = false;
  done_ = true;
  ++changes_;
  result_ = std::move(out);
  return true;
}

absl::StatusOr<SealedSum> SecureRound::Seal(sa::SecAggServer* server, SealedSum sealed) {
  SV_ASSIGN_OR_RETURN(sa::AggregateResult aggregate, server->Finish());
  sealed.round = setup_.round;
  sealed.model_digest = setup_.model_digest;
  sealed.round_config = config_bytes_;
  sealed.cohort = setup_.cohort;
  std::map<uint32_t, std::string> commitments = std::move(sealed.commitments);
  for (sa::ParticipantId id : aggregate.contributors) {
    auto it = commitments.find(id);
    if (it == commitments.end()) {
      return absl::InternalError(absl::StrCat("contributor ", setup_.cohort[id - 1],
                                              " has no consent commitment"));
    }
    sealed.contributors.push_back(id);
    sealed.commitments[id] = it->second;
  }
  for (sa::ParticipantId id : aggregate.dropped) sealed.dropped.push_back(id);
  sealed.sum = std::move(aggregate.sum);
  sealed.parameters = aggregate.parameters;
  {
    absl::MutexLock lock(&mutex_);
    sealed.masked_bytes = masked_bytes_;
  }
  if (setup_.seal) {
    if (absl::Status stored = setup_.seal(sealed); !stored.ok()) {
      return absl::InternalError(
          absl::StrCat("cannot store the sealed sum, so no site is asked to release it: ",
                       stored.message()));
    }
  }
  return sealed;
}

absl::StatusOr<SecureRoundResult> SecureRound::Release(
    SealedSum sealed, const std::map<uint32_t, security::SecretBytes>& seeds) {
  SV_ASSIGN_OR_RETURN(sa::RoundConfig config, sa::ParseRoundConfig(sealed.round_config));
  SV_ASSIGN_OR_RETURN(sa::EncodingParameters encoding, sa::EncodingFor(config));
  const std::string context = sa::ConsentMaskContext(sealed.instance);
  std::vector<security::MaskTerm> terms;
  for (uint32_t id : sealed.contributors) {
    terms.push_back({&seeds.at(id), context, security::MaskSign::kSubtract});
  }
  SV_RETURN_IF_ERROR(sealed.sum.AddMasks(terms));
  SecureRoundResult r;
  for (uint32_t id : sealed.contributors) r.contributors.push_back(sealed.cohort[id - 1]);
  for (uint32_t id : sealed.dropped) r.dropped.push_back(sealed.cohort[id - 1]);
  r.parameters = sealed.parameters;
  r.masked_bytes = sealed.masked_bytes;
  r.instance = sealed.instance;
  if (setup_.integer_length > 0) {
    if (sealed.sum.size() != setup_.integer_length || sealed.sum.bits() != 64) {
      return absl::DataLossError("the sealed integer sum has another length or ring");
    }
    r.integer_sum.assign(sealed.sum.words64().begin(), sealed.sum.words64().end());
    return r;
  }
  SV_ASSIGN_OR_RETURN(sa::DecodedSum sum,
                      sa::DecodeSum(sealed.sum, encoding,
                                    static_cast<int>(sealed.contributors.size())));
  r.weighted_train_loss = sum.weighted_sum[setup_.model_length];
  r.clipped_fraction =
      sum.total_weight > 0 ? sum.weighted_sum[setup_.model_length + 1] / sum.total_weight : 0;
  r.weighted_within_clip = sum.weighted_sum[setup_.model_length + 2];
  sum.weighted_sum.resize(setup_.model_length);
  r.weighted_sum = std::move(sum.weighted_sum);
  r.total_weight = sum.total_weight;
  return r;
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
