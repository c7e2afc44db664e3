// security/secagg/messages.h
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secagg/encoding.h"
#include "security/secagg/graph.h"
#include "security/secagg/modular_vector.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// The SecAgg+ messages (Bonawitz et al., CCS 2017, figure 4; Bell et al.,
// CCS 2020) as plain structs, and their wire format: "SVSA" | u8 format
// version (1) | u8 message type | fields, integers little-endian, byte
// strings u32-length-prefixed. Parsers bound every length and count, and
// fail with kInvalidArgument naming the field; they check form only, the
// state machines check meaning. See docs/protocol.md.

inline constexpr uint8_t kWireVersion = 1;

// What the coordinator announces with the round's task, identical for every
// client; clients sign its digest, so all neighbours agree on it.
struct RoundConfig {
  std::string federation_id;
  int64_t round = 0;
  ThreatModel threat;
  EncodingOptions encoding;
  // Model coordinates d (encoded vectors have d + 1 elements).
  uint64_t vector_length = 0;
  // Roster size bounds. max_clients also sets the quantisation headroom.
  int min_clients = 3;
  int max_clients = 1000;
  // Rosters smaller than this use the complete graph.
  int min_sparse_clients = 32;
  // Operator overrides of the neighbours k and threshold t (0: chosen from
  // the threat model; see OverrideGraphParameters).
  int num_neighbours = 0;
  int threshold = 0;

  // kInvalidArgument naming the field, including encodings that could wrap
  // for max_clients summands.
  absl::Status Validate() const;
};

// The encoding a valid config implies (ResolveEncoding over max_clients).
absl::StatusOr<EncodingParameters> EncodingFor(const RoundConfig& config);
// SHA-256 over the config's serialisation (domain-separated).
std::array<uint8_t, 32> RoundConfigDigest(const RoundConfig& config);

// Stage 0, client -> server, and (all of them) server -> every client in
// the KeyRoster.
struct KeyAdvertisement {
  ParticipantId sender = 0;
  int64_t round = 0;
  // The client's name; must equal its certificate's subject common name.
  std::string client_name;
  // Digest of the global model this client received (computed locally).
  std::string model_digest;
  std::array<uint8_t, 32> encryption_key{};  // X25519 c_u^PK (shares)
  std::array<uint8_t, 32> mask_key{};        // X25519 s_u^PK (pairwise masks)
  // SHA-256 commitment to the self-mask seed b_u, so the server can tell a
  // wrong reconstruction (corrupt share) from a right one.
  std::array<uint8_t, 32> self_mask_commitment{};
  std::string certificate_chain;  // PEM, leaf first
  std::string signature;          // see protocol.h AdvertisementSigningInput
};

struct KeyRoster {
  int64_t round = 0;
  std::vector<KeyAdvertisement> entries;  // ascending sender, all of them
};

// One encrypted pair of Shamir shares (self-mask seed, mask-key seed).
struct EncryptedShare {
  ParticipantId peer = 0;  // recipient in a ShareBundle, sender in a delivery
  std::string ciphertext;  // AES-256-GCM nonce || ciphertext || tag
};

// Stage 1, client -> server: one EncryptedShare per neighbour.
struct ShareBundle {
  ParticipantId sender = 0;
  int64_t round = 0;
  std::vector<EncryptedShare> shares;
};

// Stage 2 request, server -> one client: the shares addressed to it.
struct ShareDelivery {
  int64_t round = 0;
  std::vector<EncryptedShare> shares;
};

// Stage 2, client -> server.
struct MaskedInput {
  ParticipantId sender = 0;
  int64_t round = 0;
  ModularVector masked;
};

// Stage 3 request, server -> one client: who sent a masked input and who
// dropped after sharing keys (restricted to the client's neighbours).
struct UnmaskRequest {
  int64_t round = 0;
  std::vector<ParticipantId> survivors;
  std::vector<ParticipantId> dropped;
};

enum class ShareKind : uint8_t {
  kSelfMask = 1,  // share of b_u, revealed for survivors
  kMaskKey = 2,   // share of s_u^SK's seed, revealed for dropped clients
};

struct RevealedShare {
  ParticipantId owner = 0;
  ShareKind kind = ShareKind::kSelfMask;
  SecretBytes share;  // ShamirShare::Serialize()
};

// Stage 3, client -> server.
struct UnmaskResponse {
  ParticipantId sender = 0;
  int64_t round = 0;
  std::vector<RevealedShare> shares;
};

// Serialisation. An UnmaskResponse's bytes contain shares: send them only
// over the authenticated channel and do not log them.
std::string Serialize(const RoundConfig& message);
std::string Serialize(const KeyAdvertisement& message);
std::string Serialize(const KeyRoster& message);
std::string Serialize(const ShareBundle& message);
std::string Serialize(const ShareDelivery& message);
std::string Serialize(const MaskedInput& message);
std::string Serialize(const UnmaskRequest& message);
std::string Serialize(const UnmaskResponse& message);

absl::StatusOr<RoundConfig> ParseRoundConfig(std::string_view bytes);
absl::StatusOr<KeyAdvertisement> ParseKeyAdvertisement(std::string_view bytes);
absl::StatusOr<KeyRoster> ParseKeyRoster(std::string_view bytes);
absl::StatusOr<ShareBundle> ParseShareBundle(std::string_view bytes);
absl::StatusOr<ShareDelivery> ParseShareDelivery(std::string_view bytes);
absl::StatusOr<MaskedInput> ParseMaskedInput(std::string_view bytes);
absl::StatusOr<UnmaskRequest> ParseUnmaskRequest(std::string_view bytes);
absl::StatusOr<UnmaskResponse> ParseUnmaskResponse(std::string_view bytes);

}  // namespace samverka::security::secagg
