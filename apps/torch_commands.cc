// `samverka client`, `samverka export` and the internal `model` command that
// the coordinator runs as a child: the commands that need LibTorch, built
// into samverka-torch (the `samverka` front end executes it for them).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "client/daemon.h"
#include "client/datasets/registry.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/server.h"
#include "coordinator/state_store.h"
#include "fmt/format.h"
#include "models/model.h"

namespace samverka::apps {
namespace {

void AddClientCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand("client", kClientSummary);
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
    if (!status.ok()) Fail(status.message());
    if (status.code() == absl::StatusCode::kFailedPrecondition) SetExitCode(kExitNeedsOperator);
  });
}

void AddExportCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("export", kExportSummary);
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

// Flags of `model init` and `model evaluate`.
struct ModelFlags {
  models::ModelSpec spec;
  uint64_t seed = 0;
  std::string dataset;
};

void AddModelFlags(CLI::App* cmd, ModelFlags& f) {
  cmd->add_option("--model", f.spec.name_or_path, "built-in name or TorchScript file")->required();
  cmd->add_option("--input-shape", f.spec.input_shape, "shape of one sample, e.g. 1,28,28")
      ->required()
      ->delimiter(',');
  cmd->add_option("--num-classes", f.spec.num_classes, "number of classes")->required();
  cmd->add_option("--seed", f.seed, "seed of the built-in model's initialisation");
}

// Writes all of `data` to stdout (fd 1, unbuffered); false on error.
bool WriteStdout(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(STDOUT_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::StatusOr<std::string> ReadStdin() {
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return out;
    } else if (errno != EINTR) {
      return absl::InternalError(fmt::format("reading stdin: {}", std::strerror(errno)));
    }
  }
}

// `model evaluate`: test_loss, test_accuracy (and test_auc) of the SVTB
// parameters on stdin over the whole data set (both parts of the loader's
// split are the test set).
absl::StatusOr<nlohmann::json> EvaluateFromStdin(const ModelFlags& f) {
  SV_ASSIGN_OR_RETURN(std::string encoded, ReadStdin());
  SV_ASSIGN_OR_RETURN(ModelParameters parameters, DecodeParameters(encoded));
  encoded.clear();
  SV_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> model, models::CreateModel(f.spec, f.seed));
  if (parameters.layout != model->layout()) {
    return absl::InvalidArgumentError(
        fmt::format("the parameters on stdin do not fit model '{}'", f.spec.name_or_path));
  }
  SV_RETURN_IF_ERROR(model->SetParameters(parameters.values));
  client::DatasetOptions data;
  data.spec = f.dataset;
  data.seed = f.seed;
  SV_ASSIGN_OR_RETURN(DatasetSplit split, client::LoadDataset(data));
  Dataset test = std::move(split.train);
  test.features.insert(test.features.end(), split.test.features.begin(), split.test.features.end());
  test.labels.insert(test.labels.end(), split.test.labels.begin(), split.test.labels.end());
  SV_ASSIGN_OR_RETURN(models::EvalStats stats, model->Evaluate(test, {}));
  nlohmann::json out = {{"test_loss", stats.loss()}, {"test_accuracy", stats.accuracy()}};
  if (std::optional<double> auc = stats.auc()) out["test_auc"] = *auc;
  return out;
}

void AddModelCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* model = app.add_subcommand(
      "model", "Internal: the coordinator's model work, run as its child process");
  model->group("");  // not listed in --help
  model->require_subcommand(1);
  auto flags = std::make_shared<ModelFlags>();
  CLI::App* init = model->add_subcommand("init", "Write the model's initial parameters (SVTB) to stdout");
  AddModelFlags(init, *flags);
  init->callback([flags, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<std::unique_ptr<models::Model>> built = models::CreateModel(flags->spec, flags->seed);
    if (!built.ok()) return Fail(built.status().message());
    if (!WriteStdout(EncodeParameters((*built)->GetParameters()))) {
      return Fail(fmt::format("writing the parameters to stdout: {}", std::strerror(errno)));
    }
  });
  CLI::App* save = model->add_subcommand(
      "save", "Write the parameters (SVTB) on stdin as a TorchScript file");
  auto out = std::make_shared<std::string>();
  AddModelFlags(save, *flags);
  save->add_option("--out", *out, "TorchScript file to write")->required();
  save->callback([flags, out, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<std::string> encoded = ReadStdin();
    if (!encoded.ok()) return Fail(encoded.status().message());
    absl::StatusOr<ModelParameters> parameters = DecodeParameters(*encoded);
    if (!parameters.ok()) return Fail(parameters.status().message());
    absl::StatusOr<std::unique_ptr<models::Model>> built = models::CreateModel(flags->spec, flags->seed);
    if (!built.ok()) return Fail(built.status().message());
    if (parameters->layout != (*built)->layout()) {
      return Fail(fmt::format("the parameters on stdin do not fit model '{}'", flags->spec.name_or_path));
    }
    if (absl::Status s = (*built)->SetParameters(parameters->values); !s.ok()) return Fail(s.message());
    if (absl::Status s = (*built)->SaveTorchScript(*out); !s.ok()) return Fail(s.message());
  });
  CLI::App* evaluate = model->add_subcommand(
      "evaluate", "Evaluate the parameters (SVTB) on stdin on a test set; JSON metrics on stdout");
  AddModelFlags(evaluate, *flags);
  evaluate->add_option("--dataset", flags->dataset, "csv:PATH:LABEL or an IDX data set")->required();
  evaluate->callback([flags, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::StatusOr<nlohmann::json> metrics = EvaluateFromStdin(*flags);
    if (!metrics.ok()) return Fail(metrics.status().message());
    if (!WriteStdout(metrics->dump() + "\n")) {
      return Fail(fmt::format("writing the metrics to stdout: {}", std::strerror(errno)));
    }
  });
}

}  // namespace

void AddTorchFederationCommands(CLI::App& app, const std::string* log_level) {
  AddClientCommand(app, log_level);
  AddExportCommand(app);
  AddModelCommand(app, log_level);
}

}  // namespace samverka::apps
