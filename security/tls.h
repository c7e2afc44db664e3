// security/tls.h
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "security/pki.h"

namespace samverka::security {

// Paths of one party's TLS material, as `samverka pki` writes them.
struct TlsFiles {
  std::string ca_certificate;  // the federation CA (trust anchor)
  std::string certificate;     // this party's certificate
  std::string private_key;     // this party's key (mode 0600)

  // kNotFound naming the first missing or unreadable file.
  absl::Status Validate() const;
  // Validate, and what a party checks at start-up before it connects: the
  // key is not readable by every user of the machine, the certificate and
  // the key parse, and the key belongs to the certificate. A clear
  // kFailedPrecondition or kInvalidArgument naming the files otherwise.
  absl::Status CheckIdentity() const;
};

// Who may talk to the coordinator: certificates of the federation CA that
// are not revoked (the CRL file is re-read whenever it changes, so a
// revocation takes effect without a restart), have the right role and, for
// clients, are on the allow-list. Thread-safe.
class PeerAuthorizer {
 public:
  struct Options {
    std::string ca_certificate_pem;
    std::string crl_path;                 // empty: no revocation list (refused at start-up by the coordinator)
    std::set<std::string> allowed_clients;  // empty: every client of the CA
  };
  static absl::StatusOr<std::unique_ptr<PeerAuthorizer>> Create(Options options);

  // Checks an already chain-verified leaf certificate. kUnauthenticated for
  // an unparseable, expired or revoked certificate; kPermissionDenied for a
  // role not in `roles` or a client not on the allow-list. The message says
  // which, and names the site.
  absl::StatusOr<PeerIdentity> Authorize(std::string_view leaf_pem, std::set<Role> roles);

 private:
  explicit PeerAuthorizer(Options options) : options_(std::move(options)) {}
  absl::Status RefreshCrl() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  absl::Mutex mutex_;
  RevocationList crl_ ABSL_GUARDED_BY(mutex_);
  int64_t crl_mtime_ns_ ABSL_GUARDED_BY(mutex_) = -1;
  int64_t crl_size_ ABSL_GUARDED_BY(mutex_) = -1;
};

// Server credentials for mutual TLS: the server presents `files`, and every
// client must present a certificate that chains to the CA; `verify` then
// sees the leaf PEM on each handshake and may refuse it (its status is
// logged by the caller's function). Never plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, std::function<absl::Status(std::string_view leaf_pem)> verify);

// Channel credentials for a client of the coordinator: presents `files`
// and verifies the coordinator's certificate against the CA, including its
// host name or IP address.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

// Reads a whole file; kNotFound naming it.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace samverka::security
