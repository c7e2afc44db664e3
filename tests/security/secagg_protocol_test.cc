// tests/security/secagg_protocol_test.cc
//
// SecAgg+ end to end, in process (tests/security/secagg_harness.h): exact
// sums with dropouts at every stage, aborts, uniformity of masked inputs,
// rejected junk, and a dishonest coordinator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "security/secagg/client.h"
#include "security/secagg/encoding.h"
#include "security/secagg/messages.h"
#include "security/secagg/server.h"
#include "security/x25519.h"
#include "tests/security/secagg_harness.h"

namespace samverka::security::secagg {
namespace {

using harness::SimulatedRound;
using ::testing::HasSubstr;
using Stage = SimulatedRound::Stage;

RoundConfig ProtocolConfig(uint64_t vector_length = 24) {
  RoundConfig config;
  config.federation_id = "test-federation";
  config.round = 7;
  config.threat = ThreatModel{0.05, 0.3, AdversaryModel::kSemiHonest};
  config.vector_length = vector_length;
  config.min_clients = 3;
  config.max_clients = 64;
  config.min_sparse_clients = 32;
  return config;
}

std::vector<ParticipantId> Without(std::vector<ParticipantId> ids,
                                   const std::set<ParticipantId>& gone) {
  std::erase_if(ids, [&](ParticipantId id) { return gone.contains(id); });
  return ids;
}

// The unmasked sum equals the sum of the contributors' quantised inputs,
// exactly, and decodes to their weighted float sum within the rounding error.
void ExpectExactSum(SimulatedRound& round,
                    const absl::StatusOr<AggregateResult>& result,
                    const std::vector<ParticipantId>& contributors) {
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->contributors, contributors);
  EXPECT_EQ(result->sum, round.ExpectedSum(contributors));
  const EncodingParameters& encoding = round.server().encoding();
  absl::StatusOr<DecodedSum> decoded =
      DecodeSum(result->sum, encoding, static_cast<int>(contributors.size()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const double c = encoding.options.clip_range;
  const double bound =
      contributors.size() * encoding.options.max_weight * encoding.step();
  double total_weight = 0;
  for (size_t i = 0; i < encoding.vector_length; ++i) {
    double expected = 0;
    for (ParticipantId id : contributors) {
      expected +=
          round.weight(id) * std::clamp<double>(round.update(id)[i], -c, c);
    }
    EXPECT_NEAR(decoded->weighted_sum[i], expected, bound) << i;
  }
  for (ParticipantId id : contributors) total_weight += round.weight(id);
  EXPECT_NEAR(decoded->total_weight, total_weight, bound);
}

// Whatever the coordinator collected, it never holds t shares of both
// secrets of one client, so no input can be unmasked individually.
void ExpectNoInputExposed(const SimulatedRound& round, int threshold) {
  std::map<ParticipantId, std::array<int, 2>> counts;
  for (const auto& [sender, response] : round.responses) {
    for (const RevealedShare& share : response.shares) {
      ++counts[share.owner][share.kind == ShareKind::kSelfMask ? 0 : 1];
    }
  }
  for (const auto& [owner, count] : counts) {
    EXPECT_FALSE(count[0] >= threshold && count[1] >= threshold)
        << "both secrets of participant " << owner << " are recoverable";
  }
}

// ---- Exact sums with dropouts ----------------------------------------------

struct DropCase {
  int num_clients;
  Stage stage;
  double fraction;
};

std::string StageName(Stage stage) {
  switch (stage) {
    case Stage::kAdvertise:
      return "Advertise";
    case Stage::kShareKeys:
      return "ShareKeys";
    case Stage::kMaskInput:
      return "MaskInput";
    case Stage::kUnmask:
      return "Unmask";
  }
  return "?";
}

class SecAggDropoutTest : public ::testing::TestWithParam<DropCase> {};

TEST_P(SecAggDropoutTest, UnmasksTheExactSumOfTheContributors) {
  const DropCase& c = GetParam();
  SimulatedRound round(ProtocolConfig(), c.num_clients);
  round.DropFraction(c.stage, c.fraction, /*seed=*/c.num_clients);
  const absl::StatusOr<AggregateResult> result = round.Run();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(round.client_errors.empty());
  EXPECT_TRUE(round.server_errors.empty());

  // Clients gone before masking are not in the sum; those gone at Unmask are.
  std::set<ParticipantId> gone;
  for (Stage stage :
       {Stage::kAdvertise, Stage::kShareKeys, Stage::kMaskInput}) {
    gone.insert(round.dropped_before(stage).begin(),
                round.dropped_before(stage).end());
  }
  EXPECT_EQ(round.dropped_before(c.stage).size(),
            static_cast<size_t>(c.fraction * c.num_clients + 1e-9));
  ExpectExactSum(round, result, Without(round.ids(), gone));
  const std::set<ParticipantId>& after_sharing =
      round.dropped_before(Stage::kMaskInput);
  EXPECT_EQ(result->dropped, std::vector<ParticipantId>(after_sharing.begin(),
                                                        after_sharing.end()));
  EXPECT_EQ(result->parameters.complete, c.num_clients < 32);
  ExpectNoInputExposed(round, result->parameters.threshold);
}

std::vector<DropCase> DropCases() {
  std::vector<DropCase> cases;
  for (int n : {10, 60}) {
    cases.push_back({n, Stage::kMaskInput, 0.0});
    for (Stage stage : {Stage::kAdvertise, Stage::kShareKeys, Stage::kMaskInput,
                        Stage::kUnmask}) {
      for (double fraction : {0.1, 0.3}) cases.push_back({n, stage, fraction});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    CompleteAndSparse, SecAggDropoutTest, ::testing::ValuesIn(DropCases()),
    [](const ::testing::TestParamInfo<DropCase>& info) {
      return "n" + std::to_string(info.param.num_clients) + "_" +
             std::to_string(static_cast<int>(info.param.fraction * 100)) +
             "pct_before" + StageName(info.param.stage);
    });

TEST(SecAggProtocolTest, SparseGraphSurvivesDropoutsAtEveryStage) {
  SimulatedRound round(ProtocolConfig(), 60);
  round.DropFraction(Stage::kAdvertise, 0.05, 1);
  round.DropFraction(Stage::kShareKeys, 0.1, 2);
  round.DropFraction(Stage::kMaskInput, 0.1, 3);
  round.DropFraction(Stage::kUnmask, 0.1, 4);
  const absl::StatusOr<AggregateResult> result = round.Run();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->parameters.complete);
  EXPECT_LT(result->parameters.num_neighbours, 56);
  EXPECT_EQ(result->sum, round.ExpectedSum(result->contributors));
  EXPECT_FALSE(result->dropped.empty());
}

TEST(SecAggProtocolTest, OverriddenNeighboursAndThresholdStillSumExactly) {
  RoundConfig config = ProtocolConfig();
  config.num_neighbours = 8;
  config.threshold = 5;
  SimulatedRound round(config, 40);
  round.DropFraction(Stage::kMaskInput, 0.05, 5);
  const absl::StatusOr<AggregateResult> result = round.Run();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->parameters.complete);
  EXPECT_EQ(result->parameters.num_neighbours, 8);
  EXPECT_EQ(result->parameters.threshold, 5);
  EXPECT_EQ(round.client(round.id(0)).neighbours().size(), 8u);
  EXPECT_EQ(result->sum, round.ExpectedSum(result->contributors));
}

TEST(SecAggProtocolTest, EveryClientVerifiesTheRosterWithoutASharedCache) {
  SimulatedRound round(ProtocolConfig(), 10);
  round.share_verification_cache = false;
  round.DropFraction(Stage::kShareKeys, 0.2, 8);
  const absl::StatusOr<AggregateResult> result = round.Run();
  ExpectExactSum(round, result, result->contributors);
  EXPECT_EQ(result->contributors.size(), 8u);
}

TEST(SecAggProtocolTest, WorksOverZ2To64AndSemiMaliciousParameters) {
  RoundConfig config = ProtocolConfig();
  config.encoding.modulus_bits = 64;
  config.threat = ThreatModel{0.05, 0.2, AdversaryModel::kSemiMalicious};
  SimulatedRound round(config, 10);
  round.DropFraction(Stage::kMaskInput, 0.2, 5);
  const absl::StatusOr<AggregateResult> result = round.Run();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->parameters.threshold, 8);
  EXPECT_EQ(result->sum.bits(), 64);
  ExpectExactSum(round, result, result->contributors);
  EXPECT_EQ(result->contributors.size(), 8u);
}

// ---- Aborts ----------------------------------------------------------------

TEST(SecAggProtocolTest, AbortsWithoutOutputWhenTooFewClientsMask) {
  SimulatedRound round(ProtocolConfig(), 10);  // complete graph, t = 7
  round.DropFraction(Stage::kMaskInput, 0.4, 9);
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("only 6 of 10"));
  EXPECT_THAT(result.status().message(), HasSubstr("no aggregate"));
  EXPECT_EQ(round.server().stage(), SecAggServer::Stage::kAborted);
  EXPECT_EQ(round.server().Finish().status().code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(round.responses.empty());
}

TEST(SecAggProtocolTest, AbortsWithoutOutputWhenTooFewSharesArrive) {
  SimulatedRound round(ProtocolConfig(), 10);
  round.DropFraction(Stage::kUnmask, 0.4, 9);  // 6 responders, t = 7
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("6 shares, threshold 7"));
  EXPECT_EQ(round.server().stage(), SecAggServer::Stage::kAborted);
  ExpectNoInputExposed(round, 7);
}

// ---- Statistical uniformity
// --------------------------------------------------

double ChiSquareOfBytes(const ModularVector& v) {
  std::array<double, 256> counts{};
  for (uint32_t word : v.words32()) {
    for (int b = 0; b < 4; ++b) ++counts[(word >> (8 * b)) & 0xff];
  }
  const double expected = 4.0 * v.size() / 256;
  double chi2 = 0;
  for (double count : counts) {
    chi2 += (count - expected) * (count - expected) / expected;
  }
  return chi2;
}

TEST(SecAggProtocolTest, MaskedInputIsStatisticallyUniform) {
  // 10^5 elements = 4 * 10^5 bytes in 256 buckets: chi-square with 255
  // degrees of freedom. Critical value 377.08 at significance 10^-6
  // (upper 10^-6 quantile of chi2(255)), so a correct implementation fails
  // this test once in a million runs.
  constexpr double kCritical = 377.08;
  SimulatedRound round(ProtocolConfig(/*vector_length=*/99'999), 3);
  ASSERT_TRUE(round.Run().ok());
  const ParticipantId id = round.id(0);
  const ModularVector& masked = round.masked_inputs.at(id).masked;
  ASSERT_EQ(masked.size(), 100'000u);
  EXPECT_LT(ChiSquareOfBytes(masked), kCritical);
  // The test has power: the unmasked encoding is far from uniform.
  EXPECT_GT(ChiSquareOfBytes(round.input(id)), 100 * kCritical);
}

// ---- Junk from clients: rejected, the round goes on
// --------------------------

TEST(SecAggProtocolTest, TamperedShareCiphertextMakesTheRecipientLeave) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId victim = round.id(2);
  round.tamper_delivery = [&](ParticipantId recipient, ShareDelivery& d) {
    if (recipient == victim) d.shares[0].ciphertext[20] ^= 0x01;
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  ASSERT_EQ(round.client_errors.count(victim), 1u);
  EXPECT_EQ(round.client_errors.at(victim).code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(round.client_errors.at(victim).message(),
              HasSubstr("does not authenticate"));
  EXPECT_EQ(round.client(victim).stage(), SecAggClient::Stage::kAborted);
  ExpectExactSum(round, result, Without(round.ids(), {victim}));
  EXPECT_EQ(result->dropped, std::vector<ParticipantId>{victim});
}

TEST(SecAggProtocolTest, ShareRelabelledWithAnotherSenderIsRejected) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId victim = round.id(4);
  round.tamper_delivery = [&](ParticipantId recipient, ShareDelivery& d) {
    if (recipient == victim) std::swap(d.shares[0].peer, d.shares[1].peer);
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.client_errors.at(victim).code(), absl::StatusCode::kDataLoss);
  ExpectExactSum(round, result, Without(round.ids(), {victim}));
}

TEST(SecAggProtocolTest, MessagesForTheWrongRoundAreRefused) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId stale_sender = round.id(4);
  const ParticipantId stale_recipient = round.id(6);
  round.tamper_bundle = [&](ShareBundle& bundle) {
    if (bundle.sender == stale_sender) bundle.round = 6;
  };
  round.tamper_delivery = [&](ParticipantId recipient, ShareDelivery& d) {
    if (recipient == stale_recipient) d.round = 8;
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.server_errors.at(stale_sender).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(round.server_errors.at(stale_sender).message(),
              HasSubstr("is for round 6, this is round 7"));
  // A stale message is not an attack: the client refuses it and stays.
  EXPECT_EQ(round.client_errors.at(stale_recipient).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(round.client(stale_recipient).stage(),
            SecAggClient::Stage::kSharedKeys);
  ExpectExactSum(round, result,
                 Without(round.ids(), {stale_sender, stale_recipient}));
}

TEST(SecAggProtocolTest, WrongLengthMaskedVectorExcludesItsSender) {
  for (int n : {10, 60}) {
    SimulatedRound round(ProtocolConfig(), n);
    const ParticipantId junk = round.id(5);
    round.tamper_masked = [&](MaskedInput& input) {
      if (input.sender != junk) return;
      std::vector<uint32_t> words(input.masked.words32().begin(),
                                  input.masked.words32().end());
      words.pop_back();
      input.masked = ModularVector::FromWords(std::move(words));
    };
    const absl::StatusOr<AggregateResult> result = round.Run();
    EXPECT_EQ(round.server_errors.at(junk).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(round.server_errors.at(junk).message(),
                HasSubstr("has 24 elements over Z_2^32, expected 25"));
    EXPECT_EQ(round.server().rejected().count(junk), 1u);
    ExpectExactSum(round, result, Without(round.ids(), {junk}));
    EXPECT_EQ(result->dropped, std::vector<ParticipantId>{junk});
  }
}

TEST(SecAggProtocolTest, KeySignedByAnotherCaIsRejected) {
  SimulatedRound round(ProtocolConfig(), 10);
  const harness::TestCa rogue("rogue-ca");
  const ParticipantId impostor = round.id(3);
  round.identity_override[impostor] = rogue.Issue("site-3");
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.server_errors.at(impostor).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(round.server_errors.at(impostor).message(),
              HasSubstr("certificate rejected"));
  EXPECT_EQ(round.server().roster().size(), 9u);
  ExpectExactSum(round, result, Without(round.ids(), {impostor}));
}

TEST(SecAggProtocolTest, DuplicateUnknownAndOutOfStageMessagesAreRefused) {
  SimulatedRound round(ProtocolConfig(), 10);
  std::vector<absl::StatusCode> codes;
  round.before_close = [&](Stage stage) {
    SecAggServer& server = round.server();
    const ParticipantId a = round.id(0);
    switch (stage) {
      case Stage::kAdvertise: {
        KeyAdvertisement stranger = round.advertisements.at(a);
        stranger.sender = 999;
        codes.push_back(server.AcceptAdvertisement(stranger).code());
        codes.push_back(
            server.AcceptAdvertisement(round.advertisements.at(a)).code());
        break;
      }
      case Stage::kShareKeys:
        codes.push_back(server.AcceptShareBundle(round.bundles.at(a)).code());
        codes.push_back(server.AcceptMaskedInput(MaskedInput{a, 7, {}}).code());
        break;
      case Stage::kMaskInput:
        codes.push_back(
            server.AcceptMaskedInput(round.masked_inputs.at(a)).code());
        break;
      case Stage::kUnmask: {
        absl::StatusOr<UnmaskResponse> again =
            ParseUnmaskResponse(Serialize(round.responses.at(a)));
        codes.push_back(server.AcceptUnmaskResponse(*again).code());
        break;
      }
    }
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_THAT(codes,
              ::testing::ElementsAre(absl::StatusCode::kPermissionDenied,
                                     absl::StatusCode::kAlreadyExists,
                                     absl::StatusCode::kAlreadyExists,
                                     absl::StatusCode::kFailedPrecondition,
                                     absl::StatusCode::kAlreadyExists,
                                     absl::StatusCode::kAlreadyExists));
  // The duplicate masked input was not added twice.
  ExpectExactSum(round, result, round.ids());
}

// ---- A dishonest coordinator: clients detect it and stop
// ---------------------

TEST(SecAggDishonestServerTest, HonestServerRefusesAStaleModelDigest) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId stale = round.id(6);
  round.model_digest_override[stale] = "sha256:model-v0";
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.server_errors.at(stale).code(),
            absl::StatusCode::kFailedPrecondition);
  ExpectExactSum(round, result, Without(round.ids(), {stale}));
}

TEST(SecAggDishonestServerTest, DifferentModelDigestsAreDetected) {
  // The coordinator sent the victim another model (to isolate its update)
  // and slips its advertisement into everyone's roster.
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId victim = round.id(6);
  round.model_digest_override[victim] = "sha256:crafted-model";
  round.tamper_roster = [&](ParticipantId, KeyRoster& roster) {
    roster.entries.push_back(round.advertisements.at(victim));
    std::sort(roster.entries.begin(), roster.entries.end(),
              [](const KeyAdvertisement& a, const KeyAdvertisement& b) {
                return a.sender < b.sender;
              });
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_FALSE(result.ok());
  for (ParticipantId id : round.ids()) {
    if (id == victim) continue;  // never in the roster: got none
    ASSERT_EQ(round.client_errors.count(id), 1u) << id;
    EXPECT_EQ(round.client_errors.at(id).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(round.client_errors.at(id).message(),
                HasSubstr("different global model"));
    EXPECT_EQ(round.client(id).stage(), SecAggClient::Stage::kAborted);
  }
  EXPECT_TRUE(round.responses.empty());
}

TEST(SecAggDishonestServerTest, ReplacedPublicKeyIsDetected) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId victim = round.id(1);
  absl::StatusOr<X25519PrivateKey> server_key = X25519PrivateKey::Generate();
  ASSERT_TRUE(server_key.ok());
  round.tamper_roster = [&](ParticipantId, KeyRoster& roster) {
    for (KeyAdvertisement& entry : roster.entries) {
      if (entry.sender == victim) {
        entry.mask_key = server_key->public_key().bytes();
      }
    }
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(round.client_errors.at(victim).message(),
              HasSubstr("alters this client's own advertised keys"));
  for (ParticipantId id : Without(round.ids(), {victim})) {
    EXPECT_EQ(round.client_errors.at(id).code(),
              absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(round.client_errors.at(id).message(),
                HasSubstr("signature over the advertised keys"));
  }
  EXPECT_TRUE(round.responses.empty());
}

TEST(SecAggDishonestServerTest, TargetedKeySwapOnlyLosesTheTargetedClient) {
  SimulatedRound round(ProtocolConfig(), 60);
  const ParticipantId target = round.id(8);
  round.tamper_roster = [&](ParticipantId recipient, KeyRoster& roster) {
    if (recipient == target) roster.entries[0].encryption_key[3] ^= 0x40;
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.client_errors.at(target).code(),
            absl::StatusCode::kUnauthenticated);
  ExpectExactSum(round, result, Without(round.ids(), {target}));
}

TEST(SecAggDishonestServerTest, PeerBothDroppedAndSurvivingIsRefused) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId asked = round.id(1);
  const ParticipantId victim = round.id(2);
  round.tamper_unmask = [&](ParticipantId recipient, UnmaskRequest& request) {
    if (recipient == asked) request.dropped.push_back(victim);
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_EQ(round.client_errors.at(asked).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(round.client_errors.at(asked).message(),
              HasSubstr("both surviving and dropped"));
  EXPECT_EQ(round.responses.count(asked), 0u);
  // Nine honest responses still reach t = 7.
  ExpectExactSum(round, result, round.ids());
  ExpectNoInputExposed(round, 7);
}

TEST(SecAggDishonestServerTest, InconsistentUnmaskRequestsAreRefused) {
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId early_dropout = round.id(4);
  round.DropBefore(Stage::kShareKeys, early_dropout);
  const ParticipantId a = round.id(1);
  const ParticipantId b = round.id(2);
  const ParticipantId c = round.id(3);
  round.tamper_unmask = [&](ParticipantId recipient, UnmaskRequest& request) {
    if (recipient == a) {  // revives a client that never shared keys
      request.survivors.push_back(early_dropout);
    } else if (recipient == b) {  // lists b itself as dropped
      std::erase(request.survivors, b);
      request.dropped.push_back(b);
    } else if (recipient == c) {  // too few survivors for t = 7
      request.survivors = {c, a};
      request.dropped.clear();
    }
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  EXPECT_THAT(round.client_errors.at(a).message(),
              HasSubstr("dropped before masking"));
  EXPECT_THAT(round.client_errors.at(b).message(),
              HasSubstr("lists this client as dropped"));
  EXPECT_THAT(round.client_errors.at(c).message(),
              HasSubstr("fewer than the threshold 7"));
  for (ParticipantId id : {a, b, c}) {
    EXPECT_EQ(round.client(id).stage(), SecAggClient::Stage::kAborted);
    EXPECT_EQ(round.responses.count(id), 0u);
  }
  // 9 contributors, 6 responders < t: the round aborts, nothing released.
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  ExpectNoInputExposed(round, 7);
}

TEST(SecAggDishonestServerTest, SplitViewCannotCollectBothSecrets) {
  // The coordinator tells some of the victim's holders that it survived
  // (asking for b_v shares) and the others that it dropped (asking for
  // s_v shares). Each honest holder reveals one kind, so with t = 7 of 10
  // it gets at most 6 of one kind and 4 of the other.
  SimulatedRound round(ProtocolConfig(), 10);
  const ParticipantId victim = round.id(0);
  round.tamper_unmask = [&](ParticipantId recipient, UnmaskRequest& request) {
    if (recipient >= round.id(6)) {
      std::erase(request.survivors, victim);
      request.dropped.push_back(victim);
    }
  };
  const absl::StatusOr<AggregateResult> result = round.Run();
  int self_mask_shares = 0;
  int mask_key_shares = 0;
  for (const auto& [sender, response] : round.responses) {
    for (const RevealedShare& share : response.shares) {
      if (share.owner != victim) continue;
      ++(share.kind == ShareKind::kSelfMask ? self_mask_shares
                                            : mask_key_shares);
    }
  }
  EXPECT_EQ(self_mask_shares, 6);
  EXPECT_EQ(mask_key_shares, 4);
  ExpectNoInputExposed(round, 7);
  // The honest server code rejects the inconsistent responses and aborts.
  EXPECT_FALSE(result.ok());
}

TEST(SecAggDishonestServerTest, RetriedUnmaskCannotFlipAPeer) {
  SimulatedRound round(ProtocolConfig(), 10);
  ASSERT_TRUE(round.Run().ok());
  const ParticipantId asked = round.id(3);
  const ParticipantId victim = round.id(0);
  // A retry names the victim dropped after the first request named it
  // surviving: revealing its mask-key share now would expose its input.
  const UnmaskRequest retry{7, Without(round.ids(), {victim}), {victim}};
  absl::StatusOr<UnmaskResponse> response = round.client(asked).Unmask(retry);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(response.status().message(),
              HasSubstr("listed as surviving before"));
  EXPECT_EQ(round.client(asked).stage(), SecAggClient::Stage::kAborted);
  EXPECT_EQ(round.client(asked).Unmask(retry).status().code(),
            absl::StatusCode::kAborted);
}

// ---- Client set-up
// -----------------------------------------------------------

TEST(SecAggClientTest, RefusesConfigsBelowSitePolicyAndOutOfOrderCalls) {
  const harness::TestIdentity& site = harness::Site(0);
  auto make = [&](ClientPolicy policy) {
    ClientOptions options;
    options.client_name = site.name;
    options.certificate_chain = site.cert_pem;
    options.ca_pem = harness::FederationCa().pem();
    options.policy = policy;
    absl::StatusOr<SigningKey> key =
        SigningKey::FromPem(SecretBytes::CopyFrom(site.key_pem));
    EXPECT_TRUE(key.ok());
    return SecAggClient::Create(std::move(options), std::move(*key),
                                ProtocolConfig(), 1, "sha256:m");
  };
  ClientPolicy strict;
  strict.min_adversary = AdversaryModel::kSemiMalicious;
  EXPECT_EQ(make(strict).status().code(),
            absl::StatusCode::kFailedPrecondition);
  strict = ClientPolicy{};
  strict.min_corrupt_rate = 0.1;
  EXPECT_EQ(make(strict).status().code(),
            absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<std::unique_ptr<SecAggClient>> client = make(ClientPolicy{});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->ShareKeys(KeyRoster{7, {}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*client)->stage(), SecAggClient::Stage::kReady);
  ASSERT_TRUE((*client)->Advertise().ok());
  EXPECT_EQ((*client)->Advertise().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace samverka::security::secagg
