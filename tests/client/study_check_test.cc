// tests/client/study_check_test.cc
#include "client/study_check.h"

#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "security/dp/accountant.h"
#include "tests/security/study_pki.h"

namespace samverka::client {
namespace {

using ::testing::HasSubstr;
using security::testutil::SignFor;
using security::testutil::StudyPki;

constexpr char kManifest[] =
    "name = \"breast-mlp\"\nkind = \"train\"\ndataset = \"breast\"\nmodel = \"mlp\"\n"
    "input_shape = [30]\nnum_classes = 2\nrounds = 5\nlr = 0.1\nbatch_size = 16\n";
// (secure_aggregation is on unless a manifest says otherwise.)

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// ---- VerifyStudy: the signature, the federation and who signed --------------

class VerifyStudyTest : public ::testing::Test {
 protected:
  VerifyStudyTest() : pki_("consortium"), alice_(pki_.Issue("alice")) {}

  FetchedStudy Signed(const std::string& manifest, const std::string& digest = "",
                      const StudyPki::Holder* signer = nullptr) {
    if (signer == nullptr) signer = &alice_;
    FetchedStudy study;
    study.envelope = security::NewStudyEnvelope("consortium", manifest, digest);
    study.study_id = security::StudyId(study.envelope);
    study.operator_certificate = signer->certificate_pem;
    study.signature = SignFor(study.envelope, *signer);
    return study;
  }
  StudyTrust Trust() { return StudyTrust{pki_.ca_pem(), nullptr, "consortium", {}}; }

