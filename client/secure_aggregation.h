// client/secure_aggregation.h
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "security/secagg/consent_ledger.h"
#include "security/secagg/modular_vector.h"
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
  // Uploads the masked input (it may be as large as the model) with the
  // commitment to the site's consent seed.
  virtual absl::Status UploadMaskedInput(std::string payload, std::string consent_commitment) = 0;
};

// A SecureAggregationTransport over callbacks (the daemon's calls).
struct CallbackTransport : SecureAggregationTransport {
  std::function<absl::Status(SecureStage, std::string)> send;
  std::function<absl::StatusOr<std::string>(SecureStage)> fetch;
  std::function<absl::Status(std::string, std::string)> upload;
  absl::Status Send(SecureStage stage, std::string payload) override {
    return send(stage, std::move(payload));
  }
  absl::StatusOr<std::string> Fetch(SecureStage stage) override { return fetch(stage); }
  absl::Status UploadMaskedInput(std::string payload, std::string commitment) override {
    return upload(std::move(payload), std::move(commitment));
  }
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
  // The site's consent ledger (not owned; required): a site releases at
  // most one secure sum per model and data set (security/secagg/consent.h).
  security::secagg::ConsentLedger* ledger = nullptr;
  std::string federation_id;
  // The name of the data set the site trains on (part of the ledger's scope).
  std::string dataset;
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
// answers the unmask request; once the coordinator has stored the masked
// sum, it releases its consent seed, which the ledger allows for one
// instance per model and data set (security/secagg/consent.h).
// Only the masked vector, Shamir shares and the consent seed leave the site. Any check that
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
  // was within the clip norm), uploads it, answers the unmask request and
  // releases the consent seed. kFailedPrecondition if the ledger refuses.
  absl::StatusOr<SecureContribution> Contribute(std::span<const float> update, double weight,
                                                double train_loss, double dp_within_clip = 0);
  // The same for a vector of integers summed as they are in Z_2^64 (a
  // statistics study's counts and fixed-point sums): kInvalidArgument if
  // the round does not sum 64-bit vectors of values.size().
  absl::StatusOr<SecureContribution> ContributeIntegers(std::vector<uint64_t> values);

 private:
  // Consent-masks, masks, uploads `values`, answers the unmask request and
  // releases the consent seed.
  absl::StatusOr<SecureContribution> Send(security::secagg::ModularVector values);

  SecureAggregationSession(std::unique_ptr<security::secagg::SecAggClient> client,
                           SecureAggregationTransport* transport, int64_t round,
                           const SecureSiteOptions& site, std::string model_digest,
                           std::string instance);

  std::unique_ptr<security::secagg::SecAggClient> client_;
  SecureAggregationTransport* transport_;
  int64_t round_;
  security::secagg::ConsentLedger* ledger_;
  std::string federation_id_, dataset_, model_digest_;
  std::string instance_;  // the roster's digest
};

// Releases the site's consent seed of `instance` (a run in `scope` the site
// sent a masked input to) over `transport`'s consent stage, if `ledger`
// allows it (kFailedPrecondition otherwise). Used at the end of a session,
// and for a consent task from a restarted coordinator.
absl::Status ReleaseConsent(security::secagg::ConsentLedger& ledger,
                            const security::secagg::ContributionScope& scope,
                            const std::string& instance, int64_t round,
                            SecureAggregationTransport* transport);

}  // namespace samverka::client
