// `samverka pki` as an operator and a site's IT team run it: the CA, a
// coordinator, sites enrolled centrally and by CSR, revocation checked with
// the openssl CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/run_command.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

mode_t Mode(const fs::path& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// path -> (contents, inode, mtime, mode): any rewrite of a file changes it.
std::map<std::string, std::string> Fingerprints(const fs::path& dir) {
  std::map<std::string, std::string> result;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    stat(entry.path().c_str(), &st);
    result[entry.path().string()] =
        (entry.is_regular_file() ? ReadAll(entry.path()) : "") + "|" +
        std::to_string(st.st_ino) + "|" + std::to_string(st.st_mtim.tv_sec) +
        "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
        std::to_string(st.st_mode);
  }
  return result;
}

class PkiCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("samverka_pki_cli_");
    pki_ = dir_ / "pki";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `samverka pki ARGS`.
  CommandResult Pki(const std::string& args) {
    return RunCommand(std::string(SAMVERKA_BIN) + " pki " + args);
  }
  CommandResult PkiOk(const std::string& args) {
    CommandResult r = Pki(args);
    EXPECT_EQ(r.exit_code, 0) << "samverka pki " << args << "\n" << r.output;
    return r;
  }
  // `openssl verify` of `certificate` against the CA and its CRL.
  CommandResult Verify(const fs::path& certificate) {
    return RunCommand("openssl verify -CAfile " +
                      (pki_ / "ca/ca.crt").string() + " -crl_check -CRLfile " +
                      (pki_ / "ca/crl.pem").string() + " " +
                      certificate.string());
  }
  fs::path Site(const std::string& name, const std::string& file) {
    return pki_ / "sites" / name / file;
  }
  std::string Dir() const { return " --dir " + pki_.string(); }

  static void ExpectError(const CommandResult& r, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr("samverka: error: "));
    EXPECT_THAT(r.output, HasSubstr(fragment));
  }

  fs::path dir_;
  fs::path pki_;
};

TEST_F(PkiCliTest, InitCreatesTheCaWithPrivateKeyAndAnEmptyCrl) {
  CommandResult r = PkiOk("init" + Dir() + " --federation 'Nordic Health'");
  EXPECT_THAT(r.output, HasSubstr("Nordic Health"));
  EXPECT_EQ(Mode(pki_ / "ca/ca.key"), 0600);
  EXPECT_EQ(Mode(pki_ / "ca"), 0700);
  EXPECT_TRUE(fs::exists(pki_ / "ca/crl.pem"));
  CommandResult crl = RunCommand("openssl crl -noout -text -in " +
                                 (pki_ / "ca/crl.pem").string());
  EXPECT_EQ(crl.exit_code, 0) << crl.output;
  EXPECT_THAT(crl.output, HasSubstr("No Revoked Certificates"));
  CommandResult ca = RunCommand("openssl x509 -noout -text -in " +
                                (pki_ / "ca/ca.crt").string());
  EXPECT_THAT(ca.output, HasSubstr("CA:TRUE"));
  EXPECT_THAT(ca.output, HasSubstr("Certificate Sign, CRL Sign"));
  EXPECT_THAT(ca.output, HasSubstr("CN = Nordic Health CA"));

  const std::string key = ReadAll(pki_ / "ca/ca.key");
  ExpectError(Pki("init" + Dir() + " --federation Other"),
              "already holds a CA");
  EXPECT_EQ(ReadAll(pki_ / "ca/ca.key"), key);
}

