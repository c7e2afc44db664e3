// security/pki.cc
#include "security/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include "common/status_macros.h"
#include "security/internal/file_util.h"
#include "security/internal/pki_index.h"
#include "security/internal/x509_util.h"

namespace samverka::security {
namespace {

using internal::Asn1IntegerPtr;
using internal::Asn1TimePtr;
using internal::EvpPkeyPtr;
using internal::SubjectAltName;
using internal::X509CrlPtr;
using internal::X509NamePtr;
using internal::X509Ptr;
using internal::X509ReqPtr;

constexpr mode_t kKeyMode = 0600;
constexpr mode_t kPublicMode = 0644;
constexpr mode_t kPrivateDirectoryMode = 0700;
constexpr mode_t kPublicDirectoryMode = 0755;
// Certificates and CRLs start this long before they are made, so a peer
// whose clock is somewhat behind the CA's still accepts them.
constexpr absl::Duration kClockSkewAllowance = absl::Hours(1);
constexpr int kMaxLeafValidityDays = 3650;
constexpr int kMaxCaValidityDays = 36500;
constexpr size_t kMaxSubjectAltNames = 64;
constexpr size_t kMaxIndexSize = size_t{64} << 20;
constexpr size_t kMaxCrlSize = size_t{64} << 20;

std::string PathIn(std::string_view directory, std::string_view name) {
  return std::string(directory) + "/" + std::string(name);
}

absl::Status ValidateFederationName(std::string_view federation) {
  // CN "<federation> CA" must fit the 64-character limit of X.520.
  if (federation.empty() || federation.size() > 61) {
    return absl::InvalidArgumentError(
        "federation name must have 1 to 61 characters");
  }
  for (char c : federation) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "federation name must be printable ASCII");
    }
  }
  if (federation.front() == ' ' || federation.back() == ' ') {
    return absl::InvalidArgumentError(
        "federation name must not start or end with a space");
  }
  return absl::OkStatus();
}

absl::Status ValidateDays(int days, int max, std::string_view what) {
  if (days < 1 || days > max) {
    return absl::InvalidArgumentError(std::string(what) + " must be 1 to " +
                                      std::to_string(max) + " days, not " +
                                      std::to_string(days));
  }
  return absl::OkStatus();
}

