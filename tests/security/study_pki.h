// tests/security/study_pki.h
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "security/pki.h"
#include "security/signature.h"
#include "security/signed_study.h"
#include "security/tls.h"

namespace samverka::security::testutil {

// A federation's CA in a fresh temporary directory (removed on
// destruction), with helpers to issue certificates and sign studies, for
// the tests of signed studies (tests/security) and of a site's decisions on
// them (tests/client). Header-only so both test binaries share it.
class StudyPki {
 public:
  // `tag` keeps two CAs of one test apart.
  explicit StudyPki(const std::string& federation, const std::string& tag = "a")
      : dir_(std::filesystem::temp_directory_path() /
             ("samverka_study_pki_" + tag + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
              std::to_string(getpid()))) {
    std::filesystem::remove_all(dir_);
    absl::StatusOr<std::unique_ptr<CertificateAuthority>> ca =
        CertificateAuthority::Init(dir_.string(), federation);
    EXPECT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
  }
  ~StudyPki() {
    ca_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  CertificateAuthority& ca() { return *ca_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string ca_pem() const { return ca_->ca_certificate_pem(); }

  // A certificate (PEM) and its signing key for `name` in `role`.
  struct Holder {
    std::string certificate_pem;
    std::string certificate_path;
    std::unique_ptr<SigningKey> key;
  };
  Holder Issue(const std::string& name, Role role = Role::kOperator) {
    absl::StatusOr<IssuedCertificate> issued = ca_->Issue({name, role});
    EXPECT_TRUE(issued.ok()) << issued.status();
    absl::StatusOr<std::string> key_pem = ReadFileToString(issued->key_path);
    EXPECT_TRUE(key_pem.ok()) << key_pem.status();
    absl::StatusOr<SigningKey> key = SigningKey::FromPem(SecretBytes::CopyFrom(*key_pem));
    EXPECT_TRUE(key.ok()) << key.status();
    return {issued->certificate_pem, issued->certificate_path,
            std::make_unique<SigningKey>(*std::move(key))};
  }

  // The CA's current CRL.
  RevocationList Crl() const {
    absl::StatusOr<RevocationList> crl = LoadCrl(ca_->crl_path(), ca_pem());
    EXPECT_TRUE(crl.ok()) << crl.status();
    return crl.ok() ? *crl : RevocationList{};
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<CertificateAuthority> ca_;
};

// The signature of `envelope` by `holder`.
inline std::string SignFor(const StudyEnvelope& envelope, const StudyPki::Holder& holder) {
  absl::StatusOr<std::string> signature = SignStudy(envelope, *holder.key);
  EXPECT_TRUE(signature.ok()) << signature.status();
  return signature.ok() ? *signature : std::string();
}

}  // namespace samverka::security::testutil
