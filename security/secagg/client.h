// security/secagg/client.h
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/aead.h"
#include "security/secagg/encoding.h"
#include "security/secagg/graph.h"
#include "security/secagg/messages.h"
#include "security/secagg/modular_vector.h"
#include "security/secagg/verification_cache.h"
#include "security/secret_bytes.h"
#include "security/signature.h"
#include "security/x25519.h"

namespace samverka::security::secagg {

// What a site accepts from the coordinator's RoundConfig (from the site's
// own configuration, never from the coordinator).
struct ClientPolicy {
  // Refuse configs assuming fewer corrupt clients than this, or a weaker
  // adversary than min_adversary.
  double min_corrupt_rate = 0.0;
  AdversaryModel min_adversary = AdversaryModel::kSemiHonest;
  // Refuse rosters with fewer clients than this.
  int min_clients = 3;

  // kFailedPrecondition naming the violated rule.
  absl::Status Check(const RoundConfig& config) const;
};

struct ClientOptions {
  // Must equal the subject common name of the certificate.
  std::string client_name;
  // PEM, leaf first; its key signs the advertisement.
  std::string certificate_chain;
  // The federation CA(s) that every peer's certificate must chain to.
  std::string ca_pem;
  ClientPolicy policy;
  // Time for certificate validity checks; absl::Now when empty.
  std::function<absl::Time()> clock;
  // Optional, for simulations: checks of identical advertisements shared
  // with the other parties of this process (see verification_cache.h).
  std::shared_ptr<VerificationCache> verification_cache;
};

// One client's side of one SecAgg+ round (Bonawitz et al., CCS 2017, with
// the neighbour graphs of Bell et al., CCS 2020): a state machine that is
// fed the coordinator's messages in order and returns its replies.
//
//   Advertise()  -> KeyAdvertisement            (stage 0)
//   ShareKeys(KeyRoster) -> ShareBundle         (stage 1)
//   MaskInput(ShareDelivery, input) -> MaskedInput  (stage 2)
//   Unmask(UnmaskRequest) -> UnmaskResponse     (stage 3, may repeat)
//
// The client checks what the coordinator sends: every roster entry's
// certificate and signature, that every peer signed the same model digest
// and round config, that its own keys are unaltered, the share ciphertexts,
// and in Unmask that no peer is both surviving and dropped, that no peer it
// saw drop is now surviving, that at least t of its share holders survive,
// and that it never reveals both kinds of share for one peer. A failed
// check aborts the session: secrets are wiped, stage() becomes kAborted and
// every later call fails with kAborted. Stale (wrong-round) or out-of-order
// messages are refused with kFailedPrecondition without aborting.
//
// Thread-compatible: one thread at a time.
class SecAggClient {
 public:
  enum class Stage {
    kReady,        // created; next: Advertise
    kAdvertised,   // next: ShareKeys
    kSharedKeys,   // next: MaskInput
    kMaskedInput,  // next: Unmask
    kUnmasked,     // Unmask may be retried with a consistent request
    kAborted,
  };

  // `model_digest` is the digest of the global model this client actually
  // received, computed locally. kInvalidArgument for a bad config, an empty
  // option or digest, or a client_name that is not the certificate's common
  // name; kFailedPrecondition if the config violates options.policy.
  static absl::StatusOr<std::unique_ptr<SecAggClient>> Create(
      ClientOptions options, SigningKey signing_key, RoundConfig config,
      ParticipantId id, std::string model_digest);

  ~SecAggClient();

  // Stage 0: fresh X25519 key pairs (shares, masks), a fresh self-mask
  // seed, all signed with the certificate's key.
  absl::StatusOr<KeyAdvertisement> Advertise();

  // Stage 1: verifies the roster, derives the graph and Shamir-shares the
  // mask-key seed and self-mask seed among the neighbours (threshold t),
  // each pair of shares encrypted for its holder. Aborts with
  // kUnauthenticated (bad certificate or signature), kFailedPrecondition
  // (different model digest, altered own entry, roster too small or
  // malformed, duplicate names, invalid keys).
  absl::StatusOr<ShareBundle> ShareKeys(const KeyRoster& roster);

