// coordinator/sealed_sum_store.h
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secagg/graph.h"
#include "security/secagg/modular_vector.h"
#include "security/secret_bytes.h"

namespace samverka::coordinator {

// The result of a secure round's unmasking before the sites' consent: the
// ring sum of the contributors' inputs, each still under its site's consent
// mask (security/secagg/consent.h). It reveals nothing alone; with every
// contributor's consent seed it gives the round's sum.
struct SealedSum {
  int64_t round = 0;          // the round that made it
  std::string model_digest;   // the model the round started from
  std::string instance;       // the run (roster digest) the sites consent to
  std::string round_config;   // serialised RoundConfig: its encoding decodes the sum
  std::vector<std::string> cohort;          // participant id i + 1 is cohort[i]
  std::vector<uint32_t> contributors;       // participant ids in the sum
  std::vector<uint32_t> dropped;            // shared keys, then dropped
  std::map<uint32_t, std::string> commitments;  // consent commitments, by id
  security::secagg::ModularVector sum;
  security::secagg::GraphParameters parameters;
  uint64_t masked_bytes = 0;
};

// Sealed sums and the consent seeds received for them, kept on disk in
// STATE_DIR/sealed/ so that a restarted coordinator completes a round whose
// sites have begun to consent rather than running it again (which the sites
// would refuse). Files are written atomically and fsync'd: the sum
// (<model>.sum) before its description (<model>.json), each seed as it
// arrives (<model>.consent-<id>, 0600). One sealed sum per model: a round is
// retried from the same model until its sum is released. Thread-safe (every
// method works on files only).
class SealedSumStore {
 public:
  // Creates STATE_DIR/sealed if needed.
  static absl::StatusOr<std::unique_ptr<SealedSumStore>> Open(const std::string& state_dir);

  // Makes `sum` durable; returns once it is on disk.
  absl::Status Save(const SealedSum& sum);
  // The sealed sum of rounds from `model_digest` and the seeds received for
  // it (by participant id); nullopt if none. kDataLoss naming the file if a
  // file is damaged (the sum's SHA-256 is recorded in its description).
  absl::StatusOr<std::optional<SealedSum>> Load(const std::string& model_digest);
  absl::StatusOr<std::map<uint32_t, security::SecretBytes>> LoadConsents(
      const std::string& model_digest);
  // Makes one consent seed durable.
  absl::Status SaveConsent(const std::string& model_digest, uint32_t participant,
                           const security::SecretBytes& seed);
  // Deletes the sum of `model_digest` and its seeds (its round is committed).
  absl::Status Remove(const std::string& model_digest);
  // Deletes every sealed sum but that of `model_digest` (at start-up: the
  // others belong to rounds whose model has been committed since).
  absl::Status RemoveAllExcept(const std::string& model_digest);

 private:
  explicit SealedSumStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathOf(const std::string& model_digest, const std::string& suffix) const;

  const std::string dir_;
};

}  // namespace samverka::coordinator
