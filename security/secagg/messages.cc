// security/secagg/messages.cc
#include "security/secagg/messages.h"

#include <algorithm>
#include <string>

#include "common/status_macros.h"
#include "security/secagg/internal/crypto_util.h"
#include "security/secagg/internal/wire.h"
#include "security/shamir.h"

namespace samverka::security::secagg {
namespace {

using internal::ByteReader;
using internal::ByteWriter;

constexpr std::string_view kMagic = "SVSA";

enum class MessageType : uint8_t {
  kRoundConfig = 1,
  kKeyAdvertisement = 2,
  kKeyRoster = 3,
  kShareBundle = 4,
  kShareDelivery = 5,
  kMaskedInput = 6,
  kUnmaskRequest = 7,
  kUnmaskResponse = 8,
};

// Bounds on untrusted fields.
constexpr size_t kMaxNameSize = 256;
constexpr size_t kMaxDigestSize = 128;
constexpr size_t kMaxCertificateChainSize = 64 * 1024;
constexpr size_t kMaxSignatureSize = 1024;
constexpr size_t kMaxCiphertextSize = 1024;
constexpr uint32_t kMaxVectorElements = uint32_t{1} << 31;
// Smallest serialised sizes, to bound counts by the bytes present.
constexpr size_t kMinAdvertisementSize = 4 + 8 + 4 + 4 + 3 * 32 + 4 + 4;
constexpr size_t kMinEncryptedShareSize = 4 + 4;
constexpr size_t kMinRevealedShareSize = 4 + 1 + 4;

ByteWriter Header(MessageType type) {
  ByteWriter w;
  w.Raw(kMagic);
  w.U8(kWireVersion);
  w.U8(static_cast<uint8_t>(type));
  return w;
}

absl::Status ReadHeader(ByteReader& r, MessageType type, const char* name) {
  SV_ASSIGN_OR_RETURN(std::string_view magic, r.Raw(kMagic.size(), name));
  if (magic != kMagic) {
    return absl::InvalidArgumentError(std::string(name) +
                                      ": not a SecAgg message (bad magic)");
  }
  SV_ASSIGN_OR_RETURN(uint8_t version, r.U8(name));
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(std::string(name) +
                                      ": unsupported wire version " +
                                      std::to_string(version));
  }
  SV_ASSIGN_OR_RETURN(uint8_t actual, r.U8(name));
  if (actual != static_cast<uint8_t>(type)) {
    return absl::InvalidArgumentError(
        std::string(name) + ": wrong message type " + std::to_string(actual));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::array<uint8_t, 32>> ReadKey32(ByteReader& r,
                                                  std::string_view what) {
  SV_ASSIGN_OR_RETURN(std::string_view raw, r.Raw(32, what));
  std::array<uint8_t, 32> out;
  std::copy(raw.begin(), raw.end(), out.begin());
  return out;
}

void WriteAdvertisement(ByteWriter& w, const KeyAdvertisement& m) {
  w.U32(m.sender);
  w.I64(m.round);
  w.Bytes(m.client_name);
  w.Bytes(m.model_digest);
  w.Raw(m.encryption_key);
  w.Raw(m.mask_key);
  w.Raw(m.self_mask_commitment);
  w.Bytes(m.certificate_chain);
  w.Bytes(m.signature);
}

absl::StatusOr<KeyAdvertisement> ReadAdvertisement(ByteReader& r) {
  KeyAdvertisement m;
  SV_ASSIGN_OR_RETURN(m.sender, r.U32("advertisement sender"));
  SV_ASSIGN_OR_RETURN(m.round, r.I64("advertisement round"));
  SV_ASSIGN_OR_RETURN(std::string_view name,
                      r.Bytes(kMaxNameSize, "client name"));
  m.client_name = std::string(name);
  SV_ASSIGN_OR_RETURN(std::string_view digest,
                      r.Bytes(kMaxDigestSize, "model digest"));
  m.model_digest = std::string(digest);
  SV_ASSIGN_OR_RETURN(m.encryption_key, ReadKey32(r, "encryption key"));
  SV_ASSIGN_OR_RETURN(m.mask_key, ReadKey32(r, "mask key"));
  SV_ASSIGN_OR_RETURN(m.self_mask_commitment,
                      ReadKey32(r, "self-mask commitment"));
  SV_ASSIGN_OR_RETURN(std::string_view chain,
                      r.Bytes(kMaxCertificateChainSize, "certificate chain"));
  m.certificate_chain = std::string(chain);
  SV_ASSIGN_OR_RETURN(std::string_view signature,
                      r.Bytes(kMaxSignatureSize, "signature"));
  m.signature = std::string(signature);
  return m;
}

void WriteShares(ByteWriter& w, const std::vector<EncryptedShare>& shares) {
  w.U32(static_cast<uint32_t>(shares.size()));
  for (const EncryptedShare& s : shares) {
    w.U32(s.peer);
    w.Bytes(s.ciphertext);
  }
}

absl::StatusOr<std::vector<EncryptedShare>> ReadShares(ByteReader& r) {
  SV_ASSIGN_OR_RETURN(
      uint32_t count,
      r.Count(kMaxClients, kMinEncryptedShareSize, "encrypted shares"));
  std::vector<EncryptedShare> shares(count);
  for (EncryptedShare& s : shares) {
    SV_ASSIGN_OR_RETURN(s.peer, r.U32("share peer"));
    SV_ASSIGN_OR_RETURN(std::string_view ciphertext,
                        r.Bytes(kMaxCiphertextSize, "share ciphertext"));
    s.ciphertext = std::string(ciphertext);
  }
  return shares;
}

void WriteIds(ByteWriter& w, const std::vector<ParticipantId>& ids) {
  w.U32(static_cast<uint32_t>(ids.size()));
  for (ParticipantId id : ids) w.U32(id);
}

absl::StatusOr<std::vector<ParticipantId>> ReadIds(ByteReader& r,
                                                   std::string_view what) {
  SV_ASSIGN_OR_RETURN(uint32_t count, r.Count(kMaxClients, 4, what));
  std::vector<ParticipantId> ids(count);
  for (ParticipantId& id : ids) {
    SV_ASSIGN_OR_RETURN(id, r.U32(what));
  }
  return ids;
}

}  // namespace

absl::Status RoundConfig::Validate() const {
  if (federation_id.empty() || federation_id.size() > kMaxNameSize) {
    return absl::InvalidArgumentError("federation_id must have 1 to 256 bytes");
  }
  if (round < 0) {
    return absl::InvalidArgumentError("round must be >= 0, got " +
                                      std::to_string(round));
  }
  SV_RETURN_IF_ERROR(threat.Validate());
  if (min_clients < 2 || min_clients > max_clients ||
      max_clients > kMaxClients) {
    return absl::InvalidArgumentError(
        "need 2 <= min_clients <= max_clients <= 1000000, got min_clients " +
        std::to_string(min_clients) + ", max_clients " +
        std::to_string(max_clients));
  }
  if (min_sparse_clients < 1) {
    return absl::InvalidArgumentError("min_sparse_clients must be >= 1");
  }
  if (num_neighbours < 0 || threshold < 0 || threshold > max_clients) {
    return absl::InvalidArgumentError(
        "neighbours and threshold overrides must be >= 0 and the threshold "
        "at most max_clients");
  }
  return EncodingFor(*this).status();
}

absl::StatusOr<EncodingParameters> EncodingFor(const RoundConfig& config) {
  return ResolveEncoding(config.encoding, config.max_clients,
                         config.vector_length);
}

std::array<uint8_t, 32> RoundConfigDigest(const RoundConfig& config) {
  return internal::Sha256("samverka/secagg/round-config/v1\n" +
                          Serialize(config));
}

std::string Serialize(const RoundConfig& m) {
  ByteWriter w = Header(MessageType::kRoundConfig);
  w.Bytes(m.federation_id);
  w.I64(m.round);
  w.F64(m.threat.corrupt_rate);
  w.F64(m.threat.dropout_rate);
  w.U8(static_cast<uint8_t>(m.threat.adversary));
  w.F64(m.encoding.clip_range);
  w.F64(m.encoding.max_weight);
  w.U32(static_cast<uint32_t>(m.encoding.modulus_bits));
  w.U32(static_cast<uint32_t>(m.encoding.quantisation_bits));
  w.U64(m.vector_length);
  w.U32(static_cast<uint32_t>(m.min_clients));
  w.U32(static_cast<uint32_t>(m.max_clients));
  w.U32(static_cast<uint32_t>(m.min_sparse_clients));
  w.U32(static_cast<uint32_t>(m.num_neighbours));
  w.U32(static_cast<uint32_t>(m.threshold));
  return w.Take();
}

absl::StatusOr<RoundConfig> ParseRoundConfig(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(ReadHeader(r, MessageType::kRoundConfig, "RoundConfig"));
  RoundConfig m;
  SV_ASSIGN_OR_RETURN(std::string_view federation,
                      r.Bytes(kMaxNameSize, "federation id"));
  m.federation_id = std::string(federation);
  SV_ASSIGN_OR_RETURN(m.round, r.I64("round"));
  SV_ASSIGN_OR_RETURN(m.threat.corrupt_rate, r.F64("corrupt rate"));
  SV_ASSIGN_OR_RETURN(m.threat.dropout_rate, r.F64("dropout rate"));
  SV_ASSIGN_OR_RETURN(uint8_t adversary, r.U8("adversary model"));
  m.threat.adversary = static_cast<AdversaryModel>(adversary);
  SV_ASSIGN_OR_RETURN(m.encoding.clip_range, r.F64("clip range"));
  SV_ASSIGN_OR_RETURN(m.encoding.max_weight, r.F64("max weight"));
  SV_ASSIGN_OR_RETURN(uint32_t modulus_bits, r.U32("modulus bits"));
  SV_ASSIGN_OR_RETURN(uint32_t quantisation_bits, r.U32("quantisation bits"));
  SV_ASSIGN_OR_RETURN(m.vector_length, r.U64("vector length"));
  SV_ASSIGN_OR_RETURN(uint32_t min_clients, r.U32("min clients"));
  SV_ASSIGN_OR_RETURN(uint32_t max_clients, r.U32("max clients"));
  SV_ASSIGN_OR_RETURN(uint32_t min_sparse, r.U32("min sparse clients"));
  SV_ASSIGN_OR_RETURN(uint32_t neighbours, r.U32("neighbours override"));
  SV_ASSIGN_OR_RETURN(uint32_t threshold, r.U32("threshold override"));
  SV_RETURN_IF_ERROR(r.ExpectEnd("RoundConfig"));
  // Out-of-range values become negative or large ints; Validate rejects them.
  m.encoding.modulus_bits = static_cast<int>(std::min(modulus_bits, 1024u));
  m.encoding.quantisation_bits =
      static_cast<int>(std::min(quantisation_bits, 1024u));
  m.min_clients = static_cast<int>(std::min<uint32_t>(min_clients, 1 << 30));
  m.max_clients = static_cast<int>(std::min<uint32_t>(max_clients, 1 << 30));
  m.min_sparse_clients =
      static_cast<int>(std::min<uint32_t>(min_sparse, 1 << 30));
  m.num_neighbours = static_cast<int>(std::min<uint32_t>(neighbours, 1 << 30));
  m.threshold = static_cast<int>(std::min<uint32_t>(threshold, 1 << 30));
  SV_RETURN_IF_ERROR(m.Validate());
  return m;
}

std::string Serialize(const KeyAdvertisement& m) {
  ByteWriter w = Header(MessageType::kKeyAdvertisement);
  WriteAdvertisement(w, m);
  return w.Take();
}

absl::StatusOr<KeyAdvertisement> ParseKeyAdvertisement(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(
      ReadHeader(r, MessageType::kKeyAdvertisement, "KeyAdvertisement"));
  SV_ASSIGN_OR_RETURN(KeyAdvertisement m, ReadAdvertisement(r));
  SV_RETURN_IF_ERROR(r.ExpectEnd("KeyAdvertisement"));
  return m;
}

std::string Serialize(const KeyRoster& m) {
  ByteWriter w = Header(MessageType::kKeyRoster);
  w.I64(m.round);
  w.U32(static_cast<uint32_t>(m.entries.size()));
  for (const KeyAdvertisement& entry : m.entries) WriteAdvertisement(w, entry);
  return w.Take();
}

absl::StatusOr<KeyRoster> ParseKeyRoster(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(ReadHeader(r, MessageType::kKeyRoster, "KeyRoster"));
  KeyRoster m;
  SV_ASSIGN_OR_RETURN(m.round, r.I64("roster round"));
  SV_ASSIGN_OR_RETURN(
      uint32_t count,
      r.Count(kMaxClients, kMinAdvertisementSize, "roster entries"));
  m.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    SV_ASSIGN_OR_RETURN(KeyAdvertisement entry, ReadAdvertisement(r));
    m.entries.push_back(std::move(entry));
  }
  SV_RETURN_IF_ERROR(r.ExpectEnd("KeyRoster"));
  return m;
}

std::string Serialize(const ShareBundle& m) {
  ByteWriter w = Header(MessageType::kShareBundle);
  w.U32(m.sender);
  w.I64(m.round);
  WriteShares(w, m.shares);
  return w.Take();
}

absl::StatusOr<ShareBundle> ParseShareBundle(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(ReadHeader(r, MessageType::kShareBundle, "ShareBundle"));
  ShareBundle m;
  SV_ASSIGN_OR_RETURN(m.sender, r.U32("bundle sender"));
  SV_ASSIGN_OR_RETURN(m.round, r.I64("bundle round"));
  SV_ASSIGN_OR_RETURN(m.shares, ReadShares(r));
  SV_RETURN_IF_ERROR(r.ExpectEnd("ShareBundle"));
  return m;
}

std::string Serialize(const ShareDelivery& m) {
  ByteWriter w = Header(MessageType::kShareDelivery);
  w.I64(m.round);
  WriteShares(w, m.shares);
  return w.Take();
}

absl::StatusOr<ShareDelivery> ParseShareDelivery(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(
      ReadHeader(r, MessageType::kShareDelivery, "ShareDelivery"));
  ShareDelivery m;
  SV_ASSIGN_OR_RETURN(m.round, r.I64("delivery round"));
  SV_ASSIGN_OR_RETURN(m.shares, ReadShares(r));
  SV_RETURN_IF_ERROR(r.ExpectEnd("ShareDelivery"));
  return m;
}

std::string Serialize(const MaskedInput& m) {
  ByteWriter w = Header(MessageType::kMaskedInput);
  w.U32(m.sender);
  w.I64(m.round);
  w.U8(static_cast<uint8_t>(m.masked.bits()));
  w.U32(static_cast<uint32_t>(m.masked.size()));
  if (m.masked.bits() == 32) {
    for (uint32_t word : m.masked.words32()) w.U32(word);
  } else {
    for (uint64_t word : m.masked.words64()) w.U64(word);
  }
  return w.Take();
}

absl::StatusOr<MaskedInput> ParseMaskedInput(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(ReadHeader(r, MessageType::kMaskedInput, "MaskedInput"));
  MaskedInput m;
  SV_ASSIGN_OR_RETURN(m.sender, r.U32("masked input sender"));
  SV_ASSIGN_OR_RETURN(m.round, r.I64("masked input round"));
  SV_ASSIGN_OR_RETURN(uint8_t bits, r.U8("ring width"));
  if (bits != 32 && bits != 64) {
    return absl::InvalidArgumentError(
        "masked input ring must be Z_2^32 or "
        "Z_2^64, got bits = " +
        std::to_string(bits));
  }
  SV_ASSIGN_OR_RETURN(uint32_t count, r.Count(kMaxVectorElements, bits / 8,
                                              "masked vector elements"));
  if (bits == 32) {
    std::vector<uint32_t> words(count);
    for (uint32_t& word : words) {
      SV_ASSIGN_OR_RETURN(word, r.U32("masked vector"));
    }
    m.masked = ModularVector::FromWords(std::move(words));
  } else {
    std::vector<uint64_t> words(count);
    for (uint64_t& word : words) {
      SV_ASSIGN_OR_RETURN(word, r.U64("masked vector"));
    }
    m.masked = ModularVector::FromWords(std::move(words));
  }
  SV_RETURN_IF_ERROR(r.ExpectEnd("MaskedInput"));
  return m;
}

std::string Serialize(const UnmaskRequest& m) {
  ByteWriter w = Header(MessageType::kUnmaskRequest);
  w.I64(m.round);
  WriteIds(w, m.survivors);
  WriteIds(w, m.dropped);
  return w.Take();
}

absl::StatusOr<UnmaskRequest> ParseUnmaskRequest(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(
      ReadHeader(r, MessageType::kUnmaskRequest, "UnmaskRequest"));
  UnmaskRequest m;
  SV_ASSIGN_OR_RETURN(m.round, r.I64("unmask round"));
  SV_ASSIGN_OR_RETURN(m.survivors, ReadIds(r, "survivors"));
  SV_ASSIGN_OR_RETURN(m.dropped, ReadIds(r, "dropped"));
  SV_RETURN_IF_ERROR(r.ExpectEnd("UnmaskRequest"));
  return m;
}

std::string Serialize(const UnmaskResponse& m) {
  ByteWriter w = Header(MessageType::kUnmaskResponse);
  w.U32(m.sender);
  w.I64(m.round);
  w.U32(static_cast<uint32_t>(m.shares.size()));
  for (const RevealedShare& s : m.shares) {
    w.U32(s.owner);
    w.U8(static_cast<uint8_t>(s.kind));
    w.Bytes(s.share.span());
  }
  return w.Take();
}

absl::StatusOr<UnmaskResponse> ParseUnmaskResponse(std::string_view bytes) {
  ByteReader r(bytes);
  SV_RETURN_IF_ERROR(
      ReadHeader(r, MessageType::kUnmaskResponse, "UnmaskResponse"));
  UnmaskResponse m;
  SV_ASSIGN_OR_RETURN(m.sender, r.U32("unmask sender"));
  SV_ASSIGN_OR_RETURN(m.round, r.I64("unmask round"));
  SV_ASSIGN_OR_RETURN(
      uint32_t count,
      r.Count(2 * kMaxClients, kMinRevealedShareSize, "revealed shares"));
  m.shares.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    RevealedShare s;
    SV_ASSIGN_OR_RETURN(s.owner, r.U32("share owner"));
    SV_ASSIGN_OR_RETURN(uint8_t kind, r.U8("share kind"));
    if (kind != static_cast<uint8_t>(ShareKind::kSelfMask) &&
        kind != static_cast<uint8_t>(ShareKind::kMaskKey)) {
      return absl::InvalidArgumentError("unknown share kind " +
                                        std::to_string(kind));
    }
    s.kind = static_cast<ShareKind>(kind);
    SV_ASSIGN_OR_RETURN(std::string_view share,
                        r.Bytes(ShamirShare::kSerializedSize, "share"));
    s.share = SecretBytes::CopyFrom(share);
    m.shares.push_back(std::move(s));
  }
  SV_RETURN_IF_ERROR(r.ExpectEnd("UnmaskResponse"));
  return m;
}

}  // namespace samverka::security::secagg
