// `samverka simulate`: a federation of virtual clients in this process.
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "apps/commands.h"
#include "common/config.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "simulation/simulation.h"

namespace samverka::apps {
namespace {

// Flags override the config file: each flag writes a scratch variable, and
// only flags the user gave are copied into the options after the file.
struct Overrides {
  std::vector<std::function<void()>> apply;

  template <typename T>
  void Add(CLI::App* cmd, const std::string& flag, T* target, const std::string& help) {
    auto scratch = std::make_shared<T>(*target);
    CLI::Option* option = cmd->add_option(flag, *scratch, help);
    option->default_str(fmt::format("{}", *target));
    apply.push_back([option, scratch, target] {
      if (option->count() > 0) *target = *scratch;
    });
  }
};

// Classification rounds print accuracy and AUC as always; other tasks their
// summary metrics (per-label AUCs stay in metrics.jsonl).
std::string TaskMetricsText(const simulation::RoundReport& r) {
  if (r.test_metrics.contains("accuracy")) {
    std::string text = fmt::format("  test_acc {:.4f}", r.test_accuracy);
    if (r.test_auc >= 0) text += fmt::format("  auc {:.4f}", r.test_auc);
    return text;
  }
  std::string text;
  for (const char* name : {"mse", "rmse", "mae", "r2", "c_index", "micro_f1", "macro_f1",
                           "mean_auc"}) {
    auto it = r.test_metrics.find(name);
    if (it != r.test_metrics.end()) text += fmt::format("  {} {:.4f}", name, it->second);
  }
  return text;
}

void PrintRound(const simulation::RoundReport& r) {
  std::string dp = r.epsilon >= 0 ? fmt::format("  epsilon {:.3f}", r.epsilon) : "";
  std::printf("round %3lld/%d  clients %3d  train_loss %.4f  test_loss %.4f%s%s  %.1fs%s\n",
              static_cast<long long>(r.round), r.rounds, r.clients, r.train_loss, r.test_loss,
              TaskMetricsText(r).c_str(), dp.c_str(), r.seconds,
              r.succeeded ? "" : "  (round failed)");
  std::fflush(stdout);
}

}  // namespace

void AddSimulateCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand("simulate", kSimulateSummary);
  auto options = std::make_shared<simulation::SimulationOptions>();
  auto overrides = std::make_shared<Overrides>();
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "TOML file with the same keys as the flags (flags win)");
  simulation::SimulationOptions& o = *options;
  Overrides& f = *overrides;
  f.Add(cmd, "--dataset", &o.dataset,
        "fashion-mnist | mnist | csv:PATH:LABEL_COLUMN | csv:PATH:COL,COL,... (targets; "
        "survival: time,event)");
  f.Add(cmd, "--task", &o.task, "classification | regression | survival | multilabel (docs/tasks.md)");
  f.Add(cmd, "--huber-delta", &o.huber_delta,
        "regression: 0 = mean squared error, > 0 = Huber loss with this delta (in standard deviations)");
  f.Add(cmd, "--class-weights", &o.class_weights,
        "classification: training loss weight per class, e.g. 1,4 (empty: all 1)");
  f.Add(cmd, "--data-dir", &o.data_dir, "directory of the IDX files (default: Debian's dataset package)");
  f.Add(cmd, "--test-fraction", &o.test_fraction, "CSV data: share of rows held out for testing");
  f.Add(cmd, "--model", &o.model, "cnn | mlp | logreg | FILE.pt (TorchScript)");
  f.Add(cmd, "--clients", &o.clients, "number of virtual clients");
  f.Add(cmd, "--clients-per-round", &o.clients_per_round, "clients selected each round (0: use --fraction)");
  f.Add(cmd, "--fraction", &o.fraction, "fraction of clients selected each round");
  f.Add(cmd, "--rounds", &o.rounds, "training rounds");
  f.Add(cmd, "--partition", &o.partition, "iid | dirichlet:ALPHA | shards:K");
  f.Add(cmd, "--local-epochs", &o.train.local_epochs, "local epochs per round");
  f.Add(cmd, "--batch-size", &o.train.batch_size, "local mini-batch size");
  f.Add(cmd, "--lr", &o.train.learning_rate, "local SGD learning rate");
  f.Add(cmd, "--momentum", &o.train.momentum, "local SGD momentum");
  f.Add(cmd, "--weight-decay", &o.train.weight_decay, "local SGD weight decay");
  f.Add(cmd, "--seed", &o.seed, "seed for data split, partition, initialisation and sampling");
  f.Add(cmd, "--out", &o.out, "output directory (metrics.jsonl, metrics.csv, model.pt, config.toml)");
  f.Add(cmd, "--workers", &o.workers, "worker threads (0: one per core; 1: bit-reproducible)");
  auto secure = std::make_shared<std::string>();
  CLI::Option* secure_option =
      cmd->add_option("--secure-aggregation", *secure,
                      "SecAgg+ among each round's clients, the engine sees only sums: true or "
                      "false (on and off also accepted; default true)")
          ->check(CLI::IsMember({"true", "false", "on", "off"}));
  f.Add(cmd, "--secagg-clip-range", &o.secagg_clip_range, "secure aggregation: clip update values to [-c, c]");
  // Strategy and attacks.
  f.Add(cmd, "--strategy", &o.strategy.name,
        "fedavg | fedavgm | fedprox | fedadam | fedyogi | fedadagrad | median | trimmed-mean | krum");
  auto server_lr = std::make_shared<double>(0);
  CLI::Option* server_lr_option = cmd->add_option(
      "--server-learning-rate", *server_lr,
      "server learning rate eta (default 0.01 for fedadam/fedyogi/fedadagrad, else 1)");
  f.Add(cmd, "--server-momentum", &o.strategy.server_momentum, "fedavgm: server momentum in [0, 1)");
  f.Add(cmd, "--beta1", &o.strategy.beta1, "fedadam/fedyogi/fedadagrad: first-moment decay");
  f.Add(cmd, "--beta2", &o.strategy.beta2, "fedadam/fedyogi: second-moment decay");
  f.Add(cmd, "--tau", &o.strategy.tau, "fedadam/fedyogi/fedadagrad: adaptivity tau > 0");
  f.Add(cmd, "--trim-fraction", &o.strategy.trim_fraction,
        "trimmed-mean: share trimmed at each end, in [0, 0.5)");
  f.Add(cmd, "--krum-byzantine", &o.strategy.krum_byzantine, "krum: Byzantine clients tolerated (f)");
  f.Add(cmd, "--krum-selected", &o.strategy.krum_selected,
        "krum: updates averaged (m; 0: n - f; 1: classic Krum)");
  f.Add(cmd, "--proximal-mu", &o.train.proximal_mu, "FedProx proximal term mu in local training");
  f.Add(cmd, "--malicious-fraction", &o.malicious_fraction, "share of malicious clients, in [0, 1]");
  f.Add(cmd, "--attack", &o.attack, "what malicious clients do: sign-flip | scale:S | label-flip");
  // Differential privacy (docs/privacy.md).
  f.Add(cmd, "--dp", &o.dp, "differential privacy: off | central | distributed (needs secure aggregation)");
  f.Add(cmd, "--dp-noise-multiplier", &o.dp_noise_multiplier, "DP: noise stddev / clip norm (pick with samverka privacy)");
  f.Add(cmd, "--dp-clip-norm", &o.dp_clip_norm, "DP: L2 bound of each client's update (initial bound if adaptive)");
  f.Add(cmd, "--dp-adaptive-clip", &o.dp_adaptive_clip, "DP: adapt the clip norm to a quantile of update norms (true/false)");
  f.Add(cmd, "--dp-target-quantile", &o.dp_target_quantile, "DP, adaptive: share of updates within the clip norm");
  f.Add(cmd, "--dp-clip-learning-rate", &o.dp_clip_learning_rate, "DP, adaptive: step of the geometric clip update");
  f.Add(cmd, "--dp-count-noise", &o.dp_count_noise, "DP, adaptive: noise on the clipped count (0: cohort / 20)");
  f.Add(cmd, "--dp-delta", &o.dp_delta, "DP: delta of the reported epsilon");
  CLI::Option* show = cmd->add_flag("--show-partition", options->show_partition,
                                    "print each client's label counts");

  cmd->callback([options, overrides, config_path, show, log_level, secure, secure_option,
                 server_lr, server_lr_option] {
    const bool show_partition = show->count() > 0;
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    if (!config_path->empty()) {
      absl::StatusOr<ConfigFile> file = ConfigFile::Load(*config_path);
      if (!file.ok()) return Fail(std::string(file.status().message()));
      if (absl::Status s = simulation::ApplyConfig(*file, options.get()); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
    for (auto& apply : overrides->apply) apply();
    if (show_partition) options->show_partition = true;
    if (secure_option->count() > 0) options->secure_aggregation = *secure == "on" || *secure == "true";
    if (server_lr_option->count() > 0) options->strategy.server_learning_rate = *server_lr;
    absl::StatusOr<simulation::RoundReport> last =
        simulation::RunSimulation(*options, PrintRound);
    if (!last.ok()) return Fail(std::string(last.status().message()));
    const std::string headline = simulation::HeadlineMetric(options->task);
    auto it = last->test_metrics.find(headline);
    std::printf("done: %d rounds, final test %s %s; results in %s\n", options->rounds,
                headline.c_str(),
                it != last->test_metrics.end() ? fmt::format("{:.4f}", it->second).c_str() : "n/a",
                options->out.c_str());
  });
}

}  // namespace samverka::apps
