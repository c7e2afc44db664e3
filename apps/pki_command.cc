// `samverka pki`: the federation's certificate authority (docs/pki.md).
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "apps/commands.h"
#include "fmt/format.h"
#include "security/pki.h"

namespace samverka::apps {
namespace {

using security::CertificateAuthority;

// Flags of every pki subcommand; each subcommand uses the ones it declares.
struct PkiFlags {
  std::string dir;
  std::string federation;
  std::string name;
  std::string role = "client";
  std::vector<std::string> sans;
  int days = 0;
  int ca_days = security::CaOptions{}.ca_validity_days;
  int crl_days = security::CaOptions{}.crl_validity_days;
  std::string out;
  std::string csr;
};

std::string Date(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d", time, absl::UTCTimeZone());
}

void FailWith(const absl::Status& status) {
  Fail(std::string(status.message()));
}

std::unique_ptr<CertificateAuthority> OpenOrFail(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<CertificateAuthority>> ca =
      CertificateAuthority::Open(dir);
  if (!ca.ok()) {
    FailWith(ca.status());
    return nullptr;
  }
  return std::move(*ca);
}

void AddDir(CLI::App* cmd, PkiFlags& f) {
  cmd->add_option("--dir", f.dir, "the CA's directory")->required();
}

void AddRole(CLI::App* cmd, PkiFlags& f) {
  cmd->add_option("--role", f.role, "client, coordinator or operator")
      ->check(CLI::IsMember({"client", "coordinator", "operator"}))
      ->capture_default_str();
}

void AddSans(CLI::App* cmd, PkiFlags& f) {
  cmd->add_option("--san", f.sans,
                  "extra subject alternative name: a host name or an IPv4/IPv6 "
                  "address (repeatable; DNS:<name> is always included)");
}

void AddDays(CLI::App* cmd, PkiFlags& f) {
  // 0 used to mean "the CA's default" silently; now it is an error.
  cmd->add_option("--days", f.days, "validity in days, 1 to 36500 (default: the CA's, 365)")
      ->check(CLI::Range(1, 36500));
}

void PrintIssued(const security::IssuedCertificate& issued) {
  const security::CertificateRecord& r = issued.record;
  std::printf("issued certificate %s to '%s' (role %s, %s, valid until %s)\n",
              r.serial_hex.c_str(), r.name.c_str(),
              std::string(security::RoleName(r.role)).c_str(),
              absl::StrJoin(r.subject_alt_names, ", ").c_str(),
              Date(r.not_after).c_str());
  if (!issued.key_path.empty()) {
    std::printf(
        "  key:            %s (secret: hand it to the site over a secure "
        "channel)\n",
        issued.key_path.c_str());
  }
  std::printf("  certificate:    %s\n", issued.certificate_path.c_str());
  std::printf("  CA certificate: %s\n", issued.ca_certificate_path.c_str());
}

void AddInit(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd =
      pki->add_subcommand("init", "Create the federation's CA (once)");
  AddDir(cmd, *f);
  cmd->add_option("--federation", f->federation, "the federation's name")
      ->required();
  cmd->add_option("--ca-days", f->ca_days,
                  "validity of the CA certificate in days")
      ->capture_default_str();
  cmd->add_option("--crl-days", f->crl_days,
                  "days until each published CRL expires (re-publish with "
                  "`samverka pki crl` before then)")
      ->capture_default_str();
  cmd->callback([f] {
    security::CaOptions options;
    options.ca_validity_days = f->ca_days;
    options.crl_validity_days = f->crl_days;
    absl::StatusOr<std::unique_ptr<CertificateAuthority>> ca =
        CertificateAuthority::Init(f->dir, f->federation, options);
    if (!ca.ok()) return FailWith(ca.status());
    std::printf("created the CA of federation '%s' in %s\n",
                f->federation.c_str(), f->dir.c_str());
    std::printf(
        "  CA key:         %s/ca/ca.key (secret: never copy it off this "
        "machine "
        "except to an offline backup)\n",
        f->dir.c_str());
    std::printf("  CA certificate: %s\n", (*ca)->ca_certificate_path().c_str());
    std::printf(
        "  CRL:            %s (expires in %d days: run `samverka pki crl` "
        "regularly)\n",
        (*ca)->crl_path().c_str(), f->crl_days);
  });
}

void AddIssue(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd = pki->add_subcommand(
      "issue", "Make a key and certificate for a site (prefer csr + sign)");
  AddDir(cmd, *f);
  cmd->add_option("--name", f->name, "the site's name")->required();
  AddRole(cmd, *f);
  AddSans(cmd, *f);
  AddDays(cmd, *f);
  cmd->callback([f] {
    std::unique_ptr<CertificateAuthority> ca = OpenOrFail(f->dir);
    if (ca == nullptr) return;
    absl::StatusOr<security::Role> role = security::ParseRole(f->role);
    if (!role.ok()) return FailWith(role.status());
    absl::StatusOr<security::IssuedCertificate> issued =
        ca->Issue({f->name, *role, f->sans, f->days});
    if (!issued.ok()) return FailWith(issued.status());
    PrintIssued(*issued);
  });
}

void AddCsr(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd = pki->add_subcommand(
      "csr", "At a site: make a key and a certificate signing request");
  cmd->add_option("--name", f->name, "this site's name")->required();
  cmd->add_option("--out", f->out, "directory for NAME.key and NAME.csr")
      ->required();
  cmd->callback([f] {
    absl::StatusOr<std::string> csr = security::WriteKeyAndCsr(f->out, f->name);
    if (!csr.ok()) return FailWith(csr.status());
    std::printf("wrote %s/%s.key (secret: it never leaves this site)\n",
                f->out.c_str(), f->name.c_str());
    std::printf("wrote %s: send it to the federation's CA operator\n",
                csr->c_str());
  });
}

void AddSign(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd = pki->add_subcommand(
      "sign", "Sign a site's CSR; the CA decides role, names and validity");
  AddDir(cmd, *f);
  cmd->add_option("--csr", f->csr, "the site's .csr file")->required();
  AddRole(cmd, *f);
  AddSans(cmd, *f);
  AddDays(cmd, *f);
  cmd->callback([f] {
    absl::StatusOr<security::Role> role = security::ParseRole(f->role);
    if (!role.ok()) return FailWith(role.status());
    // The CA parses and checks the request; this only reads the file.
    std::ifstream in(f->csr, std::ios::binary);
    if (!in) return Fail(fmt::format("cannot read {}", f->csr));
    std::stringstream pem;
    pem << in.rdbuf();
    std::unique_ptr<CertificateAuthority> ca = OpenOrFail(f->dir);
    if (ca == nullptr) return;
    absl::StatusOr<security::IssuedCertificate> issued =
        ca->SignCsr(pem.str(), *role, f->sans, f->days);
    if (!issued.ok()) return FailWith(issued.status());
    PrintIssued(*issued);
    std::printf("send both certificates to the site; its key stayed there\n");
  });
}

void AddRevoke(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd = pki->add_subcommand(
      "revoke", "Revoke a site's certificate and update the CRL");
  AddDir(cmd, *f);
  cmd->add_option("--name", f->name, "the site's name")->required();
  cmd->callback([f] {
    std::unique_ptr<CertificateAuthority> ca = OpenOrFail(f->dir);
    if (ca == nullptr) return;
    absl::StatusOr<std::vector<security::CertificateRecord>> revoked =
        ca->Revoke(f->name);
    if (!revoked.ok()) return FailWith(revoked.status());
    for (const security::CertificateRecord& r : *revoked) {
      std::printf("revoked certificate %s of '%s'\n", r.serial_hex.c_str(),
                  r.name.c_str());
    }
    std::printf("updated %s: copy it to the coordinator\n",
                ca->crl_path().c_str());
  });
}

void AddList(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd =
      pki->add_subcommand("list", "Show every certificate the CA issued");
  AddDir(cmd, *f);
  cmd->callback([f] {
    std::unique_ptr<CertificateAuthority> ca = OpenOrFail(f->dir);
    if (ca == nullptr) return;
    std::fputs(security::FormatCertificateTable(ca->List(), ca->Now()).c_str(),
               stdout);
  });
}

void AddCrl(CLI::App* pki) {
  auto f = std::make_shared<PkiFlags>();
  CLI::App* cmd = pki->add_subcommand("crl",
                                      "Re-publish the CRL with a fresh expiry "
                                      "(run it regularly, e.g. from cron)");
  AddDir(cmd, *f);
  cmd->callback([f] {
    std::unique_ptr<CertificateAuthority> ca = OpenOrFail(f->dir);
    if (ca == nullptr) return;
    absl::StatusOr<absl::Time> next_update = ca->RefreshCrl();
    if (!next_update.ok()) return FailWith(next_update.status());
    std::printf("updated %s (next update %s): copy it to the coordinator\n",
                ca->crl_path().c_str(), Date(*next_update).c_str());
  });
}

}  // namespace

void AddPkiCommand(CLI::App& app) {
  CLI::App* pki =
      app.add_subcommand("pki", "The federation's certificate authority");
  pki->require_subcommand(1);
  AddInit(pki);
  AddIssue(pki);
  AddCsr(pki);
  AddSign(pki);
  AddRevoke(pki);
  AddList(pki);
  AddCrl(pki);
}

}  // namespace samverka::apps
