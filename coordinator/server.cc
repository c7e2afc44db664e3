#include "coordinator/server.h"

#include <malloc.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/malloc_tuning.h"
#include "common/status_macros.h"
#include "common/wire.h"
#include "coordinator/studies/study_options.h"

namespace samverka::coordinator {
namespace {

namespace fs = std::filesystem;

}  // namespace

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  SV_ASSIGN_OR_RETURN(ConfigFile file, ConfigFile::Load(path));
  auto Resolve = [&](const std::string& base_path, const std::string& p) {
    return ResolveConfigPath(base_path, p);
  };
  const std::string& base = path;
  CoordinatorConfig config;
  CoordinatorOptions& o = config.coordinator;
  SV_RETURN_IF_ERROR(file.Get("federation_id", &o.federation_id));
  SV_RETURN_IF_ERROR(file.Get("listen", &config.listen));
  SV_RETURN_IF_ERROR(file.Get("state_dir", &o.state_dir));
  SV_RETURN_IF_ERROR(ReadPositiveSeconds(file, "heartbeat_seconds", &o.heartbeat_interval));
  SV_RETURN_IF_ERROR(ReadPositiveSeconds(file, "max_poll_seconds", &o.max_poll));
  SV_RETURN_IF_ERROR(file.Get("max_concurrent_uploads", &o.max_concurrent_uploads));
  SV_RETURN_IF_ERROR(file.Get("max_concurrent_downloads", &o.max_concurrent_downloads));
  SV_RETURN_IF_ERROR(file.Get("max_samples_per_site", &o.max_samples_per_site));
  SV_RETURN_IF_ERROR(ReadPositiveSeconds(file, "transfer_stall_seconds", &o.transfer_stall));
  SV_RETURN_IF_ERROR(file.Get("bdp_probe", &config.bdp_probe));
  SV_RETURN_IF_ERROR(file.Get("model_helper", &o.model_helper));
  SV_RETURN_IF_ERROR(file.Get("allowed_clients", &config.allowed_clients));
  SV_RETURN_IF_ERROR(file.Get("tls.ca_certificate", &config.tls.ca_certificate));
  SV_RETURN_IF_ERROR(file.Get("tls.certificate", &config.tls.certificate));
  SV_RETURN_IF_ERROR(file.Get("tls.private_key", &config.tls.private_key));
  SV_RETURN_IF_ERROR(file.Get("tls.crl", &config.crl));
  SV_RETURN_IF_ERROR(file.Get("max_active_studies", &o.max_active_studies));
  // A coordinator.toml that names no model is a standing federation's: its
  // studies are submitted. One that does is the single-run form.
  o.standing = !file.Has("model") && !file.Has("input_shape") && !file.Has("rounds") &&
               !file.Has("num_classes");
  if (!o.standing) SV_RETURN_IF_ERROR(ApplyStudyKeys(file, path, &o));
  if (absl::Status unknown = file.CheckNoUnknownKeys(); !unknown.ok()) {
    if (!o.standing) return unknown;
    return absl::InvalidArgumentError(absl::StrCat(
        unknown.message(), " (a standing federation's coordinator.toml holds only the "
        "federation's keys; a study's belong in its study.toml, see docs/studies.md)"));
  }
  o.state_dir = Resolve(base, o.state_dir);
  config.tls.ca_certificate = Resolve(base, config.tls.ca_certificate);
  config.tls.certificate = Resolve(base, config.tls.certificate);
  config.tls.private_key = Resolve(base, config.tls.private_key);
  config.crl = Resolve(base, config.crl);
  if (!o.model_helper.empty()) o.model_helper = Resolve(base, o.model_helper);
  if (config.crl.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tls.crl must name the federation's revocation list (samverka pki writes "
              "PKI/ca/crl.pem); without it a revoked site could still join"));
  }
  if (o.dp_population == 0) o.dp_population = static_cast<int64_t>(config.allowed_clients.size());
  SV_RETURN_IF_ERROR(config.tls.Validate());
  SV_ASSIGN_OR_RETURN(o.ca_pem, security::ReadFileToString(config.tls.ca_certificate));
  if (absl::Status valid = o.standing ? o.ValidateFederation() : o.Validate(); !valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(path, ": ", valid.message()));
  }
  return config;
}

