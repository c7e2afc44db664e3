// security/secagg/internal/crypto_util.cc
#include "security/secagg/internal/crypto_util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <cstdlib>

#include "security/internal/openssl_util.h"

namespace samverka::security::secagg::internal {

std::array<uint8_t, 32> Sha256(std::string_view bytes) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length,
                 EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    std::abort();  // OpenSSL cannot hash: nothing here can work
  }
  return digest;
}

absl::StatusOr<std::string> CertificateCommonName(std::string_view pem) {
  if (pem.empty() || pem.size() > INT_MAX) {
    return absl::InvalidArgumentError("certificate PEM is empty or too large");
  }
  security::internal::BioPtr bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) {
    return security::internal::OpenSslInternalError("BIO_new_mem_buf");
  }
  security::internal::X509Ptr cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return security::internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                            "not a PEM certificate");
  }
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0 ||
      X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) {
    return absl::InvalidArgumentError(
        "certificate subject must have exactly one common name");
  }
  const ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) {
    return security::internal::OpenSslError(
        absl::StatusCode::kInvalidArgument,
        "unreadable certificate common name");
  }
  std::string name(reinterpret_cast<const char*>(utf8),
                   static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

}  // namespace samverka::security::secagg::internal
