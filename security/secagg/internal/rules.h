// security/secagg/internal/rules.h
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/aead.h"
#include "security/prg.h"
#include "security/secagg/graph.h"
#include "security/secagg/messages.h"
#include "security/secagg/verification_cache.h"
#include "security/secret_bytes.h"
#include "security/shamir.h"
#include "security/x25519.h"

// The protocol rules that client and server must apply identically: what is
// signed, how the graph seed and keys are derived, how shares are packed.
// Every derived value is domain-separated and bound to the federation, the
// round and the participant ids. See docs/protocol.md.
namespace samverka::security::secagg::internal {

using Digest = std::array<uint8_t, 32>;

// The byte string a client signs in stage 0: a domain tag, federation id,
// round, participant id, client name, round-config digest, model digest,
// both public keys and the self-mask commitment, length-prefixed.
std::string AdvertisementSigningInput(const RoundConfig& config,
                                      const Digest& config_digest,
                                      const KeyAdvertisement& advertisement);

// SHA-256 commitment to a self-mask seed (domain-separated).
Digest SelfMaskCommitment(const SecretBytes& self_mask_seed);

// Checks one advertisement for `config`: round, non-empty name, the
// certificate chain against `ca_pem` at `now`, its common name equal to
// client_name, and the signature. kFailedPrecondition for a wrong round;
// kUnauthenticated (naming the participant) for everything else. With a
// `cache`, a check that already succeeded for identical inputs is skipped.
absl::Status VerifyAdvertisement(const KeyAdvertisement& advertisement,
                                 const RoundConfig& config,
                                 const Digest& config_digest,
                                 std::string_view ca_pem, absl::Time now,
                                 VerificationCache* cache = nullptr);

// The graph seed: SHA-256 over a domain tag, the config digest and, for
// every roster entry in ascending id order, its id, name, model digest, two
// public keys and self-mask commitment. All of these are signed by their
// clients and fresh per round, so the coordinator can only influence the
// seed by leaving clients out. Signatures and certificates are excluded:
// their encoding is malleable.
SecretBytes GraphSeed(const Digest& config_digest,
                      std::span<const KeyAdvertisement> entries);

// The round's parameters and graph for a roster (ascending, distinct ids).
struct RoundGraph {
  GraphParameters parameters;
  NeighbourGraph graph;
};
absl::StatusOr<RoundGraph> BuildRoundGraph(
    const RoundConfig& config, const Digest& config_digest,
    std::span<const KeyAdvertisement> entries);

// AES-256-GCM for the shares exchanged by `a` and `b` (either order):
// key = HKDF-SHA256(X25519(own, peer), salt "samverka/secagg/v1",
// info "share-encryption" | federation | round | min id | max id).
absl::StatusOr<std::unique_ptr<Aead>> ShareCipher(const X25519PrivateKey& own,
                                                  const X25519PublicKey& peer,
                                                  const RoundConfig& config,
                                                  ParticipantId a,
                                                  ParticipantId b);
// Associated data binding a share ciphertext to (round, sender, recipient).
std::string ShareAssociatedData(const RoundConfig& config, ParticipantId sender,
                                ParticipantId recipient);

// The pairwise mask seed s_{a,b} = HKDF-SHA256(X25519(own, peer), salt,
// info "pairwise-mask" | federation | round | min id | max id); symmetric.
absl::StatusOr<SecretBytes> PairwiseMaskSeed(const X25519PrivateKey& own,
                                             const X25519PublicKey& peer,
                                             const RoundConfig& config,
                                             ParticipantId a, ParticipantId b);
// PRG contexts of the masks.
std::string PairwiseMaskContext(const RoundConfig& config);
std::string SelfMaskContext(const RoundConfig& config, ParticipantId owner);
// Sign of s_{own,peer}'s mask in own's masked input: + if own < peer, else
// - (Bonawitz et al. 2017, section 4), so each pair cancels in the sum.
inline MaskSign PairwiseSign(ParticipantId own, ParticipantId peer) {
  return own < peer ? MaskSign::kAdd : MaskSign::kSubtract;
}
inline MaskSign Opposite(MaskSign sign) {
  return sign == MaskSign::kAdd ? MaskSign::kSubtract : MaskSign::kAdd;
}

// The plaintext of an EncryptedShare: version 1 | self-mask share |
// mask-key share (serialised ShamirShares).
inline constexpr size_t kSharePlaintextSize =
    1 + 2 * ShamirShare::kSerializedSize;
SecretBytes PackShares(const SecretBytes& self_mask_share,
                       const SecretBytes& mask_key_share);
struct UnpackedShares {
  SecretBytes self_mask_share;
  SecretBytes mask_key_share;
};
// kDataLoss if the plaintext is malformed or a share does not parse or does
// not have x-coordinate `expected_x`.
absl::StatusOr<UnpackedShares> UnpackShares(const SecretBytes& plaintext,
                                            uint32_t expected_x);

// The X25519 public key in raw bytes; kInvalidArgument if malformed.
absl::StatusOr<X25519PublicKey> PublicKey(const std::array<uint8_t, 32>& raw);

}  // namespace samverka::security::secagg::internal
