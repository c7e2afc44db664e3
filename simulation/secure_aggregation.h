// simulation/secure_aggregation.h
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "security/secagg/encoding.h"
#include "security/secagg/graph.h"
#include "security/secagg/server.h"
#include "security/secagg/verification_cache.h"
#include "security/secret_bytes.h"

namespace samverka::simulation {

// What one client hands to secure aggregation after local training: its
// update (local minus global model), weight and training loss.
struct ClientContribution {
  std::vector<float> update;
  double weight = 0;
  double train_loss = 0;
};

// The outcome of one securely aggregated round: only sums are revealed.
struct SecureAggregate {
  std::vector<std::string> contributors;
  std::vector<double> weighted_sum;  // sum_i w_i * clip(update_i)
  double total_weight = 0;
  double weighted_train_loss = 0;    // sum_i w_i * loss_i
  uint64_t masked_bytes = 0;         // masked vectors sent to the server
  size_t clipped_values = 0;         // coordinates outside the clipping range
  int neighbours = 0;                // k of the round's graph (n-1: complete)
  int threshold = 0;                 // t
};

// The outcome of a secure sum of integer vectors: their sum mod 2^64 over
// the contributors, and nothing about any one of them.
struct IntegerSum {
  std::vector<std::string> contributors;
  std::vector<uint64_t> sum;
  uint64_t masked_bytes = 0;
};

// Distributed DP (DP-FedAvg under secure aggregation): each client adds
// discrete Gaussian noise to the first `coordinates` elements of its
// encoded input, with standard deviation `stddev` (in update units, turned
// into quantisation levels with the round's step), before masking.
struct DistributedNoise {
  double stddev = 0;  // 0: no noise
  size_t coordinates = 0;
};

// Runs SecAgg+ (security/secagg) among a simulation's virtual clients with
// the same client and server state machines the real federation uses: each
// client has its own certificate from a throwaway federation CA, advertises
// signed keys, shares its seeds with its neighbours, masks its update right
// after training, and answers the unmask request. Not thread-safe across
// rounds; RunRound parallelises training internally.
class SimulatedSecureAggregation {
 public:
  // Makes a CA and one certificate per client in `work_dir`. `seed` drives
  // the stochastic rounding of the encoding (reproducible runs; masks stay
  // fresh from the CSPRNG and cancel exactly).
  static absl::StatusOr<std::unique_ptr<SimulatedSecureAggregation>> Create(
      const std::vector<std::string>& client_names, const std::string& work_dir,
      security::secagg::ThreatModel threat, double clip_range, uint64_t seed);
  ~SimulatedSecureAggregation();

  // One round: `train(worker, i)` trains cohort member i (an index into
  // `cohort`) on worker thread `worker` and returns its contribution, or an error
  // (the client then drops out of the round). kAborted if too few clients
  // survive; nothing about any single client is returned then.
  absl::StatusOr<SecureAggregate> RunRound(
      int64_t round, const std::string& model_digest, uint64_t vector_length,
      const std::vector<int>& cohort, double max_weight, int workers,
      const std::function<absl::StatusOr<ClientContribution>(int, int)>& train,
      const DistributedNoise& noise = {});

  // One secure sum over Z_2^64 of vectors of `length` elements (federated
  // statistics): `input(i)` computes cohort member i's vector, or an error
  // (it drops out). `label` binds the round's signatures as a model digest
  // does in training. kAborted if too few clients survive.
  absl::StatusOr<IntegerSum> SumIntegers(
      int64_t round, const std::string& label, size_t length, const std::vector<int>& cohort,
      int workers, const std::function<absl::StatusOr<std::vector<uint64_t>>(int)>& input);

 private:
  struct Member;
  SimulatedSecureAggregation() = default;

  // Cohort member i's input in the round's ring, or an error (it drops out).
  using Input = std::function<absl::StatusOr<security::secagg::ModularVector>(
      int worker, int i, const security::secagg::EncodingParameters& encoding)>;
  struct ProtocolResult {
    security::secagg::AggregateResult result;
    security::secagg::EncodingParameters encoding;
    std::vector<std::string> contributors;
    std::vector<bool> contributed;  // by cohort index
    uint64_t masked_bytes = 0;
  };
  // The four stages of SecAgg+ among the cohort's virtual clients.
  absl::StatusOr<ProtocolResult> RunProtocol(int64_t round, const std::string& digest,
                                             uint64_t vector_length, const std::vector<int>& cohort,
                                             double max_weight, int modulus_bits, int workers,
                                             const Input& input);

  std::vector<std::string> names_;
  std::vector<std::string> certificates_;
  std::vector<security::SecretBytes> keys_;
  std::string ca_pem_;
  security::secagg::ThreatModel threat_;
  double clip_range_ = 8.0;
  uint64_t seed_ = 0;
  std::shared_ptr<security::secagg::VerificationCache> cache_;
};

}  // namespace samverka::simulation