std::string IsoDate(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d", time, absl::UTCTimeZone());
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// DNS:<name> followed by `extra` (parsed), without duplicates.
absl::StatusOr<std::vector<SubjectAltName>> SiteAltNames(
    std::string_view name, const std::vector<std::string>& extra) {
  std::vector<SubjectAltName> names;
  SV_ASSIGN_OR_RETURN(SubjectAltName own, internal::ParseSubjectAltName(name));
  names.push_back(std::move(own));
  for (const std::string& text : extra) {
    SV_ASSIGN_OR_RETURN(SubjectAltName parsed,
                        internal::ParseSubjectAltName(text));
    if (std::find(names.begin(), names.end(), parsed) == names.end()) {
      names.push_back(std::move(parsed));
    }
  }
  if (names.size() > kMaxSubjectAltNames) {
    return absl::InvalidArgumentError("too many subject alternative names");
  }
  return names;
}

absl::Status SetValidity(X509* certificate, absl::Time not_before,
                         absl::Time not_after) {
  SV_RETURN_IF_ERROR(
      internal::SetAsn1Time(X509_getm_notBefore(certificate), not_before));
  return internal::SetAsn1Time(X509_getm_notAfter(certificate), not_after);
}

// A new version-3 certificate with a fresh random serial, `subject`, issuer
// `issuer_name`, validity and public key; no extensions yet.
absl::StatusOr<X509Ptr> NewCertificate(
    X509_NAME* subject, X509_NAME* issuer_name, EVP_PKEY* public_key,
    ASN1_INTEGER* serial, absl::Time not_before, absl::Time not_after) {
  X509Ptr certificate(X509_new());
  if (certificate == nullptr ||
      X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(certificate.get(), serial) != 1 ||
      X509_set_subject_name(certificate.get(), subject) != 1 ||
      X509_set_issuer_name(certificate.get(), issuer_name) != 1 ||
      X509_set_pubkey(certificate.get(), public_key) != 1) {
    return internal::OpenSslInternalError("cannot fill in a certificate");
  }
  SV_RETURN_IF_ERROR(SetValidity(certificate.get(), not_before, not_after));
  return certificate;
}

absl::Status Sign(X509* certificate, EVP_PKEY* ca_key) {
  if (X509_sign(certificate, ca_key, EVP_sha256()) <= 0) {
    return internal::OpenSslInternalError("cannot sign a certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> MakeCaCertificate(EVP_PKEY* key,
                                          const std::string& federation,
                                          absl::Time not_before,
                                          absl::Time not_after) {
  SV_ASSIGN_OR_RETURN(
      X509NamePtr name,
      internal::MakeName({{NID_organizationName, federation},
                          {NID_commonName, federation + " CA"}}));
  SV_ASSIGN_OR_RETURN(Asn1IntegerPtr serial, internal::RandomSerial());
  SV_ASSIGN_OR_RETURN(X509Ptr certificate,
                      NewCertificate(name.get(), name.get(), key, serial.get(),
                                     not_before, not_after));
  X509* c = certificate.get();
  // pathlen:0: this CA signs leaves only, never another CA.
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(
      c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(
      c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  SV_RETURN_IF_ERROR(
      internal::AddConfigExtension(c, c, NID_subject_key_identifier, "hash"));
  SV_RETURN_IF_ERROR(Sign(c, key));
  return certificate;
}

struct LeafSpec {
  std::string name;
  std::string federation;
  Role role;
  std::vector<SubjectAltName> alt_names;
  absl::Time not_before;
  absl::Time not_after;
};

absl::StatusOr<X509Ptr> MakeLeafCertificate(X509* ca, EVP_PKEY* ca_key,
                                            EVP_PKEY* public_key,
                                            ASN1_INTEGER* serial,
                                            const LeafSpec& spec) {
  SV_ASSIGN_OR_RETURN(
      X509NamePtr subject,
      internal::MakeName(
          {{NID_organizationName, spec.federation},
           {NID_organizationalUnitName, std::string(RoleName(spec.role))},
           {NID_commonName, spec.name}}));
  SV_ASSIGN_OR_RETURN(
      X509Ptr certificate,
      NewCertificate(subject.get(), X509_get_subject_name(ca), public_key,
                     serial, spec.not_before, spec.not_after));
  X509* c = certificate.get();
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(c, ca, NID_basic_constraints,
                                                  "critical,CA:FALSE"));
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(c, ca, NID_key_usage,
                                                  "critical,digitalSignature"));
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(
      c, ca, NID_ext_key_usage,
      spec.role == Role::kCoordinator ? "serverAuth,clientAuth"
                                      : "clientAuth"));
  SV_RETURN_IF_ERROR(
      internal::AddConfigExtension(c, ca, NID_subject_key_identifier, "hash"));
  SV_RETURN_IF_ERROR(internal::AddConfigExtension(
      c, ca, NID_authority_key_identifier, "keyid:always"));
  SV_ASSIGN_OR_RETURN(internal::GeneralNamesPtr names,
                      internal::MakeGeneralNames(spec.alt_names));
  if (X509_add1_ext_i2d(c, NID_subject_alt_name, names.get(), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return internal::OpenSslInternalError("cannot add subjectAltName");
  }
  SV_RETURN_IF_ERROR(Sign(c, ca_key));
  return certificate;
}

absl::StatusOr<Asn1TimePtr> Asn1TimeOf(absl::Time time) {
  Asn1TimePtr result(ASN1_TIME_new());
  if (result == nullptr) return internal::OpenSslInternalError("ASN1_TIME_new");
  SV_RETURN_IF_ERROR(internal::SetAsn1Time(result.get(), time));
  return result;
}

absl::Status AddRevoked(X509_CRL* crl, const CertificateRecord& record) {
  SV_ASSIGN_OR_RETURN(Asn1IntegerPtr serial,
                      internal::SerialFromHex(record.serial_hex));
  SV_ASSIGN_OR_RETURN(Asn1TimePtr when, Asn1TimeOf(*record.revoked_at));
  X509_REVOKED* revoked = X509_REVOKED_new();
  if (revoked == nullptr ||
      X509_REVOKED_set_serialNumber(revoked, serial.get()) != 1 ||
      X509_REVOKED_set_revocationDate(revoked, when.get()) != 1 ||
      X509_CRL_add0_revoked(crl, revoked) != 1) {  // takes ownership
    X509_REVOKED_free(revoked);
    return internal::OpenSslInternalError("cannot add a revoked serial");
  }
  return absl::OkStatus();
}

// A signed version-2 CRL listing every revoked record, with a CRL number and
// the CA's key identifier (RFC 5280 section 5).
absl::StatusOr<std::string> MakeCrl(
    X509* ca, EVP_PKEY* ca_key, const std::vector<CertificateRecord>& records,
    int64_t number, absl::Time this_update, absl::Time next_update) {
  X509CrlPtr crl(X509_CRL_new());
  SV_ASSIGN_OR_RETURN(Asn1TimePtr last, Asn1TimeOf(this_update));
  SV_ASSIGN_OR_RETURN(Asn1TimePtr next, Asn1TimeOf(next_update));
  if (crl == nullptr ||
      X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca)) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return internal::OpenSslInternalError("cannot fill in the CRL");
  }
  for (const CertificateRecord& record : records) {
    if (record.IsRevoked()) SV_RETURN_IF_ERROR(AddRevoked(crl.get(), record));
  }
  X509_CRL_sort(crl.get());
  Asn1IntegerPtr crl_number(ASN1_INTEGER_new());
  if (crl_number == nullptr ||
      ASN1_INTEGER_set_int64(crl_number.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0,
                            X509V3_ADD_DEFAULT) != 1) {
    return internal::OpenSslInternalError("cannot add the CRL number");
  }
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, ca, nullptr, nullptr, crl.get(), 0);
  internal::X509ExtensionPtr key_id(X509V3_EXT_conf_nid(
      nullptr, &context, NID_authority_key_identifier, "keyid:always"));
  if (key_id == nullptr || X509_CRL_add_ext(crl.get(), key_id.get(), -1) != 1) {
    return internal::OpenSslInternalError("cannot add the CRL's key id");
  }
  if (X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) <= 0) {
    return internal::OpenSslInternalError("cannot sign the CRL");
  }
  return internal::CrlToPem(crl.get());
}

