// security/secagg/graph.cc
//
// Parameter search and neighbour graph of SecAgg+ (K. Bell, J. Bell,
// M. Raykova, B. Gascon, A. Hatfield, "Secure Single-Server Aggregation with
// (Poly)Logarithmic Overhead", CCS 2020). The search is a port of Google
// FCP's HararyGraphParameterFinder and HypergeometricDistribution
// (google-parfait/federated-compute, fcp/secagg/server/
// graph_parameter_finder.cc and distribution_utilities.cc, Apache-2.0),
// kept numerically identical so it reproduces FCP's tested (k, t) values.
#include "security/secagg/graph.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>

#include "common/status_macros.h"
#include "security/secagg/internal/prg_stream.h"

namespace samverka::security::secagg {
namespace {

// Statistical security 2^-40 (split over two bad events, 2^-41 each) and
// correctness failure below 2^-20, as in FCP and Bell et al.'s tables.
constexpr double kSecurityParameter = 40;
constexpr double kCorrectnessParameter = 20;
// Keeps floating-point error from rounding gamma*n or (1-delta)*n the
// insecure way (FCP's kSmall).
constexpr double kSmall = 1e-14;

constexpr std::string_view kPermutationContext =
    "samverka/secagg/graph-permutation/v1";

// Hypergeometric(total, marked, sampled): the number of marked items in
// `sampled` draws without replacement from `total` items.
class Hypergeometric {
 public:
  Hypergeometric(int total, int marked, int sampled)
      : total_(total), marked_(marked), sampled_(sampled) {}

  double Cdf(double x) const {
    x = std::floor(x);
    const double mean = marked_ * static_cast<double>(sampled_) / total_;
    if (x > mean) return 1 - CdfImpl(sampled_ - x - 1, total_ - marked_);
    return CdfImpl(x, marked_);
  }

  // The value whose CDF is `quantile`, rounded outwards (away from the
  // median). `complement` means the upper tail, 1 - quantile, computed
  // without cancellation.
  double FindQuantile(double quantile, bool complement = false) const {
    if (quantile > 0.5) {
      quantile = 1 - quantile;
      complement = !complement;
    }
    if (complement) {
      return sampled_ - FindQuantileImpl(quantile, total_ - marked_) - 1;
    }
    return FindQuantileImpl(quantile, marked_);
  }

 private:
  double Pmf(double x, int counted) const {
    if (x < 0 || x > sampled_ || x > counted) return 0;
    if (total_ + x < counted + sampled_) return 0;
    const double log_pmf =
        std::lgamma(sampled_ + 1) + std::lgamma(counted + 1) +
        std::lgamma(total_ - counted + 1) + std::lgamma(total_ - sampled_ + 1) -
        std::lgamma(x + 1) - std::lgamma(sampled_ - x + 1) -
        std::lgamma(counted - x + 1) - std::lgamma(total_ + 1) -
        std::lgamma(total_ - sampled_ - counted + x + 1);
    return std::exp(log_pmf);
  }

  // P[X <= x] for Hypergeometric(total_, counted, sampled_), summed from x
  // downwards until the terms are negligible.
  double CdfImpl(double x, int counted) const {
    double pmf = Pmf(x, counted);
    double result = 0;
    while (pmf > result * 1e-16) {
      result += pmf;
      pmf *= x;
      pmf *= total_ - counted - sampled_ + x;
      pmf /= counted - x + 1;
      pmf /= sampled_ - x + 1;
      --x;
    }
    return result;
  }

  double FindQuantileImpl(double quantile, int counted) const {
    const double basic_bound = counted + sampled_ - total_ - 1;
    // An inverted (Hoeffding) tail bound gives a lower bound on the result.
    const double tail_bound =
        sampled_ * (static_cast<double>(counted) / total_ -
                    std::sqrt(-std::log(quantile) / (2 * sampled_)));
    double result = std::floor(std::max({-1.0, basic_bound, tail_bound}));
    double cdf = CdfImpl(result, counted);
    double pmf = Pmf(result, counted);
    while (cdf < quantile && result < sampled_) {
      if (pmf > 0) {
        pmf /= result + 1;
        pmf /= total_ - counted - sampled_ + result + 1;
        pmf *= counted - result;
        pmf *= sampled_ - result;
      } else {
        pmf = Pmf(result + 1, counted);
      }
      cdf += pmf;
      ++result;
    }
    return result - 1;
  }

