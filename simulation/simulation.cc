#include "simulation/simulation.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "common/codec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "client/datasets/registry.h"
#include "client/task_handler.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "coordinator/round_engine.h"
#include "models/model.h"
#include "security/dp/dp.h"
#include "simulation/internal/parallel.h"
#include "simulation/attack.h"
#include "simulation/virtual_clients.h"
#include "simulation/partition.h"
#include "simulation/secure_aggregation.h"

namespace samverka::simulation {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ClientName(int index, int count) {
  const int width = static_cast<int>(std::to_string(std::max(count - 1, 0)).size());
  std::string number = std::to_string(index);
  return "client-" + std::string(std::max(0, width - static_cast<int>(number.size())), '0') +
         number;
}

// The DP-FedAvg configuration of the simulation's dp_* options.
absl::StatusOr<security::dp::DpConfig> DpConfigOf(const SimulationOptions& o) {
  security::dp::DpConfig c;
  SV_ASSIGN_OR_RETURN(c.mode, security::dp::ParseDpMode(o.dp));
  c.noise_multiplier = o.dp_noise_multiplier;
  c.clip_norm = o.dp_clip_norm;
  c.adaptive_clip = o.dp_adaptive_clip;
  c.target_quantile = o.dp_target_quantile;
  c.clip_learning_rate = o.dp_clip_learning_rate;
  c.count_noise_stddev = o.dp_count_noise;
  c.delta = o.dp_delta;
  return c;
}

// The cohort size the engine selects each round (coordinator/round_engine.cc).
double ExpectedCohort(const SimulationOptions& o) {
  return o.clients_per_round > 0 ? o.clients_per_round
                                 : std::max(1.0, std::ceil(o.fraction * o.clients));
}

// Evaluates `parameters` on the whole test set, split across the workers.
absl::StatusOr<models::EvalStats> EvaluateGlobal(
    const std::vector<float>& parameters, const Dataset& test,
    std::vector<std::unique_ptr<models::Model>>& workers) {
  const int n = static_cast<int>(workers.size());
  const int64_t total = test.num_samples();
  std::vector<absl::StatusOr<models::EvalStats>> parts(n, models::EvalStats{});
  internal::ParallelFor(n, n, [&](int worker, int part) {
    std::vector<int64_t> rows;
    for (int64_t i = total * part / n; i < total * (part + 1) / n; ++i) rows.push_back(i);
    if (rows.empty()) return;
    models::Model& model = *workers[worker];
    if (absl::Status s = model.SetParameters(parameters); !s.ok()) {
      parts[part] = s;
      return;
    }
    parts[part] = model.Evaluate(test, rows);
  });
  models::EvalStats merged;
  for (auto& part : parts) {
    SV_RETURN_IF_ERROR(part.status());
    merged.Merge(*part);
  }
  return merged;
}

// The task's metric names (models::EvalStats::Metrics) after the columns
// every run has: classification adds balanced accuracy and macro-F1 (its
// accuracy, loss and AUC are there already); the others their own.
std::vector<std::string> TaskMetricNames(models::TaskType task,
                                         const std::vector<std::string>& target_names,
                                         int64_t targets) {
  switch (task) {
    case models::TaskType::kClassification: return {"balanced_accuracy", "macro_f1"};
    case models::TaskType::kRegression: return {"mse", "rmse", "mae", "r2"};
    case models::TaskType::kSurvival: return {"c_index"};
    case models::TaskType::kMultilabel: {
      std::vector<std::string> names = {"micro_f1", "macro_f1", "mean_auc"};
      for (int64_t l = 0; l < targets; ++l) {
        names.push_back("auc_" + (l < static_cast<int64_t>(target_names.size())
                                      ? target_names[l] : std::to_string(l)));
      }
      return names;
    }
  }
  return {};
}

std::vector<std::string> MetricColumns(const std::vector<std::string>& task_metrics) {
  std::vector<std::string> columns = {
      "round",         "clients",   "succeeded", "test_accuracy",     "test_loss",
      "test_auc",      "train_loss", "seconds",  "aggregate_seconds", "bytes_up",
      "bytes_down",    "epsilon",   "dp_clip_norm"};
  for (const std::string& name : task_metrics) columns.push_back("test_" + name);
  return columns;
}

std::vector<MetricValue> MetricRow(const RoundReport& r, bool classification,
                                   const std::vector<std::string>& task_metrics) {
  std::vector<MetricValue> row = {
      r.round,
      int64_t{r.clients},
      int64_t{r.succeeded ? 1 : 0},
      classification ? MetricValue(r.test_accuracy) : MetricValue(),
      r.test_loss,
      r.test_auc >= 0 ? MetricValue(r.test_auc) : MetricValue(),
      r.train_loss,
      r.seconds,
      r.aggregate_seconds,
      static_cast<int64_t>(r.bytes_up),
      static_cast<int64_t>(r.bytes_down),
      r.epsilon >= 0 ? MetricValue(r.epsilon) : MetricValue(),
      r.dp_clip_norm >= 0 ? MetricValue(r.dp_clip_norm) : MetricValue()};
  for (const std::string& name : task_metrics) {
    auto it = r.test_metrics.find(name);
    row.push_back(it != r.test_metrics.end() ? MetricValue(it->second) : MetricValue());
  }
  return row;
}

// The task of the options (validated before).
absl::StatusOr<models::TaskOptions> TaskOf(const SimulationOptions& o) {
  models::TaskOptions task;
  SV_ASSIGN_OR_RETURN(task.type, models::ParseTaskType(o.task));
  task.huber_delta = o.huber_delta;
  if (!o.class_weights.empty()) {
    for (absl::string_view part : absl::StrSplit(o.class_weights, ',')) {
      double weight = 0;
      if (!absl::SimpleAtod(part, &weight)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "class_weights = \"", o.class_weights, "\": '", part,
            "' is not a number; give one weight per class, e.g. \"1,4\""));
      }
      task.class_weights.push_back(weight);
    }
  }
  SV_RETURN_IF_ERROR(task.Validate());
  return task;
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// One round under secure aggregation: the clients train and mask their
// updates; the engine receives only the unmasked sum. With DP (`dp` not
// null) every update has weight 1, its within-clip bit rides along as one
// more summed coordinate, the sum is noised (central: here; distributed: by
// each client before masking) and divided by the expected cohort;
// `*within_clip` gets the count (< 0 if the round aborted). Returns the
// seconds spent outside local training (protocol and aggregation).
absl::StatusOr<double> SecureRound(SimulatedSecureAggregation& secure,
                                   const coordinator::RoundPlan& plan,
                                   const ModelParameters& global,
                                   coordinator::RoundEngine& engine,
                                   const VirtualClients& clients,
                                   const std::map<std::string, int>& index_of,
                                   std::vector<std::unique_ptr<models::Model>>& worker_models,
                                   int workers, security::dp::DpFedAvgServer* dp,
                                   bool distributed, double* within_clip) {
  *within_clip = -1;
  std::vector<int> cohort;
  double max_weight = 1;
  for (const std::string& name : plan.cohort) {
    cohort.push_back(index_of.at(name));
    if (dp == nullptr) {
      max_weight = std::max(max_weight, static_cast<double>(clients.num_train_samples(cohort.back())));
    }
  }
  const size_t d = global.values.size();
  DistributedNoise noise;
  if (dp != nullptr && distributed) {
    noise.stddev = dp->noise_stddev() / std::sqrt(static_cast<double>(cohort.size()));
    noise.coordinates = d;
  }
  std::vector<double> train_seconds(workers, 0);
  const Clock::time_point start = Clock::now();
  absl::StatusOr<SecureAggregate> aggregate = secure.RunRound(
      plan.round, plan.task.model_digest, d + (dp != nullptr ? 1 : 0), cohort, max_weight, workers,
      [&](int worker, int i) -> absl::StatusOr<ClientContribution> {
        const Clock::time_point begin = Clock::now();
        SV_ASSIGN_OR_RETURN(TaskOutcome outcome,
                            clients.Run(cohort[i], plan.task, global, *worker_models[worker]));
        SV_ASSIGN_OR_RETURN(ModelParameters update, DecodeParameters(outcome.update));
        train_seconds[worker] += SecondsSince(begin);
        if (dp != nullptr) {
          update.values.push_back(static_cast<float>(outcome.metrics["dp_within_clip"]));
          return ClientContribution{std::move(update.values), 1.0, outcome.metrics["train_loss"]};
        }
        return ClientContribution{std::move(update.values), static_cast<double>(outcome.num_samples),
                                  outcome.metrics["train_loss"]};
      },
      noise);
  if (!aggregate.ok()) {
    Logger("simulation")->warn("round {}: secure aggregation aborted: {}", plan.round,
                               aggregate.status().message());
    for (const std::string& name : plan.cohort) {
      engine.ReportFailure(name, plan.round, "secure aggregation aborted");
    }
    return SecondsSince(start);
  }
  if (aggregate->clipped_values > 0) {
    Logger("simulation")->warn(
        "round {}: {} update values were beyond the clipping range and clipped "
        "(raise secagg_clip_range)", plan.round, aggregate->clipped_values);
  }
  Logger("simulation")->debug("round {}: SecAgg+ with k={} neighbours, threshold t={}", plan.round,
                              aggregate->neighbours, aggregate->threshold);
  double total_weight = aggregate->total_weight;
  if (dp != nullptr) {
    *within_clip = aggregate->weighted_sum.back();
    aggregate->weighted_sum.pop_back();
    if (!distributed) SV_RETURN_IF_ERROR(dp->AddCentralNoise(aggregate->weighted_sum));
    total_weight = dp->expected_clients();
  }
  SV_RETURN_IF_ERROR(engine.SubmitAggregate(plan.round, aggregate->contributors,
                                            aggregate->weighted_sum, total_weight,
                                            aggregate->weighted_train_loss, aggregate->masked_bytes));
  for (const std::string& name : plan.cohort) {
    if (std::find(aggregate->contributors.begin(), aggregate->contributors.end(), name) ==
        aggregate->contributors.end()) {
      engine.ReportFailure(name, plan.round, "dropped out of secure aggregation");
    }
  }
  const double wall = SecondsSince(start);
  double training = 0;
  for (double t : train_seconds) training = std::max(training, t);
  return std::max(0.0, wall - training);
}

