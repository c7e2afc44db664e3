// `samverka statistics`: federated statistics among virtual sites, one per
// CSV file, summed with SecAgg+ (docs/statistics.md). For researchers: the
// same spec, site code and secure sum as a statistics study.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "security/secagg/graph.h"
#include "simulation/secure_aggregation.h"
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
};

// The site's name: its file name without the extension.
std::string SiteName(const std::string& path) { return fs::path(path).stem().string(); }

absl::Status Run(const StatisticsFlags& f) {
  auto log = Logger("statistics");
  absl::StatusOr<statistics::StatisticsSpec> spec = statistics::LoadStatisticsSpec(f.spec);
  if (!spec.ok()) return spec.status();
  if (f.sites.size() < 2) {
    return absl::InvalidArgumentError(
        "give two or more site files: with one site, its numbers would be the released totals");
  }
  // Each site computes its vector first: a bad file is one error, before
  // any protocol runs.
  std::vector<std::vector<uint64_t>> vectors;
  std::vector<std::string> names;
  for (const std::string& path : f.sites) {
    absl::StatusOr<statistics::Table> table = statistics::ReadTable(path);
    if (!table.ok()) return table.status();
    absl::StatusOr<std::vector<uint64_t>> vector = statistics::EncodeSiteStatistics(*spec, *table);
    if (!vector.ok()) return vector.status();
    vectors.push_back(*std::move(vector));
    names.push_back(SiteName(path));
    log->info("site {}: {} rows; sends one masked vector of {} integers, nothing else",
              names.back(), table->rows.size(), vectors.back().size());
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
  cmd->add_option("sites", f->sites, "one CSV file per site (two or more)")->required();
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