absl::Status CheckKeyFileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(path + " does not exist");
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        path + " is readable or writable by group or others; run chmod 600 " +
        path);
  }
  return absl::OkStatus();
}

absl::Status MakeDirectoryWithParents(const std::string& path, mode_t mode) {
  const std::filesystem::path parent =
      std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    if (error) {
      return absl::InternalError("cannot create directory " + parent.string() +
                                 ": " + error.message());
    }
  }
  return internal::MakeDirectory(path, mode);
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kClient:
      return "client";
    case Role::kCoordinator:
      return "coordinator";
    case Role::kOperator:
      return "operator";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kClient, Role::kCoordinator, Role::kOperator}) {
    if (name == RoleName(role)) return role;
  }
  return absl::InvalidArgumentError("unknown role '" + std::string(name) +
                                    "' (client, coordinator or operator)");
}

absl::Status ValidateSiteName(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        "invalid site name '" + std::string(name) + "': " + std::string(why));
  };
  if (name.empty() || name.size() > 64)
    return bad("it must have 1 to 64 characters");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' &&
        c != '_') {
      return bad("use only letters, digits, '.', '-' and '_'");
    }
  }
  if (!std::isalnum(static_cast<unsigned char>(name.front())) ||
      !std::isalnum(static_cast<unsigned char>(name.back()))) {
    return bad("it must start and end with a letter or digit");
  }
  if (name.find("..") != std::string_view::npos) return bad("it contains '..'");
  // The name is also the certificate's DNS SAN.
  absl::StatusOr<SubjectAltName> as_dns = internal::ParseSubjectAltName(name);
  if (!as_dns.ok() || as_dns->is_ip) {
    return bad("it must also be a valid DNS name, not an IP address");
  }
  return absl::OkStatus();
}

absl::Status CaOptions::Validate() const {
  SV_RETURN_IF_ERROR(
      ValidateDays(ca_validity_days, kMaxCaValidityDays, "CA validity"));
  SV_RETURN_IF_ERROR(ValidateDays(default_validity_days, kMaxLeafValidityDays,
                                  "default certificate validity"));
  SV_RETURN_IF_ERROR(
      ValidateDays(crl_validity_days, kMaxLeafValidityDays, "CRL validity"));
  return absl::OkStatus();
}

