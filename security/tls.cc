#include "security/tls.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace samverka::security {
namespace {

namespace gx = grpc::experimental;

// Runs on every TLS handshake after gRPC has verified the chain against the
// CA; a refusal here ends the handshake.
class CallbackVerifier : public gx::ExternalCertificateVerifier {
 public:
  explicit CallbackVerifier(std::function<absl::Status(std::string_view)> verify)
      : verify_(std::move(verify)) {}

  bool Verify(gx::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    absl::Status status = verify_(std::string_view(pem.data(), pem.size()));
    *sync_status = status.ok() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                              std::string(status.message()));
    return true;  // decided synchronously
  }
  void Cancel(gx::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  std::function<absl::Status(std::string_view)> verify_;
};

absl::StatusOr<std::shared_ptr<gx::StaticDataCertificateProvider>> Provider(const TlsFiles& files) {
  SV_RETURN_IF_ERROR(files.Validate());
  SV_ASSIGN_OR_RETURN(std::string ca, ReadFileToString(files.ca_certificate));
  SV_ASSIGN_OR_RETURN(std::string cert, ReadFileToString(files.certificate));
  SV_ASSIGN_OR_RETURN(std::string key, ReadFileToString(files.private_key));
  std::vector<gx::IdentityKeyCertPair> identity = {{std::move(key), std::move(cert)}};
  return std::make_shared<gx::StaticDataCertificateProvider>(ca, identity);
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status TlsFiles::Validate() const {
  for (const auto& [what, path] : {std::pair<const char*, const std::string&>{"CA certificate", ca_certificate},
                                   {"certificate", certificate},
                                   {"private key", private_key}}) {
    if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("no ", what, " file given"));
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read the ", what, " file ", path));
  }
  return absl::OkStatus();
}

absl::Status TlsFiles::CheckIdentity() const {
  SV_RETURN_IF_ERROR(Validate());
  struct stat info;
  if (stat(private_key.c_str(), &info) == 0 && (info.st_mode & S_IROTH) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the private key %s is readable by every user of this machine (mode %04o); make it "
        "private: chmod 600 %s",
        private_key, info.st_mode & 07777, private_key));
  }
  SV_ASSIGN_OR_RETURN(std::string cert_pem, ReadFileToString(certificate));
  SV_ASSIGN_OR_RETURN(std::string key_pem, ReadFileToString(private_key));
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(certificate, " is not a PEM certificate"));
  }
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(private_key, " is not a PEM private key"));
  }
  const bool matches = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the private key ", private_key, " does not belong to the certificate ", certificate,
        " (their public keys differ): use the key made with this certificate by `samverka pki "
        "issue` or `samverka pki csr`"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PeerAuthorizer>> PeerAuthorizer::Create(Options options) {
  auto authorizer = std::unique_ptr<PeerAuthorizer>(new PeerAuthorizer(std::move(options)));
  absl::MutexLock lock(&authorizer->mutex_);
  SV_RETURN_IF_ERROR(authorizer->RefreshCrl());
  return authorizer;
}

absl::Status PeerAuthorizer::RefreshCrl() {
  if (options_.crl_path.empty()) return absl::OkStatus();
  struct stat info;
  if (stat(options_.crl_path.c_str(), &info) != 0) {
    return absl::UnavailableError(
        absl::StrCat("revocation list ", options_.crl_path, " is missing; refusing every peer"));
  }
  const int64_t mtime_ns = int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec;
  if (mtime_ns == crl_mtime_ns_ && info.st_size == crl_size_) return absl::OkStatus();
  SV_ASSIGN_OR_RETURN(RevocationList crl, LoadCrl(options_.crl_path, options_.ca_certificate_pem));
  crl_ = std::move(crl);
  crl_mtime_ns_ = mtime_ns;
  crl_size_ = info.st_size;
  return absl::OkStatus();
}

absl::StatusOr<PeerIdentity> PeerAuthorizer::Authorize(std::string_view leaf_pem,
                                                       std::set<Role> roles) {
  absl::StatusOr<PeerIdentity> peer = ParsePeerCertificate(leaf_pem);
  if (!peer.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable peer certificate: ", peer.status().message()));
  }
  if (peer->not_after < absl::Now()) {
    return absl::UnauthenticatedError(absl::StrCat("certificate of '", peer->name, "' expired on ",
                                                   absl::FormatTime(peer->not_after)));
  }
  {
    absl::MutexLock lock(&mutex_);
    if (absl::Status refreshed = RefreshCrl(); !refreshed.ok()) {
      return absl::UnauthenticatedError(std::string(refreshed.message()));
    }
    if (!options_.crl_path.empty() && crl_.IsExpired(absl::Now())) {
      // Fail closed, as OpenSSL does: a stale list may miss a revocation.
      return absl::UnauthenticatedError(absl::StrCat(
          "the federation's revocation list ", options_.crl_path, " expired on ",
          absl::FormatTime(crl_.next_update), "; re-publish it with `samverka pki crl`"));
    }
    if (crl_.IsRevoked(peer->serial_hex)) {
      return absl::UnauthenticatedError(absl::StrCat("certificate of '", peer->name, "' (serial ",
                                                     peer->serial_hex, ") is revoked"));
    }
  }
  if (!roles.contains(peer->role)) {
    return absl::PermissionDeniedError(absl::StrCat("'", peer->name, "' has role ",
                                                    std::string(RoleName(peer->role)),
                                                    ", which may not call this service"));
  }
  if (peer->role == Role::kClient && !options_.allowed_clients.empty() &&
      !options_.allowed_clients.contains(peer->name)) {
    return absl::PermissionDeniedError(
        absl::StrCat("site '", peer->name, "' is not on the coordinator's allow-list"));
  }
  return peer;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::function<absl::Status(std::string_view leaf_pem)> verify) {
  SV_ASSIGN_OR_RETURN(auto provider, Provider(files));
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.set_certificate_verifier(
      gx::ExternalCertificateVerifier::Create<CallbackVerifier>(std::move(verify)));
  return gx::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  SV_ASSIGN_OR_RETURN(auto provider, Provider(files));
  gx::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  // Host name (or IP) of the coordinator checked against its certificate.
  options.set_certificate_verifier(std::make_shared<gx::HostNameCertificateVerifier>());
  return gx::TlsCredentials(options);
}

}  // namespace samverka::security
