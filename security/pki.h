// security/pki.h
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/internal/file_util.h"
#include "security/internal/openssl_util.h"
#include "security/secret_bytes.h"

namespace samverka::security {

// The federation's PKI (`samverka pki`): one CA per federation, ECDSA P-256
// keys, one certificate per site. Identity is the certificate (DESIGN.md):
// the subject is CN=<site name>, O=<federation>, OU=<role>, and the
// coordinator reads the role from OU. Revocation is published as a CRL that
// always exists once the CA does (gRPC lets everyone in when no CRL is
// present). See docs/pki.md for the operator's view.

// What a certificate holder may do. Coordinators get serverAuth+clientAuth,
// the others clientAuth only.
enum class Role { kClient, kCoordinator, kOperator };

// "client", "coordinator" or "operator".
std::string_view RoleName(Role role);
// The inverse of RoleName; kInvalidArgument for anything else.
absl::StatusOr<Role> ParseRole(std::string_view name);

// OK iff `name` can name a site: 1 to 64 of [A-Za-z0-9._-], starting and
// ending with a letter or digit, without "..", and usable as a DNS name (it
// becomes the certificate's DNS SAN) but not an IP address. Such a name is a
// safe file name that cannot leave its directory. kInvalidArgument otherwise.
absl::Status ValidateSiteName(std::string_view name);

// Time source, injectable so tests can move past expiry.
using Clock = std::function<absl::Time()>;

// Options of a new CA; validated by CertificateAuthority::Init and stored in
// the CA directory (Open reads them back).
struct CaOptions {
  // Validity of the CA certificate.
  int ca_validity_days = 3650;
  // Validity of each leaf certificate unless a request says otherwise.
  int default_validity_days = 365;
  // nextUpdate of every CRL, counted from when it is made. A CRL past its
  // nextUpdate makes gRPC refuse every client, so re-publish (`samverka pki
  // crl`) well within this period.
  int crl_validity_days = 30;

  // kInvalidArgument naming the first out-of-range field.
  absl::Status Validate() const;
};

// One issued certificate, as recorded in the CA's index.
struct CertificateRecord {
  std::string serial_hex;  // upper-case hex, as `openssl x509 -serial`
  std::string name;
  Role role = Role::kClient;
  // As issued, e.g. "DNS:site-a", "IP:127.0.0.1", "IP:::1".
  std::vector<std::string> subject_alt_names;
  absl::Time not_after;
  std::optional<absl::Time> revoked_at;

  bool IsRevoked() const { return revoked_at.has_value(); }
  bool IsExpired(absl::Time now) const { return now >= not_after; }
  // "valid", "revoked on YYYY-MM-DD" or "expired" (revocation wins).
  std::string StatusAt(absl::Time now) const;
};

// What to issue. The CA, not the requester, decides every field.
struct CertificateRequest {
  std::string name;
  Role role = Role::kClient;
  // Extra subject alternative names besides DNS:<name>. IPv4 and IPv6
  // literals (optionally in [brackets]) become IP SANs, anything else must be
  // a DNS name.
  std::vector<std::string> subject_alt_names;
  // Validity in days; 0 means CaOptions::default_validity_days.
  int validity_days = 0;
};

// The result of Issue or SignCsr.
struct IssuedCertificate {
  CertificateRecord record;
  std::string certificate_pem;
  std::string certificate_path;     // <dir>/sites/<name>/<name>.crt
  std::string key_path;             // <dir>/sites/<name>/<name>.key; empty
                                    // when signed from a CSR
  std::string ca_certificate_path;  // <dir>/sites/<name>/ca.crt (a copy)
};

// A federation's certificate authority, kept in one directory:
//   ca/ca.key (0600), ca/ca.crt, ca/crl.pem, ca/index.json,
//   ca/certs/<serial>.pem sites/<name>/<name>.key (0600, only when the CA made
//   the key), sites/<name>/<name>.crt, sites/<name>/ca.crt
// Every file is replaced atomically. Enrolling or revoking one site writes
// only that site's directory and ca/. An open CA holds an exclusive lock on
// the directory (ca/lock), so concurrent `samverka pki` runs fail fast
// instead of racing. Not thread-safe: use one object from one thread.
class CertificateAuthority {
 public:
  // Creates a new CA in `dir` (created 0700 if missing) for federation
  // `federation` (1 to 61 printable ASCII characters), with an empty CRL.
  // kAlreadyExists if `dir` already holds a CA (nothing is overwritten);
  // kInvalidArgument for a bad federation name or options.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Init(
      const std::string& dir, std::string_view federation,
      const CaOptions& options = {}, Clock clock = absl::Now);