  int total_;
  int marked_;
  int sampled_;
};

// A union bound on the log-probability that the Harary graph loses
// connectivity among honest survivors: that needs two disjoint runs of k/2
// consecutive bad (corrupt or dropped) clients on the ring.
double LogProbDisconnected(int n, int k, double gamma, double delta) {
  const double log_gap_pairs = std::log(n) + std::log(n - k - 1) - std::log(2);
  const int bad = static_cast<int>(std::floor((gamma + kSmall) * n)) +
                  static_cast<int>(std::floor((delta + kSmall) * n));
  if (k > bad) return -HUGE_VAL;
  return log_gap_pairs + std::lgamma(bad + 1) + std::lgamma(n - k + 1) -
         std::lgamma(n + 1) - std::lgamma(bad - k + 1);
}

// The threshold for degree k, or nullopt if k is too small.
std::optional<int> CheckNumberOfNeighbours(int n, int k,
                                           const ThreatModel& threat) {
  const double per_event = kSecurityParameter + 1;
  if (LogProbDisconnected(n, k, threat.corrupt_rate, threat.dropout_rate) >=
      -per_event * std::log(2)) {
    return std::nullopt;
  }
  const int max_corrupt =
      static_cast<int>(std::floor((threat.corrupt_rate + kSmall) * n));
  const int min_surviving =
      static_cast<int>(std::ceil((1 - threat.dropout_rate - kSmall) * n));
  const Hypergeometric corrupt_neighbours(n, max_corrupt, k);
  const Hypergeometric surviving_neighbours(n, min_surviving, k);
  // t1: P[corrupt neighbours > t1] <= 2^-41 / n.
  double t1 = corrupt_neighbours.FindQuantile(std::pow(2, -per_event) / n,
                                              /*complement=*/true);
  // t2: P[surviving neighbours < t2] is about 2^-20 / n.
  const double correctness = std::pow(2, -kCorrectnessParameter) / n;
  double t2 = surviving_neighbours.FindQuantile(correctness);
  if (surviving_neighbours.Cdf(t2) < correctness) ++t2;
  if (threat.adversary == AdversaryModel::kSemiMalicious) {
    // Local form of Bonawitz et al.'s 2t > n + n_C: 2t - k > t1.
    t1 = std::ceil((t1 + k - 1.25) / 2);
  }
  if (t2 <= t1) return std::nullopt;
  // Any t in (t1, t2] works; the smallest makes reconstruction cheapest.
  return static_cast<int>(std::max(t1 + 1, 2.0));
}

absl::Status ValidateClients(int num_clients) {
  if (num_clients < 1 || num_clients > kMaxClients) {
    return absl::InvalidArgumentError("number of clients must be in [1, " +
                                      std::to_string(kMaxClients) + "], got " +
                                      std::to_string(num_clients));
  }
  return absl::OkStatus();
}

std::string Rates(const ThreatModel& threat) {
  return "corrupt_rate " + std::to_string(threat.corrupt_rate) +
         ", dropout_rate " + std::to_string(threat.dropout_rate) + ", " +
         AdversaryModelName(threat.adversary);
}

int MinSurvivors(int n, const ThreatModel& threat) {
  return static_cast<int>(std::ceil((1 - threat.dropout_rate - kSmall) * n));
}

absl::StatusOr<std::vector<ParticipantId>> SortedDistinct(
    std::vector<ParticipantId> ids) {
  if (ids.empty()) return absl::InvalidArgumentError("graph has no nodes");
  if (ids.size() > static_cast<size_t>(kMaxClients)) {
    return absl::InvalidArgumentError("graph has too many nodes: " +
                                      std::to_string(ids.size()));
  }
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
    return absl::InvalidArgumentError("duplicate participant id in graph");
  }
  return ids;
}

}  // namespace

