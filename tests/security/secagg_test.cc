// tests/security/secagg_test.cc
//
// SecAgg+ (security/secagg/): parameter finder, neighbour graph, encoding,
// wire format. The protocol runs, dropouts and attacks are in
// secagg_protocol_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "security/secagg/encoding.h"
#include "security/secagg/graph.h"
#include "security/secagg/internal/prg_stream.h"
#include "security/secagg/internal/rules.h"
#include "security/secagg/messages.h"
#include "security/secagg/verification_cache.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {
namespace {

using ::testing::HasSubstr;

// ---- Parameter finder ------------------------------------------------------

struct FinderCase {
  int n;
  double corrupt;
  double dropout;
  AdversaryModel adversary;
  int k;
  int t;
};

class HararyParametersTest : public ::testing::TestWithParam<FinderCase> {};

// The [V] rows of /work/shared/notes/secagg-parameters.md section 1.3, which
// are FCP's graph_parameter_finder_test.cc expectations.
TEST_P(HararyParametersTest, ReproducesFcpValues) {
  const FinderCase& c = GetParam();
  absl::StatusOr<GraphParameters> p =
      FindHararyParameters(c.n, ThreatModel{c.corrupt, c.dropout, c.adversary});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->complete);
  EXPECT_EQ(p->num_neighbours, c.k);
  EXPECT_EQ(p->threshold, c.t);
  EXPECT_EQ(p->min_survivors,
            static_cast<int>(std::ceil((1 - c.dropout - 1e-14) * c.n)));
}

constexpr AdversaryModel kHonest = AdversaryModel::kSemiHonest;
constexpr AdversaryModel kMalicious = AdversaryModel::kSemiMalicious;

INSTANTIATE_TEST_SUITE_P(
    NotesTable, HararyParametersTest,
    ::testing::Values(FinderCase{100, .05, .05, kHonest, 12, 6},
                      FinderCase{1000, .05, .05, kHonest, 30, 17},
                      FinderCase{10000, .05, .05, kHonest, 34, 20},
                      FinderCase{1000000, .05, .05, kHonest, 38, 22},
                      FinderCase{100, .05, .05, kMalicious, 16, 11},
                      FinderCase{1000, .05, .05, kMalicious, 52, 37},
                      FinderCase{10000, .05, .05, kMalicious, 62, 44},
                      FinderCase{1000, .05, .33, kHonest, 72, 24},
                      FinderCase{1000, .05, .33, kMalicious, 398, 223},
                      FinderCase{1000, .33, .05, kHonest, 78, 60},
                      FinderCase{1000, .33, .33, kHonest, 286, 150},
                      FinderCase{10000, .33, .33, kHonest, 422, 221},
                      FinderCase{1000, .30, .30, kMalicious, 872, 584},
                      FinderCase{10000, .30, .30, kMalicious, 4822, 3230},
                      FinderCase{1000, .45, .45, kHonest, 822, 417},
                      FinderCase{1000, 0, .33, kHonest, 38, 2},
                      FinderCase{1000, 0, 0, kHonest, 2, 2},
                      FinderCase{500, 0, 0, AdversaryModel::kNone, 2, 2}));

TEST(GraphParametersTest, RejectsInfeasibleRates) {
  absl::StatusOr<GraphParameters> p =
      FindHararyParameters(1000, ThreatModel{0.5, 0.45, kHonest});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("infeasible"));
  p = FindHararyParameters(1000, ThreatModel{0.1, 0.45, kMalicious});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("2 * dropout_rate"));
}

