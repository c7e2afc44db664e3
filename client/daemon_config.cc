// client/daemon_config.cc: client.toml, read into ClientDaemonOptions.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/daemon.h"
#include "common/config.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

// A data set name: what studies (study.toml `dataset`) name.
absl::Status CheckDatasetName(const std::string& name) {
  if (name.empty() || name.size() > 64 ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
      })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data set name '", name.substr(0, 64),
        "' must have 1 to 64 letters, digits, '-' or '_' (studies name it in `dataset`)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ClientDaemonOptions::Validate() const {
  if (coordinator.empty()) return absl::InvalidArgumentError("coordinator (host:port) must be set");
  SV_RETURN_IF_ERROR(tls.Validate());
  if (datasets.empty()) {
    return absl::InvalidArgumentError(
        "[datasets] must name at least one data set, e.g. breast = \"csv:/data/breast.csv:label\"");
  }
  for (const auto& [name, data] : datasets) {
    SV_RETURN_IF_ERROR(CheckDatasetName(name));
    if (absl::Status valid = data.Validate(); !valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("datasets.", name, ": ", valid.message()));
    }
  }
  for (const std::string& name : allowed_operators) {
    if (absl::Status valid = security::ValidateSiteName(name); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowed_operators: '", name.substr(0, 64), "': ", valid.message()));
    }
  }
  if (poll_wait <= absl::ZeroDuration() || initial_backoff <= absl::ZeroDuration() ||
      max_backoff < initial_backoff) {
    return absl::InvalidArgumentError("poll and backoff times must be positive, max >= initial");
  }
  if (absl::Status p = policy.Validate(); !p.ok()) return p;
  if (secagg_min_clients < 3) {
    return absl::InvalidArgumentError(
        "secagg_min_clients must be >= 3 (with two sites each learns the other's update)");
  }
  return absl::OkStatus();
}

absl::StatusOr<ClientDaemonOptions> LoadClientConfig(const std::string& path) {
  SV_ASSIGN_OR_RETURN(ConfigFile file, ConfigFile::Load(path));
  auto resolve = [&](const std::string& p) { return ResolveConfigPath(path, p); };
  ClientDaemonOptions o;
  int64_t seed = 0;
  double poll = absl::ToDoubleSeconds(o.poll_wait);
  double max_backoff = absl::ToDoubleSeconds(o.max_backoff);
  std::vector<std::pair<std::string, std::string>> datasets;
  std::string data_dir;
  double eval_fraction = DatasetOptions{}.test_fraction;
  SV_RETURN_IF_ERROR(file.Get("coordinator", &o.coordinator));
  SV_RETURN_IF_ERROR(file.Get("server_name", &o.server_name));
  SV_RETURN_IF_ERROR(file.GetStringTable("datasets", &datasets));
  SV_RETURN_IF_ERROR(file.Get("data_dir", &data_dir));
  SV_RETURN_IF_ERROR(file.Get("eval_fraction", &eval_fraction));
  SV_RETURN_IF_ERROR(file.Get("seed", &seed));
  SV_RETURN_IF_ERROR(file.Get("poll_seconds", &poll));
  SV_RETURN_IF_ERROR(file.Get("max_backoff_seconds", &max_backoff));
  SV_RETURN_IF_ERROR(file.Get("allowed_operators", &o.allowed_operators));
  SV_RETURN_IF_ERROR(file.Get("require_secure_aggregation", &o.policy.require_secure_aggregation));
  SV_RETURN_IF_ERROR(file.Get("min_cohort", &o.policy.min_cohort));
  SV_RETURN_IF_ERROR(file.Get("allowed_models", &o.policy.allowed_models));
  SV_RETURN_IF_ERROR(file.Get("max_rounds_per_day", &o.policy.max_rounds_per_day));
  SV_RETURN_IF_ERROR(file.Get("max_epsilon", &o.policy.max_epsilon));
  SV_RETURN_IF_ERROR(file.Get("max_epsilon_delta", &o.policy.max_epsilon_delta));
  SV_RETURN_IF_ERROR(file.Get("allow_statistics", &o.policy.allow_statistics));
  SV_RETURN_IF_ERROR(file.Get("min_count", &o.policy.min_count));
  SV_RETURN_IF_ERROR(file.Get("secagg_min_clients", &o.secagg_min_clients));
  SV_RETURN_IF_ERROR(file.Get("state_dir", &o.state_dir));
  SV_RETURN_IF_ERROR(file.Get("tls.ca_certificate", &o.tls.ca_certificate));
  SV_RETURN_IF_ERROR(file.Get("tls.certificate", &o.tls.certificate));
  SV_RETURN_IF_ERROR(file.Get("tls.private_key", &o.tls.private_key));
  SV_RETURN_IF_ERROR(file.Get("tls.crl", &o.crl));
  if (file.Has("dataset") || file.Has("model_file")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": '", file.Has("dataset") ? "dataset" : "model_file",
        "' is gone: name the site's data sets in a [datasets] table (e.g. [datasets] then "
        "breast = \"csv:/data/breast.csv:malignant\"); TorchScript models now arrive with the "
        "studies that use them (docs/deployment.md)"));
  }
  SV_RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  if (datasets.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": [datasets] must name at least one data set, e.g. [datasets] then breast = "
        "\"csv:/data/breast.csv:malignant\""));
  }
  o.seed = static_cast<uint64_t>(std::max<int64_t>(seed, 0));
  for (auto& [name, spec] : datasets) {
    if (absl::Status valid = CheckDatasetName(name); !valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": [datasets]: ", valid.message()));
    }
    DatasetOptions data;
    data.spec = spec;
    if (data.spec.starts_with("csv:") && data.spec.rfind(':') > 4) {
      const size_t colon = data.spec.rfind(':');
      data.spec = absl::StrCat("csv:", resolve(data.spec.substr(4, colon - 4)),
                               data.spec.substr(colon));
    }
    data.data_dir = resolve(data_dir);
    data.test_fraction = eval_fraction;
    data.seed = o.seed;
    if (absl::Status valid = data.Validate(); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key 'datasets.", name, "': ", valid.message()));
    }
    o.datasets.emplace(name, std::move(data));
  }
  o.state_dir = resolve(o.state_dir.empty() ? "." : o.state_dir);
  o.tls.ca_certificate = resolve(o.tls.ca_certificate);
  o.tls.certificate = resolve(o.tls.certificate);
  o.tls.private_key = resolve(o.tls.private_key);
  o.crl = resolve(o.crl);
  if (!(poll > 0) || !(max_backoff > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": poll_seconds and max_backoff_seconds must be > 0"));
  }
  o.poll_wait = absl::Seconds(poll);
  o.max_backoff = absl::Seconds(max_backoff);
  o.initial_backoff = std::min(o.initial_backoff, o.max_backoff);
  if (absl::Status valid = o.Validate(); !valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(path, ": ", valid.message()));
  }
  return o;
}

}  // namespace samverka::client
