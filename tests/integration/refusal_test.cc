// The coordinator refuses bad peers and bad input with a clear reason,
// while an honest site keeps training: another CA, an expired or revoked
// certificate, a site not on the allow-list, no client certificate,
// plaintext; and every malformed upload is rejected with a gRPC status.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>

#include <grpcpp/grpcpp.h>

#include "common/codec.h"
#include "common/wire.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"
#include "tests/integration/federation_files.h"
#include "tests/integration/process.h"
#include "tests/integration/run_command.h"
#include "tests/integration/site_calls.h"

namespace samverka {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes a key and a certificate for `name` signed by the CA in `pki`, valid
// from two days ago until yesterday (an expired site certificate).
void WriteExpiredCertificate(const fs::path& pki, const std::string& name, const fs::path& out) {
  FILE* f = fopen((pki / "ca" / "ca.key").c_str(), "r");
  EVP_PKEY* ca_key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  f = fopen((pki / "ca" / "ca.crt").c_str(), "r");
  X509* ca = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), -2 * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert), -1 * 86400);
  X509_NAME* subject = X509_get_subject_name(cert);
  auto add = [&](const char* field, const std::string& value) {
    X509_NAME_add_entry_by_txt(subject, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  };
  add("CN", name);
  add("O", "test-federation");
  add("OU", "client");
  X509_set_issuer_name(cert, X509_get_subject_name(ca));
  X509_set_pubkey(cert, key);
  X509_sign(cert, ca_key, EVP_sha256());
  fs::create_directories(out);
  f = fopen((out / (name + ".crt")).c_str(), "w");
  PEM_write_X509(f, cert);
  fclose(f);
  f = fopen((out / (name + ".key")).c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  X509_free(cert);
  X509_free(ca);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
}

class RefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("samverka_refusal_");
    Pki("init --dir pki --federation test-federation");
    Pki("init --dir other --federation test-federation");
    Pki("issue --dir pki --name coordinator --role coordinator --san 127.0.0.1");
    for (const char* site : {"site-a", "site-b", "site-c", "intruder", "revoked-site"}) {
      Pki(std::string("issue --dir pki --name ") + site);
    }
    Pki("issue --dir pki --name operator --role operator");
    Pki("issue --dir other --name site-a");
    Pki("revoke --dir pki --name revoked-site");
    WriteExpiredCertificate(dir_ / "pki", "expired-site", dir_ / "expired");

    std::ofstream(dir_ / "coordinator.toml")
        << "federation_id = \"test-federation\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\n"
        << "rounds = 1000\nmodel = \"logreg\"\ninput_shape = [30]\nnum_classes = 2\n"
        << "heartbeat_seconds = 1\nmax_poll_seconds = 2\n"
        << "train_deadline_seconds = 120\nfederated_evaluation = false\n" << AggregationConfig()
        << "allowed_clients = [\"site-a\", \"site-b\", \"site-c\", \"revoked-site\", \"expired-site\"]\n"
        << CoordinatorTlsSection();
    fs::create_directories(dir_ / "state");
    coordinator_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "coordinator", "--config", (dir_ / "coordinator.toml").string()});
    ASSERT_TRUE(coordinator_->WaitFor("with mutual TLS")) << coordinator_->output();
    const int port = ListeningPort(coordinator_->output());
    ASSERT_GT(port, 0);
    target_ = "127.0.0.1:" + std::to_string(port);
    site_a_ = std::make_unique<Process>(std::vector<std::string>{
        SAMVERKA_BIN, "client", "--config",
        WriteClientConfig(dir_, "site-a", target_, "hospital-a.csv").string()});
  }
  // Plain updates in cohorts of two, so the tests can send malformed ones;
  // secure aggregation has its own fixture below.
  virtual std::string AggregationConfig() const {
    return "clients_per_round = 2\nmin_clients = 2\nsecure_aggregation = false\n";
  }

  void TearDown() override {
    site_a_.reset();
    coordinator_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Audit rows of refusals whose reason mentions `word`, read by Python's
  // sqlite3 while the coordinator runs.
  int RefusedRows(const std::string& word) {
    CommandResult r = RunSqlitePython(
        dir_, dir_ / "state/state.db",
        "print(db.execute(\"SELECT COUNT(*) FROM audit WHERE event = 'refused' AND details LIKE ?\",\n"
        "                 ('%' + sys.argv[2] + '%',)).fetchone()[0])\n",
        word);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.lines().empty() ? -1 : std::stoi(r.lines().back());
  }

  void Pki(const std::string& args) {
    CommandResult r = RunPki(dir_, args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  }

  std::unique_ptr<v1::Federation::Stub> Stub(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    return v1::Federation::NewStub(grpc::CreateChannel(target_, credentials));
  }
  std::unique_ptr<v1::Federation::Stub> SiteStub(const fs::path& cert, const fs::path& key,
                                                 const fs::path& ca = {}) {
    security::TlsFiles files{(ca.empty() ? dir_ / "pki/ca/ca.crt" : ca).string(), cert.string(),
                             key.string()};
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        security::MakeChannelCredentials(files);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return Stub(*credentials);
  }
  std::unique_ptr<v1::Federation::Stub> Site(const std::string& name, const std::string& pki = "pki") {
    const fs::path d = dir_ / pki / "sites" / name;
    return SiteStub(d / (name + ".crt"), d / (name + ".key"));
  }

  fs::path dir_;
  std::string target_;
  std::unique_ptr<Process> coordinator_;
  std::unique_ptr<Process> site_a_;
};

TEST_F(RefusalTest, BadPeersAreRefusedWhileHonestSitesTrain) {
  // Another CA, an expired certificate, a revoked one, not on the allow-list,
  // no client certificate, plaintext.
  EXPECT_FALSE(RegisterSite(*Site("site-a", "other")).ok());
  ASSERT_TRUE(coordinator_->WaitFor("does not verify against the federation CA", std::chrono::seconds(20))) << coordinator_->output();

  EXPECT_FALSE(RegisterSite(*SiteStub(dir_ / "expired/expired-site.crt", dir_ / "expired/expired-site.key")).ok());
  // OpenSSL rejects an expired certificate during chain verification, with
  // the same error as another CA's; the log line names both causes.
  ASSERT_TRUE(coordinator_->WaitForCount("does not verify against the federation CA", 2,
                                         std::chrono::seconds(20)))
      << coordinator_->output();

  EXPECT_FALSE(RegisterSite(*Site("revoked-site")).ok());
  ASSERT_TRUE(coordinator_->WaitFor("is revoked")) << coordinator_->output();
  // A flood of them is coalesced: 40 more handshakes, each on a new
  // connection, add no audit row this minute (counted for the next).
  const int revoked_rows = RefusedRows("revoked");
  EXPECT_GE(revoked_rows, 1);
  for (int i = 0; i < 40; ++i) EXPECT_FALSE(RegisterSite(*Site("revoked-site")).ok());
  EXPECT_EQ(RefusedRows("revoked"), revoked_rows);

  EXPECT_FALSE(RegisterSite(*Site("intruder")).ok());
  ASSERT_TRUE(coordinator_->WaitFor("'intruder' is not on the coordinator's allow-list"));

  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = ReadAll(dir_ / "pki/ca/ca.crt");
  EXPECT_FALSE(RegisterSite(*Stub(grpc::SslCredentials(no_cert))).ok());
  ASSERT_TRUE(coordinator_->WaitFor("presented no certificate")) << coordinator_->output();

  EXPECT_FALSE(RegisterSite(*Stub(grpc::InsecureChannelCredentials())).ok());
  ASSERT_TRUE(coordinator_->WaitFor("plaintext")) << coordinator_->output();

  // Meanwhile honest sites train: site-a and site-c make up the cohort.
  Process site_c({SAMVERKA_BIN, "client", "--config",
                  WriteClientConfig(dir_, "site-c", target_, "hospital-c.csv").string()});
  ASSERT_TRUE(coordinator_->WaitFor("round 2/1000: 2 sites")) << coordinator_->output();

  // Revocation takes effect without a restart, also on a live connection.
  auto site_b = Site("site-b");
  ASSERT_TRUE(RegisterSite(*site_b).ok());
  Pki("revoke --dir pki --name site-b");
  grpc::Status after = RegisterSite(*site_b);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::UNAUTHENTICATED) << after.error_message();
  EXPECT_THAT(after.error_message(), HasSubstr("revoked"));

  // The operator service takes only operator certificates.
  CommandResult status = RunCommand(std::string(SAMVERKA_BIN) + " status --coordinator " + target_ +
                                    " --ca " + (dir_ / "pki/ca/ca.crt").string() + " --cert " +
                                    (dir_ / "pki/sites/operator/operator.crt").string() + " --key " +
                                    (dir_ / "pki/sites/operator/operator.key").string());
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("site-a"));
  CommandResult as_site = RunCommand(std::string(SAMVERKA_BIN) + " status --coordinator " + target_ +
                                     " --ca " + (dir_ / "pki/ca/ca.crt").string() + " --cert " +
                                     (dir_ / "pki/sites/site-a/site-a.crt").string() + " --key " +
                                     (dir_ / "pki/sites/site-a/site-a.key").string());
  EXPECT_NE(as_site.exit_code, 0);
  EXPECT_THAT(as_site.output, HasSubstr("role client"));

  coordinator_->Kill(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->output();
  CommandResult audit = RunCommand(std::string(SAMVERKA_BIN) + " audit verify --state-dir " + (dir_ / "state").string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
}

TEST_F(RefusalTest, MalformedUploadsAreRejectedAndStoreNothing) {
  // An unregistered site has no tasks.
  auto site_c = Site("site-c");
  {
    grpc::ClientContext context;
    v1::PollTaskRequest request;
    request.set_protocol_version(v1::PROTOCOL_VERSION_1);
    v1::PollTaskResponse response;
    EXPECT_EQ(site_c->PollTask(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // The test plays site-b, the second member of the cohort.
  auto site_b = Site("site-b");
  ASSERT_TRUE(RegisterSite(*site_b).ok());
  const v1::Task task = PollForTask(*site_b);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();

  // Any allow-listed certificate may connect, but only a site with a task
  // on a model downloads it (eight unread downloads once blocked everyone).
  {
    grpc::ClientContext context;
    v1::DownloadModelRequest request;
    request.set_model_digest(task.model_digest());
    auto reader = site_c->DownloadModel(&context, request);
    v1::TensorChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    const grpc::Status refused = reader->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
    EXPECT_THAT(refused.error_message(), HasSubstr("has no open task on model"));
  }
  // The model it must start from.
  const std::string model = DownloadModel(*site_b, task.model_digest());
  ASSERT_EQ(Sha256Hex(model), task.model_digest());
  absl::StatusOr<ModelParameters> global = DecodeParameters(model);
  ASSERT_TRUE(global.ok());
  ModelParameters update = *global;
  for (float& v : update.values) v = 0.01f;
  const std::string good = EncodeParameters(update);
  const int64_t round = task.round();

  auto expect = [&](const std::vector<v1::UploadMessage>& messages, grpc::StatusCode code,
                    const std::string& fragment) {
    grpc::Status s = Upload(*site_b, messages);
    EXPECT_EQ(s.error_code(), code) << fragment << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(fragment));
  };
  // Out-of-order chunk.
  std::vector<v1::UploadMessage> reordered = UploadOf(task, good, round, 64);
  std::swap(reordered[1], reordered[2]);
  expect(reordered, grpc::StatusCode::INVALID_ARGUMENT, "out of order");
  // Oversized: far more bytes than the model.
  expect(UploadOf(task, std::string(good.size() + (128 << 10), 'x'), round), grpc::StatusCode::INVALID_ARGUMENT, "limit");
  // Digest mismatch.
  std::vector<v1::UploadMessage> lying = UploadOf(task, good, round);
  for (size_t i = 1; i < lying.size(); ++i) lying[i].mutable_chunk()->set_payload_digest(std::string(64, 'a'));
  expect(lying, grpc::StatusCode::DATA_LOSS, "SHA-256");
  // NaN and Inf.
  ModelParameters nan = update;
  nan.values[3] = std::nanf("");
  expect(UploadOf(task, EncodeParameters(nan), round), grpc::StatusCode::INVALID_ARGUMENT, "NaN");
  ModelParameters inf = update;
  inf.values[0] = INFINITY;
  expect(UploadOf(task, EncodeParameters(inf), round), grpc::StatusCode::INVALID_ARGUMENT, "infinite");
  // Wrong shape.
  ModelParameters wrong_shape = update;
  wrong_shape.layout.tensors[0].shape = {1, 60};
  expect(UploadOf(task, EncodeParameters(wrong_shape), round), grpc::StatusCode::INVALID_ARGUMENT, "do not match");
  // Wrong dtype.
  TensorBundle ints = {{"fc.weight", DType::kInt32, {2, 30}, std::string(240, '\0')},
                       {"fc.bias", DType::kInt32, {2}, std::string(8, '\0')}};
  expect(UploadOf(task, *EncodeBundle(ints), round), grpc::StatusCode::INVALID_ARGUMENT, "float32");
  // Wrong round.
  expect(UploadOf(task, good, round + 1), grpc::StatusCode::FAILED_PRECONDITION, "no open task");
  // Self-declared numbers: a weight of 2^63 - 1 would erase every honest
  // update of the round; a negative loss or a half flag is a lie.
  std::vector<v1::UploadMessage> heavy = UploadOf(task, good, round);
  heavy[0].mutable_header()->set_num_samples(std::numeric_limits<int64_t>::max());
  expect(heavy, grpc::StatusCode::INVALID_ARGUMENT, "the site registered 10");
  for (const auto& [name, value] : {std::pair{"train_loss", -1.0}, std::pair{"dp_within_clip", 0.5}}) {
    std::vector<v1::UploadMessage> lie = UploadOf(task, good, round);
    v1::Metric* metric = lie[0].mutable_header()->add_metrics();
    metric->set_name(name);
    metric->set_value(value);
    expect(lie, grpc::StatusCode::INVALID_ARGUMENT, std::string("metric ") + name);
  }
  // A registration may not claim more than the federation allows.
  grpc::Status huge = RegisterSite(*site_c, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << huge.error_message();
  EXPECT_THAT(huge.error_message(), HasSubstr("max_samples_per_site"));
  // The honest upload goes in, once; a replay is refused.
  ASSERT_TRUE(Upload(*site_b, UploadOf(task, good, round)).ok());
  grpc::Status replay = Upload(*site_b, UploadOf(task, good, round));
  EXPECT_FALSE(replay.ok());
  EXPECT_THAT(replay.error_message(), HasSubstr("no open task"));
  // A failure reason cannot forge a log line.
  v1::UploadMessage forged = ResultHeaderFor(task, round);
  forged.mutable_header()->set_failure_reason("oops\nFORGED round 999/1000: 9 sites\x1b[2J");
  EXPECT_TRUE(Upload(*site_b, {forged}).ok());

  ASSERT_TRUE(coordinator_->WaitFor("round " + std::to_string(round) + "/1000: 2 sites")) << coordinator_->output();
  ASSERT_TRUE(coordinator_->WaitFor("FORGED")) << coordinator_->output();
  EXPECT_THAT(coordinator_->output(), HasSubstr("oops\\nFORGED round 999/1000: 9 sites\\x1b[2J"));
  EXPECT_THAT(coordinator_->output(), Not(HasSubstr("\nFORGED")));
  EXPECT_THAT(coordinator_->output(), Not(HasSubstr("\x1b")));
}

// The same coordinator with secure aggregation on (the default), in cohorts
// of three.
class SecureRefusalTest : public RefusalTest {
 protected:
  std::string AggregationConfig() const override {
    return "clients_per_round = 3\nmin_clients = 3\n";
  }
};

TEST_F(SecureRefusalTest, APlainUpdateIsRefusedInASecureRound) {
  Process site_c({SAMVERKA_BIN, "client", "--config",
                  WriteClientConfig(dir_, "site-c", target_, "hospital-c.csv").string()});
  // The test plays site-b, the third member of the cohort.
  auto site_b = Site("site-b");
  ASSERT_TRUE(RegisterSite(*site_b).ok());
  const v1::Task task = PollForTask(*site_b);
  ASSERT_FALSE(task.task_id().empty()) << coordinator_->output();
  ASSERT_TRUE(task.has_secure_aggregation());
  EXPECT_FALSE(task.secure_aggregation().round_config().empty());

  const std::string model = DownloadModel(*site_b, task.model_digest());
  absl::StatusOr<ModelParameters> update = DecodeParameters(model);
  ASSERT_TRUE(update.ok());
  for (float& v : update->values) v = 0.01f;
  // A well-formed plain update: the coordinator never takes it in a secure
  // round, so no single site's update reaches the aggregate.
  grpc::Status plain = Upload(*site_b, UploadOf(task, EncodeParameters(*update), task.round()));
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << plain.error_message();
  EXPECT_THAT(plain.error_message(), HasSubstr("aggregates securely; a plain update is refused"));
  // Nor can it speak in the secure round for a stage that is not open.
  grpc::ClientContext context;
  v1::SecAggSendRequest send;
  send.set_task_id(task.task_id());
  send.set_round(task.round());
  send.set_stage(v1::SECAGG_STAGE_UNMASK);
  send.set_payload("not a message");
  v1::SecAggSendResponse sent;
  grpc::Status garbage = site_b->SecAggSend(&context, send, &sent);
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << garbage.error_message();
}

}  // namespace
}  // namespace samverka