  // Opens the CA in `dir`. kNotFound if there is none; kFailedPrecondition
  // if ca.key is readable by group or others, or does not match ca.crt;
  // kUnavailable if another process holds the directory; kDataLoss if the
  // index is corrupt.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Open(
      const std::string& dir, Clock clock = absl::Now);

  // Makes a key pair and a certificate for `request.name` and writes both to
  // sites/<name>/. kAlreadyExists if the name has a certificate that is
  // neither revoked nor expired; kInvalidArgument for a bad name, SAN or
  // validity; kFailedPrecondition if the certificate would outlive the CA.
  absl::StatusOr<IssuedCertificate> Issue(const CertificateRequest& request);

  // Signs a PEM certificate signing request made at the site (the site's key
  // never leaves it). The name is the CSR's CN; role, SANs and validity come
  // from the arguments, never from the CSR. Writes sites/<name>/<name>.crt
  // and removes a stale <name>.key of an earlier certificate of that name.
  // kInvalidArgument if the CSR does not parse, its signature is wrong, its
  // key is not P-256/Ed25519 or its CN is not a valid name; otherwise as
  // Issue.
  absl::StatusOr<IssuedCertificate> SignCsr(
      std::string_view csr_pem, Role role,
      const std::vector<std::string>& subject_alt_names, int validity_days = 0);

  // Revokes every unrevoked certificate of `name` and re-publishes the CRL.
  // Returns the revoked records. kNotFound if the name was never issued;
  // kFailedPrecondition if all its certificates are already revoked.
  absl::StatusOr<std::vector<CertificateRecord>> Revoke(std::string_view name);

  // Re-signs the CRL with a fresh thisUpdate/nextUpdate (run it regularly,
  // e.g. daily from cron). Returns the new nextUpdate.
  absl::StatusOr<absl::Time> RefreshCrl();

  // Every certificate ever issued, in issue order.
  const std::vector<CertificateRecord>& List() const { return records_; }

  const std::string& federation() const { return federation_; }
  const std::string& ca_certificate_pem() const { return ca_certificate_pem_; }
  std::string ca_certificate_path() const;
  std::string crl_path() const;
  // <dir>/sites/<name>; `name` must be valid.
  std::string SiteDirectory(std::string_view name) const;
  absl::Time Now() const { return clock_(); }

  ~CertificateAuthority();

 private:
  CertificateAuthority(std::string dir, Clock clock, internal::FileLock lock);

  absl::Status Load();
  absl::Status SaveIndex();
  // Signs and writes ca/crl.pem numbered crl_number_; returns nextUpdate.
  absl::StatusOr<absl::Time> WriteCrl();
  // Issues a certificate for `public_key`; writes the site's certificate and
  // CA copy, plus `key_pem` if given, then records it in the index.
  absl::StatusOr<IssuedCertificate> IssueFor(EVP_PKEY* public_key,
                                             const SecretBytes* key_pem,
                                             const CertificateRequest& request);
  absl::Status CheckCanIssue(const CertificateRequest& request) const;

  std::string dir_;
  Clock clock_;
  internal::FileLock lock_;
  std::string federation_;
  CaOptions options_;
  int64_t crl_number_ = 0;
  internal::EvpPkeyPtr ca_key_;
  internal::X509Ptr ca_certificate_;
  std::string ca_certificate_pem_;
  std::vector<CertificateRecord> records_;
};

// Formats `records` as the table `samverka pki list` prints: serial (hex),
// name, role, not after (ISO date) and status at `now`.
std::string FormatCertificateTable(
    const std::vector<CertificateRecord>& records, absl::Time now);

// A site's new private key and its certificate signing request.
struct KeyAndCsr {
  SecretBytes key_pem;  // PKCS#8, unencrypted
  std::string csr_pem;
};

// A new P-256 key pair and a PEM CSR for it with subject CN=<name>,
// OU=<role> and the requested SANs (DNS:<name> plus `subject_alt_names`).
// The CA takes only the CN and key from it; role and SANs are a request.
// kInvalidArgument for a bad name or SAN.
absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(
    std::string_view name, Role role = Role::kClient,
    const std::vector<std::string>& subject_alt_names = {});

// MakeKeyAndCsr, written to <out_dir>/<name>.key (0600) and
// <out_dir>/<name>.csr (0644); `out_dir` is created (0700) if missing.
// kAlreadyExists if <name>.key is already there (it may be a key in use).
// Returns the CSR's path.
absl::StatusOr<std::string> WriteKeyAndCsr(
    const std::string& out_dir, std::string_view name,
    Role role = Role::kClient,
    const std::vector<std::string>& subject_alt_names = {});

// Who a peer is, read from its leaf certificate.
struct PeerIdentity {
  std::string name;           // CN
  std::string federation;     // O
  Role role = Role::kClient;  // OU
  std::string serial_hex;     // as in CertificateRecord and RevocationList
  absl::Time not_after;
};

// Reads the identity from a PEM leaf certificate (e.g. gRPC's
// x509_pem_cert). It does NOT check the chain: call it after the TLS stack
// (or VerifyCertificateChain) has. kInvalidArgument if the PEM does not
// parse or CN/O/OU are missing, repeated, or OU is not a role.
absl::StatusOr<PeerIdentity> ParsePeerCertificate(std::string_view pem);

// The revoked serials of a CRL, for checking each handshake against the
// current CRL file (reload it when the file changes).
struct RevocationList {
  std::set<std::string> revoked_serials;  // upper-case hex
  absl::Time this_update;
  absl::Time next_update;

  bool IsRevoked(std::string_view serial_hex) const {
    return revoked_serials.count(std::string(serial_hex)) > 0;
  }
  // A CRL past its nextUpdate should be treated as "revocation status
  // unknown" (gRPC then refuses every client).
  bool IsExpired(absl::Time now) const { return now >= next_update; }
};

// Loads the PEM CRL at `path` and checks that the CA in `ca_certificate_pem`
// issued and signed it (a CRL nobody signed must not be able to un-revoke
// anyone). kNotFound if the file is missing, kInvalidArgument if it does not
// parse, kUnauthenticated if the CA did not sign it. An expired CRL loads:
// the caller decides (see IsExpired).
absl::StatusOr<RevocationList> LoadCrl(const std::string& path,
                                       std::string_view ca_certificate_pem);

}  // namespace samverka::security
