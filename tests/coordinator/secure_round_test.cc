// The coordinator's SecureRound driven by real client sessions
// (client/secure_aggregation.h) over an in-process transport, each site on
// its own thread, as the daemon and the gRPC service drive them.
#include "coordinator/secure_round.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "absl/synchronization/blocking_counter.h"
#include "client/secure_aggregation.h"
#include "security/secagg/consent_ledger.h"
#include "security/secagg/messages.h"
#include "security/pki.h"
#include "security/tls.h"

namespace samverka::coordinator {
namespace {

using ::testing::HasSubstr;

// Reaches a SecureRound directly, as the site named `name`.
class LoopbackTransport : public client::SecureAggregationTransport {
 public:
  LoopbackTransport(SecureRound* round, std::string name) : round_(round), name_(std::move(name)) {}
  absl::Status Send(SecureStage stage, std::string payload) override {
    return round_->Send(name_, stage, payload);
  }
  absl::StatusOr<std::string> Fetch(SecureStage stage) override {
    // Long-polls as the daemon does; bounded so a bug fails, not hangs.
    for (int attempt = 0; attempt < 600; ++attempt) {
      absl::StatusOr<std::optional<std::string>> got =
          round_->Fetch(name_, stage, absl::Milliseconds(100));
      if (!got.ok()) return got.status();
      if (got->has_value()) return **got;
    }
    return absl::DeadlineExceededError("stage never opened");
  }
  absl::Status UploadMaskedInput(std::string payload, std::string commitment) override {
    return round_->SubmitMaskedInput(name_, payload, commitment);
  }

 protected:
  SecureRound* round_;
  std::string name_;
};

struct Site {
  std::string name;
  std::unique_ptr<security::secagg::ConsentLedger> ledger;
  client::SecureSiteOptions options;
  std::vector<float> update;
  double weight = 0;
  double loss = 0;
};

class SecureRoundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("secure_round_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    auto ca = security::CertificateAuthority::Init(dir_.string(), "test-federation");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::move(*ca);
  }

  // Sites with d = 5 updates u_i[j] = (i + 1) * (j - 2) / 10, weights
  // 10 (i + 1), losses 0.5 (i + 1).
  std::vector<Site> MakeSites(int n, const std::map<int, security::Role>& roles = {}) {
    std::vector<Site> sites;
    for (int i = 0; i < n; ++i) {
      Site site;
      site.name = "site-" + std::string(1, static_cast<char>('a' + i));
      security::CertificateRequest request;
      request.name = site.name;
      if (auto role = roles.find(i); role != roles.end()) request.role = role->second;
      absl::StatusOr<security::IssuedCertificate> issued = ca_->Issue(request);
      EXPECT_TRUE(issued.ok()) << issued.status();
      site.options.name = site.name;
      site.options.certificate_chain = issued->certificate_pem;
      site.options.private_key =
          security::SecretBytes::CopyFrom(*security::ReadFileToString(issued->key_path));
      site.options.ca_pem = ca_->ca_certificate_pem();
      site.ledger = std::move(*security::secagg::ConsentLedger::Open(""));
      site.options.ledger = site.ledger.get();
      site.options.federation_id = "test-federation";
      site.options.dataset = "test-data";
      for (int j = 0; j < 5; ++j) site.update.push_back(static_cast<float>((i + 1) * (j - 2) / 10.0));
      site.weight = 10.0 * (i + 1);
      site.loss = 0.5 * (i + 1);
      sites.push_back(std::move(site));
    }
    return sites;
  }

  std::unique_ptr<SecureRound> MakeRound(const std::vector<Site>& sites, double dropout_rate,
                                         SecureRound::Setup* kept = nullptr) {
    SecureAggregationOptions options;
    options.threat.dropout_rate = dropout_rate;
    SecureRound::Setup setup;
    setup.federation_id = "test-federation";
    setup.round = 7;
    for (const Site& s : sites) setup.cohort.push_back(s.name);
    setup.model_length = 5;
    setup.max_weight = 100;
    setup.model_digest = "digest-of-the-model";
    setup.ca_pem = ca_->ca_certificate_pem();
    setup.start = absl::Now();
    setup.seal = [this](const SealedSum& sealed) {
      sealed_.push_back(sealed);
      return absl::OkStatus();
    };
    setup.on_consent = [this](uint32_t id, const security::SecretBytes& seed) {
      consents_.emplace(id, security::SecretBytes::CopyFrom(seed.span()));
      return absl::OkStatus();
    };
    if (kept != nullptr) *kept = setup;
    auto round = SecureRound::Create(options, setup);
    EXPECT_TRUE(round.ok()) << round.status();
    return round.ok() ? std::move(*round) : nullptr;
  }

