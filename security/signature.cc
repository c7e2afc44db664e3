// security/signature.cc
#include "security/signature.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status_macros.h"

namespace samverka::security {
namespace {

using internal::BioPtr;
using internal::EvpMdCtxPtr;
using internal::EvpPkeyPtr;
using internal::X509Ptr;

// Never prompt for a passphrase: encrypted keys simply fail to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::StatusOr<BioPtr> ReadOnlyBio(const void* data, size_t size) {
  if (size == 0) return absl::InvalidArgumentError("PEM input is empty");
  if (size > INT_MAX) return absl::InvalidArgumentError("PEM input too large");
  BioPtr bio(BIO_new_mem_buf(data, static_cast<int>(size)));
  if (bio == nullptr) return internal::OpenSslInternalError("BIO_new_mem_buf");
  return bio;
}

// The digest to sign with for a supported key: "SHA256" for P-256, nullptr
// for Ed25519 (which hashes internally). kInvalidArgument otherwise.
absl::StatusOr<const char*> DigestFor(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519")) return nullptr;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &length) == 1 &&
        (std::strcmp(group, "prime256v1") == 0 ||
         std::strcmp(group, "P-256") == 0)) {
      return "SHA256";
    }
    ERR_clear_error();
    return absl::InvalidArgumentError("EC key is not on curve P-256");
  }
  return absl::InvalidArgumentError(
      "unsupported signature key type (need ECDSA P-256 or Ed25519)");
}

// Reads every certificate in `pem`. kInvalidArgument if there is none or a
// PEM block is not a certificate.
absl::StatusOr<std::vector<X509Ptr>> ReadCertificates(std::string_view pem,
                                                      std::string_view what) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(pem.data(), pem.size()));
  std::vector<X509Ptr> certificates;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr);
    if (cert == nullptr) break;
    certificates.emplace_back(cert);
  }
  // Reading stops with PEM_R_NO_START_LINE at the end of the input; any
  // other error is a malformed certificate.
  const unsigned long error = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(error) == ERR_LIB_PEM &&
                         ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
  if (certificates.empty() || (error != 0 && !clean_end)) {
    return internal::OpenSslError(
        absl::StatusCode::kInvalidArgument,
        std::string(what) + " is not a PEM certificate (chain)");
  }
  ERR_clear_error();
  return certificates;
}

}  // namespace

absl::StatusOr<SigningKey> SigningKey::FromPem(const SecretBytes& pem) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(pem.data(), pem.size()));
  EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                  "not a PEM private key");
  }
  SV_RETURN_IF_ERROR(DigestFor(key.get()).status());
  return SigningKey(std::move(key));
}

absl::StatusOr<std::string> SigningKey::Sign(std::string_view message) const {
  SV_ASSIGN_OR_RETURN(const char* digest, DigestFor(key_.get()));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, digest, nullptr, nullptr,
                            key_.get(), nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, internal::Bytes(message),
                     message.size()) != 1) {
    return internal::OpenSslInternalError("signing setup failed");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(signature.data()),
                     &length, internal::Bytes(message), message.size()) != 1) {
    return internal::OpenSslInternalError("signing failed");
  }
  signature.resize(length);  // ECDSA signatures vary in length
  return signature;
}

absl::StatusOr<Certificate> Certificate::FromPem(std::string_view pem) {
  SV_ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(pem.data(), pem.size()));
  X509Ptr certificate(
      PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (certificate == nullptr) {
    return internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                  "not a PEM certificate");
  }
  EvpPkeyPtr key(X509_get_pubkey(certificate.get()));  // owned reference
  if (key == nullptr) {
    return internal::OpenSslError(absl::StatusCode::kInvalidArgument,
                                  "certificate has no usable public key");
  }
  SV_RETURN_IF_ERROR(DigestFor(key.get()).status());
  return Certificate(std::move(certificate), std::move(key));
}

absl::Status Certificate::Verify(std::string_view message,
                                 std::string_view signature) const {
  SV_ASSIGN_OR_RETURN(const char* digest, DigestFor(key_.get()));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest, nullptr, nullptr,
                              key_.get(), nullptr) != 1) {
    return internal::OpenSslInternalError("verification setup failed");
  }
  const int result =
      EVP_DigestVerify(ctx.get(), internal::Bytes(signature), signature.size(),
                       internal::Bytes(message), message.size());
  ERR_clear_error();
  if (result != 1) return absl::UnauthenticatedError("invalid signature");
  return absl::OkStatus();
}

absl::Status VerifyCertificateChain(std::string_view cert_pem,
                                    std::string_view ca_pem, absl::Time at) {
  SV_ASSIGN_OR_RETURN(std::vector<X509Ptr> chain,
                      ReadCertificates(cert_pem, "certificate"));
  SV_ASSIGN_OR_RETURN(std::vector<X509Ptr> anchors,
                      ReadCertificates(ca_pem, "CA certificate"));

  internal::X509StorePtr store(X509_STORE_new());
  if (store == nullptr) return internal::OpenSslInternalError("X509_STORE");
  for (const X509Ptr& anchor : anchors) {
    if (X509_STORE_add_cert(store.get(), anchor.get()) != 1) {
      return internal::OpenSslInternalError("X509_STORE_add_cert");
    }
  }
  struct StackDeleter {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
  };
  // The stack borrows the intermediates, which `chain` owns.
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  if (untrusted == nullptr) return internal::OpenSslInternalError("sk_X509");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (sk_X509_push(untrusted.get(), chain[i].get()) == 0) {
      return internal::OpenSslInternalError("sk_X509_push");
    }
  }
  internal::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(),
                          untrusted.get()) != 1) {
    return internal::OpenSslInternalError("X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  const int verified = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (verified != 1) {
    return absl::UnauthenticatedError(
        std::string("certificate chain does not verify: ") +
        X509_verify_cert_error_string(error));
  }
  return absl::OkStatus();
}

absl::Status VerifyCertificateChain(std::string_view cert_pem,
                                    std::string_view ca_pem) {
  return VerifyCertificateChain(cert_pem, ca_pem, absl::Now());
}

}  // namespace samverka::security