const char* AdversaryModelName(AdversaryModel model) {
  switch (model) {
    case AdversaryModel::kNone:
      return "no adversary";
    case AdversaryModel::kSemiHonest:
      return "semi-honest";
    case AdversaryModel::kSemiMalicious:
      return "semi-malicious";
  }
  return "unknown adversary";
}

absl::Status ThreatModel::Validate() const {
  if (!(corrupt_rate >= 0 && corrupt_rate < 1)) {
    return absl::InvalidArgumentError("corrupt_rate must be in [0, 1), got " +
                                      std::to_string(corrupt_rate));
  }
  if (!(dropout_rate >= 0 && dropout_rate < 1)) {
    return absl::InvalidArgumentError("dropout_rate must be in [0, 1), got " +
                                      std::to_string(dropout_rate));
  }
  switch (adversary) {
    case AdversaryModel::kNone:
      if (corrupt_rate > 0) {
        return absl::InvalidArgumentError(
            "adversary 'none' requires corrupt_rate = 0");
      }
      return absl::OkStatus();
    case AdversaryModel::kSemiHonest:
    case AdversaryModel::kSemiMalicious:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      "unknown adversary model " + std::to_string(static_cast<int>(adversary)));
}

absl::StatusOr<GraphParameters> FindHararyParameters(
    int num_clients, const ThreatModel& threat) {
  SV_RETURN_IF_ERROR(ValidateClients(num_clients));
  SV_RETURN_IF_ERROR(threat.Validate());
  const double gamma = threat.corrupt_rate;
  const double delta = threat.dropout_rate;
  if (threat.adversary == AdversaryModel::kSemiMalicious) {
    if (gamma + 2 * delta > 0.9) {
      return absl::FailedPreconditionError(
          "infeasible: semi-malicious SecAgg+ needs corrupt_rate + "
          "2 * dropout_rate <= 0.9 (" +
          Rates(threat) + ")");
    }
  } else if (gamma + delta > 0.9) {
    return absl::FailedPreconditionError(
        "infeasible: SecAgg+ needs corrupt_rate + dropout_rate <= 0.9 (" +
        Rates(threat) + ")");
  }
  for (int k = 2; k < num_clients - 1; k += 2) {
    const std::optional<int> t =
        CheckNumberOfNeighbours(num_clients, k, threat);
    if (t.has_value()) {
      return GraphParameters{
          .complete = false,
          .num_clients = num_clients,
          .num_neighbours = k,
          .threshold = *t,
          .min_survivors = MinSurvivors(num_clients, threat)};
    }
  }
  return absl::FailedPreconditionError(
      "no Harary graph degree below n - 1 meets the security and correctness "
      "targets for n = " +
      std::to_string(num_clients) + " (" + Rates(threat) + ")");
}

absl::StatusOr<GraphParameters> CompleteGraphParameters(
    int num_clients, const ThreatModel& threat) {
  SV_RETURN_IF_ERROR(ValidateClients(num_clients));
  SV_RETURN_IF_ERROR(threat.Validate());
  const int n = num_clients;
  const int t = std::max(MinSurvivors(n, threat), 2);
  if (t > n) {
    return absl::FailedPreconditionError(
        "complete graph needs at least 2 clients, got " + std::to_string(n));
  }
  const int corrupt = static_cast<int>(std::ceil(threat.corrupt_rate * n));
  if (threat.adversary == AdversaryModel::kSemiHonest && t <= corrupt) {
    return absl::FailedPreconditionError(
        "infeasible: threshold " + std::to_string(t) + " does not exceed the " +
        std::to_string(corrupt) + " corrupt clients assumed (" + Rates(threat) +
        ")");
  }
  if (threat.adversary == AdversaryModel::kSemiMalicious) {
    const int bound =
        static_cast<int>(std::ceil((n + threat.corrupt_rate * n) / 2));
    if (t <= bound) {
      return absl::FailedPreconditionError(
          "infeasible: semi-malicious complete graph needs threshold > "
          "(n + corrupt) / 2 = " +
          std::to_string(bound) + ", but " + std::to_string(n - t) +
          " dropouts out of " + std::to_string(n) + " only allow " +
          std::to_string(t) + " (" + Rates(threat) + ")");
    }
  }
  return GraphParameters{.complete = true,
                         .num_clients = n,
                         .num_neighbours = n - 1,
                         .threshold = t,
                         .min_survivors = t};
}

