// security/secagg/server.cc
//
// The server side of SecAgg+ (K. Bonawitz et al., "Practical Secure
// Aggregation for Privacy-Preserving Machine Learning", CCS 2017, section 4
// and figure 4; neighbour graphs of Bell et al., CCS 2020, section 3).
#include "security/secagg/server.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "security/aead.h"
#include "security/secagg/internal/rules.h"
#include "security/shamir.h"

namespace samverka::security::secagg {
namespace {

// AES-GCM nonce || ciphertext || tag of one packed pair of shares.
constexpr size_t kShareCiphertextSize = 12 + internal::kSharePlaintextSize + 16;

std::string Peer(ParticipantId id) {
  return "participant " + std::to_string(id);
}

const char* KindName(ShareKind kind) {
  return kind == ShareKind::kSelfMask ? "self-mask seed" : "mask key";
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Create(
    ServerOptions options) {
  SV_RETURN_IF_ERROR(options.config.Validate());
  const int cohort = static_cast<int>(options.cohort.size());
  if (cohort < options.config.min_clients ||
      cohort > options.config.max_clients) {
    return absl::InvalidArgumentError(
        "cohort of " + std::to_string(cohort) + " clients is outside [" +
        std::to_string(options.config.min_clients) + ", " +
        std::to_string(options.config.max_clients) + "]");
  }
  for (const auto& [id, name] : options.cohort) {
    if (name.empty()) {
      return absl::InvalidArgumentError("cohort " + Peer(id) + " has no name");
    }
  }
  if (options.model_digest.empty() || options.ca_pem.empty()) {
    return absl::InvalidArgumentError("model_digest and ca_pem must be set");
  }
  SV_ASSIGN_OR_RETURN(EncodingParameters encoding, EncodingFor(options.config));
  SV_ASSIGN_OR_RETURN(X25519PrivateKey probe, X25519PrivateKey::Generate());
  return std::unique_ptr<SecAggServer>(new SecAggServer(
      std::move(options), std::move(encoding), std::move(probe)));
}

SecAggServer::SecAggServer(ServerOptions options, EncodingParameters encoding,
                           X25519PrivateKey probe_key)
    : options_(std::move(options)),
      config_digest_(RoundConfigDigest(options_.config)),
      encoding_(std::move(encoding)),
      probe_key_(std::move(probe_key)) {}

SecAggServer::~SecAggServer() = default;

absl::Time SecAggServer::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

std::vector<ParticipantId> SecAggServer::roster() const {
  return {roster_.begin(), roster_.end()};
}

std::vector<ParticipantId> SecAggServer::share_senders() const {
  return {share_senders_.begin(), share_senders_.end()};
}

std::vector<ParticipantId> SecAggServer::contributors() const {
  return {contributors_.begin(), contributors_.end()};
}

absl::Status SecAggServer::Admit(Stage stage, ParticipantId sender,
                                 int64_t round,
                                 const std::set<ParticipantId>* required,
                                 const char* what) const {
  if (stage_ == Stage::kAborted) {
    return absl::AbortedError("round aborted: " +
                              std::string(abort_status_.message()));
  }
  if (!options_.cohort.contains(sender)) {
    return absl::PermissionDeniedError(std::string(what) + " from " +
                                       Peer(sender) +
                                       ", which is not in the cohort");
  }
  if (stage_ != stage) {
    return absl::FailedPreconditionError(std::string(what) + " from " +
                                         Peer(sender) +
                                         " arrived outside its stage");
  }
  if (const auto it = rejected_.find(sender); it != rejected_.end()) {
    return absl::FailedPreconditionError(
        Peer(sender) + " was excluded from the round: " + it->second);
  }
  if (round != options_.config.round) {
    return absl::FailedPreconditionError(
        std::string(what) + " from " + Peer(sender) + " is for round " +
        std::to_string(round) + ", this is round " +
        std::to_string(options_.config.round));
  }
  if (required != nullptr && !required->contains(sender)) {
    return absl::FailedPreconditionError(
        std::string(what) + " from " + Peer(sender) +
        ", which did not complete the previous stage");
  }
  return absl::OkStatus();
}

absl::Status SecAggServer::Reject(ParticipantId sender, absl::Status status) {
  rejected_.emplace(sender, std::string(status.message()));
  return status;
}

absl::Status SecAggServer::Abort(absl::Status status) {
  stage_ = Stage::kAborted;
  abort_status_ = status;
  revealed_.clear();
  inbox_.clear();
  sum_ = ModularVector();
  return status;
}

absl::Status SecAggServer::CheckMinimum(size_t count, const char* what) {
  const int minimum =
      std::max(parameters_.min_survivors, parameters_.threshold);
  if (static_cast<int>(count) < minimum) {
    return Abort(absl::FailedPreconditionError(
        "only " + std::to_string(count) + " of " +
        std::to_string(advertisements_.size()) + " clients " + what +
        ", fewer than the " + std::to_string(minimum) +
        " the round needs; aborting, no aggregate is released"));
  }
  return absl::OkStatus();
}

// ---- Stage 0: AdvertiseKeys ------------------------------------------------

absl::Status SecAggServer::AcceptAdvertisement(const KeyAdvertisement& a) {
  SV_RETURN_IF_ERROR(
      Admit(Stage::kAdvertising, a.sender, a.round, nullptr, "advertisement"));
  if (advertisements_.contains(a.sender)) {
    return absl::AlreadyExistsError("duplicate advertisement from " +
                                    Peer(a.sender));
  }
  const std::string& name = options_.cohort.at(a.sender);
  if (a.client_name != name) {
    return Reject(a.sender,
                  absl::UnauthenticatedError(
                      Peer(a.sender) + " claims to be '" + a.client_name +
                      "', the cohort lists '" + name + "'"));
  }
  if (a.model_digest != options_.model_digest) {
    return Reject(a.sender,
                  absl::FailedPreconditionError(
                      Peer(a.sender) + " signed a different model digest"));
  }
  absl::Status verified = internal::VerifyAdvertisement(
      a, options_.config, config_digest_, options_.ca_pem, Now(),
      options_.verification_cache.get());
  if (!verified.ok()) return Reject(a.sender, verified);
  for (const auto* raw : {&a.encryption_key, &a.mask_key}) {
    absl::StatusOr<X25519PublicKey> key = internal::PublicKey(*raw);
    if (!key.ok() || !Agree(probe_key_, *key).ok()) {
      return Reject(a.sender,
                    absl::InvalidArgumentError(
                        Peer(a.sender) + " advertised an invalid X25519 key"));
    }
  }
  advertisements_.emplace(a.sender, a);
  return absl::OkStatus();
}

absl::StatusOr<KeyRoster> SecAggServer::CloseAdvertisements() {
  if (stage_ != Stage::kAdvertising) {
    return absl::FailedPreconditionError("advertisements already closed");
  }
  const int n = static_cast<int>(advertisements_.size());
  if (n < options_.config.min_clients) {
    return Abort(absl::FailedPreconditionError(
        "only " + std::to_string(n) +
        " clients advertised keys, fewer than "
        "min_clients = " +
        std::to_string(options_.config.min_clients) + "; aborting"));
  }
  KeyRoster roster{options_.config.round, {}};
  roster.entries.reserve(n);
  for (const auto& [id, advertisement] : advertisements_) {
    roster.entries.push_back(advertisement);
    roster_.insert(id);
  }
  absl::StatusOr<internal::RoundGraph> round_graph = internal::BuildRoundGraph(
      options_.config, config_digest_, roster.entries);
  if (!round_graph.ok()) return Abort(round_graph.status());
  parameters_ = round_graph->parameters;
  graph_ = std::move(round_graph->graph);
  sum_ = ModularVector::Zeros(encoding_.options.modulus_bits,
                              encoding_.encoded_length());
  stage_ = Stage::kSharingKeys;
  return roster;
}

// ---- Stage 1: ShareKeys ----------------------------------------------------

absl::Status SecAggServer::AcceptShareBundle(const ShareBundle& bundle) {
  SV_RETURN_IF_ERROR(Admit(Stage::kSharingKeys, bundle.sender, bundle.round,
                           &roster_, "share bundle"));
  if (share_senders_.contains(bundle.sender)) {
    return absl::AlreadyExistsError("duplicate share bundle from " +
                                    Peer(bundle.sender));
  }
  std::vector<ParticipantId> expected = graph_->Neighbours(bundle.sender);
  std::sort(expected.begin(), expected.end());
  std::vector<ParticipantId> recipients;
  recipients.reserve(bundle.shares.size());
  for (const EncryptedShare& share : bundle.shares) {
    recipients.push_back(share.peer);
    if (share.ciphertext.size() != kShareCiphertextSize) {
      return Reject(
          bundle.sender,
          absl::InvalidArgumentError(
              "share bundle from " + Peer(bundle.sender) +
              " has a ciphertext of " +
              std::to_string(share.ciphertext.size()) + " bytes, expected " +
              std::to_string(kShareCiphertextSize)));
    }
  }
  std::sort(recipients.begin(), recipients.end());
  if (recipients != expected) {
    return Reject(
        bundle.sender,
        absl::InvalidArgumentError("share bundle from " + Peer(bundle.sender) +
                                   " must address each of its " +
                                   std::to_string(expected.size()) +
                                   " neighbours exactly once"));
  }
  for (const EncryptedShare& share : bundle.shares) {
    inbox_[share.peer].push_back(
        EncryptedShare{bundle.sender, share.ciphertext});
  }
  share_senders_.insert(bundle.sender);
  return absl::OkStatus();
}

absl::Status SecAggServer::CloseShareKeys() {
  if (stage_ != Stage::kSharingKeys) {
    return absl::FailedPreconditionError("not collecting share bundles");
  }
  SV_RETURN_IF_ERROR(CheckMinimum(share_senders_.size(), "shared keys"));
  stage_ = Stage::kCollectingMaskedInputs;
  return absl::OkStatus();
}

absl::StatusOr<ShareDelivery> SecAggServer::ShareDeliveryFor(
    ParticipantId recipient) const {
  if (stage_ != Stage::kCollectingMaskedInputs) {
    return absl::FailedPreconditionError("share deliveries are not ready");
  }
  if (!share_senders_.contains(recipient)) {
    return absl::FailedPreconditionError(
        Peer(recipient) + " did not share keys and gets no delivery");
  }
  ShareDelivery delivery{options_.config.round, {}};
  if (const auto it = inbox_.find(recipient); it != inbox_.end()) {
    for (const EncryptedShare& share : it->second) {
      if (share_senders_.contains(share.peer)) delivery.shares.push_back(share);
    }
  }
  return delivery;
}

// ---- Stage 2: MaskedInputCollection ----------------------------------------

absl::Status SecAggServer::AcceptMaskedInput(const MaskedInput& input) {
  SV_RETURN_IF_ERROR(Admit(Stage::kCollectingMaskedInputs, input.sender,
                           input.round, &share_senders_, "masked input"));
  if (contributors_.contains(input.sender)) {
    return absl::AlreadyExistsError("duplicate masked input from " +
                                    Peer(input.sender));
  }
  if (input.masked.bits() != encoding_.options.modulus_bits ||
      input.masked.size() != encoding_.encoded_length()) {
    return Reject(
        input.sender,
        absl::InvalidArgumentError(
            "masked input from " + Peer(input.sender) + " has " +
            std::to_string(input.masked.size()) + " elements over Z_2^" +
            std::to_string(input.masked.bits()) + ", expected " +
            std::to_string(encoding_.encoded_length()) + " over Z_2^" +
            std::to_string(encoding_.options.modulus_bits)));
  }
  SV_RETURN_IF_ERROR(sum_.Add(input.masked));
  contributors_.insert(input.sender);
  return absl::OkStatus();
}

absl::Status SecAggServer::CloseMaskedInputs() {
  if (stage_ != Stage::kCollectingMaskedInputs) {
    return absl::FailedPreconditionError("not collecting masked inputs");
  }
  SV_RETURN_IF_ERROR(CheckMinimum(contributors_.size(), "sent masked inputs"));
  stage_ = Stage::kUnmasking;
  return absl::OkStatus();
}

absl::StatusOr<UnmaskRequest> SecAggServer::UnmaskRequestFor(
    ParticipantId recipient) const {
  if (stage_ != Stage::kUnmasking) {
    return absl::FailedPreconditionError("unmask requests are not ready");
  }
  if (!contributors_.contains(recipient)) {
    return absl::FailedPreconditionError(
        Peer(recipient) + " sent no masked input and gets no unmask request");
  }
  UnmaskRequest request{options_.config.round, {recipient}, {}};
  std::vector<ParticipantId> neighbours = graph_->Neighbours(recipient);
  std::sort(neighbours.begin(), neighbours.end());
  for (ParticipantId v : neighbours) {
    if (contributors_.contains(v)) {
      request.survivors.push_back(v);
    } else if (share_senders_.contains(v)) {
      request.dropped.push_back(v);
    }
  }
  std::sort(request.survivors.begin(), request.survivors.end());
  return request;
}

// ---- Stage 3: Unmasking ----------------------------------------------------

absl::Status SecAggServer::ValidateUnmaskResponse(
    const UnmaskResponse& response) const {
  const ParticipantId holder = response.sender;
  std::set<ParticipantId> owners;
  for (const RevealedShare& s : response.shares) {
    const std::string what = "unmask response from " + Peer(holder) +
                             ": share of " + Peer(s.owner) + "'s " +
                             KindName(s.kind);
    if (!owners.insert(s.owner).second) {
      return absl::InvalidArgumentError(what + " appears twice");
    }
    if (s.kind == ShareKind::kSelfMask && !contributors_.contains(s.owner)) {
      return absl::InvalidArgumentError(what + ", which is not a contributor");
    }
    if (s.kind == ShareKind::kMaskKey && (contributors_.contains(s.owner) ||
                                          !share_senders_.contains(s.owner))) {
      return absl::InvalidArgumentError(what +
                                        ", which did not drop after sharing");
    }
    absl::StatusOr<uint32_t> x = graph_->ShareX(s.owner, holder);
    if (!x.ok()) return absl::InvalidArgumentError(what + ": not a holder");
    absl::StatusOr<ShamirShare> parsed = ShamirShare::Parse(s.share);
    if (!parsed.ok()) return absl::InvalidArgumentError(what + " is malformed");
    if (parsed->x() != *x) {
      return absl::InvalidArgumentError(what + " has the wrong x-coordinate");
    }
  }
  return absl::OkStatus();
}

absl::Status SecAggServer::AcceptUnmaskResponse(
    const UnmaskResponse& response) {
  SV_RETURN_IF_ERROR(Admit(Stage::kUnmasking, response.sender, response.round,
                           &contributors_, "unmask response"));
  if (responders_.contains(response.sender)) {
    return absl::AlreadyExistsError("duplicate unmask response from " +
                                    Peer(response.sender));
  }
  if (absl::Status s = ValidateUnmaskResponse(response); !s.ok()) {
    return Reject(response.sender, s);
  }
  for (const RevealedShare& s : response.shares) {
    revealed_[{s.owner, s.kind}].push_back(
        StoredShare{response.sender, s.share.Clone()});
  }
  responders_.insert(response.sender);
  return absl::OkStatus();
}

absl::StatusOr<SecretBytes> SecAggServer::Reconstruct(ParticipantId owner,
                                                      ShareKind kind) const {
  const int t = parameters_.threshold;
  const auto it = revealed_.find({owner, kind});
  const size_t available = it == revealed_.end() ? 0 : it->second.size();
  if (static_cast<int>(available) < t) {
    return absl::FailedPreconditionError(
        "cannot reconstruct the " + std::string(KindName(kind)) + " of " +
        Peer(owner) + ": " + std::to_string(available) + " shares, threshold " +
        std::to_string(t) + "; aborting, no aggregate is released");
  }
  const KeyAdvertisement& advertisement = advertisements_.at(owner);
  auto consistent = [&](const SecretBytes& secret) {
    if (kind == ShareKind::kSelfMask) {
      return internal::SelfMaskCommitment(secret) ==
             advertisement.self_mask_commitment;
    }
    absl::StatusOr<X25519PrivateKey> key = X25519PrivateKey::FromBytes(secret);
    return key.ok() && key->public_key().bytes() == advertisement.mask_key;
  };
  // Try the first t shares, then (if a share is corrupt and more than t
  // arrived) every subset that leaves one share out.
  const std::vector<StoredShare>& stored = it->second;
  const int attempts =
      static_cast<int>(available) > t ? static_cast<int>(available) + 1 : 1;
  for (int skip = -1; skip + 1 < attempts; ++skip) {
    std::vector<ShamirShare> shares;
    shares.reserve(t);
    for (int i = 0;
         i < static_cast<int>(available) && static_cast<int>(shares.size()) < t;
         ++i) {
      if (i == skip) continue;
      SV_ASSIGN_OR_RETURN(ShamirShare share,
                          ShamirShare::Parse(stored[i].share));
      shares.push_back(std::move(share));
    }
    absl::StatusOr<SecretBytes> secret = ShamirReconstruct(shares, t);
    if (secret.ok() && consistent(*secret)) return std::move(*secret);
  }
  return absl::DataLossError(
      "the shares of " + Peer(owner) + "'s " + KindName(kind) +
      " do not reconstruct the advertised value (corrupt shares); aborting, "
      "no aggregate is released");
}

absl::Status SecAggServer::RemoveMasks(
    const std::map<ParticipantId, SecretBytes>& self,
    const std::map<ParticipantId, SecretBytes>& keys) {
  // Every mask to remove, then one pass over the sum (AddMasks): each
  // contributor's self mask, and for each dropped client the pairwise mask
  // of every contributing neighbour (it received the dropped client's
  // shares, so it masked with it); undo that neighbour's term.
  std::vector<std::string> self_contexts;
  self_contexts.reserve(self.size());
  for (const auto& [owner, seed] : self) {
    self_contexts.push_back(internal::SelfMaskContext(options_.config, owner));
  }
  std::vector<SecretBytes> pairwise_seeds;
  std::vector<MaskSign> pairwise_signs;
  for (const auto& [dropped, seed] : keys) {
    SV_ASSIGN_OR_RETURN(X25519PrivateKey key,
                        X25519PrivateKey::FromBytes(seed));
    for (ParticipantId u : graph_->Neighbours(dropped)) {
      if (!contributors_.contains(u)) continue;
      SV_ASSIGN_OR_RETURN(X25519PublicKey peer,
                          internal::PublicKey(advertisements_.at(u).mask_key));
      SV_ASSIGN_OR_RETURN(
          SecretBytes pair_seed,
          internal::PairwiseMaskSeed(key, peer, options_.config, dropped, u));
      pairwise_seeds.push_back(std::move(pair_seed));
      pairwise_signs.push_back(
          internal::Opposite(internal::PairwiseSign(u, dropped)));
    }
  }
  const std::string pairwise_context =
      internal::PairwiseMaskContext(options_.config);
  std::vector<MaskTerm> masks;
  masks.reserve(self.size() + pairwise_seeds.size());
  size_t i = 0;
  for (const auto& [owner, seed] : self) {
    masks.push_back(MaskTerm{&seed, self_contexts[i++], MaskSign::kSubtract});
  }
  for (size_t j = 0; j < pairwise_seeds.size(); ++j) {
    masks.push_back(
        MaskTerm{&pairwise_seeds[j], pairwise_context, pairwise_signs[j]});
  }
  return sum_.AddMasks(masks);
}

absl::StatusOr<AggregateResult> SecAggServer::Finish() {
  if (stage_ == Stage::kAborted) {
    return absl::AbortedError("round aborted: " +
                              std::string(abort_status_.message()));
  }
  if (stage_ != Stage::kUnmasking) {
    return absl::FailedPreconditionError(
        "Finish needs the unmasking stage (and runs once)");
  }
  // Reconstruct everything first: if any secret is missing, abort before a
  // single mask is removed.
  std::map<ParticipantId, SecretBytes> self_mask_seeds;
  std::map<ParticipantId, SecretBytes> mask_key_seeds;
  for (ParticipantId u : contributors_) {
    absl::StatusOr<SecretBytes> seed = Reconstruct(u, ShareKind::kSelfMask);
    if (!seed.ok()) return Abort(seed.status());
    self_mask_seeds.emplace(u, std::move(*seed));
  }
  std::vector<ParticipantId> dropped;
  for (ParticipantId v : share_senders_) {
    if (contributors_.contains(v)) continue;
    dropped.push_back(v);
    absl::StatusOr<SecretBytes> seed = Reconstruct(v, ShareKind::kMaskKey);
    if (!seed.ok()) return Abort(seed.status());
    mask_key_seeds.emplace(v, std::move(*seed));
  }
  if (absl::Status s = RemoveMasks(self_mask_seeds, mask_key_seeds); !s.ok()) {
    return Abort(s);
  }
  AggregateResult result;
  result.round = options_.config.round;
  result.sum = std::move(sum_);
  result.contributors = contributors();
  result.dropped = std::move(dropped);
  result.parameters = parameters_;
  revealed_.clear();
  stage_ = Stage::kFinished;
  return result;
}

}  // namespace samverka::security::secagg