  // Runs each site on a thread: Start, then Contribute unless it is in
  // `crash_after_start` (it reports a dropout instead, as the coordinator
  // does for a site that went silent). The calling thread advances the
  // round until it finishes.
  std::vector<absl::Status> RunSites(SecureRound* round, const std::vector<Site>& sites,
                                     const std::set<int>& crash_after_start = {}) {
    std::vector<absl::Status> outcome(sites.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < sites.size(); ++i) {
      threads.emplace_back([&, i] {
        LoopbackTransport transport(round, sites[i].name);
        auto task = round->TaskFor(sites[i].name);
        if (!task.ok()) {
          outcome[i] = task.status();
          return;
        }
        auto session = client::SecureAggregationSession::Start(sites[i].options, *task, 7,
                                                               "digest-of-the-model", &transport);
        if (!session.ok()) {
          // The site reports it cannot take part, and the coordinator
          // counts it as dropped (as ReportTaskFailure does).
          round->ReportDropout(sites[i].name);
          outcome[i] = session.status();
          return;
        }
        if (crash_after_start.contains(static_cast<int>(i))) {
          round->ReportDropout(sites[i].name);
          outcome[i] = absl::CancelledError("crashed");
          return;
        }
        outcome[i] = (*session)->Contribute(sites[i].update, sites[i].weight, sites[i].loss).status();
      });
    }
    while (!round->Advance(absl::Now())) round->WaitForChange(absl::Milliseconds(200));
    for (std::thread& t : threads) t.join();
    return outcome;
  }

  // The expected weighted sum of `sites[i]` for i in `which`.
  static std::vector<double> WeightedSum(const std::vector<Site>& sites, std::vector<int> which) {
    std::vector<double> sum(5, 0.0);
    for (int i : which) {
      for (int j = 0; j < 5; ++j) sum[j] += sites[i].weight * sites[i].update[j];
    }
    return sum;
  }

  std::filesystem::path dir_;
  std::unique_ptr<security::CertificateAuthority> ca_;
  // What the round stored through Setup::seal and Setup::on_consent.
  std::vector<SealedSum> sealed_;
  std::map<uint32_t, security::SecretBytes> consents_;
};

TEST_F(SecureRoundTest, RevealsTheWeightedSumOfAllSites) {
  std::vector<Site> sites = MakeSites(4);
  sites[0].update[4] = 9.0f;  // beyond the clipping range 8: clipped, counted
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.1);
  ASSERT_NE(round, nullptr);
  std::vector<absl::Status> outcome = RunSites(round.get(), sites);
  for (const absl::Status& s : outcome) EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->contributors.size(), 4u);
  EXPECT_NEAR(result->total_weight, 100.0, 1e-4);
  for (int j = 0; j < 5; ++j) {
    double expected = 0;
    for (const Site& s : sites) expected += s.weight * std::clamp<double>(s.update[j], -8, 8);
    EXPECT_NEAR(result->weighted_sum[j], expected, 1e-4) << "coordinate " << j;
  }
  // sum w_i * loss_i = 10*0.5 + 20*1 + 30*1.5 + 40*2 = 150.
  EXPECT_NEAR(result->weighted_train_loss, 150.0, 1e-4);
  // One of site-a's five values was clipped: 10 * 0.2 / 100.
  EXPECT_NEAR(result->clipped_fraction, 0.02, 1e-6);
  EXPECT_EQ(result->parameters.threshold, 4);  // complete graph, ceil(0.9 * 4)
}

TEST_F(SecureRoundTest, ASiteLostAfterSharingKeysIsRecoveredFromShares) {
  std::vector<Site> sites = MakeSites(5);
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.3);  // t = ceil(0.7 * 5) = 4
  ASSERT_NE(round, nullptr);
  std::vector<absl::Status> outcome = RunSites(round.get(), sites, {2});
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->contributors, ::testing::ElementsAre("site-a", "site-b", "site-d", "site-e"));
  EXPECT_THAT(result->dropped, ::testing::ElementsAre("site-c"));
  EXPECT_NEAR(result->total_weight, 10 + 20 + 40 + 50, 1e-4);
  for (int j = 0; j < 5; ++j) {
    double expected = 0;
    for (int i : {0, 1, 3, 4}) expected += sites[i].weight * sites[i].update[j];
    EXPECT_NEAR(result->weighted_sum[j], expected, 1e-4);
  }
}