std::string CertificateRecord::StatusAt(absl::Time now) const {
  if (revoked_at) return "revoked on " + IsoDate(*revoked_at);
  if (IsExpired(now)) return "expired";
  return "valid";
}

CertificateAuthority::CertificateAuthority(std::string dir, Clock clock,
                                           internal::FileLock lock)
    : dir_(std::move(dir)), clock_(std::move(clock)), lock_(std::move(lock)) {}

CertificateAuthority::~CertificateAuthority() = default;

std::string CertificateAuthority::ca_certificate_path() const {
  return dir_ + "/ca/ca.crt";
}

std::string CertificateAuthority::crl_path() const {
  return dir_ + "/ca/crl.pem";
}

std::string CertificateAuthority::SiteDirectory(std::string_view name) const {
  return dir_ + "/sites/" + std::string(name);
}

absl::StatusOr<std::unique_ptr<CertificateAuthority>>
CertificateAuthority::Init(const std::string& dir, std::string_view federation,
                           const CaOptions& options, Clock clock) {
  SV_RETURN_IF_ERROR(ValidateFederationName(federation));
  SV_RETURN_IF_ERROR(options.Validate());
  if (dir.empty()) return absl::InvalidArgumentError("no PKI directory given");
  SV_RETURN_IF_ERROR(MakeDirectoryWithParents(dir, kPrivateDirectoryMode));
  const std::string ca_dir = PathIn(dir, "ca");
  SV_RETURN_IF_ERROR(internal::MakeDirectory(ca_dir, kPrivateDirectoryMode));
  SV_ASSIGN_OR_RETURN(internal::FileLock lock,
                      internal::FileLock::Acquire(PathIn(ca_dir, "lock")));
  for (const char* file : {"ca.key", "ca.crt", "crl.pem", "index.json"}) {
    if (internal::PathExists(PathIn(ca_dir, file))) {
      return absl::AlreadyExistsError(dir + " already holds a CA (" +
                                      PathIn(ca_dir, file) +
                                      " exists); refusing to overwrite it");
    }
  }
  SV_RETURN_IF_ERROR(
      internal::MakeDirectory(PathIn(ca_dir, "certs"), kPublicDirectoryMode));
  SV_RETURN_IF_ERROR(
      internal::MakeDirectory(PathIn(dir, "sites"), kPublicDirectoryMode));

  std::unique_ptr<CertificateAuthority> ca(
      new CertificateAuthority(dir, std::move(clock), std::move(lock)));
  ca->federation_ = std::string(federation);
  ca->options_ = options;
  const absl::Time now = ca->clock_();
  SV_ASSIGN_OR_RETURN(ca->ca_key_, internal::GenerateP256Key());
  SV_ASSIGN_OR_RETURN(
      ca->ca_certificate_,
      MakeCaCertificate(ca->ca_key_.get(), ca->federation_,
                        now - kClockSkewAllowance,
                        now + absl::Hours(24) * options.ca_validity_days));
  SV_ASSIGN_OR_RETURN(ca->ca_certificate_pem_,
                      internal::CertificateToPem(ca->ca_certificate_.get()));
  SV_ASSIGN_OR_RETURN(SecretBytes key_pem,
                      internal::PrivateKeyToPem(ca->ca_key_.get()));
  // The index is written last: it marks a complete CA.
  SV_RETURN_IF_ERROR(internal::WriteFileAtomically(PathIn(ca_dir, "ca.key"),
                                                   key_pem.span(), kKeyMode));
  SV_RETURN_IF_ERROR(internal::WriteFileAtomically(
      ca->ca_certificate_path(), ca->ca_certificate_pem_, kPublicMode));
  ca->crl_number_ = 1;
  SV_RETURN_IF_ERROR(ca->WriteCrl().status());
  SV_RETURN_IF_ERROR(ca->SaveIndex());
  return ca;
}

absl::StatusOr<std::unique_ptr<CertificateAuthority>>
CertificateAuthority::Open(const std::string& dir, Clock clock) {
  const std::string ca_dir = PathIn(dir, "ca");
  if (!internal::PathExists(PathIn(ca_dir, "index.json"))) {
    return absl::NotFoundError("no CA in " + dir +
                               " (create one with `samverka pki init`)");
  }
  SV_ASSIGN_OR_RETURN(internal::FileLock lock,
                      internal::FileLock::Acquire(PathIn(ca_dir, "lock")));
  std::unique_ptr<CertificateAuthority> ca(
      new CertificateAuthority(dir, std::move(clock), std::move(lock)));
  SV_RETURN_IF_ERROR(ca->Load());
  return ca;
}

