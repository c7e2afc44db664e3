// `samverka coordinator` and `samverka status`: the operator's side of a
// real federation over mutual TLS. No LibTorch here: the coordinator runs
// `samverka-torch model` children for its model work (coordinator/model_helper.h).
#include <cstdio>

#include <grpcpp/grpcpp.h>

#include "apps/commands.h"
#include "common/logging.h"
#include "coordinator/server.h"
#include "fmt/format.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"

namespace samverka::apps {
namespace {

void AddCoordinatorCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand("coordinator", "Run the federation's coordinator service (mutual TLS)");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "coordinator.toml")->required();
  cmd->callback([config_path, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<coordinator::CoordinatorConfig> config = coordinator::LoadCoordinatorConfig(*config_path);
    if (!config.ok()) return Fail(config.status().message());
    absl::StatusOr<std::unique_ptr<coordinator::CoordinatorServer>> server =
        coordinator::CoordinatorServer::Start(std::move(*config));
    if (!server.ok()) return Fail(server.status().message());
    absl::Status status = RunUntilSignal([&] { return (*server)->Run(); }, [&] { (*server)->Stop(); });
    if (!status.ok()) Fail(status.message());
    // Finished without one successful round: a restart would change nothing.
    if (status.code() == absl::StatusCode::kFailedPrecondition) SetExitCode(kExitNeedsOperator);
  });
}

void AddStatusCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("status", "Show rounds, sites online and the latest metrics (operator certificate)");
  auto target = std::make_shared<std::string>();
  auto tls = std::make_shared<security::TlsFiles>();
  auto server_name = std::make_shared<std::string>();
  cmd->add_option("--coordinator", *target, "host:port")->required();
  cmd->add_option("--ca", tls->ca_certificate, "federation CA certificate")->required();
  cmd->add_option("--cert", tls->certificate, "operator certificate")->required();
  cmd->add_option("--key", tls->private_key, "operator private key")->required();
  cmd->add_option("--server-name", *server_name, "name in the coordinator's certificate, if not the host");
  cmd->callback([target, tls, server_name] {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        security::MakeChannelCredentials(*tls);
    if (!credentials.ok()) return Fail(credentials.status().message());
    grpc::ChannelArguments args;
    if (!server_name->empty()) args.SetSslTargetNameOverride(*server_name);
    auto stub = v1::Operator::NewStub(grpc::CreateCustomChannel(*target, *credentials, args));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
    v1::StatusResponse response;
    grpc::Status status = stub->Status(&context, v1::StatusRequest(), &response);
    if (!status.ok()) return Fail(fmt::format("status call failed: {}", status.error_message()));
    std::printf("federation %s: next round %lld\n", response.federation_id().c_str(),
                static_cast<long long>(response.current_round()));
    std::printf("sites online (%d):", response.clients_online_size());
    for (const std::string& c : response.clients_online()) std::printf(" %s", c.c_str());
    std::printf("\n%-6s %-10s %-6s %-17s %s\n", "round", "state", "sites", "model", "metrics");
    for (const v1::RoundSummary& r : response.rounds()) {
      std::string metrics;
      for (const v1::Metric& m : r.metrics()) metrics += fmt::format("{}={:.4f} ", m.name(), m.value());
      std::printf("%-6lld %-10s %-6d %-17s %s\n", static_cast<long long>(r.round()),
                  r.state().substr(0, 10).c_str(), r.clients(), r.model_digest().substr(0, 16).c_str(),
                  metrics.c_str());
    }
    if (response.refusals_size() > 0) {
      std::printf("tasks refused or not run by sites (newest last):\n");
      for (const v1::TaskRefusal& r : response.refusals()) {
        // Site-supplied reasons arrive escaped: the coordinator escapes them
        // once, where it receives them (service.cc, PeerText).
        std::printf("  round %-5lld %-20s %s\n", static_cast<long long>(r.round()), r.site().c_str(),
                    r.reason().c_str());
      }
    }
  });
}

}  // namespace

void AddCoordinatorCommands(CLI::App& app, const std::string* log_level) {
  AddCoordinatorCommand(app, log_level);
  AddStatusCommand(app);
}

}  // namespace samverka::apps