TEST_F(PkiCliTest, EnrolRevokeAndListAFederation) {
  PkiOk("init" + Dir() + " --federation fl-test");
  PkiOk("issue" + Dir() + " --name site-a");
  PkiOk("issue" + Dir() + " --name site-b --days 30");
  CommandResult coordinator =
      PkiOk("issue" + Dir() +
            " --name coordinator --role coordinator --san 127.0.0.1 --san ::1 "
            "--san coordinator.example");
  EXPECT_THAT(coordinator.output, HasSubstr("IP:127.0.0.1"));

  for (const char* site : {"site-a", "site-b", "coordinator"}) {
    EXPECT_EQ(Mode(Site(site, std::string(site) + ".key")), 0600) << site;
    CommandResult v = Verify(Site(site, std::string(site) + ".crt"));
    EXPECT_EQ(v.exit_code, 0) << site << ": " << v.output;
    EXPECT_THAT(v.output, HasSubstr(": OK"));
    EXPECT_EQ(ReadAll(Site(site, "ca.crt")), ReadAll(pki_ / "ca/ca.crt"));
  }
  CommandResult text =
      RunCommand("openssl x509 -noout -text -in " +
                 Site("coordinator", "coordinator.crt").string());
  EXPECT_THAT(text.output, HasSubstr("IP Address:127.0.0.1"));
  EXPECT_THAT(text.output, HasSubstr("IP Address:0:0:0:0:0:0:0:1"));
  EXPECT_THAT(text.output, HasSubstr("DNS:coordinator.example"));
  EXPECT_THAT(text.output, HasSubstr("TLS Web Server Authentication"));
  EXPECT_THAT(text.output, HasSubstr("OU = coordinator"));

  const auto site_b = Fingerprints(pki_ / "sites/site-b");
  CommandResult revoke = PkiOk("revoke" + Dir() + " --name site-a");
  EXPECT_THAT(revoke.output, HasSubstr("revoked"));
  CommandResult revoked = Verify(Site("site-a", "site-a.crt"));
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_THAT(revoked.output, HasSubstr("certificate revoked"));
  EXPECT_EQ(Verify(Site("site-b", "site-b.crt")).exit_code, 0);
  EXPECT_EQ(Fingerprints(pki_ / "sites/site-b"), site_b);

  CommandResult serial = RunCommand("openssl x509 -noout -serial -in " +
                                    Site("site-a", "site-a.crt").string());
  ASSERT_THAT(serial.output, HasSubstr("serial="));
  const std::string site_a_serial =
      serial.output.substr(7, serial.output.size() - 8);
  CommandResult list = PkiOk("list" + Dir());
  ASSERT_EQ(list.lines().size(), 4u) << list.output;  // header + 3
  EXPECT_THAT(list.lines()[0], HasSubstr("SERIAL"));
  EXPECT_THAT(list.lines()[1], HasSubstr(site_a_serial));
  EXPECT_THAT(list.lines()[1], HasSubstr("site-a"));
  EXPECT_THAT(list.lines()[1], HasSubstr("revoked on"));
  EXPECT_THAT(list.lines()[2], HasSubstr("site-b"));
  EXPECT_THAT(list.lines()[2], HasSubstr("valid"));
  EXPECT_THAT(list.lines()[3], HasSubstr("coordinator"));

  // Re-enrolling a revoked site gets a new serial; the old one stays revoked.
  PkiOk("issue" + Dir() + " --name site-a");
  EXPECT_EQ(Verify(Site("site-a", "site-a.crt")).exit_code, 0);
  EXPECT_EQ(Fingerprints(pki_ / "sites/site-b"), site_b);
  CommandResult crl = PkiOk("crl" + Dir());
  EXPECT_THAT(crl.output, HasSubstr("next update"));
  EXPECT_EQ(Fingerprints(pki_ / "sites/site-b"), site_b);
}

TEST_F(PkiCliTest, CsrAndSignKeepTheSiteKeyAtTheSite) {
  PkiOk("init" + Dir() + " --federation fl-test");
  const fs::path site = dir_ / "hospital";
  CommandResult csr = PkiOk("csr --name haukeland --out " + site.string());
  EXPECT_THAT(csr.output, HasSubstr("haukeland.csr"));
  EXPECT_EQ(Mode(site / "haukeland.key"), 0600);
  const std::string key = ReadAll(site / "haukeland.key");

  CommandResult sign =
      PkiOk("sign" + Dir() + " --csr " + (site / "haukeland.csr").string() +
            " --san 10.0.0.8");
  EXPECT_THAT(sign.output,
              HasSubstr(Site("haukeland", "haukeland.crt").string()));
  EXPECT_EQ(Verify(Site("haukeland", "haukeland.crt")).exit_code, 0);
  EXPECT_FALSE(fs::exists(Site("haukeland", "haukeland.key")));
  // The key never entered the PKI directory.
  const std::string key_line =
      key.substr(key.find('\n', key.find('\n') + 1) + 1, 64);
  for (const auto& entry : fs::recursive_directory_iterator(pki_)) {
    if (entry.is_regular_file()) {
      EXPECT_THAT(ReadAll(entry.path()), Not(HasSubstr(key_line)))
          << entry.path();
    }
  }
  // Certificate and key belong together.
  CommandResult cert_key =
      RunCommand("openssl x509 -noout -pubkey -in " +
                 Site("haukeland", "haukeland.crt").string());
  CommandResult site_key = RunCommand("openssl pkey -pubout -in " +
                                      (site / "haukeland.key").string());
  EXPECT_EQ(cert_key.output, site_key.output);

  ExpectError(Pki("csr --name haukeland --out " + site.string()),
              "already exists");
  EXPECT_EQ(ReadAll(site / "haukeland.key"), key);
  ExpectError(
      Pki("sign" + Dir() + " --csr " + (site / "haukeland.csr").string()),
      "already has a valid certificate");
}

TEST_F(PkiCliTest, BadInputGetsOneClearError) {
  ExpectError(Pki("issue" + Dir() + " --name site-a"), "no CA in");
  PkiOk("init" + Dir() + " --federation fl-test");
  PkiOk("issue" + Dir() + " --name site-a");
  ExpectError(Pki("issue" + Dir() + " --name site-a"),
              "already has a valid certificate");
  ExpectError(Pki("issue" + Dir() + " --name ../escape"), "invalid site name");
  ExpectError(Pki("issue" + Dir() + " --name ok --san 'not a host'"),
              "DNS name");
  ExpectError(Pki("revoke" + Dir() + " --name nobody"),
              "no certificate was ever issued");
  ExpectError(Pki("sign" + Dir() + " --csr " + (dir_ / "missing.csr").string()),
              "cannot read");
  EXPECT_NE(Pki("issue" + Dir() + " --name x --role admin").exit_code, 0);
  EXPECT_FALSE(fs::exists(pki_ / "escape"));
  EXPECT_FALSE(fs::exists(dir_ / "escape"));
}

}  // namespace
}  // namespace samverka