absl::StatusOr<GraphParameters> ChooseGraphParameters(int num_clients,
                                                      const ThreatModel& threat,
                                                      int min_sparse_clients) {
  if (num_clients >= min_sparse_clients) {
    absl::StatusOr<GraphParameters> sparse =
        FindHararyParameters(num_clients, threat);
    if (sparse.ok() ||
        sparse.status().code() != absl::StatusCode::kFailedPrecondition) {
      return sparse;
    }
  }
  return CompleteGraphParameters(num_clients, threat);
}

absl::StatusOr<GraphParameters> OverrideGraphParameters(
    const GraphParameters& chosen, const ThreatModel& threat,
    int num_neighbours, int threshold) {
  if (num_neighbours < 0 || threshold < 0) {
    return absl::InvalidArgumentError(
        "neighbours and threshold overrides must be >= 0 (0: automatic)");
  }
  if (num_neighbours == 0 && threshold == 0) return chosen;
  const int n = chosen.num_clients;
  GraphParameters out = chosen;
  if (num_neighbours > 0) {
    if (num_neighbours >= n - 1) {
      out.complete = true;
      out.num_neighbours = n - 1;
    } else if (num_neighbours < 2 || num_neighbours % 2 != 0) {
      return absl::InvalidArgumentError(
          "the neighbours override must be even and >= 2 (or >= n - 1 for "
          "the complete graph), got " + std::to_string(num_neighbours));
    } else {
      out.complete = false;
      out.num_neighbours = num_neighbours;
    }
    out.threshold = (out.num_neighbours + 1) / 2 + 1;
  }
  if (threshold > 0) out.threshold = threshold;
  const int holders = out.num_neighbours + 1;
  if (out.threshold < 2 || out.threshold > holders) {
    return absl::FailedPreconditionError(
        "threshold " + std::to_string(out.threshold) + " must lie in [2, " +
        std::to_string(holders) + "], the share holders of each client");
  }
  const int corrupt = static_cast<int>(std::ceil(threat.corrupt_rate * holders));
  const int margin = threat.adversary == AdversaryModel::kSemiMalicious
                         ? 2 * out.threshold - holders
                         : out.threshold;
  if (margin <= corrupt) {
    return absl::FailedPreconditionError(
        "threshold " + std::to_string(out.threshold) + " with " +
        std::to_string(holders) + " share holders does not withstand the " +
        std::to_string(corrupt) + " corrupt holders assumed (" + Rates(threat) +
        "); raise the threshold");
  }
  out.min_survivors = std::max(chosen.min_survivors, out.threshold);
  return out;
}

