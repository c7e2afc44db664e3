// security/secagg/server.h
#pragma once

#include <array>
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
#include "security/secagg/encoding.h"
#include "security/secagg/graph.h"
#include "security/secagg/messages.h"
#include "security/secagg/modular_vector.h"
#include "security/secagg/verification_cache.h"
#include "security/secret_bytes.h"
#include "security/x25519.h"

namespace samverka::security::secagg {

struct ServerOptions {
  RoundConfig config;
  // The cohort: participant id -> client name (its certificate's common
  // name). Between config.min_clients and config.max_clients entries.
  std::map<ParticipantId, std::string> cohort;
  // Digest of the global model the coordinator sent; advertisements signed
  // over another digest are rejected.
  std::string model_digest;
  // The federation CA(s) client certificates must chain to.
  std::string ca_pem;
  // Time for certificate validity checks; absl::Now when empty.
  std::function<absl::Time()> clock;
  // Optional, for simulations: checks of identical advertisements shared
  // with the other parties of this process (see verification_cache.h).
  std::shared_ptr<VerificationCache> verification_cache;
};

// The unmasked result of a round.
struct AggregateResult {
  int64_t round = 0;
  // The sum of the contributors' encoded inputs, exact mod 2^bits; decode
  // with DecodeSum(sum, encoding(), contributors.size()).
  ModularVector sum;
  std::vector<ParticipantId> contributors;  // sent a masked input (U3)
  std::vector<ParticipantId> dropped;       // shared keys, then dropped
  GraphParameters parameters;
};

// The coordinator's side of one SecAgg+ round (Bonawitz et al., CCS 2017;
// Bell et al., CCS 2020), network-free: the round engine feeds it each
// client message as it arrives and closes each stage (on quorum or
// deadline); the server tells it what to send to whom.
//
//   AcceptAdvertisement*  CloseAdvertisements() -> KeyRoster to the roster
//   AcceptShareBundle*    CloseShareKeys(); ShareDeliveryFor(u) to each
//                         u in share_senders()
//   AcceptMaskedInput*    CloseMaskedInputs(); UnmaskRequestFor(u) to each
//                         u in contributors()
//   AcceptUnmaskResponse* Finish() -> AggregateResult
//
// Every message is validated; a bad one is refused with a specific code and
// the round carries on without its sender where the protocol allows:
// kPermissionDenied (sender not in the cohort), kFailedPrecondition (wrong
// round or stage, sender excluded or not at this stage; not held against an
// honest sender), kAlreadyExists (duplicate; the first one stands),
// kUnauthenticated / kInvalidArgument (bad certificate, signature, keys,
// recipients, ciphertext size, vector length, shares; the sender is then
// excluded from the rest of the round, listed in rejected()).
//
// Masked inputs are summed as they arrive (O(model) memory); Finish
// reconstructs the self-mask seeds of contributors and the mask keys of the
// dropped, then removes all masks in place at AES-CTR speed. If a stage
// ends with fewer than max(t, ceil((1 - delta) n)) clients, or a needed
// secret has fewer than t shares, the round aborts and no sum is released.
// After an abort every call fails with kAborted.
//
// Thread-compatible: the caller serialises calls (e.g. under its mutex).
class SecAggServer {
 public:
  enum class Stage {
    kAdvertising,
    kSharingKeys,
    kCollectingMaskedInputs,
    kUnmasking,
    kFinished,
    kAborted,
  };

  // kInvalidArgument for a bad config, a cohort outside [min_clients,
  // max_clients], empty names or digest.
  static absl::StatusOr<std::unique_ptr<SecAggServer>> Create(
      ServerOptions options);
  ~SecAggServer();

  // Stage 0.
  absl::Status AcceptAdvertisement(const KeyAdvertisement& advertisement);
  // Fixes the roster (every accepted advertisement), the parameters and the
  // graph. Returns the roster to send to every member. Aborts with
  // kFailedPrecondition if it is smaller than config.min_clients or the
  // parameters are infeasible.
  absl::StatusOr<KeyRoster> CloseAdvertisements();