TEST_F(SecureRoundTest, TooFewSurvivorsAbortAndRevealNothing) {
  std::vector<Site> sites = MakeSites(5);
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.3);
  ASSERT_NE(round, nullptr);
  std::vector<absl::Status> outcome = RunSites(round.get(), sites, {1, 3});
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("masked"));
  // The sites that masked were told the round aborted instead of being
  // asked to unmask.
  for (int i : {0, 2, 4}) EXPECT_EQ(outcome[i].code(), absl::StatusCode::kAborted) << outcome[i];
  EXPECT_EQ(round->Fetch("site-a", SecureStage::kUnmask, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kAborted);
}

TEST_F(SecureRoundTest, ASiteCannotSpeakForAnother) {
  std::vector<Site> sites = MakeSites(3);
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.1);
  ASSERT_NE(round, nullptr);
  // site-a's connection carries site-b's task and signed keys.
  LoopbackTransport as_a(round.get(), "site-a");
  auto task_b = round->TaskFor("site-b");
  ASSERT_TRUE(task_b.ok());
  auto session = client::SecureAggregationSession::Start(sites[1].options, *task_b, 7,
                                                         "digest-of-the-model", &as_a);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(round->TaskFor("intruder").status().code(), absl::StatusCode::kPermissionDenied);
  // Garbage is refused with a message, and the round is not disturbed.
  EXPECT_EQ(round->Send("site-a", SecureStage::kAdvertiseKeys, "not a message").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(round->Advance(absl::Now()));
}

TEST_F(SecureRoundTest, ASilentSiteIsLeftBehindAtTheStageDeadline) {
  std::vector<Site> sites = MakeSites(4);
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.3);  // t = ceil(0.7 * 4) = 3
  ASSERT_NE(round, nullptr);
  const std::vector<Site>& active = sites;  // the first three; site-d never shows up
  std::vector<absl::Status> outcome(3);
  std::vector<std::thread> threads;
  absl::BlockingCounter advertised(3);
  // Counts the advertisements that reached the round.
  class CountingTransport : public LoopbackTransport {
   public:
    CountingTransport(SecureRound* round, std::string name, absl::BlockingCounter* counter)
        : LoopbackTransport(round, std::move(name)), counter_(counter) {}
    absl::Status Send(SecureStage stage, std::string payload) override {
      absl::Status status = LoopbackTransport::Send(stage, std::move(payload));
      if (stage == SecureStage::kAdvertiseKeys) counter_->DecrementCount();
      return status;
    }

   private:
    absl::BlockingCounter* counter_;
  };
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      CountingTransport transport(round.get(), active[i].name, &advertised);
      auto session = client::SecureAggregationSession::Start(
          active[i].options, *round->TaskFor(active[i].name), 7, "digest-of-the-model", &transport);
      if (!session.ok()) {
        outcome[i] = session.status();
        return;
      }
      outcome[i] = (*session)->Contribute(active[i].update, active[i].weight, active[i].loss).status();
    });
  }
  advertised.Wait();
  // Before the deadline the stage waits for site-d.
  EXPECT_FALSE(round->Advance(absl::Now()));
  absl::StatusOr<std::optional<std::string>> roster =
      round->Fetch("site-a", SecureStage::kShareKeys, absl::ZeroDuration());
  ASSERT_TRUE(roster.ok());
  EXPECT_FALSE(roster->has_value());
  // Past the stage deadline the round goes on with the three.
  const absl::Time late = absl::Now() + absl::Seconds(121);
  bool done = round->Advance(late);
  while (!done) {
    round->WaitForChange(absl::Milliseconds(200));
    done = round->Advance(late);
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : outcome) EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->contributors.size(), 3u);
  EXPECT_NEAR(result->total_weight, 60, 1e-4);
}

TEST_F(SecureRoundTest, TheCoordinatorsOwnCertificateCannotJoin) {
  // site-d holds a certificate of the federation CA, but with the
  // coordinator's role: its keys are refused and the round goes on.
  std::vector<Site> sites = MakeSites(4, {{3, security::Role::kCoordinator}});
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.3);
  ASSERT_NE(round, nullptr);
  std::vector<absl::Status> outcome = RunSites(round.get(), sites);
  EXPECT_EQ(outcome[3].code(), absl::StatusCode::kUnauthenticated) << outcome[3];
  EXPECT_THAT(std::string(outcome[3].message()), HasSubstr("role 'coordinator'"));
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->contributors, ::testing::ElementsAre("site-a", "site-b", "site-c"));
}

