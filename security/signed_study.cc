// security/signed_study.cc
#include "security/signed_study.h"

#include <array>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/codec.h"
#include "common/status_macros.h"
#include "security/internal/openssl_util.h"

namespace samverka::security {
namespace {

constexpr char kDomain[] = "samverka signed study v1";

void AppendField(std::string* out, absl::string_view field) {
  absl::StrAppend(out, field.size(), ":", field, "\n");
}

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status CheckEnvelope(const StudyEnvelope& envelope) {
  if (envelope.federation_id.empty()) {
    return absl::InvalidArgumentError("signed study: no federation id");
  }
  if (envelope.manifest.empty()) return absl::InvalidArgumentError("signed study: empty manifest");
  if (!envelope.model_sha256.empty() && !IsLowerHex(envelope.model_sha256, 64)) {
    return absl::InvalidArgumentError("signed study: model_sha256 is not a SHA-256 in hex");
  }
  if (!IsLowerHex(envelope.nonce, 32)) {
    return absl::InvalidArgumentError("signed study: nonce is not 32 hex digits");
  }
  return absl::OkStatus();
}

}  // namespace

StudyEnvelope NewStudyEnvelope(std::string federation_id, std::string manifest,
                               std::string model_sha256) {
  std::array<uint8_t, 16> nonce{};
  // RandomBytes fails only if the CSPRNG cannot be seeded; then there is
  // nothing safe to do.
  if (!internal::RandomBytes(std::span<uint8_t>(nonce)).ok()) std::abort();
  std::string hex;
  for (uint8_t b : nonce) absl::StrAppendFormat(&hex, "%02x", b);
  return {std::move(federation_id), std::move(manifest), std::move(model_sha256),
          absl::ToUnixMillis(absl::Now()), std::move(hex)};
}

std::string StudySigningBytes(const StudyEnvelope& envelope) {
  std::string out;
  AppendField(&out, kDomain);
  AppendField(&out, envelope.federation_id);
  AppendField(&out, absl::StrCat(envelope.submitted_unix_ms));
  AppendField(&out, envelope.nonce);
  AppendField(&out, envelope.model_sha256);
  AppendField(&out, envelope.manifest);
  return out;
}

std::string StudyId(const StudyEnvelope& envelope) {
  return Sha256Hex(StudySigningBytes(envelope)).substr(0, 16);
}

absl::StatusOr<std::string> SignStudy(const StudyEnvelope& envelope, const SigningKey& key) {
  SV_RETURN_IF_ERROR(CheckEnvelope(envelope));
  return key.Sign(StudySigningBytes(envelope));
}

absl::StatusOr<PeerIdentity> VerifyStudySignature(const StudyEnvelope& envelope,
                                                  std::string_view signature,
                                                  std::string_view signer_pem,
                                                  std::string_view ca_pem,
                                                  const RevocationList* revoked, absl::Time at) {
  SV_RETURN_IF_ERROR(CheckEnvelope(envelope));
  SV_RETURN_IF_ERROR(VerifyCertificateChain(signer_pem, ca_pem, at));
  SV_ASSIGN_OR_RETURN(PeerIdentity signer, ParsePeerCertificate(signer_pem));
  if (signer.role != Role::kOperator) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the study is signed by '", signer.name, "', whose certificate is not an operator's (role ",
        std::string(RoleName(signer.role)), ")"));
  }
  if (signer.federation != envelope.federation_id) {
    return absl::UnauthenticatedError(absl::StrCat("the study's signer '", signer.name,
                                                   "' belongs to federation '", signer.federation,
                                                   "', not '", envelope.federation_id, "'"));
  }
  if (revoked != nullptr && revoked->IsRevoked(signer.serial_hex)) {
    return absl::UnauthenticatedError(absl::StrCat("the study's signer '", signer.name,
                                                   "' has a revoked certificate (serial ",
                                                   signer.serial_hex, ")"));
  }
  SV_ASSIGN_OR_RETURN(Certificate certificate, Certificate::FromPem(signer_pem));
  if (absl::Status valid = certificate.Verify(StudySigningBytes(envelope), signature); !valid.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the study's signature does not verify with the certificate of '", signer.name,
        "': the manifest, model digest or federation was changed after it was signed"));
  }
  return signer;
}

}  // namespace samverka::security