namespace {

// glibc's malloc, left to itself, keeps what a round's transfers freed: it
// raises its mmap threshold to the largest block freed so far (up to 32
// MiB), so later megabyte-sized message buffers come from per-thread arenas
// that are seldom returned to the system, and each of gRPC's threads may
// get its own arena. Measured with bench/coordinator_scale (50 sites, 38
// MiB model): a 238 MiB peak with these settings, 319 MiB with glibc's
// defaults (docs/performance.md). A fixed
// threshold sends every block of 256 KiB or more (model copies, 1 MiB
// chunks) to mmap, returned on free; fewer arenas bound the rest. A user's
// own settings in the environment win.
void TuneMallocForServing() {
  if (MallocTunedByEnvironment()) return;
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  mallopt(M_ARENA_MAX, 2);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(CoordinatorConfig config) {
  auto log = Logger("coordinator");
  TuneMallocForServing();
  InstallGrpcLogHandler();
  auto server = std::unique_ptr<CoordinatorServer>(new CoordinatorServer());
  SV_RETURN_IF_ERROR(config.tls.CheckIdentity());
  SV_ASSIGN_OR_RETURN(std::string ca_pem, security::ReadFileToString(config.tls.ca_certificate));
  security::PeerAuthorizer::Options policy;
  policy.ca_certificate_pem = ca_pem;
  policy.crl_path = config.crl;
  policy.allowed_clients = {config.allowed_clients.begin(), config.allowed_clients.end()};
  SV_ASSIGN_OR_RETURN(server->authorizer_, security::PeerAuthorizer::Create(std::move(policy)));
  SV_ASSIGN_OR_RETURN(server->coordinator_, Coordinator::Create(config.coordinator));

  security::PeerAuthorizer* authorizer = server->authorizer_.get();
  Coordinator* coordinator = server->coordinator_.get();
  SV_ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::ServerCredentials> credentials,
      security::MakeServerCredentials(config.tls, [authorizer, coordinator](std::string_view pem) {
        absl::StatusOr<security::PeerIdentity> peer = authorizer->Authorize(
            pem, {security::Role::kClient, security::Role::kOperator});
        if (!peer.ok()) {
          if (coordinator->AuditRefusal("tls-handshake", std::string(peer.status().message()))) {
            Logger("tls")->warn("refused a TLS connection: {}", peer.status().message());
          }
        }
        return peer.status();
      }));
  server->federation_ = std::make_unique<FederationService>(coordinator, authorizer);
  server->operator_ = std::make_unique<OperatorService>(coordinator, authorizer);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, credentials, &server->port_);
  builder.RegisterService(server->federation_.get());
  builder.RegisterService(server->operator_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxChunkBytes + (1 << 20)));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Without BDP probing, receive windows stay at gRPC's default, so uploads
  // waiting for an upload slot (service.cc) park little memory; with it,
  // throughput over long-distance links is better (see bdp_probe).
  if (!config.bdp_probe) builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
  }
  const fs::path port_file = fs::path(config.coordinator.state_dir) / "coordinator.port";
  std::ofstream(port_file, std::ios::trunc) << server->port_ << "\n";
  log->info("federation '{}' listening on {} (port {}) with mutual TLS", config.coordinator.federation_id,
            config.listen, server->port_);
  return server;
}

CoordinatorServer::~CoordinatorServer() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
}

absl::Status CoordinatorServer::Run() {
  absl::Status status = coordinator_->Run();
  // Let every site hear "federation done" before the server goes.
  const CoordinatorOptions& o = coordinator_->options();
  if (status.ok() && !o.standing) {
    coordinator_->WaitUntilSitesToldDone(2 * o.max_poll + 3 * o.heartbeat_interval);
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  // A single-run federation that trained nothing is a failure for whoever
  // runs it (a standing one records that per study).
  if (status.ok() && !o.standing) status = coordinator_->TrainingOutcome();
  return status;
}

void CoordinatorServer::Stop() { coordinator_->Stop(); }

}  // namespace samverka::coordinator
