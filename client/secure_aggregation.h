// client/secure_aggregation.h
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "common/task.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {
class SecAggClient;
}

namespace samverka::client {

// How a secure-aggregation session reaches the coordinator. The daemon
// implements it over gRPC; tests in-process.
class SecureAggregationTransport {
 public:
  virtual ~SecureAggregationTransport() = default;
  // Sends this client's message of `stage` (advertise keys, share keys,
  // unmask).
  virtual absl::Status Send(SecureStage stage, std::string payload) = 0;
  // Waits until the coordinator has what `stage` needs (the roster, this
  // client's share delivery, its unmask request) and returns it. kAborted
  // when the round aborted.
  virtual absl::StatusOr<std::string> Fetch(SecureStage stage) = 0;
  // Uploads the masked input (it may be as large as the model).
  virtual absl::Status UploadMaskedInput(std::string payload) = 0;
};

// The site's identity and its own rules for secure aggregation.
struct SecureSiteOptions {
  // The site's name: its certificate's common name.
  std::string name;
  std::string certificate_chain;      // PEM, leaf first
  security::SecretBytes private_key;  // PEM of the certificate's key
  std::string ca_pem;                 // the federation CA
  // Refuse rounds whose roster is smaller than this (at least 3: with two
  // sites each could subtract its own update from the sum).
  int min_clients = 3;
};

// What one site's secure contribution cost and revealed (for its log).
struct SecureContribution {
  uint64_t masked_bytes = 0;
  size_t clipped_values = 0;  // coordinates outside the clipping range
  int neighbours = 0;
  int threshold = 0;
};

// One site's side of a SecAgg+ round in the real federation (the same
// security::secagg::SecAggClient the simulation uses): Start advertises
// signed keys over the model the site actually downloaded and shares its
// seeds with its neighbours; after local training, Contribute masks the
// update (plus the training loss, the clipped fraction and the DP
// within-clip bit as three extra coordinates, weighted like the update) and
// answers the unmask request.
// Only the masked vector and Shamir shares leave the site. Any check that
// fails (a key not signed by the federation CA, another model digest among
// the neighbours, an inconsistent unmask request) stops the session: the
// site reveals nothing more. Thread-compatible.
class SecureAggregationSession {
 public:
  // `model_digest` is the SHA-256 of the model this site downloaded,
  // computed here. kInvalidArgument for a malformed config or one for
  // another round; kFailedPrecondition if it breaks the site's rules; the
  // transport's errors.
  static absl::StatusOr<std::unique_ptr<SecureAggregationSession>> Start(
      const SecureSiteOptions& site, const SecureAggregationTask& task, int64_t round,
      const std::string& model_digest, SecureAggregationTransport* transport);
  ~SecureAggregationSession();

  // Masks `update` (local minus global model) with weight `weight` (the
  // training samples, at most the round's maximum; 1 under DP-FedAvg),
  // `train_loss` and, under DP-FedAvg, `dp_within_clip` (1 if the update
  // was within the clip norm), uploads it and answers the unmask request.
  absl::StatusOr<SecureContribution> Contribute(std::span<const float> update, double weight,
                                                double train_loss, double dp_within_clip = 0);

 private:
  SecureAggregationSession(std::unique_ptr<security::secagg::SecAggClient> client,
                           SecureAggregationTransport* transport, int64_t round);

  std::unique_ptr<security::secagg::SecAggClient> client_;
  SecureAggregationTransport* transport_;
  int64_t round_;
};

}  // namespace samverka::client