  StudyPki pki_;
  StudyPki::Holder alice_;
};

TEST_F(VerifyStudyTest, AStudySignedByAnOperatorOfTheFederationVerifies) {
  absl::StatusOr<VerifiedStudy> study = VerifyStudy(Signed(kManifest), Trust(), absl::Now());
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_EQ(study->operator_name, "alice");
  EXPECT_EQ(study->manifest.dataset, "breast");
  EXPECT_EQ(study->manifest.model.model, "mlp");
  EXPECT_EQ(study->manifest.train.batch_size, 16);
  EXPECT_TRUE(study->model_sha256.empty());
}

TEST_F(VerifyStudyTest, AManifestAlteredAtTheCoordinatorIsRefused) {
  FetchedStudy study = Signed(kManifest);
  study.envelope.manifest += "lr = 5.0\n";
  // With the old id the id no longer names the bytes; with a recomputed id
  // the signature fails.
  absl::StatusOr<VerifiedStudy> old_id = VerifyStudy(study, Trust(), absl::Now());
  EXPECT_EQ(old_id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(old_id.status()), HasSubstr("does not name its signed bytes"));
  study.study_id = security::StudyId(study.envelope);
  absl::StatusOr<VerifiedStudy> new_id = VerifyStudy(study, Trust(), absl::Now());
  EXPECT_EQ(new_id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(new_id.status()), HasSubstr("its signature does not verify"));
}

TEST_F(VerifyStudyTest, AStudyWithoutAnOperatorsSignatureIsRefused) {
  FetchedStudy study = Signed(kManifest);
  study.signature.clear();
  EXPECT_THAT(Message(VerifyStudy(study, Trust(), absl::Now()).status()),
              HasSubstr("does not verify"));
  StudyPki::Holder site = pki_.Issue("hospital-b", security::Role::kClient);
  EXPECT_THAT(Message(VerifyStudy(Signed(kManifest, "", &site), Trust(), absl::Now()).status()),
              HasSubstr("not an operator's"));
}

TEST_F(VerifyStudyTest, AStudyOfAnotherFederationIsRefused) {
  StudyTrust trust = Trust();
  trust.federation_id = "other";
  absl::StatusOr<VerifiedStudy> study = VerifyStudy(Signed(kManifest), trust, absl::Now());
  EXPECT_EQ(study.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(study.status()), HasSubstr("signed for federation 'consortium'"));
}

TEST_F(VerifyStudyTest, OnlyAllowedOperatorsWhenTheSiteNamesThem) {
  StudyTrust trust = Trust();
  trust.allowed_operators = {"bob"};
  absl::StatusOr<VerifiedStudy> study = VerifyStudy(Signed(kManifest), trust, absl::Now());
  EXPECT_EQ(study.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(study.status()), HasSubstr("'alice', who is not in this site's allowed_operators"));
  trust.allowed_operators = {"bob", "alice"};
  EXPECT_TRUE(VerifyStudy(Signed(kManifest), trust, absl::Now()).ok());
}

TEST_F(VerifyStudyTest, ARevokedSignerOrAnExpiredCrlIsRefused) {
  const FetchedStudy study = Signed(kManifest);
  security::RevocationList crl = pki_.Crl();
  StudyTrust trust = Trust();
  trust.crl = &crl;
  ASSERT_TRUE(VerifyStudy(study, trust, absl::Now()).ok());
  // Past the CRL's nextUpdate (30 days), within the certificate's year.
  EXPECT_THAT(Message(VerifyStudy(study, trust, absl::Now() + absl::Hours(24 * 40)).status()),
              HasSubstr("past its nextUpdate"));
  ASSERT_TRUE(pki_.ca().Revoke("alice").ok());
  crl = pki_.Crl();
  EXPECT_THAT(Message(VerifyStudy(study, trust, absl::Now()).status()), HasSubstr("revoked"));
}

TEST_F(VerifyStudyTest, TheModelAndItsDigestMustAgree) {
  const std::string torchscript = std::string(kManifest).replace(
      std::string(kManifest).find("\"mlp\""), 5, "\"net.pt\"");
  EXPECT_THAT(Message(VerifyStudy(Signed(torchscript), Trust(), absl::Now()).status()),
              HasSubstr("no digest of the file was signed"));
  absl::StatusOr<VerifiedStudy> with_digest =
      VerifyStudy(Signed(torchscript, std::string(64, 'a')), Trust(), absl::Now());
  ASSERT_TRUE(with_digest.ok()) << with_digest.status();
  EXPECT_EQ(with_digest->model_sha256, std::string(64, 'a'));
  EXPECT_THAT(Message(VerifyStudy(Signed(kManifest, std::string(64, 'a')), Trust(), absl::Now())
                          .status()),
              HasSubstr("is built in"));
  // A signed but invalid manifest.
  absl::StatusOr<VerifiedStudy> bad = VerifyStudy(Signed("name = \"x\"\n"), Trust(), absl::Now());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("signed manifest is not valid"));
}

// ---- DecideStudyTask: the site's policy per study ----------------------------

VerifiedStudy Study(const std::string& extra = "", const std::string& digest = "") {
  std::string text = kManifest;
  if (!extra.empty()) text += extra;
  absl::StatusOr<StudyManifest> manifest = ParseStudyManifest(text, "test");
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  return VerifiedStudy{"0123456789abcdef", "alice", *manifest, digest, 0};
}

// A training task exactly as the manifest signs it.
ClientTask AgreeingTask(const VerifiedStudy& study) {
  ClientTask task;
  task.task_id = "t";
  task.round = 1;
  task.kind = TaskKind::kTrain;
  task.model = study.manifest.model.model;
  task.train = study.manifest.train;
  task.cohort_size = 5;
  task.study_id = study.study_id;
  if (study.manifest.secure_aggregation) task.secure_aggregation = SecureAggregationTask{"cfg", 1};
  if (study.manifest.dp != "off") {
    task.dp = DpOptions{study.manifest.dp_clip_norm, study.manifest.dp_noise_multiplier, 0.01, 1e-5};
  }
  return task;
}

struct DecisionCase {
  std::string name;
  std::string manifest_extra;  // appended to kManifest
  std::string digest;          // the study's model digest
  std::function<void(ClientTask&)> change_task;
  std::function<void(SitePolicy&)> change_policy;
  std::set<std::string> datasets = {"breast", "lungs"};
  std::string refusal;  // empty: accepted
};

TEST(DecideStudyTaskTest, EachRuleOfTheSitePolicyPerStudy) {
  const auto none = [](auto&) {};
  const std::vector<DecisionCase> cases = {
      {"agrees", "", "", none, none, {"breast"}, ""},
      {"other study", "", "", [](ClientTask& t) { t.study_id = "ffffffffffffffff"; }, none,
       {"breast"}, "belongs to study ffffffffffffffff"},
      {"other model", "", "", [](ClientTask& t) { t.model = "cnn"; }, none, {"breast"},
       "the signed manifest says 'mlp'"},
      {"other lr", "", "", [](ClientTask& t) { t.train.learning_rate = 1.0; }, none, {"breast"},
       "training option lr"},
      {"other epochs", "", "", [](ClientTask& t) { t.train.local_epochs = 50; }, none, {"breast"},
       "training option local_epochs"},
      {"round past the signed rounds", "", "", [](ClientTask& t) { t.round = 6; }, none,
       {"breast"}, "rounds = 5"},
      {"plain round of a secure study", "", "",
       [](ClientTask& t) { t.secure_aggregation.reset(); }, none, {"breast"},
       "secure_aggregation = true"},
      {"data set missing", "", "", none, none, {"lungs", "colon"},
       "needs data set 'breast', which this site does not name (it has: colon, lungs)"},
      {"built-in allowed", "", "", none,
       [](SitePolicy& p) { p.allowed_models = {"mlp"}; }, {"breast"}, ""},
      {"built-in not allowed", "", "", none,
       [](SitePolicy& p) { p.allowed_models = {"logreg"}; }, {"breast"}, "allowed_models"},
      {"digest allowed", "", std::string(64, 'd'), none,
       [](SitePolicy& p) { p.allowed_models = {std::string(64, 'd')}; }, {"breast"}, ""},
      {"digest not allowed", "", std::string(64, 'e'), none,
       [](SitePolicy& p) { p.allowed_models = {"mlp", std::string(64, 'd')}; }, {"breast"},
       "sha256 " + std::string(64, 'e')},
      {"site requires secure aggregation, study does not", "secure_aggregation = false\n", "",
       none, [](SitePolicy& p) { p.require_secure_aggregation = true; }, {"breast"},
       "require_secure_aggregation"},
      {"a stricter task than signed is fine", "secure_aggregation = false\n", "",
       [](ClientTask& t) { t.secure_aggregation = SecureAggregationTask{"cfg", 1}; },
       [](SitePolicy& p) { p.require_secure_aggregation = true; }, {"breast"}, ""},
      {"cohort too small", "", "", [](ClientTask& t) { t.cohort_size = 2; },
       [](SitePolicy& p) { p.min_cohort = 3; }, {"breast"}, "min_cohort"},
      {"DP study without DP in the task", "dp = \"central\"\n", "",
       [](ClientTask& t) { t.dp = {}; }, none, {"breast"}, "has no differential privacy"},
      {"less noise than signed", "dp = \"central\"\ndp_noise_multiplier = 1.2\n", "",
       [](ClientTask& t) { t.dp.noise_multiplier = 0.5; }, none, {"breast"},
       "below the signed manifest's dp_noise_multiplier"},
      {"a site budget needs DP", "", "", none, [](SitePolicy& p) { p.max_epsilon = 5; },
       {"breast"}, "only with differential privacy"},
      {"DP within the site budget", "dp = \"central\"\n", "", none,
       [](SitePolicy& p) { p.max_epsilon = 5; }, {"breast"}, ""},
  };
  for (const DecisionCase& c : cases) {
    SCOPED_TRACE(c.name);
    VerifiedStudy study = Study(c.manifest_extra, c.digest);
    if (!c.digest.empty()) {
      study.manifest.model.model = "net.pt";
    }
    ClientTask task = AgreeingTask(study);
    c.change_task(task);
    SitePolicy policy;
    c.change_policy(policy);
    absl::StatusOr<SitePolicyEnforcer> enforcer = SitePolicyEnforcer::Create(policy, "");
    ASSERT_TRUE(enforcer.ok()) << enforcer.status();
    absl::StatusOr<ClientTask> decided =
        DecideStudyTask(task, study, c.datasets, *enforcer, absl::Now());
    if (c.refusal.empty()) {
      EXPECT_TRUE(decided.ok()) << decided.status();
    } else {
      ASSERT_FALSE(decided.ok());
      EXPECT_EQ(decided.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(Message(decided.status()), HasSubstr(c.refusal));
    }
  }
}

TEST(DecideStudyTaskTest, TheTaskRunsWhatTheManifestSigned) {
  const VerifiedStudy study = Study("dp = \"central\"\ndp_noise_multiplier = 1.1\n");
  ClientTask task = AgreeingTask(study);
  // Adaptive clipping: the update's multiplier is above the signed one.
  task.dp.noise_multiplier = 1.3;
  absl::StatusOr<SitePolicyEnforcer> enforcer = SitePolicyEnforcer::Create({}, "");
  ASSERT_TRUE(enforcer.ok());
  absl::StatusOr<ClientTask> decided =
      DecideStudyTask(task, study, {"breast"}, *enforcer, absl::Now());
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_EQ(decided->model, "mlp");
  EXPECT_EQ(decided->train.learning_rate, 0.1);
  EXPECT_EQ(decided->train.batch_size, 16);
  // The ledger is charged at the signed (lower) multiplier: the higher cost.
  EXPECT_EQ(decided->dp.noise_multiplier, 1.1);
  // An evaluation task is checked for its model only.
  ClientTask eval = task;
  eval.kind = TaskKind::kEvaluate;
  eval.round = 99;
  eval.train.learning_rate = 7;
  EXPECT_TRUE(DecideStudyTask(eval, study, {"breast"}, *enforcer, absl::Now()).ok());
  eval.model = "cnn";
  EXPECT_FALSE(DecideStudyTask(eval, study, {"breast"}, *enforcer, absl::Now()).ok());
}

TEST(DecideStudyTaskTest, RoundsPerDayAndPrivacyCountAcrossStudies) {
  SitePolicy policy;
  policy.max_rounds_per_day = 2;
  absl::StatusOr<security::dp::PrivacySpent> one = security::dp::ComputeEpsilon(0.01, 1.0, 1, 1e-5);
  ASSERT_TRUE(one.ok());
  policy.max_epsilon = one->epsilon * 1.0001;  // one round per data set
  absl::StatusOr<SitePolicyEnforcer> enforcer = SitePolicyEnforcer::Create(policy, "");
  ASSERT_TRUE(enforcer.ok());
  const VerifiedStudy first = Study("dp = \"central\"\ndp_noise_multiplier = 1.0\n");
  VerifiedStudy second = Study("dp = \"central\"\ndp_noise_multiplier = 1.0\n");
  second.study_id = "fedcba9876543210";
  VerifiedStudy lungs = Study("dp = \"central\"\ndp_noise_multiplier = 1.0\n");
  lungs.study_id = "00000000000000aa";
  lungs.manifest.dataset = "lungs";
  const std::set<std::string> datasets = {"breast", "lungs"};
  const absl::Time now = absl::Now();
  absl::StatusOr<ClientTask> a = DecideStudyTask(AgreeingTask(first), first, datasets, *enforcer, now);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(enforcer->RecordTraining(*a, "breast", now).ok());
  // Another study on the same data set: that data set's budget is spent.
  EXPECT_THAT(Message(DecideStudyTask(AgreeingTask(second), second, datasets, *enforcer, now).status()),
              HasSubstr("on data set 'breast'"));
  // A study on another data set: its own budget.
  absl::StatusOr<ClientTask> b = DecideStudyTask(AgreeingTask(lungs), lungs, datasets, *enforcer, now);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(enforcer->RecordTraining(*b, "lungs", now).ok());
  // Rounds per day count every study: two trained, the third waits.
  ClientTask round_two = AgreeingTask(lungs);
  round_two.round = 2;
  round_two.dp = {};
  lungs.manifest.dp = "off";
  SitePolicy rounds_only;
  rounds_only.max_rounds_per_day = 2;
  absl::StatusOr<SitePolicyEnforcer> counter = SitePolicyEnforcer::Create(rounds_only, "");
  ASSERT_TRUE(counter.ok());
  ASSERT_TRUE(counter->RecordTraining(*a, "breast", now).ok());
  ASSERT_TRUE(counter->RecordTraining(*b, "lungs", now).ok());
  EXPECT_THAT(Message(DecideStudyTask(round_two, lungs, datasets, *counter, now).status()),
              HasSubstr("max_rounds_per_day"));
}

TEST(StudyRefusalTest, SaysWhichStudyAndWhy) {
  EXPECT_EQ(StudyRefusal("3f2a000000000000", absl::UnauthenticatedError("its signature does not verify")),
            "refused study 3f2a000000000000: its signature does not verify");
}

}  // namespace
}  // namespace samverka::client