TEST(GraphParametersTest, RejectsBadInputs) {
  EXPECT_EQ(FindHararyParameters(0, ThreatModel{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FindHararyParameters(2'000'000, ThreatModel{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      FindHararyParameters(100, ThreatModel{1.0, 0, kHonest}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      FindHararyParameters(100, ThreatModel{0.1, 0, AdversaryModel::kNone})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(GraphParametersTest, CompleteGraphUsesBonawitzThreshold) {
  // t = ceil((1 - delta) n), which must exceed ceil(gamma n) (semi-honest)
  // or ceil((n + gamma n) / 2) (semi-malicious).
  absl::StatusOr<GraphParameters> p =
      CompleteGraphParameters(10, ThreatModel{0.05, 0.3, kHonest});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->complete);
  EXPECT_EQ(p->num_neighbours, 9);
  EXPECT_EQ(p->threshold, 7);
  EXPECT_EQ(p->min_survivors, 7);
  p = CompleteGraphParameters(10, ThreatModel{0.05, 0.3, kMalicious});
  ASSERT_TRUE(p.ok()) << p.status();  // 7 > (10 + 0.5) / 2
  p = CompleteGraphParameters(10, ThreatModel{0.05, 0.5, kMalicious});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  p = CompleteGraphParameters(10, ThreatModel{0.05, 0.2, kMalicious});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->threshold, 8);
  p = CompleteGraphParameters(10, ThreatModel{0.5, 0.5, kHonest});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompleteGraphParameters(1, ThreatModel{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(GraphParametersTest, ChoosesCompleteGraphForSmallOrInfeasibleRosters) {
  const ThreatModel threat{0.05, 0.3, kHonest};
  absl::StatusOr<GraphParameters> small = ChooseGraphParameters(10, threat, 32);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_TRUE(small->complete);
  absl::StatusOr<GraphParameters> sparse =
      ChooseGraphParameters(60, threat, 32);
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  EXPECT_FALSE(sparse->complete);
  EXPECT_EQ(sparse->num_neighbours, 22);
  EXPECT_EQ(sparse->threshold, 4);
  // Rates outside the sparse analysis (gamma + delta > 0.9) that the
  // complete graph still supports: the complete graph instead.
  absl::StatusOr<GraphParameters> dense =
      ChooseGraphParameters(40, ThreatModel{0.05, 0.88, kHonest}, 32);
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_TRUE(dense->complete);
  EXPECT_EQ(dense->threshold, 5);
}

TEST(GraphParametersTest, OperatorOverridesNeighboursAndThreshold) {
  const ThreatModel threat{0.05, 0.05, AdversaryModel::kSemiHonest};
  absl::StatusOr<GraphParameters> chosen = ChooseGraphParameters(100, threat, 32);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  // Nothing overridden: the finder's choice stands.
  absl::StatusOr<GraphParameters> same = OverrideGraphParameters(*chosen, threat, 0, 0);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->num_neighbours, chosen->num_neighbours);
  EXPECT_EQ(same->threshold, chosen->threshold);
  // k = 20: 21 holders, t defaults to a majority, 11.
  absl::StatusOr<GraphParameters> k20 = OverrideGraphParameters(*chosen, threat, 20, 0);
  ASSERT_TRUE(k20.ok()) << k20.status();
  EXPECT_FALSE(k20->complete);
  EXPECT_EQ(k20->num_neighbours, 20);
  EXPECT_EQ(k20->threshold, 11);
  // ceil((1 - 0.05) * 100) = 95 survivors are still required.
  EXPECT_EQ(k20->min_survivors, 95);
  // k >= n - 1: the complete graph; explicit t.
  absl::StatusOr<GraphParameters> full = OverrideGraphParameters(*chosen, threat, 500, 60);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(full->complete);
  EXPECT_EQ(full->num_neighbours, 99);
  EXPECT_EQ(full->threshold, 60);
  // Odd k, t beyond the holders, t not above ceil(0.05 * 21) = 2 corrupt.
  EXPECT_EQ(OverrideGraphParameters(*chosen, threat, 21, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OverrideGraphParameters(*chosen, threat, 20, 22).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(OverrideGraphParameters(*chosen, threat, 20, 2).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(OverrideGraphParameters(*chosen, threat, 20, 3).ok());
  // Semi-malicious: 2t - 21 must exceed 2, so t = 11 fails, t = 12 passes.
  const ThreatModel malicious{0.05, 0.05, AdversaryModel::kSemiMalicious};
  EXPECT_FALSE(OverrideGraphParameters(*chosen, malicious, 20, 11).ok());
  EXPECT_TRUE(OverrideGraphParameters(*chosen, malicious, 20, 12).ok());
}

// ---- Neighbour graph -------------------------------------------------------

SecretBytes SeedFromByte(uint8_t b) {
  SecretBytes seed(32);
  seed.data()[0] = b;
  return seed;
}

std::vector<ParticipantId> SomeIds(int n) {
  std::vector<ParticipantId> ids;
  for (int i = 0; i < n; ++i) ids.push_back(1000 + 3 * i);
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);  // creation sorts them
  return ids;
}

TEST(NeighbourGraphTest, HararyGraphIsSymmetricAndRegular) {
  const int n = 100;
  const int k = 12;
  absl::StatusOr<NeighbourGraph> graph =
      NeighbourGraph::CreateHarary(SomeIds(n), k, SeedFromByte(1));
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(graph->size(), n);
  EXPECT_FALSE(graph->complete());
  std::map<ParticipantId, std::set<ParticipantId>> adjacency;
  for (ParticipantId u : graph->ids()) {
    const std::vector<ParticipantId> neighbours = graph->Neighbours(u);
    const std::set<ParticipantId> distinct(neighbours.begin(),
                                           neighbours.end());
    EXPECT_EQ(neighbours.size(), static_cast<size_t>(k));
    EXPECT_EQ(distinct.size(), static_cast<size_t>(k));
    EXPECT_FALSE(distinct.contains(u));
    adjacency[u] = distinct;
  }
  for (ParticipantId u : graph->ids()) {
    for (ParticipantId v : graph->ids()) {
      const bool edge = adjacency[u].contains(v);
      EXPECT_EQ(edge, adjacency[v].contains(u)) << u << " " << v;
      EXPECT_EQ(edge, graph->AreNeighbours(u, v)) << u << " " << v;
    }
  }
  // Share x-coordinates: holder i of the sorted holders gets x = i + 1.
  const ParticipantId owner = graph->ids()[17];
  const std::vector<ParticipantId> holders = graph->ShareHolders(owner);
  ASSERT_EQ(holders.size(), static_cast<size_t>(k + 1));
  EXPECT_TRUE(std::is_sorted(holders.begin(), holders.end()));
  for (size_t i = 0; i < holders.size(); ++i) {
    absl::StatusOr<uint32_t> x = graph->ShareX(owner, holders[i]);
    ASSERT_TRUE(x.ok());
    EXPECT_EQ(*x, i + 1);
  }
  EXPECT_EQ(graph->ShareX(owner, 5).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(graph->Neighbours(5).empty());
}

TEST(NeighbourGraphTest, PermutationDependsOnlyOnTheSeed) {
  const std::vector<ParticipantId> ids = SomeIds(80);
  absl::StatusOr<NeighbourGraph> a =
      NeighbourGraph::CreateHarary(ids, 10, SeedFromByte(1));
  absl::StatusOr<NeighbourGraph> b =
      NeighbourGraph::CreateHarary(ids, 10, SeedFromByte(1));
  absl::StatusOr<NeighbourGraph> c =
      NeighbourGraph::CreateHarary(ids, 10, SeedFromByte(2));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->ring_positions(), b->ring_positions());
  EXPECT_NE(a->ring_positions(), c->ring_positions());
  // A permutation of 0..n-1.
  std::vector<uint32_t> sorted = a->ring_positions();
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);
}

std::vector<KeyAdvertisement> FakeRoster(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<KeyAdvertisement> entries(n);
  for (int i = 0; i < n; ++i) {
    entries[i].sender = 10 + i;
    entries[i].round = 4;
    entries[i].client_name = "site-" + std::to_string(i);
    entries[i].model_digest = "sha256:m";
    for (auto* key : {&entries[i].encryption_key, &entries[i].mask_key,
                      &entries[i].self_mask_commitment}) {
      for (uint8_t& byte : *key) byte = static_cast<uint8_t>(rng());
    }
  }
  return entries;
}

RoundConfig TestConfig() {
  RoundConfig config;
  config.federation_id = "test-federation";
  config.round = 4;
  config.threat = ThreatModel{0.05, 0.3, kHonest};
  config.vector_length = 16;
  config.max_clients = 100;
  return config;
}

TEST(NeighbourGraphTest, GraphSeedFollowsTheAdvertisedKeys) {
  const RoundConfig config = TestConfig();
  const internal::Digest digest = RoundConfigDigest(config);
  const std::vector<KeyAdvertisement> roster = FakeRoster(60, 1);
  absl::StatusOr<internal::RoundGraph> first =
      internal::BuildRoundGraph(config, digest, roster);
  absl::StatusOr<internal::RoundGraph> again =
      internal::BuildRoundGraph(config, digest, roster);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(first->parameters.complete);
  EXPECT_EQ(first->graph.ring_positions(), again->graph.ring_positions());

  // One client's key changes: a different permutation.
  std::vector<KeyAdvertisement> changed = roster;
  changed[13].mask_key[0] ^= 1;
  absl::StatusOr<internal::RoundGraph> other =
      internal::BuildRoundGraph(config, digest, changed);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(first->graph.ring_positions(), other->graph.ring_positions());
  // So does another round's config.
  RoundConfig next = config;
  next.round = 5;
  EXPECT_FALSE(
      internal::GraphSeed(digest, roster)
          .Equals(internal::GraphSeed(RoundConfigDigest(next), roster)));
  // The signature is not hashed (its encoding is malleable).
  std::vector<KeyAdvertisement> resigned = roster;
  resigned[3].signature = "different";
  EXPECT_TRUE(internal::GraphSeed(digest, roster)
                  .Equals(internal::GraphSeed(digest, resigned)));
}

TEST(NeighbourGraphTest, CompleteGraphAndBadInputs) {
  absl::StatusOr<NeighbourGraph> graph =
      NeighbourGraph::CreateComplete({5, 3, 9});
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->Neighbours(3), (std::vector<ParticipantId>{5, 9}));
  EXPECT_EQ(graph->ShareHolders(9), (std::vector<ParticipantId>{3, 5, 9}));
  EXPECT_EQ(*graph->ShareX(9, 5), 2u);
  EXPECT_EQ(NeighbourGraph::CreateComplete({1, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NeighbourGraph::CreateHarary(SomeIds(20), 3, SeedFromByte(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NeighbourGraph::CreateHarary(SomeIds(10), 10, SeedFromByte(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NeighbourGraph::CreateHarary(SomeIds(20), 4, SecretBytes(16))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Encoding --------------------------------------------------------------

EncodingParameters Resolve(const EncodingOptions& options, int n,
                           uint64_t length) {
  absl::StatusOr<EncodingParameters> p = ResolveEncoding(options, n, length);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(EncodingTest, QuantisationLeavesHeadroomForEverySummand) {
  // log2 M >= log2 Q + ceil(log2 n) + 1.
  EXPECT_EQ(Resolve({}, 1000, 4).quantisation_bits, 32 - 10 - 1);
  EXPECT_EQ(Resolve({}, 1024, 4).quantisation_bits, 32 - 10 - 1);
  EXPECT_EQ(Resolve({}, 1025, 4).quantisation_bits, 32 - 11 - 1);
  EXPECT_EQ(Resolve({}, 1, 4).quantisation_bits, 31);
  EncodingOptions wide;
  wide.modulus_bits = 64;
  EXPECT_EQ(Resolve(wide, 1000, 4).quantisation_bits, 52);  // double limit

  EncodingOptions explicit_bits;
  explicit_bits.quantisation_bits = 22;  // Flower's default Q = 2^22
  EXPECT_TRUE(ResolveEncoding(explicit_bits, 512, 4).ok());
  absl::StatusOr<EncodingParameters> wraps =
      ResolveEncoding(explicit_bits, 1024, 4);
  EXPECT_EQ(wraps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wraps.status().message(), HasSubstr("could wrap"));

  EncodingOptions bad;
  bad.modulus_bits = 16;
  EXPECT_EQ(ResolveEncoding(bad, 10, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = EncodingOptions{};
  bad.clip_range = 0;
  EXPECT_EQ(ResolveEncoding(bad, 10, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EncodingTest, RoundTripErrorIsWithinOneStepPerSummand) {
  const int n = 5;
  const size_t d = 2000;
  const EncodingParameters p = Resolve({}, 100, d);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-7.9f, 7.9f);
  ModularVector sum = ModularVector::Zeros(32, d + 1);
  std::vector<double> expected(d, 0.0);
  double expected_weight = 0;
  for (int client = 0; client < n; ++client) {
    std::vector<float> update(d);
    for (float& x : update) x = value(rng);
    const double weight = 10.0 * (client + 1);
    absl::StatusOr<EncodedInput> encoded =
        EncodeInput(update, weight, p, SeedFromByte(client));
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    EXPECT_EQ(encoded->num_clipped, 0u);
    ASSERT_TRUE(sum.Add(encoded->values).ok());
    for (size_t i = 0; i < d; ++i) expected[i] += weight * update[i];
    expected_weight += weight;
  }
  absl::StatusOr<DecodedSum> decoded = DecodeSum(sum, p, n);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  // Each summand is off by less than one level, i.e. max_weight * step in
  // the weighted domain; stochastic rounding makes the error unbiased.
  const double bound = n * p.options.max_weight * p.step();
  double mean_error = 0;
  for (size_t i = 0; i < d; ++i) {
    const double error = decoded->weighted_sum[i] - expected[i];
    EXPECT_LE(std::abs(error), bound) << i;
    mean_error += error / d;
  }
  EXPECT_LE(std::abs(mean_error), bound / 10);
  EXPECT_NEAR(decoded->total_weight, expected_weight, bound);
}

TEST(EncodingTest, ClipsAndCountsOutOfRangeValues) {
  const EncodingParameters p = Resolve({}, 10, 6);
  const std::vector<float> update = {-100, -8.5, -8, 0, 8, 1e9};
  absl::StatusOr<EncodedInput> encoded =
      EncodeInput(update, 1000.0, p, SeedFromByte(3));
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->num_clipped, 3u);
  absl::StatusOr<DecodedSum> decoded = DecodeSum(encoded->values, p, 1);
  ASSERT_TRUE(decoded.ok());
  const double tolerance = 1000.0 * p.step();
  const std::vector<double> clipped = {-8, -8, -8, 0, 8, 8};
  for (size_t i = 0; i < clipped.size(); ++i) {
    EXPECT_NEAR(decoded->weighted_sum[i], 1000.0 * clipped[i], tolerance);
  }
  EXPECT_NEAR(decoded->total_weight, 1000.0, 1e-6);
}

TEST(EncodingTest, ExtremeInputsOfEverySummandDoNotWrap) {
  const int n = 1000;
  const EncodingParameters p = Resolve({}, n, 2);
  absl::StatusOr<EncodedInput> high = EncodeInput(
      std::vector<float>{8, -8}, p.options.max_weight, p, SeedFromByte(1));
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high->values.Get(0), p.levels);  // the largest encoding, Q
  ModularVector sum = ModularVector::Zeros(32, 3);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(sum.Add(high->values).ok());
  EXPECT_EQ(sum.Get(0), static_cast<uint64_t>(n) * p.levels);  // no wrap
  absl::StatusOr<DecodedSum> decoded = DecodeSum(sum, p, n);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_DOUBLE_EQ(decoded->weighted_sum[0], n * 8.0 * p.options.max_weight);
  EXPECT_DOUBLE_EQ(decoded->weighted_sum[1], -n * 8.0 * p.options.max_weight);
  EXPECT_DOUBLE_EQ(decoded->total_weight, n * p.options.max_weight);
}

TEST(EncodingTest, SeededRoundingIsDeterministic) {
  const EncodingParameters p = Resolve({}, 10, 500);
  std::vector<float> update(500);
  for (size_t i = 0; i < update.size(); ++i) update[i] = 0.001f * i;
  absl::StatusOr<EncodedInput> a = EncodeInput(update, 3, p, SeedFromByte(1));
  absl::StatusOr<EncodedInput> b = EncodeInput(update, 3, p, SeedFromByte(1));
  absl::StatusOr<EncodedInput> c = EncodeInput(update, 3, p, SeedFromByte(2));
  absl::StatusOr<EncodedInput> fresh = EncodeInput(update, 3, p);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && fresh.ok());
  EXPECT_EQ(a->values, b->values);
  EXPECT_NE(a->values, c->values);
}

// EncodeInput as first written (std::floor, an unsigned conversion, one
// coin per Next, ModularVector::Set per element), kept here to show that the
// faster loop in encoding.cc gives bit-identical encodings.
ModularVector ReferenceEncoding(const std::vector<float>& update, double weight,
                                const EncodingParameters& p,
                                const SecretBytes& seed) {
  absl::StatusOr<internal::PrgStream> coins = internal::PrgStream::Create(
      seed, "samverka/secagg/stochastic-rounding/v1");
  EXPECT_TRUE(coins.ok());
  auto round = [&](double y) {
    const uint64_t word = *coins->Next();
    const double floor_y = std::floor(y);
    const bool up = static_cast<double>(word >> 11) * 0x1.0p-53 < y - floor_y;
    const double rounded = floor_y + (up ? 1.0 : 0.0);
    if (rounded <= 0) return uint64_t{0};
    return std::min(static_cast<uint64_t>(rounded), p.levels);
  };
  const double c = p.options.clip_range;
  const double scale = weight / p.options.max_weight;
  const double levels = static_cast<double>(p.levels);
  const double to_levels = levels / (2 * c);
  ModularVector out =
      ModularVector::Zeros(p.options.modulus_bits, p.encoded_length());
  for (size_t i = 0; i < update.size(); ++i) {
    const double clipped = std::clamp(static_cast<double>(update[i]), -c, c);
    out.Set(i, round((clipped * scale + c) * to_levels));
  }
  out.Set(update.size(), round(scale * levels));
  return out;
}

TEST(EncodingTest, MatchesTheReferenceEncodingBitForBit) {
  const size_t d = 3000;  // not a multiple of the 1024-coin chunk
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> wide(-12.0f, 12.0f);
  std::normal_distribution<float> small(0.0f, 1e-3f);
  std::vector<float> update(d);
  for (size_t i = 0; i < d; ++i) update[i] = i % 2 ? wide(rng) : small(rng);
  update[0] = 8.0f;  // exactly +-c
  update[1] = -8.0f;
  update[2] = 0.0f;
  update[3] = -0.0f;
  update[4] = 1e-30f;
  for (int bits : {32, 64}) {
    for (int n : {1, 100, 1000}) {
      for (double weight : {0.0, 0.37, 600.0, 1000.0}) {
        EncodingOptions options;
        options.modulus_bits = bits;
        const EncodingParameters p = Resolve(options, n, d);
        const SecretBytes seed = SeedFromByte(static_cast<uint8_t>(n + bits));
        absl::StatusOr<EncodedInput> fast =
            EncodeInput(update, weight, p, seed);
        ASSERT_TRUE(fast.ok()) << fast.status();
        EXPECT_EQ(fast->values, ReferenceEncoding(update, weight, p, seed))
            << bits << " bits, n = " << n << ", weight " << weight;
        EXPECT_GT(fast->num_clipped, 0u);
      }
    }
  }
}

TEST(EncodingTest, RejectsBadInputs) {
  const EncodingParameters p = Resolve({}, 10, 3);
  EXPECT_EQ(EncodeInput(std::vector<float>{1, 2}, 1, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeInput(std::vector<float>{1, NAN, 2}, 1, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      EncodeInput(std::vector<float>{1, INFINITY, 2}, 1, p).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeInput(std::vector<float>{1, 2, 3}, 1001, p).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeInput(std::vector<float>{1, 2, 3}, -1, p).status().code(),
            absl::StatusCode::kInvalidArgument);

  ModularVector too_big = ModularVector::Zeros(32, 4);
  too_big.Set(1, 3 * p.levels);  // more than 2 summands can produce
  EXPECT_EQ(DecodeSum(too_big, p, 2).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSum(ModularVector::Zeros(32, 3), p, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSum(ModularVector::Zeros(32, 4), p, 11).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Verification cache ----------------------------------------------------

TEST(VerificationCacheTest, RemembersSuccessesOnlyAndExpires) {
  VerificationCache cache(absl::Minutes(10));
  const VerificationCache::Key key{1, 2, 3};
  const absl::Time t0 = absl::FromUnixSeconds(1'900'000'000);
  int calls = 0;
  auto ok = [&] {
    ++calls;
    return absl::OkStatus();
  };
  auto fail = [&] {
    ++calls;
    return absl::UnauthenticatedError("bad");
  };
  const VerificationCache::Key other{9};
  EXPECT_EQ(cache.Check(other, t0, fail).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(cache.Check(other, t0, fail).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(calls, 2);  // failures are not remembered
  EXPECT_TRUE(cache.Check(key, t0, ok).ok());
  EXPECT_TRUE(cache.Check(key, t0 + absl::Minutes(5), fail).ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(cache.Check(key, t0 + absl::Minutes(11), fail).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(cache.Check(key, t0 - absl::Minutes(1), fail).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(cache.size(), 1u);
}

// ---- Wire format -----------------------------------------------------------

TEST(MessagesTest, EveryMessageRoundTrips) {
  RoundConfig config = TestConfig();
  config.encoding.modulus_bits = 64;
  absl::StatusOr<RoundConfig> parsed_config =
      ParseRoundConfig(Serialize(config));
  ASSERT_TRUE(parsed_config.ok()) << parsed_config.status();
  EXPECT_EQ(Serialize(*parsed_config), Serialize(config));
  EXPECT_EQ(RoundConfigDigest(*parsed_config), RoundConfigDigest(config));

  KeyAdvertisement ad = FakeRoster(1, 3)[0];
  ad.certificate_chain = "-----BEGIN CERTIFICATE-----...";
  ad.signature = std::string(64, '\x07');
  absl::StatusOr<KeyAdvertisement> parsed_ad =
      ParseKeyAdvertisement(Serialize(ad));
  ASSERT_TRUE(parsed_ad.ok()) << parsed_ad.status();
  EXPECT_EQ(Serialize(*parsed_ad), Serialize(ad));

  KeyRoster roster{4, FakeRoster(5, 4)};
  absl::StatusOr<KeyRoster> parsed_roster = ParseKeyRoster(Serialize(roster));
  ASSERT_TRUE(parsed_roster.ok()) << parsed_roster.status();
  EXPECT_EQ(Serialize(*parsed_roster), Serialize(roster));

  ShareBundle bundle{7, 4, {{8, "abc"}, {9, "defg"}}};
  absl::StatusOr<ShareBundle> parsed_bundle =
      ParseShareBundle(Serialize(bundle));
  ASSERT_TRUE(parsed_bundle.ok());
  EXPECT_EQ(Serialize(*parsed_bundle), Serialize(bundle));

  ShareDelivery delivery{4, {{3, "xyz"}}};
  absl::StatusOr<ShareDelivery> parsed_delivery =
      ParseShareDelivery(Serialize(delivery));
  ASSERT_TRUE(parsed_delivery.ok());
  EXPECT_EQ(Serialize(*parsed_delivery), Serialize(delivery));

  for (int bits : {32, 64}) {
    ModularVector v = ModularVector::Zeros(bits, 5);
    v.Set(2, ~uint64_t{0});
    MaskedInput masked{7, 4, v};
    absl::StatusOr<MaskedInput> parsed = ParseMaskedInput(Serialize(masked));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->masked, v);
    EXPECT_EQ(parsed->sender, 7u);
  }

  UnmaskRequest request{4, {1, 2, 3}, {9}};
  absl::StatusOr<UnmaskRequest> parsed_request =
      ParseUnmaskRequest(Serialize(request));
  ASSERT_TRUE(parsed_request.ok());
  EXPECT_EQ(parsed_request->survivors, request.survivors);
  EXPECT_EQ(parsed_request->dropped, request.dropped);

  UnmaskResponse response{7, 4, {}};
  response.shares.push_back(
      RevealedShare{3, ShareKind::kMaskKey, SecretBytes::CopyFrom("share")});
  absl::StatusOr<UnmaskResponse> parsed_response =
      ParseUnmaskResponse(Serialize(response));
  ASSERT_TRUE(parsed_response.ok());
  EXPECT_EQ(Serialize(*parsed_response), Serialize(response));
}

TEST(MessagesTest, RejectsMalformedBytes) {
  const std::string bytes = Serialize(KeyRoster{4, FakeRoster(3, 5)});
  // Every truncation fails cleanly.
  for (size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(ParseKeyRoster(bytes.substr(0, size)).ok()) << size;
  }
  EXPECT_FALSE(ParseKeyRoster(bytes + "x").ok());
  EXPECT_FALSE(ParseShareBundle(bytes).ok());  // wrong message type
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_FALSE(ParseKeyRoster(bad_magic).ok());
  std::string bad_version = bytes;
  bad_version[4] = 9;
  EXPECT_THAT(ParseKeyRoster(bad_version).status().message(),
              HasSubstr("version"));
  // A forged element count does not allocate: it exceeds the bytes left.
  std::string huge = Serialize(MaskedInput{1, 4, ModularVector::Zeros(32, 1)});
  huge[4 + 1 + 1 + 4 + 8 + 1 + 3] = '\x7f';
  EXPECT_EQ(ParseMaskedInput(huge).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A config that fails validation does not parse.
  RoundConfig config = TestConfig();
  config.encoding.modulus_bits = 48;
  EXPECT_FALSE(ParseRoundConfig(Serialize(config)).ok());
}

}  // namespace
}  // namespace samverka::security::secagg
