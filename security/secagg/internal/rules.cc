// security/secagg/internal/rules.cc
#include "security/secagg/internal/rules.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string>

#include "common/status_macros.h"
#include "security/hkdf.h"
#include "security/pki.h"
#include "security/secagg/internal/crypto_util.h"
#include "security/secagg/internal/wire.h"
#include "security/signature.h"

namespace samverka::security::secagg::internal {
namespace {

constexpr std::string_view kKdfSalt = "samverka/secagg/v1";
constexpr uint8_t kSharePlaintextVersion = 1;

// info = label | federation | round | min(a, b) | max(a, b).
std::string PairInfo(std::string_view label, const RoundConfig& config,
                     ParticipantId a, ParticipantId b) {
  ByteWriter w;
  w.Bytes(label);
  w.Bytes(config.federation_id);
  w.I64(config.round);
  w.U32(std::min(a, b));
  w.U32(std::max(a, b));
  return w.Take();
}

std::string Who(const KeyAdvertisement& advertisement) {
  return "participant " + std::to_string(advertisement.sender) + " ('" +
         advertisement.client_name + "')";
}

}  // namespace

std::string AdvertisementSigningInput(const RoundConfig& config,
                                      const Digest& config_digest,
                                      const KeyAdvertisement& a) {
  ByteWriter w;
  w.Bytes(std::string_view("samverka/secagg/advertise-keys/v1"));
  w.Bytes(config.federation_id);
  w.I64(a.round);
  w.U32(a.sender);
  w.Bytes(a.client_name);
  w.Raw(config_digest);
  w.Bytes(a.model_digest);
  w.Raw(a.encryption_key);
  w.Raw(a.mask_key);
  w.Raw(a.self_mask_commitment);
  return w.Take();
}

Digest SelfMaskCommitment(const SecretBytes& self_mask_seed) {
  std::string input = "samverka/secagg/self-mask-commitment/v1\n";
  input.append(reinterpret_cast<const char*>(self_mask_seed.data()),
               self_mask_seed.size());
  const Digest digest = Sha256(input);
  OPENSSL_cleanse(input.data(), input.size());
  return digest;
}

absl::Status VerifyAdvertisement(const KeyAdvertisement& advertisement,
                                 const RoundConfig& config,
                                 const Digest& config_digest,
                                 std::string_view ca_pem, absl::Time now,
                                 VerificationCache* cache) {
  if (advertisement.round != config.round) {
    return absl::FailedPreconditionError(
        Who(advertisement) + " advertised keys for round " +
        std::to_string(advertisement.round) + ", this is round " +
        std::to_string(config.round));
  }
  if (advertisement.client_name.empty()) {
    return absl::UnauthenticatedError(Who(advertisement) + " has no name");
  }
  if (cache != nullptr) {
    ByteWriter key;
    key.Bytes(std::string_view("samverka/secagg/verification-cache/v1"));
    key.Bytes(ca_pem);
    key.Bytes(advertisement.certificate_chain);
    key.Bytes(AdvertisementSigningInput(config, config_digest, advertisement));
    key.Bytes(advertisement.signature);
    return cache->Check(Sha256(key.data()), now, [&] {
      return VerifyAdvertisement(advertisement, config, config_digest, ca_pem,
                                 now, nullptr);
    });
  }
  absl::Status chain =
      VerifyCertificateChain(advertisement.certificate_chain, ca_pem, now);
  if (!chain.ok()) {
    return absl::UnauthenticatedError(
        Who(advertisement) +
        ": certificate rejected: " + std::string(chain.message()));
  }
  absl::StatusOr<std::string> name =
      CertificateCommonName(advertisement.certificate_chain);
  if (!name.ok()) {
    return absl::UnauthenticatedError(Who(advertisement) + ": " +
                                      std::string(name.status().message()));
  }
  if (*name != advertisement.client_name) {
    return absl::UnauthenticatedError(
        Who(advertisement) + ": certificate is issued to '" + *name + "'");
  }
  // Samverka certificates name their role (OU): only sites may take part,
  // so the coordinator cannot enrol itself with its own certificate.
  if (absl::StatusOr<PeerIdentity> identity =
          ParsePeerCertificate(advertisement.certificate_chain);
      identity.ok() && identity->role != Role::kClient) {
    return absl::UnauthenticatedError(
        Who(advertisement) + ": certificate has role '" +
        std::string(RoleName(identity->role)) +
        "'; only client certificates take part in secure aggregation");
  }
  absl::StatusOr<Certificate> certificate =
      Certificate::FromPem(advertisement.certificate_chain);
  if (!certificate.ok()) {
    return absl::UnauthenticatedError(
        Who(advertisement) + ": " +
        std::string(certificate.status().message()));
  }
  if (!certificate
           ->Verify(
               AdvertisementSigningInput(config, config_digest, advertisement),
               advertisement.signature)
           .ok()) {
    return absl::UnauthenticatedError(
        Who(advertisement) +
        ": signature over the advertised keys, round config and model digest "
        "does not verify");
  }
  return absl::OkStatus();
}

SecretBytes GraphSeed(const Digest& config_digest,
                      std::span<const KeyAdvertisement> entries) {
  ByteWriter w;
  w.Bytes(std::string_view("samverka/secagg/graph-seed/v1"));
  w.Raw(config_digest);
  w.U32(static_cast<uint32_t>(entries.size()));
  for (const KeyAdvertisement& e : entries) {
    w.U32(e.sender);
    w.Bytes(e.client_name);
    w.Bytes(e.model_digest);
    w.Raw(e.encryption_key);
    w.Raw(e.mask_key);
    w.Raw(e.self_mask_commitment);
  }
  const Digest digest = Sha256(w.data());
  return SecretBytes::CopyFrom(digest);
}

absl::StatusOr<RoundGraph> BuildRoundGraph(
    const RoundConfig& config, const Digest& config_digest,
    std::span<const KeyAdvertisement> entries) {
  const int n = static_cast<int>(entries.size());
  SV_ASSIGN_OR_RETURN(
      GraphParameters parameters,
      ChooseGraphParameters(n, config.threat, config.min_sparse_clients));
  SV_ASSIGN_OR_RETURN(parameters,
                      OverrideGraphParameters(parameters, config.threat,
                                              config.num_neighbours,
                                              config.threshold));
  std::vector<ParticipantId> ids;
  ids.reserve(entries.size());
  for (const KeyAdvertisement& e : entries) ids.push_back(e.sender);
  if (parameters.complete) {
    SV_ASSIGN_OR_RETURN(NeighbourGraph graph,
                        NeighbourGraph::CreateComplete(std::move(ids)));
    return RoundGraph{parameters, std::move(graph)};
  }
  const SecretBytes seed = GraphSeed(config_digest, entries);
  SV_ASSIGN_OR_RETURN(NeighbourGraph graph,
                      NeighbourGraph::CreateHarary(
                          std::move(ids), parameters.num_neighbours, seed));
  return RoundGraph{parameters, std::move(graph)};
}

absl::StatusOr<std::unique_ptr<Aead>> ShareCipher(const X25519PrivateKey& own,
                                                  const X25519PublicKey& peer,
                                                  const RoundConfig& config,
                                                  ParticipantId a,
                                                  ParticipantId b) {
  SV_ASSIGN_OR_RETURN(SecretBytes shared, Agree(own, peer));
  SV_ASSIGN_OR_RETURN(
      SecretBytes key,
      HkdfSha256(shared, kKdfSalt, PairInfo("share-encryption", config, a, b),
                 32));
  return Aead::Create(key);
}

std::string ShareAssociatedData(const RoundConfig& config, ParticipantId sender,
                                ParticipantId recipient) {
  ByteWriter w;
  w.Bytes(std::string_view("samverka/secagg/share/v1"));
  w.Bytes(config.federation_id);
  w.I64(config.round);
  w.U32(sender);
  w.U32(recipient);
  return w.Take();
}

absl::StatusOr<SecretBytes> PairwiseMaskSeed(const X25519PrivateKey& own,
                                             const X25519PublicKey& peer,
                                             const RoundConfig& config,
                                             ParticipantId a, ParticipantId b) {
  SV_ASSIGN_OR_RETURN(SecretBytes shared, Agree(own, peer));
  return HkdfSha256(shared, kKdfSalt, PairInfo("pairwise-mask", config, a, b),
                    kPrgSeedSize);
}

std::string PairwiseMaskContext(const RoundConfig& config) {
  return "samverka/secagg/pairwise-mask/round=" + std::to_string(config.round);
}

std::string SelfMaskContext(const RoundConfig& config, ParticipantId owner) {
  return "samverka/secagg/self-mask/round=" + std::to_string(config.round) +
         "/participant=" + std::to_string(owner);
}

SecretBytes PackShares(const SecretBytes& self_mask_share,
                       const SecretBytes& mask_key_share) {
  SecretBytes out(kSharePlaintextSize);
  out.data()[0] = kSharePlaintextVersion;
  std::copy(self_mask_share.span().begin(), self_mask_share.span().end(),
            out.data() + 1);
  std::copy(mask_key_share.span().begin(), mask_key_share.span().end(),
            out.data() + 1 + ShamirShare::kSerializedSize);
  return out;
}

absl::StatusOr<UnpackedShares> UnpackShares(const SecretBytes& plaintext,
                                            uint32_t expected_x) {
  if (plaintext.size() != kSharePlaintextSize ||
      plaintext.data()[0] != kSharePlaintextVersion) {
    return absl::DataLossError("malformed share plaintext");
  }
  const size_t size = ShamirShare::kSerializedSize;
  UnpackedShares out{
      SecretBytes::CopyFrom(plaintext.span().subspan(1, size)),
      SecretBytes::CopyFrom(plaintext.span().subspan(1 + size, size))};
  for (const SecretBytes* share : {&out.self_mask_share, &out.mask_key_share}) {
    absl::StatusOr<ShamirShare> parsed = ShamirShare::Parse(*share);
    if (!parsed.ok()) return absl::DataLossError("malformed Shamir share");
    if (parsed->x() != expected_x) {
      return absl::DataLossError("Shamir share has the wrong x-coordinate");
    }
  }
  return out;
}

absl::StatusOr<X25519PublicKey> PublicKey(const std::array<uint8_t, 32>& raw) {
  return X25519PublicKey::FromBytes(std::span<const uint8_t>(raw));
}

}  // namespace samverka::security::secagg::internal
