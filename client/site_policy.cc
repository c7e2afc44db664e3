#include "client/site_policy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "security/dp/accountant.h"
#include "models/model.h"

namespace samverka::client {
namespace {

constexpr int64_t kDaySeconds = 24 * 3600;

bool IsBuiltin(const std::string& model) {
  const std::vector<std::string> names = models::BuiltinModelNames();
  return std::find(names.begin(), names.end(), model) != names.end();
}

bool IsSha256Hex(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Reads [[q, sigma], ...]; false if malformed.
bool ReadSteps(const nlohmann::json& steps, std::vector<std::pair<double, double>>* out) {
  if (!steps.is_array()) return false;
  for (const nlohmann::json& step : steps) {
    if (!step.is_array() || step.size() != 2 || !step[0].is_number() || !step[1].is_number()) {
      return false;
    }
    out->emplace_back(step[0].get<double>(), step[1].get<double>());
  }
  return true;
}

nlohmann::json WriteSteps(const std::vector<std::pair<double, double>>& steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [q, sigma] : steps) out.push_back({q, sigma});
  return out;
}

}  // namespace

absl::Status SitePolicy::Validate() const {
  if (min_cohort < 0) return absl::InvalidArgumentError("min_cohort must be >= 0");
  if (min_count < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_count must be >= 1 (the fewest rows, and the smallest count, this site releases), "
        "got ", min_count));
  }
  if (!(max_epsilon >= 0)) return absl::InvalidArgumentError("max_epsilon must be >= 0 (0: no limit)");
  if (!(max_epsilon_delta > 0 && max_epsilon_delta < 1)) {
    return absl::InvalidArgumentError("max_epsilon_delta must be in (0, 1)");
  }
  if (max_rounds_per_day < 0) {
    return absl::InvalidArgumentError("max_rounds_per_day must be >= 0 (0: no limit)");
  }
  for (const std::string& m : allowed_models) {
    if (m.empty()) return absl::InvalidArgumentError("allowed_models has an empty entry");
    if (!IsBuiltin(m) && !IsSha256Hex(m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "allowed_models entry '", m.substr(0, 128), "' is neither a built-in model (",
          absl::StrJoin(models::BuiltinModelNames(), ", "),
          ") nor the SHA-256 of a TorchScript file (64 lower-case hex digits, as `sha256sum "
          "model.pt` prints)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SitePolicyEnforcer> SitePolicyEnforcer::Create(SitePolicy policy,
                                                              std::string ledger_path) {
  if (absl::Status valid = policy.Validate(); !valid.ok()) return valid;
  SitePolicyEnforcer enforcer(std::move(policy), std::move(ledger_path));
  if (enforcer.ledger_path_.empty() || !std::filesystem::exists(enforcer.ledger_path_)) {
    return enforcer;
  }
  SV_RETURN_IF_ERROR(enforcer.Load());
  return enforcer;
}

absl::Status SitePolicyEnforcer::Load() {
  std::ifstream in(ledger_path_);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json ledger = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!ledger.is_object() || !ledger.contains("trained_unix_seconds") ||
      !ledger["trained_unix_seconds"].is_array()) {
    return absl::DataLossError(absl::StrCat(
        "the site's policy ledger ", ledger_path_,
        " is corrupt; fix or remove it (removing it resets the daily round count and the "
        "privacy spent)"));
  }
  for (const nlohmann::json& t : ledger["trained_unix_seconds"]) {
    if (!t.is_number_integer()) {
      return absl::DataLossError(
          absl::StrCat("the site's policy ledger ", ledger_path_, " has a bad entry"));
    }
    trained_.push_back(t.get<int64_t>());
  }
  const auto bad_privacy = [&] {
    return absl::DataLossError(
        absl::StrCat("the site's policy ledger ", ledger_path_, " has a bad privacy entry"));
  };
  if (ledger.contains("dp_steps") && !ReadSteps(ledger["dp_steps"], &unnamed_dp_steps_)) {
    return bad_privacy();
  }
  if (ledger.contains("dp_steps_by_dataset")) {
    const nlohmann::json& by_dataset = ledger["dp_steps_by_dataset"];
    if (!by_dataset.is_object()) return bad_privacy();
    for (const auto& [name, steps] : by_dataset.items()) {
      if (!ReadSteps(steps, &dp_steps_[name])) return bad_privacy();
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<double, double>> SitePolicyEnforcer::StepsOf(
    const std::string& dataset) const {
  std::vector<std::pair<double, double>> steps = unnamed_dp_steps_;
  if (auto it = dp_steps_.find(dataset); it != dp_steps_.end()) {
    steps.insert(steps.end(), it->second.begin(), it->second.end());
  }
  return steps;
}

absl::Status SitePolicyEnforcer::CheckBudget(const ClientTask& task, const TaskScope& scope) const {
  const auto refuse = [](std::string why) { return absl::FailedPreconditionError("site policy: " + why); };
  if (!(task.dp.sampling_rate > 0 && task.dp.sampling_rate <= 1) ||
      !(task.dp.noise_multiplier > 0)) {
    return refuse("the task does not state its privacy cost (sampling rate, noise multiplier)");
  }
  security::dp::RdpAccountant accountant;
  for (const auto& [q, sigma] : StepsOf(scope.dataset)) {
    if (absl::Status s = accountant.Compose(q, sigma); !s.ok()) return refuse(std::string(s.message()));
  }
  if (absl::Status s = accountant.Compose(task.dp.sampling_rate, task.dp.noise_multiplier);
      !s.ok()) {
    return refuse(std::string(s.message()));
  }
  absl::StatusOr<security::dp::PrivacySpent> after = accountant.Spent(policy_.max_epsilon_delta);
  if (!after.ok()) return refuse(std::string(after.status().message()));
  if (after->epsilon > policy_.max_epsilon) {
    return refuse(absl::StrFormat(
        "this %s would bring the site's privacy loss on data set '%s' to epsilon %.3f "
        "(delta %g), over its budget max_epsilon = %g",
        task.kind == TaskKind::kStatistics ? "release" : "round", scope.dataset, after->epsilon,
        policy_.max_epsilon_delta, policy_.max_epsilon));
  }
  return absl::OkStatus();
}

absl::Status SitePolicyEnforcer::Check(const ClientTask& task, const TaskScope& scope,
                                       absl::Time now) const {
  auto refuse = [](std::string why) { return absl::FailedPreconditionError("site policy: " + why); };
  if (task.kind == TaskKind::kStatistics) {
    if (!policy_.allow_statistics) {
      return refuse("this site takes part in no statistics study (allow_statistics = false)");
    }
    if (policy_.min_cohort > 0 && task.cohort_size < policy_.min_cohort) {
      return refuse(absl::StrCat("the study's cohort has ", task.cohort_size,
                                 " sites; this site requires at least ", policy_.min_cohort,
                                 " (min_cohort)"));
    }
    if (policy_.max_epsilon > 0) {
      if (!(task.dp.noise_multiplier > 0)) {
        return refuse(absl::StrCat("this site releases data only with differential privacy "
                                   "(max_epsilon = ", policy_.max_epsilon,
                                   "), and this statistics study adds no noise (dp = \"off\")"));
      }
      return CheckBudget(task, scope);
    }
    return absl::OkStatus();
  }
  if (task.kind != TaskKind::kTrain) return absl::OkStatus();
  if (policy_.require_secure_aggregation && !task.secure_aggregation.has_value()) {
    return refuse("this site trains only with secure aggregation (require_secure_aggregation)");
  }
  if (policy_.min_cohort > 0 && task.cohort_size < policy_.min_cohort) {
    return refuse(absl::StrCat("the round's cohort has ", task.cohort_size,
                               " sites; this site requires at least ", policy_.min_cohort,
                               " (min_cohort)"));
  }
  if (!policy_.allowed_models.empty()) {
    const auto& allowed = policy_.allowed_models;
    const auto listed = [&](const std::string& entry) {
      return std::find(allowed.begin(), allowed.end(), entry) != allowed.end();
    };
    // A built-in is allowed by its name; a TorchScript file only by the
    // digest of its bytes (its name is whatever the study chose).
    const bool ok = scope.model_sha256.empty() ? IsBuiltin(task.model) && listed(task.model)
                                               : listed(scope.model_sha256);
    if (!ok) {
      return refuse(scope.model_sha256.empty()
                        ? absl::StrCat("model '", task.model.substr(0, 128),
                                       "' is not among this site's allowed_models")
                        : absl::StrCat("the study's TorchScript model '", task.model.substr(0, 128),
                                       "' (sha256 ", scope.model_sha256,
                                       ") is not among this site's allowed_models"));
    }
  }
  if (policy_.max_epsilon > 0) {
    if (!(task.dp.clip_norm > 0)) {
      return refuse(absl::StrCat("this site trains only with differential privacy (max_epsilon = ",
                                 policy_.max_epsilon, ")"));
    }
    SV_RETURN_IF_ERROR(CheckBudget(task, scope));
  }
  if (policy_.max_rounds_per_day > 0) {
    const int64_t t = absl::ToUnixSeconds(now);
    const auto recent = std::count_if(trained_.begin(), trained_.end(),
                                      [&](int64_t s) { return t - s < kDaySeconds; });
    if (recent >= policy_.max_rounds_per_day) {
      return refuse(absl::StrCat("this site already trained ", recent,
                                 " rounds in the last 24 hours (max_rounds_per_day = ",
                                 policy_.max_rounds_per_day, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> SitePolicyEnforcer::EpsilonSpent(const std::string& dataset) const {
  security::dp::RdpAccountant accountant;
  for (const auto& [q, sigma] : StepsOf(dataset)) SV_RETURN_IF_ERROR(accountant.Compose(q, sigma));
  SV_ASSIGN_OR_RETURN(security::dp::PrivacySpent spent, accountant.Spent(policy_.max_epsilon_delta));
  return spent.epsilon;
}

absl::Status SitePolicyEnforcer::RecordTraining(const ClientTask& task, const std::string& dataset,
                                                absl::Time now) {
  if (task.kind != TaskKind::kTrain && task.kind != TaskKind::kStatistics) return absl::OkStatus();
  const int64_t t = absl::ToUnixSeconds(now);
  trained_.erase(std::remove_if(trained_.begin(), trained_.end(),
                                [&](int64_t s) { return t - s >= kDaySeconds; }),
                 trained_.end());
  // A statistics release counts against the privacy budget, not the rounds.
  if (task.kind == TaskKind::kTrain) trained_.push_back(t);
  if (task.dp.clip_norm > 0 && task.dp.sampling_rate > 0 && task.dp.noise_multiplier > 0) {
    dp_steps_[dataset].emplace_back(task.dp.sampling_rate, task.dp.noise_multiplier);
  }
  if (ledger_path_.empty()) return absl::OkStatus();
  nlohmann::json by_dataset = nlohmann::json::object();
  for (const auto& [name, steps] : dp_steps_) by_dataset[name] = WriteSteps(steps);
  nlohmann::json ledger = {{"trained_unix_seconds", trained_},
                           {"dp_steps", WriteSteps(unnamed_dp_steps_)},
                           {"dp_steps_by_dataset", by_dataset}};
  const std::string tmp = ledger_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ledger.dump() << "\n";
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write the policy ledger ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, ledger_path_, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot replace the policy ledger ", ledger_path_, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace samverka::client
