#include "client/secure_aggregation.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "security/secagg/client.h"
#include "security/secagg/consent.h"
#include "security/secagg/encoding.h"
#include "security/secagg/messages.h"
#include "security/signature.h"

namespace samverka::client {

namespace sa = security::secagg;


namespace {

sa::ContributionScope ScopeOf(const SecureSiteOptions& site, const std::string& model_digest) {
  return {site.federation_id, site.dataset, model_digest};
}

}  // namespace

SecureAggregationSession::SecureAggregationSession(std::unique_ptr<sa::SecAggClient> client,
                                                   SecureAggregationTransport* transport,
                                                   int64_t round, const SecureSiteOptions& site,
                                                   std::string model_digest, std::string instance)
    : client_(std::move(client)),
      transport_(transport),
      round_(round),
      ledger_(site.ledger),
      federation_id_(site.federation_id),
      dataset_(site.dataset),
      model_digest_(std::move(model_digest)),
      instance_(std::move(instance)) {}

absl::Status ReleaseConsent(sa::ConsentLedger& ledger, const sa::ContributionScope& scope,
                            const std::string& instance, int64_t round,
                            SecureAggregationTransport* transport) {
  SV_ASSIGN_OR_RETURN(std::string request, transport->Fetch(SecureStage::kConsent));
  if (request != instance) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the coordinator asked to release instance ", request.substr(0, 16), ", not this run's ",
        instance.substr(0, 16)));
  }
  SV_ASSIGN_OR_RETURN(security::SecretBytes seed,
                      ledger.Release(scope, instance, round));
  std::string payload(reinterpret_cast<const char*>(seed.data()), seed.size());
  absl::Status sent = transport->Send(SecureStage::kConsent, payload);
  OPENSSL_cleanse(payload.data(), payload.size());
  return sent;
}

SecureAggregationSession::~SecureAggregationSession() = default;

absl::StatusOr<std::unique_ptr<SecureAggregationSession>> SecureAggregationSession::Start(
    const SecureSiteOptions& site, const SecureAggregationTask& task, int64_t round,
    const std::string& model_digest, SecureAggregationTransport* transport) {
  SV_ASSIGN_OR_RETURN(sa::RoundConfig config, sa::ParseRoundConfig(task.round_config));
  if (config.round != round) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the secure aggregation settings are for round ", config.round, ", the task for round ",
        round));
  }
  if (config.vector_length < kSecureExtraCoordinates) {
    return absl::InvalidArgumentError("the secure aggregation vector is too short");
  }
  if (site.ledger == nullptr) return absl::FailedPreconditionError("the site has no consent ledger");
  SV_RETURN_IF_ERROR(site.ledger->CheckCanContribute(ScopeOf(site, model_digest)));
  sa::ClientOptions options;
  options.client_name = site.name;
  options.certificate_chain = site.certificate_chain;
  options.ca_pem = site.ca_pem;
  options.policy.min_clients = std::max(site.min_clients, 3);
  SV_ASSIGN_OR_RETURN(security::SigningKey key, security::SigningKey::FromPem(site.private_key));
  SV_ASSIGN_OR_RETURN(std::unique_ptr<sa::SecAggClient> client,
                      sa::SecAggClient::Create(std::move(options), std::move(key), config,
                                               task.participant_id, model_digest));
  SV_ASSIGN_OR_RETURN(sa::KeyAdvertisement advertisement, client->Advertise());
  SV_RETURN_IF_ERROR(transport->Send(SecureStage::kAdvertiseKeys, sa::Serialize(advertisement)));
  SV_ASSIGN_OR_RETURN(std::string roster_bytes, transport->Fetch(SecureStage::kShareKeys));
  SV_ASSIGN_OR_RETURN(sa::KeyRoster roster, sa::ParseKeyRoster(roster_bytes));
  SV_ASSIGN_OR_RETURN(sa::ShareBundle bundle, client->ShareKeys(roster));
  SV_RETURN_IF_ERROR(transport->Send(SecureStage::kShareKeys, sa::Serialize(bundle)));
  return std::unique_ptr<SecureAggregationSession>(
      new SecureAggregationSession(std::move(client), transport, round, site, model_digest,
                                   sa::ConsentInstance(roster_bytes)));
}