// One DP-FedAvg round without secure aggregation: the clients' clipped
// updates are summed with weight 1 each (the engine never sees one), the
// coordinator adds N(0, (z C)^2) per coordinate and divides by the expected
// cohort size (McMahan et al. 2018). Returns the count of clients whose
// update was within the clipping norm.
absl::StatusOr<double> CentralDpRound(const coordinator::RoundPlan& plan,
                                      const ModelParameters& global,
                                      coordinator::RoundEngine& engine,
                                      const VirtualClients& clients,
                                      const std::map<std::string, int>& index_of,
                                      std::vector<std::unique_ptr<models::Model>>& worker_models,
                                      int workers, security::dp::DpFedAvgServer& dp) {
  std::vector<double> sum(global.values.size(), 0.0);
  std::vector<std::string> contributors;
  double loss = 0;
  double within = 0;
  uint64_t bytes_up = 0;
  std::mutex mutex;
  internal::ParallelFor(workers, static_cast<int>(plan.cohort.size()), [&](int worker, int i) {
    const std::string& name = plan.cohort[i];
    absl::StatusOr<TaskOutcome> outcome =
        clients.Run(index_of.at(name), plan.task, global, *worker_models[worker]);
    absl::StatusOr<ModelParameters> update =
        outcome.ok() ? DecodeParameters(outcome->update) : outcome.status();
    if (!update.ok()) {
      engine.ReportFailure(name, plan.round, std::string(update.status().message()));
      return;
    }
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += update->values[k];
    contributors.push_back(name);
    loss += outcome->metrics["train_loss"];
    within += outcome->metrics["dp_within_clip"];
    bytes_up += outcome->update.size();
  });
  if (contributors.empty()) return within;
  SV_RETURN_IF_ERROR(dp.AddCentralNoise(sum));
  SV_RETURN_IF_ERROR(engine.SubmitAggregate(plan.round, contributors, sum, dp.expected_clients(),
                                            loss, bytes_up));
  return within;
}

}  // namespace