// A transport that loses the consent stage (its coordinator went away
// after the sum was stored).
class NoConsentTransport : public LoopbackTransport {
 public:
  using LoopbackTransport::LoopbackTransport;
  absl::StatusOr<std::string> Fetch(SecureStage stage) override {
    if (stage == SecureStage::kConsent) return absl::UnavailableError("connection lost");
    return LoopbackTransport::Fetch(stage);
  }
};

TEST_F(SecureRoundTest, TheUnmaskedSumStaysSealedUntilEverySiteReleasesIt) {
  std::vector<Site> sites = MakeSites(4);
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.1);
  ASSERT_NE(round, nullptr);
  std::vector<absl::Status> outcome = RunSites(round.get(), sites);
  for (const absl::Status& s : outcome) EXPECT_TRUE(s.ok()) << s;
  ASSERT_EQ(sealed_.size(), 1u);
  EXPECT_EQ(consents_.size(), 4u);
  absl::StatusOr<SecureRoundResult> result = round->result();
  ASSERT_TRUE(result.ok()) << result.status();
  // Decoded as it was stored, before the consent masks came off, the sealed
  // sum is noise, not the round's sum.
  auto config = security::secagg::ParseRoundConfig(sealed_[0].round_config);
  ASSERT_TRUE(config.ok());
  auto decoded = security::secagg::DecodeSum(sealed_[0].sum, *security::secagg::EncodingFor(*config), 4);
  const std::vector<double> expected = WeightedSum(sites, {0, 1, 2, 3});
  int far = 0;
  for (int j = 0; j < 5; ++j) {
    EXPECT_NEAR(result->weighted_sum[j], expected[j], 1e-4);
    if (!decoded.ok() || std::abs(decoded->weighted_sum[j] - expected[j]) > 1) ++far;
  }
  EXPECT_EQ(far, 5);
  EXPECT_EQ(result->instance, sealed_[0].instance);
}

TEST_F(SecureRoundTest, ARoundResumedFromItsSealedSumReleasesTheSameSum) {
  std::vector<Site> sites = MakeSites(4);
  SecureRound::Setup setup;
  std::unique_ptr<SecureRound> round = MakeRound(sites, 0.1, &setup);
  ASSERT_NE(round, nullptr);
  // site-d masks and unmasks, then loses the coordinator before its consent.
  std::vector<absl::Status> outcome(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<LoopbackTransport> transport =
          i == 3 ? std::make_unique<NoConsentTransport>(round.get(), sites[i].name)
                 : std::make_unique<LoopbackTransport>(round.get(), sites[i].name);
      auto session = client::SecureAggregationSession::Start(
          sites[i].options, *round->TaskFor(sites[i].name), 7, "digest-of-the-model", transport.get());
      outcome[i] = session.ok() ? (*session)->Contribute(sites[i].update, sites[i].weight,
                                                         sites[i].loss).status()
                                : session.status();
    });
  }
  while (!round->Advance(absl::Now()) &&
         round->AwaitingConsent() != std::vector<std::string>{"site-d"}) {
    round->WaitForChange(absl::Milliseconds(200));
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(outcome[3].code(), absl::StatusCode::kUnavailable);
  // The coordinator "stops": past the deadline the round aborts, releasing
  // nothing, and keeps the sealed sum.
  ASSERT_TRUE(round->Advance(absl::Now() + absl::Seconds(500)));
  EXPECT_EQ(round->result().status().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(sealed_.size(), 1u);
  ASSERT_EQ(consents_.size(), 3u);

  // A restarted coordinator resumes at the consent stage.
  auto resumed = SecureRound::Resume(SecureAggregationOptions{}, setup, sealed_[0],
                                     std::move(consents_));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  auto task = (*resumed)->TaskFor("site-d");
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->consent_instance, sealed_[0].instance);
  // A seed that does not open site-d's commitment is refused.
  EXPECT_EQ((*resumed)->Send("site-d", SecureStage::kConsent, std::string(32, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*resumed)->Fetch("intruder", SecureStage::kConsent, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kPermissionDenied);
  LoopbackTransport transport(resumed->get(), "site-d");
  const security::secagg::ContributionScope scope{"test-federation", "test-data",
                                                  "digest-of-the-model"};
  ASSERT_TRUE(client::ReleaseConsent(*sites[3].ledger, scope, task->consent_instance, 8,
                                     &transport).ok());
  ASSERT_TRUE((*resumed)->Advance(absl::Now()));
  absl::StatusOr<SecureRoundResult> result = (*resumed)->result();
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<double> expected = WeightedSum(sites, {0, 1, 2, 3});
  for (int j = 0; j < 5; ++j) EXPECT_NEAR(result->weighted_sum[j], expected[j], 1e-4);
  EXPECT_NEAR(result->total_weight, 100, 1e-4);
}

// The differencing attack: the same model again with a subset of the
// cohort ({a,b,c,d}, then {a,b,c}) would reveal site-d's update as the
// difference. The sites that released the first sum refuse the second run.
TEST_F(SecureRoundTest, ASecondRunFromTheSameModelIsRefusedBySitesThatReleasedOne) {
  std::vector<Site> sites = MakeSites(4);
  std::unique_ptr<SecureRound> first = MakeRound(sites, 0.1);
  ASSERT_NE(first, nullptr);
  for (const absl::Status& s : RunSites(first.get(), sites)) ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(first->result().ok());

  std::vector<Site> subset;
  for (int i = 0; i < 3; ++i) subset.push_back(std::move(sites[i]));
  std::unique_ptr<SecureRound> second = MakeRound(subset, 0.1);
  ASSERT_NE(second, nullptr);
  std::vector<absl::Status> outcome = RunSites(second.get(), subset);
  for (const absl::Status& s : outcome) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("subtract"));
  }
  EXPECT_FALSE(second->result().ok());
  EXPECT_EQ(sealed_.size(), 1u);  // the second run never produced a sum
}