absl::StatusOr<SecureContribution> SecureAggregationSession::Contribute(
    std::span<const float> update, double weight, double train_loss, double dp_within_clip) {
  const sa::EncodingParameters& encoding = client_->encoding();
  if (update.size() + kSecureExtraCoordinates != encoding.vector_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the update has ", update.size(), " values; the round expects ",
        encoding.vector_length - kSecureExtraCoordinates));
  }
  const double c = encoding.options.clip_range;
  SecureContribution out;
  for (float v : update) out.clipped_values += std::abs(v) > c ? 1 : 0;
  std::vector<float> input(update.begin(), update.end());
  input.push_back(static_cast<float>(std::isfinite(train_loss) ? std::clamp(train_loss, -c, c) : 0));
  input.push_back(static_cast<float>(
      update.empty() ? 0.0 : static_cast<double>(out.clipped_values) / update.size()));
  input.push_back(static_cast<float>(dp_within_clip));
  const double capped = std::clamp(weight, 0.0, encoding.options.max_weight);
  if (capped != weight) {
    Logger("client")->warn("round {}: weight {} capped at the round's maximum {}", round_, weight,
                           capped);
  }
  SV_ASSIGN_OR_RETURN(sa::EncodedInput encoded, sa::EncodeInput(input, capped, encoding));
  input.clear();
  input.shrink_to_fit();
  SV_ASSIGN_OR_RETURN(SecureContribution sent, Send(std::move(encoded.values)));
  sent.clipped_values = out.clipped_values;
  return sent;
}

absl::StatusOr<SecureContribution> SecureAggregationSession::ContributeIntegers(
    std::vector<uint64_t> values) {
  const sa::EncodingParameters& encoding = client_->encoding();
  if (encoding.options.modulus_bits != 64 || values.size() != encoding.encoded_length()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the round sums ", encoding.encoded_length(), " elements in Z_2^",
        encoding.options.modulus_bits, "; this site's vector has ", values.size(),
        " 64-bit integers"));
  }
  return Send(sa::ModularVector::FromWords(std::move(values)));
}

absl::StatusOr<SecureContribution> SecureAggregationSession::Send(sa::ModularVector values) {
  SecureContribution out;
  // The consent mask, recorded in the ledger before the masked input leaves.
  const sa::ContributionScope scope{federation_id_, dataset_, model_digest_};
  SV_ASSIGN_OR_RETURN(security::SecretBytes seed,
                      ledger_->BeginContribution(scope, instance_, round_));
  SV_RETURN_IF_ERROR(sa::ApplyConsentMask(values, seed, instance_, security::MaskSign::kAdd));
  std::string commitment = sa::ConsentCommitment(instance_, seed);
  SV_ASSIGN_OR_RETURN(std::string delivery_bytes, transport_->Fetch(SecureStage::kMaskedInput));
  SV_ASSIGN_OR_RETURN(sa::ShareDelivery delivery, sa::ParseShareDelivery(delivery_bytes));
  SV_ASSIGN_OR_RETURN(sa::MaskedInput masked, client_->MaskInput(delivery, values));
  std::string payload = sa::Serialize(masked);
  out.masked_bytes = payload.size();
  SV_RETURN_IF_ERROR(transport_->UploadMaskedInput(std::move(payload), std::move(commitment)));
  SV_ASSIGN_OR_RETURN(std::string request_bytes, transport_->Fetch(SecureStage::kUnmask));
  SV_ASSIGN_OR_RETURN(sa::UnmaskRequest request, sa::ParseUnmaskRequest(request_bytes));
  SV_ASSIGN_OR_RETURN(sa::UnmaskResponse response, client_->Unmask(request));
  SV_RETURN_IF_ERROR(transport_->Send(SecureStage::kUnmask, sa::Serialize(response)));
  SV_RETURN_IF_ERROR(ReleaseConsent(*ledger_, scope, instance_, round_, transport_));
  out.neighbours = client_->parameters().num_neighbours;
  out.threshold = client_->parameters().threshold;
  return out;
}

}  // namespace samverka::client