absl::Status SimulationOptions::Validate() const {
  auto bad = [](std::string what) { return absl::InvalidArgumentError(std::move(what)); };
  if (clients < 1) return bad(absl::StrCat("clients = ", clients, ": must be >= 1"));
  if (clients_per_round < 0) return bad("clients_per_round must be >= 0");
  if (clients_per_round > clients) {
    return bad(absl::StrCat("clients_per_round = ", clients_per_round,
                            " is larger than clients = ", clients));
  }
  if (clients_per_round == 0 && !(fraction > 0 && fraction <= 1)) {
    return bad(absl::StrCat("fraction = ", fraction,
                            ": must be in (0, 1] when clients_per_round is 0"));
  }
  if (rounds < 1) return bad(absl::StrCat("rounds = ", rounds, ": must be >= 1"));
  if (!(secagg_clip_range > 0) || !std::isfinite(secagg_clip_range)) {
    return bad("secagg_clip_range must be a positive number");
  }
  const int cohort = clients_per_round > 0
                         ? clients_per_round
                         : static_cast<int>(std::ceil(fraction * clients));
  if (secure_aggregation && cohort < 3) {
    return bad(absl::StrCat(
        "secure aggregation needs at least 3 clients per round, got ", cohort,
        " (with two, each learns the other's update from the sum); use more clients per "
        "round or --secure-aggregation off"));
  }
  if (workers < 0) return bad("workers must be >= 0");
  if (out.empty()) return bad("out (the output directory) must not be empty");
  if (!(test_fraction > 0 && test_fraction < 1)) {
    return bad(absl::StrCat("test_fraction = ", test_fraction, ": must be in (0, 1)"));
  }
  SV_RETURN_IF_ERROR(ParsePartitionSpec(partition).status());
  SV_RETURN_IF_ERROR(models::CheckModelName(model));
  SV_RETURN_IF_ERROR(train.Validate());
  // Strategy and attacks.
  SV_RETURN_IF_ERROR(strategy.ValidateFor(cohort, secure_aggregation, train.proximal_mu));
  if (!(malicious_fraction >= 0 && malicious_fraction <= 1)) {
    return bad(absl::StrCat("malicious_fraction = ", malicious_fraction, ": must be in [0, 1]"));
  }
  SV_ASSIGN_OR_RETURN(const AttackSpec attack_spec, ParseAttack(attack));
  SV_ASSIGN_OR_RETURN(const models::TaskOptions task_options, TaskOf(*this));
  if (malicious_fraction > 0 && attack_spec.kind == AttackSpec::Kind::kLabelFlip &&
      task_options.type != models::TaskType::kClassification) {
    return bad(absl::StrCat("attack = \"label-flip\" flips class labels; task ", task,
                            " has none (use sign-flip or scale:S)"));
  }
  // Differential privacy: every dp_* option, before anything runs.
  SV_ASSIGN_OR_RETURN(security::dp::DpConfig dp_config, DpConfigOf(*this));
  if (dp_config.mode == security::dp::DpMode::kOff) return absl::OkStatus();
  if (dp_config.mode == security::dp::DpMode::kDistributed) {
    if (!secure_aggregation) {
      return bad("dp = \"distributed\" needs secure_aggregation = true: the clients' noise "
                 "shares only protect the sum when no one sees a single noised update");
    }
    if (dp_adaptive_clip) {
      return bad("dp_adaptive_clip is not supported with dp = \"distributed\" (the clipped "
                 "count would need noise from the coordinator); use dp = \"central\"");
    }
    // The noised sum must stay inside SecAgg's range: each coordinate of a
    // client lies in [-C, C] of [-c, c], so the sum has n (c - C) of room
    // on each side; ask for 10 standard deviations of the total noise z C.
    const double n = ExpectedCohort(*this);
    const double needed = dp_clip_norm + 10 * dp_noise_multiplier * dp_clip_norm / n;
    if (secagg_clip_range < needed) {
      return bad(absl::StrFormat(
          "secagg_clip_range = %g is too small for dp = \"distributed\" with dp_clip_norm = %g "
          "and dp_noise_multiplier = %g: the noised sum needs secagg_clip_range >= %.3g",
          secagg_clip_range, dp_clip_norm, dp_noise_multiplier, needed));
    }
    // Each client's share, in quantisation levels of the 32-bit ring
    // (security/secagg/encoding.h), must fit the exact sampler (<= 2^26).
    const int bits = std::min(52, 32 - static_cast<int>(std::ceil(std::log2(n))) - 1);
    const double levels = dp_noise_multiplier * dp_clip_norm / std::sqrt(n) *
                          std::ldexp(1.0, bits) / (2 * secagg_clip_range);
    if (levels > std::ldexp(1.0, 26)) {
      return bad(absl::StrFormat(
          "dp = \"distributed\": a client's noise share is %.3g quantisation levels, more "
          "than the discrete Gaussian sampler's 2^26; raise secagg_clip_range or lower "
          "dp_noise_multiplier * dp_clip_norm", levels));
    }
  }
  if (dp_config.mode == security::dp::DpMode::kCentral && secure_aggregation &&
      dp_clip_norm > secagg_clip_range) {
    return bad(absl::StrCat("dp_clip_norm = ", dp_clip_norm, " is larger than secagg_clip_range = ",
                            secagg_clip_range));
  }
  return security::dp::DpFedAvgServer::Create(dp_config, clients, ExpectedCohort(*this)).status();
}

