// security/signature.h
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/internal/openssl_util.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// Signatures with a site's TLS identity, so SecAgg peers can check each
// other's advertised public keys (and the model digest they signed) against
// the federation CA without trusting the coordinator (DESIGN.md, Secure
// aggregation, step 0). Supported keys: ECDSA P-256 (signed over SHA-256,
// DER-encoded signatures) and Ed25519 (RFC 8032, pure). Other key types are
// rejected when loaded.

// A private signing key loaded from PEM (PKCS#8 or the traditional EC
// form; unencrypted). Move-only. Thread-safe: Sign is const.
class SigningKey {
 public:
  // kInvalidArgument if `pem` holds no readable private key (encrypted keys
  // are not supported) or the key is neither P-256 nor Ed25519.
  static absl::StatusOr<SigningKey> FromPem(const SecretBytes& pem);

  SigningKey(SigningKey&&) noexcept = default;
  SigningKey& operator=(SigningKey&&) noexcept = default;

  // The signature of `message`. kInternal if OpenSSL fails.
  absl::StatusOr<std::string> Sign(std::string_view message) const;

 private:
  explicit SigningKey(internal::EvpPkeyPtr key) : key_(std::move(key)) {}

  internal::EvpPkeyPtr key_;
};

// An X.509 certificate whose public key verifies signatures. Loading it does
// not establish trust: check it with VerifyCertificateChain first.
// Move-only. Thread-safe: Verify is const.
class Certificate {
 public:
  // kInvalidArgument if `pem` does not start with a PEM certificate or its
  // key is neither P-256 nor Ed25519.
  static absl::StatusOr<Certificate> FromPem(std::string_view pem);

  Certificate(Certificate&&) noexcept = default;
  Certificate& operator=(Certificate&&) noexcept = default;

  // OK iff `signature` is a valid signature of `message` by this
  // certificate's key; kUnauthenticated otherwise (including a malformed
  // signature).
  absl::Status Verify(std::string_view message,
                      std::string_view signature) const;

 private:
  Certificate(internal::X509Ptr certificate, internal::EvpPkeyPtr key)
      : certificate_(std::move(certificate)), key_(std::move(key)) {}

  internal::X509Ptr certificate_;
  internal::EvpPkeyPtr key_;
};

// Checks that the first certificate in `cert_pem` chains to a CA certificate
// in `ca_pem` (OpenSSL X509_STORE / X509_verify_cert, validity checked at
// `at`). Further certificates in `cert_pem` are untrusted intermediates;
// every certificate in `ca_pem` is a trust anchor and must be self-signed.
// kInvalidArgument if either PEM cannot be parsed; kUnauthenticated, naming
// OpenSSL's reason, if the chain does not verify.
absl::Status VerifyCertificateChain(std::string_view cert_pem,
                                    std::string_view ca_pem, absl::Time at);
// As above, at the current time.
absl::Status VerifyCertificateChain(std::string_view cert_pem,
                                    std::string_view ca_pem);

}  // namespace samverka::security