TEST_F(SecureRoundTest, IntegerVectorsAreSummedAsTheyAreInTheSixtyFourBitRing) {
  // A statistics study's round: each site sends 64-bit integers (counts, and
  // fixed-point sums in two's complement), which the round sums mod 2^64
  // without quantising them.
  std::vector<Site> sites = MakeSites(4);
  SecureAggregationOptions options;
  SecureRound::Setup setup;
  setup.federation_id = "test-federation";
  setup.round = 1;
  for (const Site& site : sites) setup.cohort.push_back(site.name);
  setup.integer_length = 6;
  setup.model_digest = "digest-of-the-manifest";
  setup.ca_pem = ca_->ca_certificate_pem();
  setup.start = absl::Now();
  auto round = SecureRound::Create(options, setup);
  ASSERT_TRUE(round.ok()) << round.status();
  std::vector<std::vector<uint64_t>> inputs;
  std::vector<uint64_t> expected(6, 0);
  for (size_t i = 0; i < sites.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) + 1;
    inputs.push_back({static_cast<uint64_t>(k), uint64_t{1} << 55,
                      static_cast<uint64_t>(-1000 * k), static_cast<uint64_t>(k * k), 0,
                      ~uint64_t{0}});
    for (size_t j = 0; j < 6; ++j) expected[j] += inputs.back()[j];  // wraps mod 2^64
  }
  std::vector<absl::Status> outcome(sites.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sites.size(); ++i) {
    threads.emplace_back([&, i] {
      LoopbackTransport transport(round->get(), sites[i].name);
      auto task = (*round)->TaskFor(sites[i].name);
      auto session = client::SecureAggregationSession::Start(sites[i].options, *task, 1,
                                                             "digest-of-the-manifest", &transport);
      if (!session.ok()) {
        outcome[i] = session.status();
        (*round)->ReportDropout(sites[i].name);
        return;
      }
      // A vector of another length is refused before anything is sent.
      EXPECT_EQ((*session)->ContributeIntegers({1, 2, 3}).status().code(),
                absl::StatusCode::kInvalidArgument);
      outcome[i] = (*session)->ContributeIntegers(inputs[i]).status();
    });
  }
  while (!(*round)->Advance(absl::Now())) (*round)->WaitForChange(absl::Milliseconds(200));
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : outcome) EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<SecureRoundResult> result = (*round)->result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->contributors.size(), 4u);
  EXPECT_EQ(result->integer_sum, expected);
  EXPECT_TRUE(result->weighted_sum.empty());
  // Two's complement: the third element is -1000 (1 + 2 + 3 + 4).
  EXPECT_EQ(static_cast<int64_t>(result->integer_sum[2]), -10000);
}

TEST(SecureAggregationOptionsTest, RejectsBadSettings) {
  SecureAggregationOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.threat.dropout_rate = 1.0;
  EXPECT_FALSE(options.Validate().ok());
  options = {};
  options.clip_range = 0;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("clip_range"));
  options = {};
  options.modulus_bits = 16;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("modulus_bits"));
  options = {};
  options.neighbours = -2;
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace samverka::coordinator
