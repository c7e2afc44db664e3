// tests/security/pki_test.cc
#include "security/pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "security/signature.h"

namespace samverka::security {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr ? base : "/tmp") + "/pki_test.XXXXXX";
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// `openssl verify` of `certificate` against the CA and CRL in `pki`.
CommandResult OpenSslVerify(const std::string& pki,
                            const std::string& certificate) {
  return RunCommand("openssl verify -CAfile '" + pki +
                    "/ca/ca.crt' -crl_check " + "-CRLfile '" + pki +
                    "/ca/crl.pem' '" + certificate + "'");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

mode_t Mode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// What identifies a file's bytes and its inode: any rewrite changes it.
struct FileFingerprint {
  std::string sha256;
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileFingerprint&) const = default;
};

std::string Sha256(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(),
             nullptr);
  return std::string(reinterpret_cast<char*>(digest), length);
}

std::map<std::string, FileFingerprint> Fingerprints(const std::string& dir) {
  std::map<std::string, FileFingerprint> result;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    struct stat st;
    stat(entry.path().c_str(), &st);
    result[entry.path().string()] = {
        Sha256(ReadAll(entry.path())), st.st_ino,
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
            st.st_mtim.tv_nsec};
  }
  return result;
}

internal::X509Ptr ParseCertificate(const std::string& pem) {
  internal::BioPtr bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return internal::X509Ptr(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

internal::EvpPkeyPtr ParseKey(const std::string& pem) {
  internal::BioPtr bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return internal::EvpPkeyPtr(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// The SANs of `certificate` as "DNS:name" / "IP4:a.b.c.d" / "IP6:<16 bytes
// hex>".
std::vector<std::string> AltNames(X509* certificate) {
  std::vector<std::string> result;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      result.push_back("DNS:" + std::string(reinterpret_cast<const char*>(
                                                ASN1_STRING_get0_data(dns)),
                                            ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      const unsigned char* b = ASN1_STRING_get0_data(ip);
      const int length = ASN1_STRING_length(ip);
      std::string text = length == 4 ? "IP4:" : "IP6:";
      for (int j = 0; j < length; ++j) {
        char part[8];
        if (length == 4) {
          std::snprintf(part, sizeof(part), j == 0 ? "%d" : ".%d", b[j]);
        } else {
          std::snprintf(part, sizeof(part), "%02x", b[j]);
        }
        text += part;
      }
      result.push_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  return result;
}

std::string SubjectEntry(X509* certificate, int nid) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), nid, buffer,
                            sizeof(buffer));
  return buffer;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    pki_ = temp_.path() + "/pki";
    absl::StatusOr<std::unique_ptr<CertificateAuthority>> ca =
        CertificateAuthority::Init(pki_, "Nordic Health", CaOptions{},
                                   TestClock());
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
  }

  Clock TestClock() {
    return [this] { return now_; };
  }

  IssuedCertificate MustIssue(const std::string& name,
                              Role role = Role::kClient,
                              std::vector<std::string> sans = {},
                              int days = 0) {
    absl::StatusOr<IssuedCertificate> issued =
        ca_->Issue({name, role, std::move(sans), days});
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *std::move(issued) : IssuedCertificate{};
  }

  std::string SiteFile(const std::string& name, const std::string& file) {
    return pki_ + "/sites/" + name + "/" + file;
  }

  absl::Time now_ = absl::Now();
  TempDir temp_;
  std::string pki_;
  std::unique_ptr<CertificateAuthority> ca_;
};

TEST_F(PkiTest, InitWritesPrivateCaKeyCertificateAndEmptyCrl) {
  EXPECT_EQ(Mode(pki_ + "/ca/ca.key"), 0600);
  EXPECT_EQ(Mode(pki_ + "/ca"), 0700);
  EXPECT_EQ(Mode(pki_ + "/ca/ca.crt"), 0644);
  internal::X509Ptr ca = ParseCertificate(ReadAll(pki_ + "/ca/ca.crt"));
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(SubjectEntry(ca.get(), NID_commonName), "Nordic Health CA");
  EXPECT_EQ(SubjectEntry(ca.get(), NID_organizationName), "Nordic Health");
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_CRL_SIGN);
  EXPECT_EQ(ReadAll(pki_ + "/ca/ca.crt"), ca_->ca_certificate_pem());

  absl::StatusOr<RevocationList> crl =
      LoadCrl(ca_->crl_path(), ca_->ca_certificate_pem());
  ASSERT_TRUE(crl.ok()) << crl.status();
  EXPECT_TRUE(crl->revoked_serials.empty());
  EXPECT_FALSE(crl->IsExpired(now_));
  EXPECT_TRUE(crl->IsExpired(now_ + absl::Hours(24 * 31)));
}

TEST_F(PkiTest, InitRefusesToOverwriteAnExistingCa) {
  const std::string key_before = ReadAll(pki_ + "/ca/ca.key");
  ca_.reset();  // release the directory lock
  absl::StatusOr<std::unique_ptr<CertificateAuthority>> again =
      CertificateAuthority::Init(pki_, "Other");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadAll(pki_ + "/ca/ca.key"), key_before);
}