absl::Status CertificateAuthority::Load() {
  const std::string index_path = dir_ + "/ca/index.json";
  SV_ASSIGN_OR_RETURN(std::string index_json,
                      internal::ReadFile(index_path, kMaxIndexSize));
  SV_ASSIGN_OR_RETURN(internal::PkiIndex index,
                      internal::ParsePkiIndex(index_json, index_path));
  federation_ = std::move(index.federation);
  options_ = index.options;
  crl_number_ = index.crl_number;
  records_ = std::move(index.records);

  SV_ASSIGN_OR_RETURN(ca_certificate_pem_,
                      internal::ReadFile(ca_certificate_path()));
  SV_ASSIGN_OR_RETURN(ca_certificate_, internal::ParseCertificatePem(
                                           ca_certificate_pem_, "ca/ca.crt"));
  const std::string key_path = dir_ + "/ca/ca.key";
  SV_RETURN_IF_ERROR(CheckKeyFileMode(key_path));
  SV_ASSIGN_OR_RETURN(SecretBytes key_pem, internal::ReadSecretFile(key_path));
  SV_ASSIGN_OR_RETURN(ca_key_, internal::ParsePrivateKeyPem(key_pem, key_path));
  if (X509_check_private_key(ca_certificate_.get(), ca_key_.get()) != 1) {
    return internal::OpenSslError(
        absl::StatusCode::kFailedPrecondition,
        key_path + " does not match " + ca_certificate_path());
  }
  return absl::OkStatus();
}

absl::Status CertificateAuthority::SaveIndex() {
  internal::PkiIndex index{federation_, options_, crl_number_, records_};
  return internal::WriteFileAtomically(
      dir_ + "/ca/index.json", internal::SerializePkiIndex(index), kPublicMode);
}

absl::StatusOr<absl::Time> CertificateAuthority::WriteCrl() {
  const absl::Time now = clock_();
  const absl::Time next_update =
      now + absl::Hours(24) * options_.crl_validity_days;
  SV_ASSIGN_OR_RETURN(
      std::string crl,
      MakeCrl(ca_certificate_.get(), ca_key_.get(), records_, crl_number_,
              now - kClockSkewAllowance, next_update));
  SV_RETURN_IF_ERROR(
      internal::WriteFileAtomically(crl_path(), crl, kPublicMode));
  return next_update;
}

