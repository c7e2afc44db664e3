// tests/security/signature_test.cc
#include "security/signature.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>

#include "absl/time/time.h"

namespace samverka::security {
namespace {

using internal::BioPtr;
using internal::EvpPkeyPtr;
using internal::X509Ptr;

// Test PKI, made with OpenSSL APIs. Certificates carry fixed validity
// (2020-01-01 to 2040-01-01) and are checked at fixed times, so the tests do
// not depend on the clock, except the one that uses the current time.
const absl::Time kNotBefore =
    absl::FromCivil(absl::CivilSecond(2020, 1, 1), absl::UTCTimeZone());
const absl::Time kNotAfter =
    absl::FromCivil(absl::CivilSecond(2040, 1, 1), absl::UTCTimeZone());
const absl::Time kDuringValidity =
    absl::FromCivil(absl::CivilSecond(2030, 6, 1), absl::UTCTimeZone());

enum class KeyType { kP256, kEd25519, kP384 };

EvpPkeyPtr MakeKey(KeyType type) {
  switch (type) {
    case KeyType::kP256:
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    case KeyType::kP384:
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
    case KeyType::kEd25519:
      return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  }
  return nullptr;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

SecretBytes KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                     nullptr, nullptr),
            1);
  return SecretBytes::CopyFrom(BioContents(bio.get()));
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
  return BioContents(bio.get());
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Identity {
  EvpPkeyPtr key;
  X509Ptr cert;
};

// A certificate for a new key of `type`, signed by `issuer` (self-signed
// if null).
Identity MakeIdentity(const std::string& common_name, KeyType type,
                      const Identity* issuer, bool is_ca,
                      absl::Time not_before = kNotBefore,
                      absl::Time not_after = kNotAfter) {
  static long serial = 1;
  Identity id{MakeKey(type), X509Ptr(X509_new())};
  X509* cert = id.cert.get();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after));
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : cert;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : id.key.get();
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
  X509_set_pubkey(cert, id.key.get());
  AddExtension(cert, issuer_cert, NID_basic_constraints,
               is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(
      cert, issuer_cert, NID_key_usage,
      is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  AddExtension(cert, issuer_cert, NID_subject_key_identifier, "hash");
  AddExtension(cert, issuer_cert, NID_authority_key_identifier, "keyid:always");
  const EVP_MD* md =
      EVP_PKEY_is_a(issuer_key, "ED25519") ? nullptr : EVP_sha256();
  EXPECT_GT(X509_sign(cert, issuer_key, md), 0);
  return id;
}

class SignatureTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(SignatureTest, SignThenVerify) {
  const Identity ca = MakeIdentity("ca", KeyType::kP256, nullptr, true);
  const Identity site = MakeIdentity("site-1", GetParam(), &ca, false);
  absl::StatusOr<SigningKey> key = SigningKey::FromPem(KeyPem(site.key.get()));
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<Certificate> cert =
      Certificate::FromPem(CertPem(site.cert.get()));
  ASSERT_TRUE(cert.ok()) << cert.status();

  const std::string message = "round=3;pk_c=...;pk_s=...;model=sha256:...";
  absl::StatusOr<std::string> signature = key->Sign(message);
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_TRUE(cert->Verify(message, *signature).ok());
  EXPECT_EQ(cert->Verify(message + "x", *signature).code(),
            absl::StatusCode::kUnauthenticated);

  std::string tampered = *signature;
  tampered[tampered.size() / 2] ^= 0x01;
  EXPECT_EQ(cert->Verify(message, tampered).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(cert->Verify(message, "").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(cert->Verify(message, std::string(64, '\x01')).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_P(SignatureTest, SignatureByAnotherKeyFails) {
  const Identity ca = MakeIdentity("ca", KeyType::kP256, nullptr, true);
  const Identity site = MakeIdentity("site-1", GetParam(), &ca, false);
  const Identity other = MakeIdentity("site-2", GetParam(), &ca, false);
  absl::StatusOr<SigningKey> other_key =
      SigningKey::FromPem(KeyPem(other.key.get()));
  absl::StatusOr<Certificate> cert =
      Certificate::FromPem(CertPem(site.cert.get()));
  ASSERT_TRUE(other_key.ok() && cert.ok());
  absl::StatusOr<std::string> signature = other_key->Sign("message");
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(cert->Verify("message", *signature).code(),
            absl::StatusCode::kUnauthenticated);
}

INSTANTIATE_TEST_SUITE_P(Keys, SignatureTest,
                         ::testing::Values(KeyType::kP256, KeyType::kEd25519),
                         [](const auto& info) {
                           return info.param == KeyType::kP256 ? "P256"
                                                               : "Ed25519";
                         });

TEST(SignatureKeyTest, RejectsUnsupportedAndUnreadableKeys) {
  const Identity p384 = MakeIdentity("p384", KeyType::kP384, nullptr, false);
  EXPECT_EQ(SigningKey::FromPem(KeyPem(p384.key.get())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Certificate::FromPem(CertPem(p384.cert.get())).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromPem(SecretBytes::CopyFrom(std::string_view(
                                    "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                    "-----END PRIVATE KEY-----\n")))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromPem(SecretBytes()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Certificate::FromPem("not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// An encrypted key must fail to load, not prompt on the terminal.
TEST(SignatureKeyTest, RejectsEncryptedKeyWithoutPrompting) {
  EvpPkeyPtr key = MakeKey(KeyType::kP256);
  BioPtr bio(BIO_new(BIO_s_mem()));
  char passphrase[] = "passphrase";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(
                bio.get(), key.get(), EVP_aes_256_cbc(), passphrase,
                sizeof(passphrase) - 1, nullptr, nullptr),
            1);
  EXPECT_EQ(SigningKey::FromPem(SecretBytes::CopyFrom(BioContents(bio.get())))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CertificateChainTest, AcceptsCertificateIssuedByCa) {
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const Identity site = MakeIdentity("site-1", KeyType::kEd25519, &ca, false);
  absl::Status status = VerifyCertificateChain(
      CertPem(site.cert.get()), CertPem(ca.cert.get()), kDuringValidity);
  EXPECT_TRUE(status.ok()) << status;
}

TEST(CertificateChainTest, RejectsCertificateFromAnotherCa) {
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const Identity rogue_ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const Identity site =
      MakeIdentity("site-1", KeyType::kP256, &rogue_ca, false);
  EXPECT_EQ(VerifyCertificateChain(CertPem(site.cert.get()),
                                   CertPem(ca.cert.get()), kDuringValidity)
                .code(),
            absl::StatusCode::kUnauthenticated);
  // A bundle that also holds the rogue CA accepts it: the bundle is trust.
  EXPECT_TRUE(VerifyCertificateChain(
                  CertPem(site.cert.get()),
                  CertPem(ca.cert.get()) + CertPem(rogue_ca.cert.get()),
                  kDuringValidity)
                  .ok());
}

TEST(CertificateChainTest, RejectsSelfSignedLeaf) {
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const Identity self = MakeIdentity("site-1", KeyType::kP256, nullptr, false);
  EXPECT_EQ(VerifyCertificateChain(CertPem(self.cert.get()),
                                   CertPem(ca.cert.get()), kDuringValidity)
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(CertificateChainTest, ChecksValidityAtTheGivenTime) {
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const absl::Time start = absl::FromUnixSeconds(1'800'000'000);
  const Identity site = MakeIdentity("site-1", KeyType::kP256, &ca, false,
                                     start, start + absl::Hours(24));
  const std::string leaf = CertPem(site.cert.get());
  const std::string anchor = CertPem(ca.cert.get());
  EXPECT_TRUE(
      VerifyCertificateChain(leaf, anchor, start + absl::Hours(1)).ok());
  EXPECT_EQ(VerifyCertificateChain(leaf, anchor, start - absl::Hours(1)).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      VerifyCertificateChain(leaf, anchor, start + absl::Hours(25)).code(),
      absl::StatusCode::kUnauthenticated);
}

TEST(CertificateChainTest, UsesIntermediatesFromTheCertificatePem) {
  const Identity root = MakeIdentity("root", KeyType::kP256, nullptr, true);
  const Identity intermediate =
      MakeIdentity("intermediate", KeyType::kP256, &root, true);
  const Identity site =
      MakeIdentity("site-1", KeyType::kEd25519, &intermediate, false);
  const std::string leaf = CertPem(site.cert.get());
  const std::string anchor = CertPem(root.cert.get());
  EXPECT_TRUE(VerifyCertificateChain(leaf + CertPem(intermediate.cert.get()),
                                     anchor, kDuringValidity)
                  .ok());
  EXPECT_EQ(VerifyCertificateChain(leaf, anchor, kDuringValidity).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(CertificateChainTest, CurrentTimeOverload) {
  const absl::Time now = absl::Now();
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true,
                   now - absl::Hours(24), now + absl::Hours(24));
  const Identity site =
      MakeIdentity("site-1", KeyType::kP256, &ca, false, now - absl::Hours(24),
                   now + absl::Hours(24));
  EXPECT_TRUE(
      VerifyCertificateChain(CertPem(site.cert.get()), CertPem(ca.cert.get()))
          .ok());
}

TEST(CertificateChainTest, RejectsMalformedPem) {
  const Identity ca =
      MakeIdentity("federation-ca", KeyType::kP256, nullptr, true);
  const std::string anchor = CertPem(ca.cert.get());
  EXPECT_EQ(VerifyCertificateChain("", anchor, kDuringValidity).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyCertificateChain(anchor, "garbage", kDuringValidity).code(),
            absl::StatusCode::kInvalidArgument);
  std::string broken = anchor;
  broken[broken.size() / 2] = '!';
  EXPECT_EQ(VerifyCertificateChain(broken, anchor, kDuringValidity).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::security
