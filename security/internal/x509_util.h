// security/internal/x509_util.h
#pragma once

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/internal/openssl_util.h"
#include "security/secret_bytes.h"

// Small wrappers over OpenSSL's X.509 API for security/pki.cc: PEM in and
// out, serials, times, names and subject alternative names.
namespace samverka::security::internal {

struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter>;

// PEM encoding. kInternal if OpenSSL fails.
absl::StatusOr<std::string> CertificateToPem(X509* certificate);
absl::StatusOr<std::string> CsrToPem(X509_REQ* csr);
absl::StatusOr<std::string> CrlToPem(X509_CRL* crl);
// PKCS#8, unencrypted, through OpenSSL's secure heap (wiped when freed).
absl::StatusOr<SecretBytes> PrivateKeyToPem(EVP_PKEY* key);

// PEM decoding of the first object of its kind in `pem`. kInvalidArgument
// (naming `what`) if there is none or it is malformed.
absl::StatusOr<X509Ptr> ParseCertificatePem(std::string_view pem,
                                            std::string_view what);
absl::StatusOr<X509ReqPtr> ParseCsrPem(std::string_view pem,
                                       std::string_view what);
absl::StatusOr<X509CrlPtr> ParseCrlPem(std::string_view pem,
                                       std::string_view what);
// Never prompts for a passphrase: encrypted keys fail.
absl::StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(const SecretBytes& pem,
                                              std::string_view what);

// A fresh ECDSA P-256 key pair. kInternal if OpenSSL fails.
absl::StatusOr<EvpPkeyPtr> GenerateP256Key();
// OK for P-256 and Ed25519 keys (the keys Samverka's TLS and signatures
// support); kInvalidArgument otherwise.
absl::Status CheckSiteKeyType(EVP_PKEY* key);

// A random positive 128-bit serial (RAND_bytes).
absl::StatusOr<Asn1IntegerPtr> RandomSerial();
// Upper-case hex of a serial, two digits per byte, as `openssl x509 -serial`
// prints it ("00" for zero; negative serials get a leading '-').
std::string SerialToHex(const ASN1_INTEGER* serial);
// The inverse of SerialToHex. kInvalidArgument for non-hex input.
absl::StatusOr<Asn1IntegerPtr> SerialFromHex(std::string_view hex);

// ASN1_TIME <-> absl::Time (UTC, whole seconds).
absl::StatusOr<absl::Time> FromAsn1Time(const ASN1_TIME* time);
absl::Status SetAsn1Time(ASN1_TIME* out, absl::Time time);

// A name from (NID, UTF-8 value) pairs in order. kInvalidArgument if OpenSSL
// rejects a value (e.g. too long).
absl::StatusOr<X509NamePtr> MakeName(
    const std::vector<std::pair<int, std::string>>& entries);
// The one value of `nid` in `name` as UTF-8. kInvalidArgument if it is
// missing or appears more than once.
absl::StatusOr<std::string> SingleNameEntry(const X509_NAME* name, int nid,
                                            std::string_view what);

// A subject alternative name parsed from user input.
struct SubjectAltName {
  bool is_ip = false;
  std::string value;  // DNS: the name; IP: the 4 or 16 address bytes
  // "DNS:<name>" or "IP:<canonical address>".
  std::string ToString() const;
  bool operator==(const SubjectAltName&) const = default;
};
// IPv4/IPv6 literals (IPv6 optionally in [brackets]) become IP names;
// anything else must be a DNS name (labels of [A-Za-z0-9_-], 1-63
// characters, at most 253 in all). kInvalidArgument otherwise.
absl::StatusOr<SubjectAltName> ParseSubjectAltName(std::string_view text);
// The GENERAL_NAMES for `names`. kInternal if OpenSSL fails.
absl::StatusOr<GeneralNamesPtr> MakeGeneralNames(
    const std::vector<SubjectAltName>& names);

// Adds an extension written in OpenSSL's config syntax (fixed strings from
// our code only, never user input) with X509V3 context issuer/subject.
absl::Status AddConfigExtension(X509* certificate, X509* issuer, int nid,
                                const char* value);

}  // namespace samverka::security::internal