absl::Status ApplyConfig(ConfigFile& file, SimulationOptions* o) {
  int64_t seed = static_cast<int64_t>(o->seed);
  SV_RETURN_IF_ERROR(file.Get("dataset", &o->dataset));
  SV_RETURN_IF_ERROR(file.Get("task", &o->task));
  SV_RETURN_IF_ERROR(file.Get("huber_delta", &o->huber_delta));
  SV_RETURN_IF_ERROR(file.Get("class_weights", &o->class_weights));
  SV_RETURN_IF_ERROR(file.Get("data_dir", &o->data_dir));
  SV_RETURN_IF_ERROR(file.Get("test_fraction", &o->test_fraction));
  SV_RETURN_IF_ERROR(file.Get("model", &o->model));
  SV_RETURN_IF_ERROR(file.Get("clients", &o->clients));
  SV_RETURN_IF_ERROR(file.Get("clients_per_round", &o->clients_per_round));
  SV_RETURN_IF_ERROR(file.Get("fraction", &o->fraction));
  SV_RETURN_IF_ERROR(file.Get("rounds", &o->rounds));
  SV_RETURN_IF_ERROR(file.Get("partition", &o->partition));
  SV_RETURN_IF_ERROR(file.Get("local_epochs", &o->train.local_epochs));
  SV_RETURN_IF_ERROR(file.Get("batch_size", &o->train.batch_size));
  SV_RETURN_IF_ERROR(file.Get("lr", &o->train.learning_rate));
  SV_RETURN_IF_ERROR(file.Get("momentum", &o->train.momentum));
  SV_RETURN_IF_ERROR(file.Get("weight_decay", &o->train.weight_decay));
  SV_RETURN_IF_ERROR(file.Get("seed", &seed));
  SV_RETURN_IF_ERROR(file.Get("out", &o->out));
  SV_RETURN_IF_ERROR(file.Get("workers", &o->workers));
  SV_RETURN_IF_ERROR(file.Get("show_partition", &o->show_partition));
  SV_RETURN_IF_ERROR(file.Get("secure_aggregation", &o->secure_aggregation));
  SV_RETURN_IF_ERROR(file.Get("secagg_clip_range", &o->secagg_clip_range));
  // Strategy and attacks.
  SV_RETURN_IF_ERROR(coordinator::ApplyStrategyConfig(file, &o->strategy));
  SV_RETURN_IF_ERROR(file.Get("proximal_mu", &o->train.proximal_mu));
  SV_RETURN_IF_ERROR(file.Get("malicious_fraction", &o->malicious_fraction));
  SV_RETURN_IF_ERROR(file.Get("attack", &o->attack));
  // Differential privacy.
  SV_RETURN_IF_ERROR(file.Get("dp", &o->dp));
  SV_RETURN_IF_ERROR(file.Get("dp_noise_multiplier", &o->dp_noise_multiplier));
  SV_RETURN_IF_ERROR(file.Get("dp_clip_norm", &o->dp_clip_norm));
  SV_RETURN_IF_ERROR(file.Get("dp_adaptive_clip", &o->dp_adaptive_clip));
  SV_RETURN_IF_ERROR(file.Get("dp_target_quantile", &o->dp_target_quantile));
  SV_RETURN_IF_ERROR(file.Get("dp_clip_learning_rate", &o->dp_clip_learning_rate));
  SV_RETURN_IF_ERROR(file.Get("dp_count_noise", &o->dp_count_noise));
  SV_RETURN_IF_ERROR(file.Get("dp_delta", &o->dp_delta));
  SV_RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  if (seed < 0) return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": seed must be >= 0"));
  o->seed = static_cast<uint64_t>(seed);
  return absl::OkStatus();
}

