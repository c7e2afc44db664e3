// `samverka statistics`: federated statistics among virtual sites, one per
// CSV file (or one file's rows dealt among --clients), summed with SecAgg+
// (docs/statistics.md). For researchers: the
// same spec, site code and secure sum as a statistics study.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "apps/commands.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "security/secagg/graph.h"
#include "simulation/secure_aggregation.h"
#include "statistics/privacy.h"
#include "statistics/site_statistics.h"
#include "statistics/spec.h"
#include "statistics/summary.h"

namespace samverka::apps {
namespace {

namespace fs = std::filesystem;

struct StatisticsFlags {
  std::string spec;
  std::vector<std::string> sites;
  std::string out;
  std::string format = "text";
  // > 0: one file, its rows dealt (shuffled by seed) among this many sites.
  int clients = 0;
  uint64_t seed = 0;
  double dp_noise_multiplier = 0;
  double dp_delta = 1e-5;
};

// The sites' tables: one per file, or one file's rows dealt among
// f.clients sites (an IID partition, as `samverka simulate --partition iid`).
absl::StatusOr<std::vector<std::pair<std::string, statistics::Table>>> SiteTables(
    const StatisticsFlags& f) {
  std::vector<std::pair<std::string, statistics::Table>> out;
  if (f.clients == 0) {
    for (const std::string& path : f.sites) {
      absl::StatusOr<statistics::Table> table = statistics::ReadTable(path);
      if (!table.ok()) return table.status();
      out.emplace_back(fs::path(path).stem().string(), *std::move(table));
    }
    return out;
  }
  if (f.sites.size() != 1) {
    return absl::InvalidArgumentError("--clients splits one file among virtual sites; give one file");
  }
  absl::StatusOr<statistics::Table> table = statistics::ReadTable(f.sites[0]);
  if (!table.ok()) return table.status();
  std::vector<size_t> order(table->rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 random(f.seed);
  std::shuffle(order.begin(), order.end(), random);
  for (int c = 0; c < f.clients; ++c) {
    statistics::Table part;
    part.path = fmt::format("{} (client {})", f.sites[0], c + 1);
    part.header = table->header;
    out.emplace_back(fmt::format("client-{}", c + 1), std::move(part));
  }
  for (size_t i = 0; i < order.size(); ++i) {
    statistics::Table& part = out[i % out.size()].second;
    part.rows.push_back(table->rows[order[i]]);
    part.lines.push_back(table->lines[order[i]]);
  }
  return out;
}

absl::Status Run(const StatisticsFlags& f) {
  auto log = Logger("statistics");
  absl::StatusOr<statistics::StatisticsSpec> spec = statistics::LoadStatisticsSpec(f.spec);
  if (!spec.ok()) return spec.status();
  if ((f.clients == 0 && f.sites.size() < 2) || f.clients == 1) {
    return absl::InvalidArgumentError(
        "give two or more site files (or --clients 2 or more): with one site, its numbers would "
        "be the released totals");
  }
  if (f.clients < 0) return absl::InvalidArgumentError("--clients must be >= 2");
  if (!(f.dp_noise_multiplier >= 0) || !(f.dp_delta > 0 && f.dp_delta < 1)) {
    return absl::InvalidArgumentError("--dp-noise-multiplier must be >= 0 and --dp-delta in (0, 1)");
  }
  spec->dp_noise_multiplier = f.dp_noise_multiplier;
  absl::StatusOr<std::vector<std::pair<std::string, statistics::Table>>> tables = SiteTables(f);
  if (!tables.ok()) return tables.status();
  // Each site computes its vector first: a bad file is one error, before
  // any protocol runs.
  std::vector<std::vector<uint64_t>> vectors;
  std::vector<std::string> names;
  for (const auto& [name, table] : *tables) {
    absl::StatusOr<std::vector<uint64_t>> vector = statistics::EncodeSiteStatistics(*spec, table);
    if (!vector.ok()) return vector.status();
    if (spec->dp()) {
      // Every site adds its share of the noise (statistics/privacy.h).
      absl::Status noised =
          statistics::AddSiteNoise(*spec, static_cast<int>(tables->size()), &*vector);
      if (!noised.ok()) return noised;
    }
    vectors.push_back(*std::move(vector));
    names.push_back(name);
    log->info("site {}: {} rows; sends one masked vector of {} integers{}, nothing else",
              names.back(), table.rows.size(), vectors.back().size(),
              spec->dp() ? " with its share of the noise" : "");
  }
  const size_t length = statistics::VectorLength(*spec);
  // The virtual sites' certificates live in a private folder for the run.
  std::string work = (fs::temp_directory_path() / "samverka-statistics-XXXXXX").string();
  if (mkdtemp(work.data()) == nullptr) return absl::InternalError("cannot make a temporary folder");
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{work};
  absl::StatusOr<std::unique_ptr<simulation::SimulatedSecureAggregation>> secure =
      simulation::SimulatedSecureAggregation::Create(names, work + "/pki",
                                                     security::secagg::ThreatModel{},
                                                     /*clip_range=*/1, /*seed=*/0);
  if (!secure.ok()) return secure.status();
  std::vector<int> cohort;
  for (size_t i = 0; i < names.size(); ++i) cohort.push_back(static_cast<int>(i));
  absl::StatusOr<simulation::IntegerSum> sum = (*secure)->SumIntegers(
      1, "statistics:" + f.spec, length, cohort, /*workers=*/1,
      [&](int i) -> absl::StatusOr<std::vector<uint64_t>> { return vectors[i]; });
  if (!sum.ok()) return sum.status();
  if (sum->contributors.size() != names.size()) {
    return absl::FailedPreconditionError(fmt::format(
        "only {} of {} sites contributed (the log says why); nothing is released",
        sum->contributors.size(), names.size()));
  }
  absl::StatusOr<nlohmann::json> summary =
      statistics::Summarise(*spec, sum->sum, static_cast<int>(sum->contributors.size()));
  if (!summary.ok()) return summary.status();
  if (spec->dp()) {
    absl::StatusOr<double> epsilon = statistics::Epsilon(*spec, f.dp_delta);
    if (!epsilon.ok()) return epsilon.status();
    (*summary)["dp"]["epsilon"] = *epsilon;
    (*summary)["dp"]["delta"] = f.dp_delta;
  }
  const std::string text = f.format == "json"  ? summary->dump(2) + "\n"
                           : f.format == "csv" ? statistics::SummaryCsv(*summary)
                                               : statistics::SummaryText(*summary);
  if (f.out.empty()) {
    std::fputs(text.c_str(), stdout);
    return absl::OkStatus();
  }
  const fs::path out(f.out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  std::ofstream file(out, std::ios::binary);
  file << text;
  file.close();
  if (!file) return absl::InternalError(fmt::format("cannot write {}", f.out));
  log->info("wrote {}", f.out);
  return absl::OkStatus();
}

}  // namespace

void AddStatisticsCommand(CLI::App& app, const std::string* log_level) {
  CLI::App* cmd = app.add_subcommand(
      "statistics",
      "Federated statistics among virtual sites, one per CSV file, summed with secure "
      "aggregation: counts, means, variances, histograms, quantiles (docs/statistics.md)");
  auto f = std::make_shared<StatisticsFlags>();
  cmd->add_option("--spec", f->spec, "the statistics spec (TOML; docs/statistics.md)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("sites", f->sites, "one CSV file per site (two or more), or one with --clients")
      ->required();
  cmd->add_option("--clients", f->clients,
                  "deal the rows of one file among this many virtual sites (IID, shuffled by "
                  "--seed)");
  cmd->add_option("--seed", f->seed, "the shuffle of --clients")->capture_default_str();
  cmd->add_option("--dp-noise-multiplier", f->dp_noise_multiplier,
                  "distributed DP: each site adds its share of discrete Gaussian noise "
                  "(docs/statistics.md); 0: none")
      ->capture_default_str();
  cmd->add_option("--dp-delta", f->dp_delta, "the delta epsilon is reported at")
      ->capture_default_str();
  cmd->add_option("--out", f->out, "write the result here instead of to the terminal");
  cmd->add_option("--format", f->format, "text, json or csv")
      ->check(CLI::IsMember({"text", "json", "csv"}))
      ->capture_default_str();
  cmd->callback([f, log_level] {
    if (!SetLogLevel(*log_level)) return Fail(fmt::format("unknown log level '{}'", *log_level));
    absl::Status status = Run(*f);
    if (!status.ok()) Fail(std::string(status.message()));
  });
}

}  // namespace samverka::apps
