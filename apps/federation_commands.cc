// `samverka coordinator`, `samverka client`, `samverka status` and
// `samverka export`: a real federation over mutual TLS.
#include <csignal>
#include <cstdio>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/notification.h"
#include "apps/commands.h"
#include "client/daemon.h"
#include "client/datasets/registry.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/wire.h"
#include "coordinator/server.h"
#include "coordinator/state_store.h"
#include "fmt/format.h"
#include "models/model.h"
#include "proto/federation.grpc.pb.h"

namespace samverka::apps {
namespace {

// SIGTERM / SIGINT end a daemon cleanly: the handler only flags; a watcher
// thread calls the stop function.
volatile std::sig_atomic_t signalled = 0;
extern "C" void OnSignal(int) { signalled = 1; }

// Runs `run` while a watcher thread turns a signal into `stop()`.
template <typename Run, typename Stop>
absl::Status RunUntilSignal(Run run, Stop stop) {
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  absl::Notification finished;
  std::thread watcher([&] {
    while (!finished.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
      if (signalled) {
        Logger("main")->info("signal received; stopping");
        stop();
        return;
      }
    }
  });
  absl::Status status = run();
  finished.Notify();
  watcher.join();
  return status;
}

void AddCoordinatorCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand("coordinator", "Run the federation's coordinator service (mutual TLS)");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "coordinator.toml")->required();
  cmd->callback([config_path, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<coordinator::CoordinatorConfig> config = coordinator::LoadCoordinatorConfig(*config_path);
    if (!config.ok()) return Fail(config.status().message());
    if (!config->test_dataset.empty()) {
      client::DatasetOptions data;
      data.spec = config->test_dataset;
      data.seed = config->coordinator.seed;
      absl::StatusOr<DatasetSplit> split = client::LoadDataset(data);
      if (!split.ok()) return Fail(split.status().message());
      // The whole file is the test set: both parts of the loader's split.
      Dataset test = std::move(split->train);
      test.features.insert(test.features.end(), split->test.features.begin(), split->test.features.end());
      test.labels.insert(test.labels.end(), split->test.labels.begin(), split->test.labels.end());
      config->coordinator.test_set = std::make_shared<const Dataset>(std::move(test));
    }
    absl::StatusOr<std::unique_ptr<coordinator::CoordinatorServer>> server =
        coordinator::CoordinatorServer::Start(std::move(*config));
    if (!server.ok()) return Fail(server.status().message());
    absl::Status status = RunUntilSignal([&] { return (*server)->Run(); }, [&] { (*server)->Stop(); });
    if (!status.ok()) return Fail(status.message());
  });
}

void AddClientCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand("client", "Run a site's client daemon (dials out to the coordinator)");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "client.toml")->required();
  cmd->callback([config_path, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<client::ClientDaemonOptions> options = client::LoadClientConfig(*config_path);
    if (!options.ok()) return Fail(options.status().message());
    models::SetTorchThreads(1);
    absl::StatusOr<std::unique_ptr<client::ClientDaemon>> daemon =
        client::ClientDaemon::Create(std::move(*options));
    if (!daemon.ok()) return Fail(daemon.status().message());
    absl::Status status = RunUntilSignal([&] { return (*daemon)->Run(); }, [&] { (*daemon)->Stop(); });
    if (!status.ok()) return Fail(status.message());
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
        std::printf("  round %-5lld %-20s %s\n", static_cast<long long>(r.round()), r.site().c_str(),
                    r.reason().c_str());
      }
    }
  });
}

void AddExportCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("export", "Write a round's global model as TorchScript");
  auto config_path = std::make_shared<std::string>();
  auto round = std::make_shared<int64_t>(-1);
  auto out = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "the coordinator's coordinator.toml")->required();
  cmd->add_option("--round", *round, "round to export (default: the latest)");
  cmd->add_option("--out", *out, "output file (.pt)")->required();
  cmd->callback([config_path, round, out] {
    absl::StatusOr<coordinator::CoordinatorConfig> config = coordinator::LoadCoordinatorConfig(*config_path);
    if (!config.ok()) return Fail(config.status().message());
    const coordinator::CoordinatorOptions& o = config->coordinator;
    // Read-only use of the state dir; fails clearly if a coordinator holds it.
    absl::StatusOr<std::unique_ptr<coordinator::StateStore>> store =
        coordinator::StateStore::Open(o.state_dir, o.federation_id);
    if (!store.ok()) return Fail(store.status().message());
    absl::StatusOr<std::optional<coordinator::Checkpoint>> checkpoint =
        *round < 0 ? (*store)->LoadLatest() : (*store)->LoadCheckpoint(*round);
    if (!checkpoint.ok()) return Fail(checkpoint.status().message());
    if (!checkpoint->has_value()) return Fail(fmt::format("no checkpoint for round {}", *round));
    absl::StatusOr<ModelParameters> parameters = DecodeParameters((*checkpoint)->encoded_model);
    if (!parameters.ok()) return Fail(parameters.status().message());
    absl::StatusOr<std::unique_ptr<models::Model>> model =
        models::CreateModel({o.model, o.input_shape, o.num_classes}, o.seed);
    if (!model.ok()) return Fail(model.status().message());
    if (absl::Status s = (*model)->SetParameters(parameters->values); !s.ok()) return Fail(s.message());
    if (absl::Status s = (*model)->SaveTorchScript(*out); !s.ok()) return Fail(s.message());
    std::printf("exported round %lld (model %s) to %s\n", static_cast<long long>((*checkpoint)->round),
                (*checkpoint)->model_digest.substr(0, 16).c_str(), out->c_str());
  });
}

}  // namespace

void AddFederationCommands(CLI::App& app, const std::string* log_level) {
  AddCoordinatorCommand(app, log_level);
  AddClientCommand(app, log_level);
  AddStatusCommand(app);
  AddExportCommand(app);
}

}  // namespace samverka::apps