std::string ToToml(const SimulationOptions& o) {
  return absl::StrCat(
      "# Resolved configuration of this run; `samverka simulate --config` reads it back.\n",
      "dataset = ", TomlQuote(o.dataset), "\n",
      "task = ", TomlQuote(o.task), "\n",
      "huber_delta = ", absl::StrFormat("%.17g", o.huber_delta), "\n",
      "class_weights = ", TomlQuote(o.class_weights), "\n",
      "data_dir = ", TomlQuote(o.data_dir), "\n",
      "test_fraction = ", o.test_fraction, "\n",
      "model = ", TomlQuote(o.model), "\n",
      "clients = ", o.clients, "\n",
      "clients_per_round = ", o.clients_per_round, "\n",
      "fraction = ", absl::StrFormat("%.17g", o.fraction), "\n",
      "rounds = ", o.rounds, "\n",
      "partition = ", TomlQuote(o.partition), "\n",
      "local_epochs = ", o.train.local_epochs, "\n",
      "batch_size = ", o.train.batch_size, "\n",
      "lr = ", absl::StrFormat("%.17g", o.train.learning_rate), "\n",
      "momentum = ", absl::StrFormat("%.17g", o.train.momentum), "\n",
      "weight_decay = ", absl::StrFormat("%.17g", o.train.weight_decay), "\n",
      "seed = ", o.seed, "\n",
      "out = ", TomlQuote(o.out), "\n",
      "workers = ", o.workers, "\n",
      "show_partition = ", o.show_partition ? "true" : "false", "\n",
      "secure_aggregation = ", o.secure_aggregation ? "true" : "false", "\n",
      "secagg_clip_range = ", absl::StrFormat("%.17g", o.secagg_clip_range), "\n",
      // Strategy and attacks.
      coordinator::StrategyToToml(o.strategy),
      "proximal_mu = ", absl::StrFormat("%.17g", o.train.proximal_mu), "\n",
      "malicious_fraction = ", absl::StrFormat("%.17g", o.malicious_fraction), "\n",
      "attack = ", TomlQuote(o.attack), "\n",
      // Differential privacy.
      "dp = ", TomlQuote(o.dp), "\n",
      "dp_noise_multiplier = ", absl::StrFormat("%.17g", o.dp_noise_multiplier), "\n",
      "dp_clip_norm = ", absl::StrFormat("%.17g", o.dp_clip_norm), "\n",
      "dp_adaptive_clip = ", o.dp_adaptive_clip ? "true" : "false", "\n",
      "dp_target_quantile = ", absl::StrFormat("%.17g", o.dp_target_quantile), "\n",
      "dp_clip_learning_rate = ", absl::StrFormat("%.17g", o.dp_clip_learning_rate), "\n",
      "dp_count_noise = ", absl::StrFormat("%.17g", o.dp_count_noise), "\n",
      "dp_delta = ", absl::StrFormat("%.17g", o.dp_delta), "\n");
}