  // The encoding this round uses (known from the config at creation).
  const EncodingParameters& encoding() const { return encoding_; }

  // Stage 2: decrypts the delivered shares and returns
  //   y = x + PRG(b_u) + sum_v (+/-) PRG(s_{u,v})  (mod 2^bits)
  // over the neighbours v whose shares arrived. kInvalidArgument (no abort)
  // if `encoded_input` has the wrong ring or length. Aborts with kDataLoss
  // if a share does not decrypt, kFailedPrecondition for an unknown or
  // duplicate sender or fewer than t share holders left.
  absl::StatusOr<MaskedInput> MaskInput(const ShareDelivery& delivery,
                                        const ModularVector& encoded_input);

  // Stage 3: reveals self-mask shares of surviving neighbours (and its own)
  // and mask-key shares of dropped neighbours. Aborts with
  // kFailedPrecondition if the request names a peer both surviving and
  // dropped, lists this client as dropped, revives a peer seen dropped,
  // would reveal the other kind of share for a peer than an earlier call
  // did, or leaves fewer than t surviving share holders.
  absl::StatusOr<UnmaskResponse> Unmask(const UnmaskRequest& request);

  Stage stage() const { return stage_; }
  // Why the session aborted (OK unless stage() == kAborted).
  const absl::Status& abort_status() const { return abort_status_; }
  ParticipantId id() const { return id_; }
  // The round's graph parameters; valid after ShareKeys.
  const GraphParameters& parameters() const { return parameters_; }
  // The neighbours (ascending); valid after ShareKeys.
  const std::vector<ParticipantId>& neighbours() const { return neighbours_; }

 private:
  struct PeerKeys {
    X25519PublicKey encryption_key;
    X25519PublicKey mask_key;
  };
  struct HeldShares {  // this client's shares of a peer's secrets
    SecretBytes self_mask;
    SecretBytes mask_key;
  };

  SecAggClient(ClientOptions options, SigningKey signing_key,
               RoundConfig config, EncodingParameters encoding,
               ParticipantId id, std::string model_digest);

  absl::Status CheckRound(int64_t round, const char* what) const;
  absl::Status CheckStage(Stage expected, const char* call) const;
  // Records `status` as the abort reason, wipes secrets, returns it.
  absl::Status Abort(absl::Status status);
  absl::Status VerifyRoster(const KeyRoster& roster);
  absl::StatusOr<ShareBundle> MakeShares();
  absl::Status AcceptDelivery(const ShareDelivery& delivery);
  absl::StatusOr<UnmaskResponse> Reveal(const UnmaskRequest& request);
  absl::Time Now() const;

  ClientOptions options_;
  SigningKey signing_key_;
  const RoundConfig config_;
  const std::array<uint8_t, 32> config_digest_;
  const EncodingParameters encoding_;
  const ParticipantId id_;
  const std::string model_digest_;

  Stage stage_ = Stage::kReady;
  absl::Status abort_status_;

  // Stage 0 secrets and the advertisement.
  std::optional<X25519PrivateKey> encryption_key_;
  SecretBytes mask_key_seed_;  // s_u^SK is X25519PrivateKey::FromBytes(seed)
  std::optional<X25519PrivateKey> mask_key_;
  SecretBytes self_mask_seed_;  // b_u
  KeyAdvertisement advertisement_;

  // Stage 1.
  GraphParameters parameters_;
  std::optional<NeighbourGraph> graph_;
  std::vector<ParticipantId> neighbours_;
  std::vector<ParticipantId> holders_;  // of this client's secrets
  std::map<ParticipantId, PeerKeys> peer_keys_;
  // AES-GCM per neighbour (both directions), derived once in ShareKeys.
  std::map<ParticipantId, std::unique_ptr<Aead>> share_ciphers_;
  HeldShares own_shares_;

  // Stage 2: shares received, i.e. the peers this client masked with.
  std::map<ParticipantId, HeldShares> held_;

  // Stage 3: what was revealed per peer, for the never-both rule.
  std::map<ParticipantId, ShareKind> revealed_;
};

}  // namespace samverka::security::secagg