  // Stage 1.
  absl::Status AcceptShareBundle(const ShareBundle& bundle);
  // Fixes U2, the clients whose shares were accepted; aborts with
  // kFailedPrecondition below the minimum.
  absl::Status CloseShareKeys();
  // The shares addressed to `recipient` (a member of share_senders()).
  absl::StatusOr<ShareDelivery> ShareDeliveryFor(ParticipantId recipient) const;

  // Stage 2: adds the masked vector to the running sum.
  absl::Status AcceptMaskedInput(const MaskedInput& input);
  // Fixes U3; aborts with kFailedPrecondition below the minimum.
  absl::Status CloseMaskedInputs();
  // The survivors and dropped clients among `recipient`'s neighbours (and
  // itself), for each member of contributors().
  absl::StatusOr<UnmaskRequest> UnmaskRequestFor(ParticipantId recipient) const;

  // Stage 3.
  absl::Status AcceptUnmaskResponse(const UnmaskResponse& response);
  // Reconstructs, unmasks and returns the sum (once). Aborts with
  // kFailedPrecondition naming the client whose secret has fewer than t
  // shares, or kDataLoss if no t shares reconstruct a secret consistent
  // with its owner's advertisement.
  absl::StatusOr<AggregateResult> Finish();

  Stage stage() const { return stage_; }
  const absl::Status& abort_status() const { return abort_status_; }
  const EncodingParameters& encoding() const { return encoding_; }
  // Valid once the advertisements are closed.
  const GraphParameters& parameters() const { return parameters_; }
  const NeighbourGraph* graph() const {
    return graph_.has_value() ? &*graph_ : nullptr;
  }
  // The roster (U1; empty until advertisements close), U2 and U3, ascending.
  std::vector<ParticipantId> roster() const;
  std::vector<ParticipantId> share_senders() const;
  std::vector<ParticipantId> contributors() const;
  // Senders excluded for invalid messages, with the reason.
  const std::map<ParticipantId, std::string>& rejected() const {
    return rejected_;
  }

 private:
  struct StoredShare {
    ParticipantId holder;
    SecretBytes share;
  };

  SecAggServer(ServerOptions options, EncodingParameters encoding,
               X25519PrivateKey probe_key);

  // Checks common to every Accept*: stage, known sender, not excluded,
  // round, and membership of `required` (the previous stage's set).
  absl::Status Admit(Stage stage, ParticipantId sender, int64_t round,
                     const std::set<ParticipantId>* required,
                     const char* what) const;
  // Excludes `sender` for the rest of the round; returns `status`.
  absl::Status Reject(ParticipantId sender, absl::Status status);
  absl::Status Abort(absl::Status status);
  absl::Status CheckMinimum(size_t count, const char* what);
  absl::Status ValidateUnmaskResponse(const UnmaskResponse& response) const;
  // Reconstructs `owner`'s secret of `kind` and checks it against the
  // owner's advertisement, trying other share subsets if needed.
  absl::StatusOr<SecretBytes> Reconstruct(ParticipantId owner,
                                          ShareKind kind) const;
  absl::Status RemoveMasks(const std::map<ParticipantId, SecretBytes>& self,
                           const std::map<ParticipantId, SecretBytes>& keys);
  absl::Time Now() const;

  const ServerOptions options_;
  const std::array<uint8_t, 32> config_digest_;
  const EncodingParameters encoding_;
  // A throwaway key to test advertised public keys with Agree.
  const X25519PrivateKey probe_key_;

  Stage stage_ = Stage::kAdvertising;
  absl::Status abort_status_;
  std::map<ParticipantId, std::string> rejected_;

  std::map<ParticipantId, KeyAdvertisement> advertisements_;  // U1
  std::set<ParticipantId> roster_;  // U1's ids, fixed when advertising ends
  GraphParameters parameters_;
  std::optional<NeighbourGraph> graph_;
  // Encrypted shares by recipient (peer = sender).
  std::map<ParticipantId, std::vector<EncryptedShare>> inbox_;
  std::set<ParticipantId> share_senders_;  // U2
  std::set<ParticipantId> contributors_;   // U3
  std::set<ParticipantId> responders_;
  ModularVector sum_;
  // Revealed shares by (owner, kind).
  std::map<std::pair<ParticipantId, ShareKind>, std::vector<StoredShare>>
      revealed_;
};

}  // namespace samverka::security::secagg