std::string HeadlineMetric(const std::string& task) {
  if (task == "regression") return "r2";
  if (task == "survival") return "c_index";
  if (task == "multilabel") return "macro_f1";
  return "accuracy";
}

absl::StatusOr<RoundReport> RunSimulation(const SimulationOptions& options,
                                          const std::function<void(const RoundReport&)>& on_round) {
  SV_RETURN_IF_ERROR(options.Validate());
  auto log = Logger("simulation");
  const std::filesystem::path out_dir(options.out);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", options.out, ": ", ec.message()));
  SV_RETURN_IF_ERROR(WriteFile(out_dir / "config.toml", ToToml(options)));

  // Data and partition.
  SV_ASSIGN_OR_RETURN(const models::TaskOptions task, TaskOf(options));
  client::DatasetOptions data_options;
  data_options.spec = options.dataset;
  data_options.task = task.type;
  data_options.data_dir = options.data_dir;
  data_options.test_fraction = options.test_fraction;
  data_options.seed = options.seed;
  SV_ASSIGN_OR_RETURN(DatasetSplit data, client::LoadDataset(data_options));
  SV_ASSIGN_OR_RETURN(PartitionSpec partition_spec, ParsePartitionSpec(options.partition));
  SV_ASSIGN_OR_RETURN(std::vector<std::vector<int64_t>> shards,
                      Partition(data.train.labels, data.train.num_classes, options.clients,
                                partition_spec, options.seed));
  log->info("{}: {} training and {} test samples, {} clients, partition {}", options.dataset,
            data.train.num_samples(), data.test.num_samples(), options.clients,
            options.partition);
  if (options.show_partition) {
    std::fputs(FormatLabelSummary(shards, data.train.labels, data.train.num_classes).c_str(),
               stdout);
  }

  // Models: one per worker thread, each training one client at a time.
  const int workers = options.workers > 0
                          ? options.workers
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  models::SetTorchThreads(1);
  SV_ASSIGN_OR_RETURN(const int64_t outputs, models::OutputWidth(task, data.train));
  models::ModelSpec spec{options.model, data.train.sample_shape, outputs};
  SV_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> first,
                      models::CreateModel(spec, options.seed, task));
  std::vector<std::unique_ptr<models::Model>> worker_models;
  for (int w = 1; w < workers; ++w) {
    SV_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> copy, first->Clone());
    worker_models.push_back(std::move(copy));
  }
  ModelParameters initial = first->GetParameters();
  worker_models.insert(worker_models.begin(), std::move(first));
  log->info("model {}: {} parameters in {} tensors; {} worker threads", options.model,
            initial.layout.num_elements(), initial.layout.tensors.size(), workers);

  // The coordinator's engine and the virtual clients.
  coordinator::RoundOptions round_options;
  round_options.clients_per_round = options.clients_per_round;
  round_options.fraction = options.fraction;
  round_options.min_clients = 1;
  round_options.train = options.train;
  SV_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::Strategy> strategy,
                      coordinator::MakeStrategy(options.strategy));
  SV_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::RoundEngine> engine,
                      coordinator::RoundEngine::Create(round_options, std::move(strategy),
                                                       std::move(initial), options.seed));
  SV_ASSIGN_OR_RETURN(const AttackSpec attack, ParseAttack(options.attack));
  const VirtualClients clients(&data.train, shards, options.seed, options.malicious_fraction,
                               attack);
  if (clients.num_malicious() > 0) {
    log->info("{} of {} clients are malicious: {}", clients.num_malicious(), options.clients,
              attack.ToString());
  }
  std::vector<std::string> names;
  for (int i = 0; i < options.clients; ++i) {
    names.push_back(ClientName(i, options.clients));
    engine->AddClient(names.back());
  }
  std::map<std::string, int> index_of;
  for (int i = 0; i < options.clients; ++i) index_of[names[i]] = i;

  std::unique_ptr<SimulatedSecureAggregation> secure;
  const std::filesystem::path secagg_dir =
      std::filesystem::temp_directory_path() / absl::StrCat("samverka-secagg-", getpid());
  if (options.secure_aggregation) {
    SV_ASSIGN_OR_RETURN(secure, SimulatedSecureAggregation::Create(names, secagg_dir.string(),
                                                                   security::secagg::ThreatModel{},
                                                                   options.secagg_clip_range,
                                                                   options.seed));
    log->info("secure aggregation on: SecAgg+ among the {} clients of each round", options.clients_per_round);
  }
  std::unique_ptr<security::dp::DpFedAvgServer> dp;
  SV_ASSIGN_OR_RETURN(security::dp::DpConfig dp_config, DpConfigOf(options));
  const bool distributed = dp_config.mode == security::dp::DpMode::kDistributed;
  if (dp_config.mode != security::dp::DpMode::kOff) {
    SV_ASSIGN_OR_RETURN(dp, security::dp::DpFedAvgServer::Create(dp_config, options.clients,
                                                                 ExpectedCohort(options)));
    log->info("DP-FedAvg ({}): noise multiplier {} (update {:.4f}), clip norm {}{}, q = {}, delta {}",
              options.dp, options.dp_noise_multiplier, dp->update_noise_multiplier(),
              options.dp_clip_norm, options.dp_adaptive_clip ? " (adaptive)" : "",
              dp->sampling_rate(), options.dp_delta);
  }
  const std::vector<std::string> task_metrics =
      TaskMetricNames(task.type, data.train.target_names, data.train.target_size());
  const bool classification = task.type == models::TaskType::kClassification;
  SV_ASSIGN_OR_RETURN(std::unique_ptr<MetricsLog> metrics,
                      MetricsLog::Create(MetricColumns(task_metrics),
                                         (out_dir / "metrics.jsonl").string(),
                                         (out_dir / "metrics.csv").string()));
  RoundReport report;
  for (int r = 0; r < options.rounds; ++r) {
    const Clock::time_point start = Clock::now();
    SV_ASSIGN_OR_RETURN(coordinator::RoundPlan plan, engine->StartRound(absl::Now()));
    const std::shared_ptr<const ModelParameters> global = engine->global_model();
    std::vector<double> aggregate_seconds(plan.cohort.size(), 0);
    const double round_clip = dp != nullptr ? dp->clip_norm() : -1;
    if (dp != nullptr) plan.task.dp.clip_norm = round_clip;
    double within_clip = -1;
    if (secure != nullptr) {
      SV_ASSIGN_OR_RETURN(double seconds,
                          SecureRound(*secure, plan, *global, *engine, clients, index_of, worker_models,
                                      workers, dp.get(), distributed, &within_clip));
      aggregate_seconds.assign(1, seconds);
    } else if (dp != nullptr) {
      SV_ASSIGN_OR_RETURN(within_clip, CentralDpRound(plan, *global, *engine, clients, index_of,
                                                      worker_models, workers, *dp));
      aggregate_seconds.assign(1, 0.0);
    } else {
      internal::ParallelFor(workers, static_cast<int>(plan.cohort.size()), [&](int worker, int i) {
        const std::string& name = plan.cohort[i];
        absl::StatusOr<TaskOutcome> outcome =
            clients.Run(index_of.at(name), plan.task, *global, *worker_models[worker]);
        if (!outcome.ok()) {
          engine->ReportFailure(name, plan.round, std::string(outcome.status().message()));
          return;
        }
        const Clock::time_point submit = Clock::now();
        absl::Status accepted = engine->SubmitUpdate(name, plan.round, outcome->num_samples,
                                                     outcome->update, outcome->metrics);
        aggregate_seconds[i] = SecondsSince(submit);
        if (!accepted.ok()) log->error("round {}: update of {} rejected: {}", plan.round, name,
                                       std::string(accepted.message()));
      });
    }
    const Clock::time_point close = Clock::now();
    std::optional<coordinator::RoundResult> result = engine->Poll(absl::Now());
    if (!result.has_value()) return absl::InternalError("round did not close after every client answered");
    double aggregate = SecondsSince(close);
    for (double s : aggregate_seconds) aggregate += s;
    if (!result->succeeded) log->warn("round {} failed: {}", result->round, result->failure_reason);

    SV_ASSIGN_OR_RETURN(models::EvalStats eval,
                        EvaluateGlobal(engine->global_model()->values, data.test, worker_models));
    report.round = result->round;
    report.rounds = options.rounds;
    report.clients = result->updates;
    report.succeeded = result->succeeded;
    report.train_loss = result->train_loss;
    report.test_loss = eval.loss();
    report.test_accuracy = eval.accuracy();
    report.test_auc = eval.auc().value_or(-1);
    report.test_metrics = eval.Metrics(data.test.target_names);
    report.seconds = SecondsSince(start);
    report.aggregate_seconds = aggregate;
    report.bytes_up = result->bytes_up;
    report.bytes_down = result->bytes_down;
    if (dp != nullptr) {
      // Every round whose noised sum reached the engine is accounted for,
      // whether or not the round then succeeded (conservative).
      if (within_clip >= 0) SV_RETURN_IF_ERROR(dp->FinishRound(within_clip));
      report.epsilon = dp->spent().epsilon;
      report.dp_clip_norm = round_clip;
    }
    SV_RETURN_IF_ERROR(metrics->Append(MetricRow(report, classification, task_metrics)));
    if (on_round) on_round(report);
  }

  if (secure != nullptr) std::filesystem::remove_all(secagg_dir, ec);
  models::Model& exporter = *worker_models[0];
  SV_RETURN_IF_ERROR(exporter.SetParameters(engine->global_model()->values));
  SV_RETURN_IF_ERROR(exporter.SaveTorchScript((out_dir / "model.pt").string()));
  return report;
}

}  // namespace samverka::simulation
