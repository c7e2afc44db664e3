// security/secagg/graph.h
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// A client's identifier within one SecAgg round, chosen by the round engine
// (e.g. its index in the cohort). It orders the pairwise-mask signs and the
// Shamir x-coordinates; the client's long-term identity is its certificate.
using ParticipantId = uint32_t;

// The largest roster the parameter finder and the graph accept.
inline constexpr int kMaxClients = 1'000'000;

// Whom SecAgg must withstand (Bell et al., CCS 2020, section 3).
enum class AdversaryModel : uint8_t {
  kNone = 0,           // honest server and clients; only dropouts
  kSemiHonest = 1,     // curious server colluding with corrupt clients
  kSemiMalicious = 2,  // server may also lie about who dropped out
};

const char* AdversaryModelName(AdversaryModel model);

// The assumed fractions of corrupt clients (gamma) and of dropouts (delta).
struct ThreatModel {
  double corrupt_rate = 0.05;
  double dropout_rate = 0.05;
  AdversaryModel adversary = AdversaryModel::kSemiHonest;

  // kInvalidArgument naming the field if a rate is outside [0, 1), the
  // adversary is unknown, or kNone is combined with corrupt_rate > 0.
  absl::Status Validate() const;
};

// How secrets are shared in one round.
struct GraphParameters {
  // True: every client is every other's neighbour (Bonawitz et al. 2017).
  // False: a randomly relabelled Harary graph (Bell et al. 2020).
  bool complete = false;
  int num_clients = 0;
  // k, neighbours per client excluding itself (num_clients - 1 if complete).
  // Each client's secrets are shared among its k neighbours and itself.
  int num_neighbours = 0;
  // Shamir threshold t: shares needed to reconstruct a secret.
  int threshold = 0;
  // The fewest clients that may remain at each stage, ceil((1 - delta) n);
  // the server aborts below it, as the parameters assume at most delta*n
  // dropouts.
  int min_survivors = 0;
};

// The Harary-graph parameter search of Bell et al. 2020 as implemented in
// Google's FCP (fcp/secagg/server/graph_parameter_finder.cc, see
// /work/shared/notes/secagg-parameters.md section 1.2): the smallest even
// k < n - 1 such that, with statistical security 2^-40 and correctness
// 2^-20, (a) the honest surviving clients stay connected, (b) no client has
// t corrupt neighbours, (c) every client keeps t surviving neighbours, and
// for kSemiMalicious (d) 2t - k exceeds the corrupt neighbours. Returns the
// smallest valid t. kInvalidArgument for bad inputs (n outside
// [1, kMaxClients], bad threat model); kFailedPrecondition if the rates are
// infeasible (gamma + delta > 0.9, or gamma + 2 delta > 0.9 for
// kSemiMalicious) or no k < n - 1 works.
absl::StatusOr<GraphParameters> FindHararyParameters(int num_clients,
                                                     const ThreatModel& threat);

// The complete-graph parameters (notes section 2.1, FCP's
// CheckFullGraphParameters): t = ceil((1 - delta) n), which must exceed
// ceil(gamma n) (kSemiHonest) or ceil((n + gamma n) / 2) (kSemiMalicious)
// and be at least 2. kInvalidArgument for bad inputs; kFailedPrecondition if
// no such t exists.
absl::StatusOr<GraphParameters> CompleteGraphParameters(
    int num_clients, const ThreatModel& threat);

// The parameters a round uses: the Harary graph if n >= min_sparse_clients
// and FindHararyParameters succeeds, else the complete graph. Small rosters
// use the complete graph because gamma * n rounds down to few (or zero)
// corrupt clients there, which the sparse analysis then trusts too much.
// Errors as CompleteGraphParameters when the complete graph is needed.
absl::StatusOr<GraphParameters> ChooseGraphParameters(int num_clients,
                                                      const ThreatModel& threat,
                                                      int min_sparse_clients);

// The operator's overrides of a round's neighbours k and threshold t (0:
// keep the finder's choice). k >= n - 1 selects the complete graph; a
// smaller k must be even and >= 2. Without an explicit t, t is a majority
// of the k + 1 share holders. kInvalidArgument for an odd or negative k or
// a negative t; kFailedPrecondition if t is outside [2, k + 1] or does not
// exceed the corrupt share holders the threat model assumes,
// ceil(gamma (k + 1)) (kSemiMalicious: 2t - (k + 1) must exceed them).
absl::StatusOr<GraphParameters> OverrideGraphParameters(
    const GraphParameters& chosen, const ThreatModel& threat,
    int num_neighbours, int threshold);

// The neighbour graph of one round over a roster of participant ids.
//
// Harary: the n participants sit on a ring in the order of a uniformly
// random permutation and each is joined to the k/2 ring positions on either
// side (Bell et al. 2020; FCP's SecretSharingHararyGraph). The permutation
// is a Fisher-Yates shuffle driven by internal::PrgStream(seed,
// "samverka/secagg/graph-permutation/v1"), so anyone holding the seed
// computes the same graph; protocol.h derives the seed from every client's
// signed key advertisement so that the coordinator cannot pick it alone.
// Complete: every pair is joined.
//
// Memory O(n); Neighbours and ShareX O(k); AreNeighbours O(log n). A value
// type; thread-safe for const use.
class NeighbourGraph {
 public:
  // `ids` must be distinct (any order; kept sorted). `num_neighbours` must be
  // even, >= 2 and < n - 1; `seed` 32 bytes. kInvalidArgument otherwise.
  static absl::StatusOr<NeighbourGraph> CreateHarary(
      std::vector<ParticipantId> ids, int num_neighbours,
      const SecretBytes& seed);
  // kInvalidArgument if `ids` is empty or has duplicates.
  static absl::StatusOr<NeighbourGraph> CreateComplete(
      std::vector<ParticipantId> ids);

  bool complete() const { return complete_; }
  int size() const { return static_cast<int>(ids_.size()); }
  // k: neighbours per participant, excluding itself.
  int num_neighbours() const { return num_neighbours_; }
  // All participants, ascending.
  const std::vector<ParticipantId>& ids() const { return ids_; }
  bool Contains(ParticipantId id) const;

  // The neighbours of `id`, excluding itself, in ring order (Harary) or
  // ascending (complete). Empty if `id` is not in the graph.
  std::vector<ParticipantId> Neighbours(ParticipantId id) const;
  // True iff a != b and they are neighbours.
  bool AreNeighbours(ParticipantId a, ParticipantId b) const;
  // Who holds shares of `owner`'s secrets: its neighbours and itself,
  // ascending. Share i of a split goes to holder i (x-coordinate i + 1).
  std::vector<ParticipantId> ShareHolders(ParticipantId owner) const;
  // The Shamir x-coordinate of `holder`'s share of `owner`'s secrets;
  // kNotFound if `holder` holds none.
  absl::StatusOr<uint32_t> ShareX(ParticipantId owner,
                                  ParticipantId holder) const;

  // The ring position of each node (sorted-id index -> position), for tests.
  const std::vector<uint32_t>& ring_positions() const { return position_; }

 private:
  NeighbourGraph() = default;
  // Index of `id` in ids_, or -1.
  int IndexOf(ParticipantId id) const;

  bool complete_ = false;
  int num_neighbours_ = 0;
  std::vector<ParticipantId> ids_;  // ascending
  std::vector<uint32_t> position_;  // node index -> ring position
  std::vector<uint32_t> node_at_;   // ring position -> node index
};

}  // namespace samverka::security::secagg
