// security/signed_study.h
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/pki.h"
#include "security/signature.h"

namespace samverka::security {

// A study as its operator signs it (DESIGN.md, "A standing federation"):
// the manifest byte for byte, the SHA-256 of the TorchScript file it brings,
// the federation it is for, when it was submitted and a random nonce. The
// signature covers all of them, so the coordinator can neither alter a
// study nor move it to another federation; sites verify it before they
// read any data.
struct StudyEnvelope {
  std::string federation_id;
  std::string manifest;      // study.toml, as submitted
  std::string model_sha256;  // lower-case hex; empty for a built-in model
  int64_t submitted_unix_ms = 0;
  std::string nonce;         // 32 lower-case hex digits from the CSPRNG
};

// A fresh envelope for `manifest` (nonce from RAND_bytes, time now).
StudyEnvelope NewStudyEnvelope(std::string federation_id, std::string manifest,
                               std::string model_sha256);

// The bytes that are signed: a domain label, then each field with its
// length, so no two envelopes share them.
std::string StudySigningBytes(const StudyEnvelope& envelope);

// The study's id: the first 16 hex digits of SHA-256(StudySigningBytes).
std::string StudyId(const StudyEnvelope& envelope);

// The operator's signature over StudySigningBytes.
absl::StatusOr<std::string> SignStudy(const StudyEnvelope& envelope, const SigningKey& key);

// Checks a signed study and returns who signed it. `signer_pem` must chain
// to `ca_pem` (at `at`), carry the operator role (OU) and the envelope's
// federation (O), and not be revoked in `revoked` (may be null: no list);
// the signature must verify over the envelope. kUnauthenticated naming what
// failed otherwise; kInvalidArgument for a malformed certificate or
// envelope (bad digest or nonce).
absl::StatusOr<PeerIdentity> VerifyStudySignature(const StudyEnvelope& envelope,
                                                  std::string_view signature,
                                                  std::string_view signer_pem,
                                                  std::string_view ca_pem,
                                                  const RevocationList* revoked, absl::Time at);

}  // namespace samverka::security