absl::StatusOr<NeighbourGraph> NeighbourGraph::CreateHarary(
    std::vector<ParticipantId> ids, int num_neighbours,
    const SecretBytes& seed) {
  SV_ASSIGN_OR_RETURN(ids, SortedDistinct(std::move(ids)));
  const int n = static_cast<int>(ids.size());
  if (num_neighbours < 2 || num_neighbours % 2 != 0 ||
      num_neighbours >= n - 1) {
    return absl::InvalidArgumentError(
        "Harary degree must be even, >= 2 and < n - 1 = " +
        std::to_string(n - 1) + ", got " + std::to_string(num_neighbours));
  }
  SV_ASSIGN_OR_RETURN(internal::PrgStream stream,
                      internal::PrgStream::Create(seed, kPermutationContext));
  NeighbourGraph graph;
  graph.num_neighbours_ = num_neighbours;
  graph.ids_ = std::move(ids);
  graph.node_at_.resize(n);
  std::iota(graph.node_at_.begin(), graph.node_at_.end(), 0u);
  // Fisher-Yates (Durstenfeld): position i takes a uniform node of 0..i.
  for (int i = n - 1; i > 0; --i) {
    SV_ASSIGN_OR_RETURN(const uint64_t j, stream.UniformBelow(i + 1));
    std::swap(graph.node_at_[i], graph.node_at_[j]);
  }
  graph.position_.resize(n);
  for (int p = 0; p < n; ++p) graph.position_[graph.node_at_[p]] = p;
  return graph;
}

absl::StatusOr<NeighbourGraph> NeighbourGraph::CreateComplete(
    std::vector<ParticipantId> ids) {
  SV_ASSIGN_OR_RETURN(ids, SortedDistinct(std::move(ids)));
  NeighbourGraph graph;
  graph.complete_ = true;
  graph.num_neighbours_ = static_cast<int>(ids.size()) - 1;
  graph.ids_ = std::move(ids);
  return graph;
}

int NeighbourGraph::IndexOf(ParticipantId id) const {
  const auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) return -1;
  return static_cast<int>(it - ids_.begin());
}

bool NeighbourGraph::Contains(ParticipantId id) const {
  return IndexOf(id) >= 0;
}

std::vector<ParticipantId> NeighbourGraph::Neighbours(ParticipantId id) const {
  const int index = IndexOf(id);
  if (index < 0) return {};
  std::vector<ParticipantId> out;
  out.reserve(num_neighbours_);
  if (complete_) {
    for (ParticipantId other : ids_) {
      if (other != id) out.push_back(other);
    }
    return out;
  }
  const uint32_t n = static_cast<uint32_t>(ids_.size());
  const uint32_t p = position_[index];
  for (uint32_t d = 1; d <= static_cast<uint32_t>(num_neighbours_ / 2); ++d) {
    out.push_back(ids_[node_at_[(p + d) % n]]);
    out.push_back(ids_[node_at_[(p + n - d) % n]]);
  }
  return out;
}

bool NeighbourGraph::AreNeighbours(ParticipantId a, ParticipantId b) const {
  const int ia = IndexOf(a);
  const int ib = IndexOf(b);
  if (ia < 0 || ib < 0 || ia == ib) return false;
  if (complete_) return true;
  const uint32_t n = static_cast<uint32_t>(ids_.size());
  const uint32_t pa = position_[ia];
  const uint32_t pb = position_[ib];
  uint32_t distance = pa > pb ? pa - pb : pb - pa;
  distance = std::min(distance, n - distance);
  return distance <= static_cast<uint32_t>(num_neighbours_ / 2);
}

std::vector<ParticipantId> NeighbourGraph::ShareHolders(
    ParticipantId owner) const {
  if (!Contains(owner)) return {};
  if (complete_) return ids_;
  std::vector<ParticipantId> holders = Neighbours(owner);
  holders.push_back(owner);
  std::sort(holders.begin(), holders.end());
  return holders;
}

absl::StatusOr<uint32_t> NeighbourGraph::ShareX(ParticipantId owner,
                                                ParticipantId holder) const {
  if (Contains(owner) && (owner == holder || AreNeighbours(owner, holder))) {
    if (complete_) return static_cast<uint32_t>(IndexOf(holder)) + 1;
    // 1 + the rank of `holder` among the sorted holders, in O(k).
    uint32_t rank = owner < holder ? 1 : 0;
    for (ParticipantId v : Neighbours(owner)) rank += v < holder ? 1 : 0;
    return rank + 1;
  }
  return absl::NotFoundError("participant " + std::to_string(holder) +
                             " holds no share of participant " +
                             std::to_string(owner));
}

}  // namespace samverka::security::secagg