absl::Status CertificateAuthority::CheckCanIssue(
    const CertificateRequest& request) const {
  SV_RETURN_IF_ERROR(ValidateSiteName(request.name));
  if (request.validity_days != 0) {
    SV_RETURN_IF_ERROR(ValidateDays(request.validity_days, kMaxLeafValidityDays,
                                    "certificate validity"));
  }
  const absl::Time now = clock_();
  for (const CertificateRecord& record : records_) {
    if (record.name != request.name &&
        EqualsIgnoringCase(record.name, request.name)) {
      return absl::AlreadyExistsError("site name '" + request.name +
                                      "' differs only in case from '" +
                                      record.name + "'; pick a distinct name");
    }
    if (record.name == request.name && !record.IsRevoked() &&
        !record.IsExpired(now)) {
      return absl::AlreadyExistsError(
          "site '" + request.name +
          "' already has a valid certificate (serial " + record.serial_hex +
          ", expires " + IsoDate(record.not_after) +
          "); revoke it first to issue a new one");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::IssueFor(
    EVP_PKEY* public_key, const SecretBytes* key_pem,
    const CertificateRequest& request) {
  SV_RETURN_IF_ERROR(CheckCanIssue(request));
  SV_ASSIGN_OR_RETURN(std::vector<SubjectAltName> alt_names,
                      SiteAltNames(request.name, request.subject_alt_names));
  const int days = request.validity_days != 0 ? request.validity_days
                                              : options_.default_validity_days;
  const absl::Time now = clock_();
  LeafSpec spec{request.name,
                federation_,
                request.role,
                alt_names,
                now - kClockSkewAllowance,
                now + absl::Hours(24) * days};
  SV_ASSIGN_OR_RETURN(
      absl::Time ca_not_after,
      internal::FromAsn1Time(X509_get0_notAfter(ca_certificate_.get())));
  if (spec.not_after > ca_not_after) {
    return absl::FailedPreconditionError(
        "a " + std::to_string(days) +
        "-day certificate would outlive the CA (" + "it expires " +
        IsoDate(ca_not_after) + "); ask for fewer days");
  }
  // 128 random bits do not collide in practice; checking costs nothing.
  Asn1IntegerPtr serial;
  std::string serial_hex;
  do {
    SV_ASSIGN_OR_RETURN(serial, internal::RandomSerial());
    serial_hex = internal::SerialToHex(serial.get());
  } while (std::any_of(
      records_.begin(), records_.end(),
      [&](const CertificateRecord& r) { return r.serial_hex == serial_hex; }));
  SV_ASSIGN_OR_RETURN(X509Ptr certificate,
                      MakeLeafCertificate(ca_certificate_.get(), ca_key_.get(),
                                          public_key, serial.get(), spec));

  IssuedCertificate issued;
  issued.record.serial_hex = serial_hex;
  issued.record.name = request.name;
  issued.record.role = request.role;
  for (const SubjectAltName& name : alt_names) {
    issued.record.subject_alt_names.push_back(name.ToString());
  }
  SV_ASSIGN_OR_RETURN(
      issued.record.not_after,
      internal::FromAsn1Time(X509_get0_notAfter(certificate.get())));
  SV_ASSIGN_OR_RETURN(issued.certificate_pem,
                      internal::CertificateToPem(certificate.get()));

  const std::string site_dir = SiteDirectory(request.name);
  SV_RETURN_IF_ERROR(
      internal::MakeDirectory(dir_ + "/sites", kPublicDirectoryMode));
  SV_RETURN_IF_ERROR(internal::MakeDirectory(site_dir, kPrivateDirectoryMode));
  issued.certificate_path = PathIn(site_dir, request.name + ".crt");
  issued.ca_certificate_path = PathIn(site_dir, "ca.crt");
  const std::string key_path = PathIn(site_dir, request.name + ".key");
  if (key_pem != nullptr) {
    issued.key_path = key_path;
    SV_RETURN_IF_ERROR(
        internal::WriteFileAtomically(key_path, key_pem->span(), kKeyMode));
  }
  SV_RETURN_IF_ERROR(internal::WriteFileAtomically(
      issued.certificate_path, issued.certificate_pem, kPublicMode));
  if (key_pem == nullptr) {
    // A key left from an earlier certificate of this name no longer matches.
    SV_RETURN_IF_ERROR(internal::RemoveFileIfExists(key_path));
  }
  SV_RETURN_IF_ERROR(internal::WriteFileAtomically(
      issued.ca_certificate_path, ca_certificate_pem_, kPublicMode));
  SV_RETURN_IF_ERROR(
      internal::WriteFileAtomically(dir_ + "/ca/certs/" + serial_hex + ".pem",
                                    issued.certificate_pem, kPublicMode));
  records_.push_back(issued.record);
  if (absl::Status saved = SaveIndex(); !saved.ok()) {
    records_.pop_back();
    return saved;
  }
  return issued;
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::Issue(
    const CertificateRequest& request) {
  // Validate before spending a key generation.
  SV_RETURN_IF_ERROR(CheckCanIssue(request));
  SV_ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::GenerateP256Key());
  SV_ASSIGN_OR_RETURN(SecretBytes key_pem,
                      internal::PrivateKeyToPem(key.get()));
  return IssueFor(key.get(), &key_pem, request);
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::SignCsr(
    std::string_view csr_pem, Role role,
    const std::vector<std::string>& subject_alt_names, int validity_days) {
  SV_ASSIGN_OR_RETURN(
      X509ReqPtr csr,
      internal::ParseCsrPem(csr_pem, "certificate signing request"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (key == nullptr || X509_REQ_verify(csr.get(), key) != 1) {
    return internal::OpenSslError(
        absl::StatusCode::kInvalidArgument,
        "the certificate signing request's signature does not verify");
  }
  SV_RETURN_IF_ERROR(internal::CheckSiteKeyType(key));
  if (EVP_PKEY_eq(key, ca_key_.get()) == 1) {
    return absl::InvalidArgumentError("the CSR carries the CA's own key");
  }
  CertificateRequest request;
  SV_ASSIGN_OR_RETURN(request.name, internal::SingleNameEntry(
                                        X509_REQ_get_subject_name(csr.get()),
                                        NID_commonName, "the CSR's subject"));
  request.role = role;
  request.subject_alt_names = subject_alt_names;
  request.validity_days = validity_days;
  return IssueFor(key, nullptr, request);
}

absl::StatusOr<std::vector<CertificateRecord>> CertificateAuthority::Revoke(
    std::string_view name) {
  SV_RETURN_IF_ERROR(ValidateSiteName(name));
  const absl::Time now = clock_();
  std::vector<size_t> to_revoke;
  bool known = false;
  for (size_t i = 0; i < records_.size(); ++i) {
    if (records_[i].name != name) continue;
    known = true;
    if (!records_[i].IsRevoked()) to_revoke.push_back(i);
  }
  if (!known) {
    return absl::NotFoundError("no certificate was ever issued to '" +
                               std::string(name) + "'");
  }
  if (to_revoke.empty()) {
    return absl::FailedPreconditionError(
        "every certificate of '" + std::string(name) + "' is already revoked");
  }
  std::vector<CertificateRecord> revoked;
  for (size_t i : to_revoke) {
    records_[i].revoked_at = now;
    revoked.push_back(records_[i]);
  }
  ++crl_number_;
  // The index first: if publishing the CRL then fails, `samverka pki crl`
  // re-publishes it from the index.
  if (absl::Status saved = SaveIndex(); !saved.ok()) {
    for (size_t i : to_revoke) records_[i].revoked_at.reset();
    --crl_number_;
    return saved;
  }
  absl::StatusOr<absl::Time> published = WriteCrl();
  if (!published.ok()) {
    return absl::Status(published.status().code(),
                        std::string(published.status().message()) +
                            " (the revocation is recorded; run `samverka pki "
                            "crl` to publish the CRL)");
  }
  return revoked;
}

absl::StatusOr<absl::Time> CertificateAuthority::RefreshCrl() {
  ++crl_number_;
  if (absl::Status saved = SaveIndex(); !saved.ok()) {
    --crl_number_;
    return saved;
  }
  return WriteCrl();
}

std::string FormatCertificateTable(
    const std::vector<CertificateRecord>& records, absl::Time now) {
  if (records.empty()) return "no certificates issued\n";
  std::vector<std::vector<std::string>> rows = {
      {"SERIAL", "NAME", "ROLE", "NOT AFTER", "STATUS"}};
  for (const CertificateRecord& record : records) {
    rows.push_back({record.serial_hex, record.name,
                    std::string(RoleName(record.role)),
                    IsoDate(record.not_after), record.StatusAt(now)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string table;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    table += line + "\n";
  }
  return table;
}

absl::StatusOr<KeyAndCsr> MakeKeyAndCsr(
    std::string_view name, Role role,
    const std::vector<std::string>& subject_alt_names) {
  SV_RETURN_IF_ERROR(ValidateSiteName(name));
  SV_ASSIGN_OR_RETURN(std::vector<SubjectAltName> alt_names,
                      SiteAltNames(name, subject_alt_names));
  SV_ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::GenerateP256Key());
  SV_ASSIGN_OR_RETURN(
      X509NamePtr subject,
      internal::MakeName(
          {{NID_organizationalUnitName, std::string(RoleName(role))},
           {NID_commonName, std::string(name)}}));
  SV_ASSIGN_OR_RETURN(internal::GeneralNamesPtr names,
                      internal::MakeGeneralNames(alt_names));
  X509ReqPtr csr(X509_REQ_new());
  if (csr == nullptr ||
      X509_REQ_set_version(csr.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(csr.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(csr.get(), key.get()) != 1) {
    return internal::OpenSslInternalError("cannot fill in the CSR");
  }
  // The requested SANs travel as an extensionRequest attribute.
  internal::X509ExtensionPtr alt_name_extension(
      X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  bool added =
      alt_name_extension != nullptr && extensions != nullptr &&
      sk_X509_EXTENSION_push(extensions, alt_name_extension.get()) != 0;
  if (added) alt_name_extension.release();  // the stack owns it now
  added = added && X509_REQ_add_extensions(csr.get(), extensions) == 1;
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  if (!added)
    return internal::OpenSslInternalError("cannot add CSR extensions");
  if (X509_REQ_sign(csr.get(), key.get(), EVP_sha256()) <= 0) {
    return internal::OpenSslInternalError("cannot sign the CSR");
  }
  KeyAndCsr result;
  SV_ASSIGN_OR_RETURN(result.key_pem, internal::PrivateKeyToPem(key.get()));
  SV_ASSIGN_OR_RETURN(result.csr_pem, internal::CsrToPem(csr.get()));
  return result;
}

absl::StatusOr<std::string> WriteKeyAndCsr(
    const std::string& out_dir, std::string_view name, Role role,
    const std::vector<std::string>& subject_alt_names) {
  SV_ASSIGN_OR_RETURN(KeyAndCsr made,
                      MakeKeyAndCsr(name, role, subject_alt_names));
  if (out_dir.empty()) return absl::InvalidArgumentError("no output directory");
  SV_RETURN_IF_ERROR(MakeDirectoryWithParents(out_dir, kPrivateDirectoryMode));
  const std::string key_path = PathIn(out_dir, std::string(name) + ".key");
  const std::string csr_path = PathIn(out_dir, std::string(name) + ".csr");
  if (internal::PathExists(key_path)) {
    return absl::AlreadyExistsError(
        key_path +
        " already exists (it may be the key in use); choose another "
        "--out directory");
  }
  SV_RETURN_IF_ERROR(
      internal::WriteFileAtomically(key_path, made.key_pem.span(), kKeyMode));
  SV_RETURN_IF_ERROR(
      internal::WriteFileAtomically(csr_path, made.csr_pem, kPublicMode));
  return csr_path;
}

absl::StatusOr<PeerIdentity> ParsePeerCertificate(std::string_view pem) {
  SV_ASSIGN_OR_RETURN(X509Ptr certificate,
                      internal::ParseCertificatePem(pem, "peer certificate"));
  const X509_NAME* subject = X509_get_subject_name(certificate.get());
  PeerIdentity identity;
  SV_ASSIGN_OR_RETURN(identity.name, internal::SingleNameEntry(
                                         subject, NID_commonName,
                                         "the peer certificate's subject"));
  SV_RETURN_IF_ERROR(ValidateSiteName(identity.name));
  SV_ASSIGN_OR_RETURN(
      identity.federation,
      internal::SingleNameEntry(subject, NID_organizationName,
                                "the peer certificate's subject"));
  SV_ASSIGN_OR_RETURN(std::string role, internal::SingleNameEntry(
                                            subject, NID_organizationalUnitName,
                                            "the peer certificate's subject"));
  SV_ASSIGN_OR_RETURN(identity.role, ParseRole(role));
  identity.serial_hex =
      internal::SerialToHex(X509_get0_serialNumber(certificate.get()));
  SV_ASSIGN_OR_RETURN(
      identity.not_after,
      internal::FromAsn1Time(X509_get0_notAfter(certificate.get())));
  return identity;
}

absl::StatusOr<RevocationList> LoadCrl(const std::string& path,
                                       std::string_view ca_certificate_pem) {
  SV_ASSIGN_OR_RETURN(std::string pem, internal::ReadFile(path, kMaxCrlSize));
  SV_ASSIGN_OR_RETURN(X509CrlPtr crl, internal::ParseCrlPem(pem, path));
  SV_ASSIGN_OR_RETURN(X509Ptr ca, internal::ParseCertificatePem(
                                      ca_certificate_pem, "CA certificate"));
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()),
                    X509_get_subject_name(ca.get())) != 0) {
    return absl::UnauthenticatedError(path + " was not issued by this CA");
  }
  EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
  if (ca_key == nullptr || X509_CRL_verify(crl.get(), ca_key) != 1) {
    return internal::OpenSslError(absl::StatusCode::kUnauthenticated,
                                  path + " is not signed by this CA");
  }
  RevocationList list;
  SV_ASSIGN_OR_RETURN(
      list.this_update,
      internal::FromAsn1Time(X509_CRL_get0_lastUpdate(crl.get())));
  const ASN1_TIME* next_update = X509_CRL_get0_nextUpdate(crl.get());
  if (next_update == nullptr) {
    list.next_update = absl::InfiniteFuture();
  } else {
    SV_ASSIGN_OR_RETURN(list.next_update, internal::FromAsn1Time(next_update));
  }
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    list.revoked_serials.insert(internal::SerialToHex(
        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
  }
  return list;
}

}  // namespace samverka::security
