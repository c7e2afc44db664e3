// security/secagg/client.cc
//
// The client side of SecAgg+ (K. Bonawitz et al., "Practical Secure
// Aggregation for Privacy-Preserving Machine Learning", CCS 2017, section 4
// and figure 4: AdvertiseKeys, ShareKeys, MaskedInputCollection, Unmasking;
// with the Harary neighbour graphs of Bell et al., CCS 2020, section 3).
#include "security/secagg/client.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "security/secagg/internal/crypto_util.h"
#include "security/secagg/internal/rules.h"
#include "security/shamir.h"

namespace samverka::security::secagg {
namespace {

std::string_view View(const SecretBytes& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string Peer(ParticipantId id) {
  return "participant " + std::to_string(id);
}

bool Contains(const std::vector<ParticipantId>& sorted, ParticipantId id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

}  // namespace

absl::Status ClientPolicy::Check(const RoundConfig& config) const {
  if (config.threat.corrupt_rate < min_corrupt_rate) {
    return absl::FailedPreconditionError(
        "site policy: the round assumes corrupt_rate " +
        std::to_string(config.threat.corrupt_rate) +
        ", the site requires >= " + std::to_string(min_corrupt_rate));
  }
  if (static_cast<int>(config.threat.adversary) <
      static_cast<int>(min_adversary)) {
    return absl::FailedPreconditionError(
        std::string("site policy: the round defends against a ") +
        AdversaryModelName(config.threat.adversary) +
        " adversary, the site requires " + AdversaryModelName(min_adversary));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Create(
    ClientOptions options, SigningKey signing_key, RoundConfig config,
    ParticipantId id, std::string model_digest) {
  SV_RETURN_IF_ERROR(config.Validate());
  SV_RETURN_IF_ERROR(options.policy.Check(config));
  if (options.client_name.empty() || options.certificate_chain.empty() ||
      options.ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "client_name, certificate_chain and ca_pem must be set");
  }
  if (model_digest.empty()) {
    return absl::InvalidArgumentError("model digest must not be empty");
  }
  SV_ASSIGN_OR_RETURN(
      const std::string common_name,
      internal::CertificateCommonName(options.certificate_chain));
  if (common_name != options.client_name) {
    return absl::InvalidArgumentError(
        "client_name '" + options.client_name +
        "' differs from the certificate's common name '" + common_name + "'");
  }
  SV_ASSIGN_OR_RETURN(EncodingParameters encoding, EncodingFor(config));
  return std::unique_ptr<SecAggClient>(new SecAggClient(
      std::move(options), std::move(signing_key), std::move(config),
      std::move(encoding), id, std::move(model_digest)));
}

SecAggClient::SecAggClient(ClientOptions options, SigningKey signing_key,
                           RoundConfig config, EncodingParameters encoding,
                           ParticipantId id, std::string model_digest)
    : options_(std::move(options)),
      signing_key_(std::move(signing_key)),
      config_(std::move(config)),
      config_digest_(RoundConfigDigest(config_)),
      encoding_(std::move(encoding)),
      id_(id),
      model_digest_(std::move(model_digest)) {}

SecAggClient::~SecAggClient() = default;

absl::Time SecAggClient::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

absl::Status SecAggClient::CheckRound(int64_t round, const char* what) const {
  if (round != config_.round) {
    return absl::FailedPreconditionError(
        std::string(what) + " is for round " + std::to_string(round) +
        ", this session is round " + std::to_string(config_.round));
  }
  return absl::OkStatus();
}

absl::Status SecAggClient::CheckStage(Stage expected, const char* call) const {
  if (stage_ == Stage::kAborted) {
    return absl::AbortedError("client left round " +
                              std::to_string(config_.round) + ": " +
                              std::string(abort_status_.message()));
  }
  if (stage_ != expected) {
    return absl::FailedPreconditionError(std::string(call) +
                                         " called out of order");
  }
  return absl::OkStatus();
}

absl::Status SecAggClient::Abort(absl::Status status) {
  stage_ = Stage::kAborted;
  abort_status_ = status;
  share_ciphers_.clear();
  encryption_key_.reset();
  mask_key_.reset();
  mask_key_seed_ = SecretBytes();
  self_mask_seed_ = SecretBytes();
  own_shares_ = HeldShares();
  held_.clear();
  return status;
}

absl::StatusOr<KeyAdvertisement> SecAggClient::Advertise() {
  SV_RETURN_IF_ERROR(CheckStage(Stage::kReady, "Advertise"));
  SV_ASSIGN_OR_RETURN(X25519PrivateKey encryption_key,
                      X25519PrivateKey::Generate());
  SecretBytes mask_key_seed = SecretBytes::Random(X25519PrivateKey::kSize);
  SV_ASSIGN_OR_RETURN(X25519PrivateKey mask_key,
                      X25519PrivateKey::FromBytes(mask_key_seed));
  SecretBytes self_mask_seed = SecretBytes::Random(kPrgSeedSize);

  KeyAdvertisement a;
  a.sender = id_;
  a.round = config_.round;
  a.client_name = options_.client_name;
  a.model_digest = model_digest_;
  a.encryption_key = encryption_key.public_key().bytes();
  a.mask_key = mask_key.public_key().bytes();
  a.self_mask_commitment = internal::SelfMaskCommitment(self_mask_seed);
  a.certificate_chain = options_.certificate_chain;
  SV_ASSIGN_OR_RETURN(a.signature,
                      signing_key_.Sign(internal::AdvertisementSigningInput(
                          config_, config_digest_, a)));

  encryption_key_ = std::move(encryption_key);
  mask_key_seed_ = std::move(mask_key_seed);
  mask_key_ = std::move(mask_key);
  self_mask_seed_ = std::move(self_mask_seed);
  advertisement_ = a;
  stage_ = Stage::kAdvertised;
  return a;
}

absl::StatusOr<ShareBundle> SecAggClient::ShareKeys(const KeyRoster& roster) {
  SV_RETURN_IF_ERROR(CheckStage(Stage::kAdvertised, "ShareKeys"));
  SV_RETURN_IF_ERROR(CheckRound(roster.round, "key roster"));
  if (absl::Status s = VerifyRoster(roster); !s.ok()) return Abort(s);
  absl::StatusOr<ShareBundle> bundle = MakeShares();
  if (!bundle.ok()) return Abort(bundle.status());
  stage_ = Stage::kSharedKeys;
  return bundle;
}

absl::Status SecAggClient::VerifyRoster(const KeyRoster& roster) {
  const std::vector<KeyAdvertisement>& entries = roster.entries;
  const int n = static_cast<int>(entries.size());
  const int min_clients =
      std::max(options_.policy.min_clients, config_.min_clients);
  if (n < min_clients || n > config_.max_clients) {
    return absl::FailedPreconditionError(
        "roster has " + std::to_string(n) + " clients, outside [" +
        std::to_string(min_clients) + ", " +
        std::to_string(config_.max_clients) + "]");
  }
  const KeyAdvertisement* own = nullptr;
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    const KeyAdvertisement& e = entries[i];
    if (i > 0 && e.sender <= entries[i - 1].sender) {
      return absl::FailedPreconditionError(
          "roster is not in strictly ascending participant order");
    }
    if (!names.insert(e.client_name).second) {
      return absl::FailedPreconditionError(
          "roster names client '" + e.client_name +
          "' twice: one certificate may stand for one participant only");
    }
    if (e.sender == id_) own = &e;
    // The model-inconsistency attack (Pasquini et al., CCS 2022): every
    // client in the round must have been sent the same global model.
    if (e.model_digest != model_digest_) {
      return absl::FailedPreconditionError(
          Peer(e.sender) + " ('" + e.client_name +
          "') was sent a different global model (model digest mismatch); "
          "leaving the round");
    }
  }
  if (own == nullptr || own->client_name != advertisement_.client_name ||
      own->round != advertisement_.round ||
      own->encryption_key != advertisement_.encryption_key ||
      own->mask_key != advertisement_.mask_key ||
      own->self_mask_commitment != advertisement_.self_mask_commitment) {
    return absl::FailedPreconditionError(
        "the roster omits or alters this client's own advertised keys");
  }
  // Every entry, not only the neighbours: all of them feed the graph seed,
  // so unverified entries would let the coordinator choose the graph.
  const absl::Time now = Now();
  for (const KeyAdvertisement& e : entries) {
    if (e.sender == id_) continue;
    SV_RETURN_IF_ERROR(internal::VerifyAdvertisement(
        e, config_, config_digest_, options_.ca_pem, now,
        options_.verification_cache.get()));
  }
  SV_ASSIGN_OR_RETURN(
      internal::RoundGraph round_graph,
      internal::BuildRoundGraph(config_, config_digest_, entries));
  parameters_ = round_graph.parameters;
  graph_ = std::move(round_graph.graph);
  neighbours_ = graph_->Neighbours(id_);
  std::sort(neighbours_.begin(), neighbours_.end());
  holders_ = graph_->ShareHolders(id_);
  for (const KeyAdvertisement& e : entries) {
    if (!Contains(neighbours_, e.sender)) continue;
    SV_ASSIGN_OR_RETURN(X25519PublicKey encryption_key,
                        internal::PublicKey(e.encryption_key));
    SV_ASSIGN_OR_RETURN(X25519PublicKey mask_key,
                        internal::PublicKey(e.mask_key));
    peer_keys_.emplace(e.sender, PeerKeys{encryption_key, mask_key});
  }
  return absl::OkStatus();
}

absl::StatusOr<ShareBundle> SecAggClient::MakeShares() {
  const int t = parameters_.threshold;
  const int h = static_cast<int>(holders_.size());
  SV_ASSIGN_OR_RETURN(std::vector<ShamirShare> self_mask_shares,
                      ShamirSplit(self_mask_seed_, t, h));
  SV_ASSIGN_OR_RETURN(std::vector<ShamirShare> mask_key_shares,
                      ShamirSplit(mask_key_seed_, t, h));
  ShareBundle bundle;
  bundle.sender = id_;
  bundle.round = config_.round;
  bundle.shares.reserve(h - 1);
  for (int i = 0; i < h; ++i) {
    const ParticipantId holder = holders_[i];
    if (holder == id_) {
      own_shares_ = HeldShares{self_mask_shares[i].Serialize(),
                               mask_key_shares[i].Serialize()};
      continue;
    }
    const PeerKeys& keys = peer_keys_.at(holder);
    absl::StatusOr<std::unique_ptr<Aead>> cipher = internal::ShareCipher(
        *encryption_key_, keys.encryption_key, config_, id_, holder);
    if (!cipher.ok()) {
      return absl::FailedPreconditionError(
          Peer(holder) + " advertised an invalid encryption key: " +
          std::string(cipher.status().message()));
    }
    const SecretBytes plaintext = internal::PackShares(
        self_mask_shares[i].Serialize(), mask_key_shares[i].Serialize());
    SV_ASSIGN_OR_RETURN(
        std::string sealed,
        (*cipher)->Seal(View(plaintext),
                        internal::ShareAssociatedData(config_, id_, holder)));
    bundle.shares.push_back(EncryptedShare{holder, std::move(sealed)});
    share_ciphers_.emplace(holder, std::move(*cipher));
  }
  return bundle;
}

absl::StatusOr<MaskedInput> SecAggClient::MaskInput(
    const ShareDelivery& delivery, const ModularVector& encoded_input) {
  SV_RETURN_IF_ERROR(CheckStage(Stage::kSharedKeys, "MaskInput"));
  SV_RETURN_IF_ERROR(CheckRound(delivery.round, "share delivery"));
  if (encoded_input.bits() != encoding_.options.modulus_bits ||
      encoded_input.size() != encoding_.encoded_length()) {
    return absl::InvalidArgumentError(
        "encoded input must have " +
        std::to_string(encoding_.encoded_length()) + " elements over Z_2^" +
        std::to_string(encoding_.options.modulus_bits) + ", got " +
        std::to_string(encoded_input.size()) + " over Z_2^" +
        std::to_string(encoded_input.bits()));
  }
  if (absl::Status s = AcceptDelivery(delivery); !s.ok()) return Abort(s);

  // The self mask and one pairwise mask per peer whose shares arrived, added
  // in one pass over the input (AddMasks).
  std::vector<SecretBytes> pairwise_seeds;
  pairwise_seeds.reserve(held_.size());
  for (const auto& [peer, shares] : held_) {
    absl::StatusOr<SecretBytes> seed = internal::PairwiseMaskSeed(
        *mask_key_, peer_keys_.at(peer).mask_key, config_, id_, peer);
    if (!seed.ok()) {
      return Abort(absl::FailedPreconditionError(
          Peer(peer) + " advertised an invalid mask key: " +
          std::string(seed.status().message())));
    }
    pairwise_seeds.push_back(std::move(*seed));
  }
  const std::string self_context = internal::SelfMaskContext(config_, id_);
  const std::string pairwise_context = internal::PairwiseMaskContext(config_);
  std::vector<MaskTerm> masks;
  masks.reserve(held_.size() + 1);
  masks.push_back(MaskTerm{&self_mask_seed_, self_context, MaskSign::kAdd});
  size_t next_seed = 0;
  for (const auto& [peer, shares] : held_) {
    masks.push_back(MaskTerm{&pairwise_seeds[next_seed++], pairwise_context,
                             internal::PairwiseSign(id_, peer)});
  }
  MaskedInput out{id_, config_.round, encoded_input};
  if (absl::Status s = out.masked.AddMasks(masks); !s.ok()) return Abort(s);
  // The secrets live on only as shares now.
  share_ciphers_.clear();
  encryption_key_.reset();
  mask_key_.reset();
  mask_key_seed_ = SecretBytes();
  self_mask_seed_ = SecretBytes();
  stage_ = Stage::kMaskedInput;
  return out;
}

absl::Status SecAggClient::AcceptDelivery(const ShareDelivery& delivery) {
  for (const EncryptedShare& share : delivery.shares) {
    const ParticipantId sender = share.peer;
    if (!Contains(neighbours_, sender)) {
      return absl::FailedPreconditionError(
          "share delivery contains a share from " + Peer(sender) +
          ", which is not a neighbour");
    }
    if (held_.contains(sender)) {
      return absl::FailedPreconditionError(
          "share delivery contains two shares from " + Peer(sender));
    }
    absl::StatusOr<std::string> opened = share_ciphers_.at(sender)->Open(
        share.ciphertext, internal::ShareAssociatedData(config_, sender, id_));
    if (!opened.ok()) {
      return absl::DataLossError(
          "the share from " + Peer(sender) +
          " does not authenticate (tampered, or sealed for another round or "
          "recipient)");
    }
    SecretBytes plaintext = SecretBytes::CopyFrom(*opened);
    OPENSSL_cleanse(opened->data(), opened->size());
    SV_ASSIGN_OR_RETURN(const uint32_t x, graph_->ShareX(sender, id_));
    absl::StatusOr<internal::UnpackedShares> unpacked =
        internal::UnpackShares(plaintext, x);
    if (!unpacked.ok()) {
      return absl::DataLossError(
          "the share from " + Peer(sender) +
          " is malformed: " + std::string(unpacked.status().message()));
    }
    held_.emplace(sender, HeldShares{std::move(unpacked->self_mask_share),
                                     std::move(unpacked->mask_key_share)});
  }
  // Bonawitz et al.: abort if fewer than t clients remain to hold shares.
  const int remaining = static_cast<int>(held_.size()) + 1;
  if (remaining < parameters_.threshold) {
    return absl::FailedPreconditionError(
        "only " + std::to_string(remaining) + " of this client's " +
        std::to_string(holders_.size()) +
        " share holders remain, fewer than the threshold " +
        std::to_string(parameters_.threshold));
  }
  return absl::OkStatus();
}

absl::StatusOr<UnmaskResponse> SecAggClient::Unmask(
    const UnmaskRequest& request) {
  if (stage_ == Stage::kUnmasked) {
    SV_RETURN_IF_ERROR(CheckStage(Stage::kUnmasked, "Unmask"));
  } else {
    SV_RETURN_IF_ERROR(CheckStage(Stage::kMaskedInput, "Unmask"));
  }
  SV_RETURN_IF_ERROR(CheckRound(request.round, "unmask request"));
  absl::StatusOr<UnmaskResponse> response = Reveal(request);
  if (!response.ok()) return Abort(response.status());
  stage_ = Stage::kUnmasked;
  return response;
}

absl::StatusOr<UnmaskResponse> SecAggClient::Reveal(
    const UnmaskRequest& request) {
  const std::set<ParticipantId> survivors(request.survivors.begin(),
                                          request.survivors.end());
  const std::set<ParticipantId> dropped(request.dropped.begin(),
                                        request.dropped.end());
  for (ParticipantId v : dropped) {
    if (survivors.contains(v)) {
      return absl::FailedPreconditionError(
          "the coordinator names " + Peer(v) +
          " both surviving and dropped; refusing to unmask");
    }
  }
  if (dropped.contains(id_)) {
    return absl::FailedPreconditionError(
        "the coordinator lists this client as dropped although it sent its "
        "masked input; refusing to unmask");
  }
  int surviving_holders = 1;  // this client
  for (ParticipantId v : survivors) {
    if (v == id_ || !Contains(neighbours_, v)) continue;
    if (!held_.contains(v)) {
      return absl::FailedPreconditionError(
          Peer(v) +
          " is listed as surviving, but it dropped before masking "
          "(its shares never arrived); refusing to unmask");
    }
    const auto it = revealed_.find(v);
    if (it != revealed_.end() && it->second == ShareKind::kMaskKey) {
      return absl::FailedPreconditionError(
          Peer(v) +
          " was listed as dropped before and is now listed as "
          "surviving; refusing to unmask");
    }
    ++surviving_holders;
  }
  for (ParticipantId v : dropped) {
    const auto it = revealed_.find(v);
    if (it != revealed_.end() && it->second == ShareKind::kSelfMask) {
      return absl::FailedPreconditionError(
          Peer(v) +
          " was listed as surviving before and is now listed as "
          "dropped; refusing to unmask");
    }
  }
  if (surviving_holders < parameters_.threshold) {
    return absl::FailedPreconditionError(
        "only " + std::to_string(surviving_holders) +
        " of this client's share holders survive, fewer than the threshold " +
        std::to_string(parameters_.threshold) + "; refusing to unmask");
  }

  UnmaskResponse response{id_, config_.round, {}};
  response.shares.push_back(
      RevealedShare{id_, ShareKind::kSelfMask, own_shares_.self_mask.Clone()});
  revealed_[id_] = ShareKind::kSelfMask;
  for (const auto& [peer, shares] : held_) {
    if (survivors.contains(peer)) {
      response.shares.push_back(
          RevealedShare{peer, ShareKind::kSelfMask, shares.self_mask.Clone()});
      revealed_[peer] = ShareKind::kSelfMask;
    } else if (dropped.contains(peer)) {
      response.shares.push_back(
          RevealedShare{peer, ShareKind::kMaskKey, shares.mask_key.Clone()});
      revealed_[peer] = ShareKind::kMaskKey;
    }
  }
  return response;
}

}  // namespace samverka::security::secagg
