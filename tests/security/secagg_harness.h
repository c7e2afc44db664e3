// tests/security/secagg_harness.h
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/secagg/client.h"
#include "security/secagg/server.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg::harness {

// A throwaway PKI made with OpenSSL APIs: a federation CA and Ed25519 leaf
// certificates with CN = the client name, valid 2020-2040 and checked at
// kCheckTime, so tests do not depend on the clock.
struct TestIdentity {
  std::string name;
  std::string key_pem;   // PKCS#8
  std::string cert_pem;  // leaf only
};

extern const absl::Time kCheckTime;

class TestCa {
 public:
  // A new self-signed Ed25519 CA named `name`.
  explicit TestCa(const std::string& name);
  ~TestCa();
  const std::string& pem() const { return pem_; }
  // A new leaf certificate for `common_name`.
  TestIdentity Issue(const std::string& common_name) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string pem_;
};

// The federation CA and identities "site-0".."site-N", made once.
const TestCa& FederationCa();
const TestIdentity& Site(int index);

// One simulated round: a SecAggServer and n SecAggClients, with every message
// passed through Serialize/Parse, optional drops before each stage and
// hooks through which a test plays a dishonest coordinator.
class SimulatedRound {
 public:
  enum class Stage { kAdvertise, kShareKeys, kMaskInput, kUnmask };

  // Clients get ids 100 + 7 * i (not contiguous) and names Site(i).
  SimulatedRound(RoundConfig config, int num_clients,
                 std::string model_digest = "sha256:model-v1");

  std::vector<ParticipantId> ids() const { return ids_; }
  ParticipantId id(int index) const { return ids_[index]; }
  // Clients that never answer the given stage.
  void DropBefore(Stage stage, ParticipantId id) { drops_[stage].insert(id); }
  // Drops floor(fraction * n) clients, chosen with a fixed seed.
  void DropFraction(Stage stage, double fraction, uint32_t seed);
  const std::set<ParticipantId>& dropped_before(Stage stage) {
    return drops_[stage];
  }

  // Whether the parties share a VerificationCache (as a simulation would).
  bool share_verification_cache = true;
  // Overrides applied before clients are created.
  std::map<ParticipantId, std::string> model_digest_override;
  std::map<ParticipantId, TestIdentity> identity_override;
  // Coordinator-side tampering, per recipient.
  std::function<void(ParticipantId, KeyRoster&)> tamper_roster;
  std::function<void(ParticipantId, ShareDelivery&)> tamper_delivery;
  std::function<void(ParticipantId, UnmaskRequest&)> tamper_unmask;
  // Client-side tampering of outgoing messages.
  std::function<void(ShareBundle&)> tamper_bundle;
  std::function<void(MaskedInput&)> tamper_masked;
  // Called before the server closes `stage` (to inject extra messages).
  std::function<void(Stage)> before_close;

  // Runs all four stages. The result of server.Finish(), or the first
  // server-side Close* error.
  absl::StatusOr<AggregateResult> Run();

  // The sum of the encoded inputs of `contributors`, mod 2^bits.
  ModularVector ExpectedSum(
      const std::vector<ParticipantId>& contributors) const;
  const ModularVector& input(ParticipantId id) const { return inputs_.at(id); }
  const std::vector<float>& update(ParticipantId id) const {
    return updates_.at(id);
  }
  double weight(ParticipantId id) const { return weights_.at(id); }

  SecAggServer& server() { return *server_; }
  SecAggClient& client(ParticipantId id) { return *clients_.at(id); }
  // Errors returned to clients (their own calls) and by the server's
  // Accept* for each sender.
  std::map<ParticipantId, absl::Status> client_errors;
  std::map<ParticipantId, absl::Status> server_errors;
  // What each client sent, by sender.
  std::map<ParticipantId, KeyAdvertisement> advertisements;
  std::map<ParticipantId, ShareBundle> bundles;
  std::map<ParticipantId, MaskedInput> masked_inputs;
  std::map<ParticipantId, UnmaskResponse> responses;

 private:
  void CreateParticipants();
  void RecordClient(ParticipantId id, const absl::Status& status);
  void RecordServer(ParticipantId id, const absl::Status& status);

  RoundConfig config_;
  std::string model_digest_;
  int num_clients_;
  std::vector<ParticipantId> ids_;
  std::map<Stage, std::set<ParticipantId>> drops_;
  std::unique_ptr<SecAggServer> server_;
  std::map<ParticipantId, std::unique_ptr<SecAggClient>> clients_;
  std::map<ParticipantId, std::vector<float>> updates_;
  std::map<ParticipantId, double> weights_;
  std::map<ParticipantId, ModularVector> inputs_;
};

}  // namespace samverka::security::secagg::harness