TEST_F(PkiTest, InitRejectsBadFederationNamesAndOptions) {
  TempDir other;
  EXPECT_EQ(CertificateAuthority::Init(other.path() + "/a", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      CertificateAuthority::Init(other.path() + "/b", std::string(62, 'x'))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CertificateAuthority::Init(other.path() + "/c", "tab\there")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  CaOptions options;
  options.crl_validity_days = 0;
  EXPECT_EQ(CertificateAuthority::Init(other.path() + "/d", "ok", options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, IssuedCertificateChainsToTheCaAndPassesOpenSslVerify) {
  IssuedCertificate issued = MustIssue("st-olavs");
  EXPECT_EQ(issued.certificate_path, SiteFile("st-olavs", "st-olavs.crt"));
  EXPECT_EQ(issued.key_path, SiteFile("st-olavs", "st-olavs.key"));
  EXPECT_EQ(Mode(issued.key_path), 0600);
  EXPECT_EQ(Mode(pki_ + "/sites/st-olavs"), 0700);
  EXPECT_EQ(ReadAll(issued.certificate_path), issued.certificate_pem);
  EXPECT_EQ(ReadAll(issued.ca_certificate_path), ca_->ca_certificate_pem());

  EXPECT_TRUE(
      VerifyCertificateChain(issued.certificate_pem, ca_->ca_certificate_pem())
          .ok());
  CommandResult verify = OpenSslVerify(pki_, issued.certificate_path);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));

  internal::X509Ptr cert = ParseCertificate(issued.certificate_pem);
  internal::EvpPkeyPtr key = ParseKey(ReadAll(issued.key_path));
  ASSERT_NE(cert, nullptr);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(SubjectEntry(cert.get(), NID_commonName), "st-olavs");
  EXPECT_EQ(SubjectEntry(cert.get(), NID_organizationName), "Nordic Health");
  EXPECT_EQ(SubjectEntry(cert.get(), NID_organizationalUnitName), "client");
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_THAT(AltNames(cert.get()), ::testing::ElementsAre("DNS:st-olavs"));
  EXPECT_EQ(
      issued.record.not_after,
      absl::FromUnixSeconds(absl::ToUnixSeconds(now_ + absl::Hours(24 * 365))));

  // The key works with the signature helpers (SecAgg signs with it).
  absl::StatusOr<SigningKey> signer =
      SigningKey::FromPem(SecretBytes::CopyFrom(ReadAll(issued.key_path)));
  ASSERT_TRUE(signer.ok()) << signer.status();
  absl::StatusOr<Certificate> verifier =
      Certificate::FromPem(issued.certificate_pem);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  absl::StatusOr<std::string> signature = signer->Sign("round 1");
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(verifier->Verify("round 1", *signature).ok());
}

TEST_F(PkiTest, RevokedCertificateFailsOpenSslVerify) {
  IssuedCertificate issued = MustIssue("site-a");
  absl::StatusOr<std::vector<CertificateRecord>> revoked =
      ca_->Revoke("site-a");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  ASSERT_EQ(revoked->size(), 1u);
  EXPECT_EQ((*revoked)[0].serial_hex, issued.record.serial_hex);

  CommandResult verify = OpenSslVerify(pki_, issued.certificate_path);
  EXPECT_NE(verify.exit_code, 0);
  EXPECT_THAT(verify.output, HasSubstr("certificate revoked"));

  absl::StatusOr<RevocationList> crl =
      LoadCrl(ca_->crl_path(), ca_->ca_certificate_pem());
  ASSERT_TRUE(crl.ok()) << crl.status();
  EXPECT_TRUE(crl->IsRevoked(issued.record.serial_hex));
  EXPECT_EQ(ca_->Revoke("site-a").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ca_->Revoke("never-issued").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PkiTest, EnrollingOrRevokingASiteNeverTouchesAnotherSite) {
  MustIssue("site-a");
  MustIssue("site-b");
  const auto before = Fingerprints(pki_ + "/sites/site-b");
  ASSERT_EQ(before.size(), 3u);  // key, certificate, CA copy

  ASSERT_TRUE(ca_->Revoke("site-a").ok());
  MustIssue("site-c");
  ASSERT_TRUE(ca_->Issue({"site-a", Role::kClient, {}, 0}).ok());  // re-issue
  ASSERT_TRUE(ca_->RefreshCrl().ok());

  EXPECT_EQ(Fingerprints(pki_ + "/sites/site-b"), before);
  CommandResult verify = OpenSslVerify(pki_, SiteFile("site-b", "site-b.crt"));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST_F(PkiTest, CoordinatorCertificateNamesIpAddressesAndHostNames) {
  IssuedCertificate issued =
      MustIssue("coordinator", Role::kCoordinator,
                {"127.0.0.1", "::1", "coordinator.example", "[2001:db8::7]",
                 "coordinator"});
  internal::X509Ptr cert = ParseCertificate(issued.certificate_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(AltNames(cert.get()),
              ::testing::ElementsAre("DNS:coordinator", "IP4:127.0.0.1",
                                     "IP6:00000000000000000000000000000001",
                                     "DNS:coordinator.example",
                                     "IP6:20010db8000000000000000000000007"));
  EXPECT_THAT(
      issued.record.subject_alt_names,
      ::testing::ElementsAre("DNS:coordinator", "IP:127.0.0.1", "IP:::1",
                             "DNS:coordinator.example", "IP:2001:db8::7"));
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_EQ(SubjectEntry(cert.get(), NID_organizationalUnitName),
            "coordinator");
  // Host-name checks as a TLS client would make them.
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 0);
  EXPECT_EQ(X509_check_host(cert.get(), "coordinator.example", 0, 0, nullptr),
            1);
}

TEST_F(PkiTest, RejectsMalformedSubjectAltNames) {
  for (const char* san : {"bad name", "a..b", "1.2.3", "x/y", "", "[::1",
                          "fe80::1%eth0", "*.example"}) {
    absl::StatusOr<IssuedCertificate> issued =
        ca_->Issue({"site-x", Role::kClient, {san}, 0});
    EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument)
        << san;
  }
  EXPECT_FALSE(fs::exists(pki_ + "/sites/site-x"));
}

TEST_F(PkiTest, CsrAndSignKeepTheSiteKeyAtTheSite) {
  TempDir site;
  absl::StatusOr<std::string> csr_path = WriteKeyAndCsr(
      site.path() + "/tls", "haukeland", Role::kCoordinator, {"evil.example"});
  ASSERT_TRUE(csr_path.ok()) << csr_path.status();
  const std::string key_path = site.path() + "/tls/haukeland.key";
  EXPECT_EQ(*csr_path, site.path() + "/tls/haukeland.csr");
  EXPECT_EQ(Mode(key_path), 0600);
  const std::string key_pem = ReadAll(key_path);

  absl::StatusOr<IssuedCertificate> issued =
      ca_->SignCsr(ReadAll(*csr_path), Role::kClient, {"10.1.2.3"});
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(issued->key_path.empty());
  EXPECT_EQ(issued->record.name, "haukeland");

  // The certificate is for the site's key, and the CA decided its contents:
  // the CSR asked for coordinator and evil.example, the CA gave neither.
  internal::X509Ptr cert = ParseCertificate(issued->certificate_pem);
  internal::EvpPkeyPtr key = ParseKey(key_pem);
  ASSERT_NE(cert, nullptr);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_EQ(SubjectEntry(cert.get(), NID_organizationalUnitName), "client");
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_THAT(AltNames(cert.get()),
              ::testing::ElementsAre("DNS:haukeland", "IP4:10.1.2.3"));
  EXPECT_EQ(OpenSslVerify(pki_, issued->certificate_path).exit_code, 0);

  // The private key appears nowhere in the PKI directory.
  // (The PEM's second base64 line: past the PKCS#8 header every P-256 key
  // shares, so it is unique to this key.)
  const size_t line2 = key_pem.find('\n', key_pem.find('\n') + 1) + 1;
  const std::string key_body = key_pem.substr(line2, 64);
  ASSERT_EQ(key_body.find('-'), std::string::npos);
  for (const auto& [path, unused] : Fingerprints(pki_)) {
    EXPECT_FALSE(path.ends_with(".key") &&
                 path.find("/sites/") != std::string::npos)
        << path;
    EXPECT_THAT(ReadAll(path), Not(HasSubstr(key_body))) << path;
  }
  EXPECT_FALSE(fs::exists(pki_ + "/sites/haukeland/haukeland.key"));

  // The key is not overwritten by a second `csr`.
  EXPECT_EQ(WriteKeyAndCsr(site.path() + "/tls", "haukeland").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadAll(key_path), key_pem);
}

TEST_F(PkiTest, SignRejectsATamperedCsr) {
  absl::StatusOr<KeyAndCsr> made = MakeKeyAndCsr("site-t");
  ASSERT_TRUE(made.ok()) << made.status();
  std::string csr = made->csr_pem;
  // Change the CN "site-t" to "site-u" inside the signed request body.
  internal::BioPtr bio(
      BIO_new_mem_buf(csr.data(), static_cast<int>(csr.size())));
  internal::X509ReqPtr req(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(req, nullptr);
  unsigned char* der = nullptr;
  const int length = i2d_X509_REQ(req.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), length);
  OPENSSL_free(der);
  const size_t at = bytes.find("site-t");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = 'u';
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  internal::X509ReqPtr tampered(d2i_X509_REQ(nullptr, &p, length));
  ASSERT_NE(tampered, nullptr);
  internal::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), tampered.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);

  absl::StatusOr<IssuedCertificate> issued =
      ca_->SignCsr(std::string(data, size), Role::kClient, {});
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(issued.status().message(), HasSubstr("signature"));
  EXPECT_FALSE(fs::exists(pki_ + "/sites/site-u"));
  EXPECT_EQ(ca_->SignCsr("not a csr", Role::kClient, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, SignRejectsAnRsaCsr) {
  internal::EvpPkeyPtr rsa(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  ASSERT_NE(rsa, nullptr);
  internal::X509ReqPtr req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("rsa-site"),
                             -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), rsa.get());
  ASSERT_GT(X509_REQ_sign(req.get(), rsa.get(), EVP_sha256()), 0);
  internal::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(out.get(), req.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  EXPECT_EQ(
      ca_->SignCsr(std::string(data, size), Role::kClient, {}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, DuplicateIssueIsRefusedUntilRevoked) {
  IssuedCertificate first = MustIssue("site-d");
  absl::StatusOr<IssuedCertificate> again =
      ca_->Issue({"site-d", Role::kClient, {}, 0});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(),
              HasSubstr("already has a valid certificate"));
  EXPECT_EQ(ca_->Issue({"SITE-D", Role::kClient, {}, 0}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadAll(first.certificate_path), first.certificate_pem);

  ASSERT_TRUE(ca_->Revoke("site-d").ok());
  IssuedCertificate second = MustIssue("site-d");
  EXPECT_NE(second.record.serial_hex, first.record.serial_hex);
  EXPECT_EQ(OpenSslVerify(pki_, second.certificate_path).exit_code, 0);
  // The old certificate stays revoked.
  EXPECT_TRUE(
      fs::exists(pki_ + "/ca/certs/" + first.record.serial_hex + ".pem"));
  const std::string old_path = temp_.path() + "/old.crt";
  std::ofstream(old_path) << first.certificate_pem;
  EXPECT_THAT(OpenSslVerify(pki_, old_path).output,
              HasSubstr("certificate revoked"));
}

TEST_F(PkiTest, InvalidSiteNamesAreRefused) {
  for (const std::string& name : std::vector<std::string>{
           "", ".", "..", "../evil", "a/b", ".hidden", "-flag", "trailing.",
           "a..b", "has space", "10.0.0.1", "ümlaut", std::string(65, 'a'),
           "semi;colon"}) {
    EXPECT_EQ(ValidateSiteName(name).code(), absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(ca_->Issue({name, Role::kClient, {}, 0}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(MakeKeyAndCsr(name).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_TRUE(fs::is_empty(pki_ + "/sites"));
  for (const char* name : {"a", "site-1", "St_Olavs.hospital", "0xA"}) {
    EXPECT_TRUE(ValidateSiteName(name).ok()) << name;
  }
}

TEST_F(PkiTest, ValidityIsBoundedByTheRequestAndTheCa) {
  EXPECT_EQ(ca_->Issue({"site-v", Role::kClient, {}, -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ca_->Issue({"site-v", Role::kClient, {}, 100000}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ca_->Issue({"site-v", Role::kClient, {}, 3650}).status().code(),
            absl::StatusCode::kFailedPrecondition);  // would outlive the CA
  IssuedCertificate short_lived = MustIssue("site-v", Role::kClient, {}, 7);
  EXPECT_EQ(
      short_lived.record.not_after,
      absl::FromUnixSeconds(absl::ToUnixSeconds(now_ + absl::Hours(24 * 7))));
}

TEST_F(PkiTest, ParsePeerCertificateReadsNameRoleAndSerial) {
  IssuedCertificate issued = MustIssue("operator-1", Role::kOperator);
  absl::StatusOr<PeerIdentity> peer =
      ParsePeerCertificate(issued.certificate_pem);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->name, "operator-1");
  EXPECT_EQ(peer->federation, "Nordic Health");
  EXPECT_EQ(peer->role, Role::kOperator);
  EXPECT_EQ(peer->serial_hex, issued.record.serial_hex);
  EXPECT_EQ(peer->not_after, issued.record.not_after);
  // The serial is written as `openssl x509 -serial` writes it.
  CommandResult serial = RunCommand("openssl x509 -noout -serial -in '" +
                                    issued.certificate_path + "'");
  EXPECT_EQ(serial.output, "serial=" + issued.record.serial_hex + "\n");
  EXPECT_LE(issued.record.serial_hex.size(), 32u);  // 128 bits

  // The CA certificate has no role: not a peer.
  EXPECT_EQ(ParsePeerCertificate(ca_->ca_certificate_pem()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePeerCertificate("garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, ListShowsSerialsRolesExpiryAndRevocation) {
  MustIssue("site-a");
  MustIssue("coordinator", Role::kCoordinator, {"127.0.0.1"});
  MustIssue("short", Role::kClient, {}, 1);
  ASSERT_TRUE(ca_->Revoke("site-a").ok());
  now_ += absl::Hours(48);

  const std::vector<CertificateRecord>& records = ca_->List();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].StatusAt(now_),
            "revoked on " + absl::FormatTime("%Y-%m-%d", now_ - absl::Hours(48),
                                             absl::UTCTimeZone()));
  EXPECT_EQ(records[1].StatusAt(now_), "valid");
  EXPECT_EQ(records[2].StatusAt(now_), "expired");

  const std::string table = FormatCertificateTable(records, now_);
  EXPECT_THAT(table, HasSubstr("SERIAL"));
  EXPECT_THAT(table, HasSubstr(records[0].serial_hex));
  EXPECT_THAT(table, HasSubstr("revoked on"));
  EXPECT_THAT(table, HasSubstr("coordinator"));
  EXPECT_THAT(table, HasSubstr("expired"));
  EXPECT_THAT(table,
              HasSubstr(absl::FormatTime("%Y-%m-%d", records[1].not_after,
                                         absl::UTCTimeZone())));

  // An expired name may be issued again without revoking it first.
  EXPECT_TRUE(ca_->Issue({"short", Role::kClient, {}, 0}).ok());
}

TEST_F(PkiTest, OpenSeesWhatWasIssuedAndChecksTheKeyFile) {
  IssuedCertificate issued = MustIssue("site-a");
  ASSERT_TRUE(ca_->Revoke("site-a").ok());
  // While this CA is open, nobody else may open the directory.
  EXPECT_EQ(CertificateAuthority::Open(pki_).status().code(),
            absl::StatusCode::kUnavailable);
  ca_.reset();

  absl::StatusOr<std::unique_ptr<CertificateAuthority>> opened =
      CertificateAuthority::Open(pki_, TestClock());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->federation(), "Nordic Health");
  ASSERT_EQ((*opened)->List().size(), 1u);
  EXPECT_EQ((*opened)->List()[0].serial_hex, issued.record.serial_hex);
  EXPECT_TRUE((*opened)->List()[0].IsRevoked());
  ASSERT_TRUE((*opened)->Issue({"site-b", Role::kClient, {}, 0}).ok());
  opened->reset();

  chmod((pki_ + "/ca/ca.key").c_str(), 0644);
  EXPECT_EQ(CertificateAuthority::Open(pki_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  TempDir empty;
  EXPECT_EQ(CertificateAuthority::Open(empty.path()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PkiTest, CorruptIndexIsDataLoss) {
  ca_.reset();
  std::ofstream(pki_ + "/ca/index.json")
      << "{\"format\": 1, \"federation\": 7}";
  EXPECT_EQ(CertificateAuthority::Open(pki_).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(PkiTest, RefreshCrlMovesNextUpdateAndKeepsRevocations) {
  IssuedCertificate issued = MustIssue("site-a");
  ASSERT_TRUE(ca_->Revoke("site-a").ok());
  now_ += absl::Hours(24 * 20);
  absl::StatusOr<absl::Time> next = ca_->RefreshCrl();
  ASSERT_TRUE(next.ok()) << next.status();
  absl::StatusOr<RevocationList> crl =
      LoadCrl(ca_->crl_path(), ca_->ca_certificate_pem());
  ASSERT_TRUE(crl.ok()) << crl.status();
  EXPECT_EQ(crl->next_update,
            absl::FromUnixSeconds(absl::ToUnixSeconds(*next)));
  EXPECT_FALSE(crl->IsExpired(now_ + absl::Hours(24 * 29)));
  EXPECT_TRUE(crl->IsRevoked(issued.record.serial_hex));
}

TEST_F(PkiTest, LoadCrlRejectsACrlFromAnotherCa) {
  TempDir other_dir;
  absl::StatusOr<std::unique_ptr<CertificateAuthority>> other =
      CertificateAuthority::Init(other_dir.path() + "/pki", "Nordic Health");
  ASSERT_TRUE(other.ok()) << other.status();
  // Same subject name, different key: the signature check catches it.
  EXPECT_EQ(
      LoadCrl((*other)->crl_path(), ca_->ca_certificate_pem()).status().code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(LoadCrl(pki_ + "/ca/missing.pem", ca_->ca_certificate_pem())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace samverka::security
