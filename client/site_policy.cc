#include "client/site_policy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

}  // namespace

absl::Status SitePolicy::Validate() const {
  if (min_cohort < 0) return absl::InvalidArgumentError("min_cohort must be >= 0");
  if (!(max_epsilon >= 0)) return absl::InvalidArgumentError("max_epsilon must be >= 0 (0: no limit)");
  if (!(max_epsilon_delta > 0 && max_epsilon_delta < 1)) {
    return absl::InvalidArgumentError("max_epsilon_delta must be in (0, 1)");
  }
  if (max_rounds_per_day < 0) {
    return absl::InvalidArgumentError("max_rounds_per_day must be >= 0 (0: no limit)");
  }
  for (const std::string& m : allowed_models) {
    if (m.empty()) return absl::InvalidArgumentError("allowed_models has an empty entry");
  }
  return absl::OkStatus();
}

absl::StatusOr<SitePolicyEnforcer> SitePolicyEnforcer::Create(SitePolicy policy,
                                                              std::string ledger_path,
                                                              std::string model_file_digest) {
  if (absl::Status valid = policy.Validate(); !valid.ok()) return valid;
  SitePolicyEnforcer enforcer(std::move(policy), std::move(ledger_path),
                              std::move(model_file_digest));
  if (enforcer.ledger_path_.empty() || !std::filesystem::exists(enforcer.ledger_path_)) {
    return enforcer;
  }
  std::ifstream in(enforcer.ledger_path_);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json ledger = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!ledger.is_object() || !ledger.contains("trained_unix_seconds") ||
      !ledger["trained_unix_seconds"].is_array()) {
    return absl::DataLossError(absl::StrCat(
        "the site's policy ledger ", enforcer.ledger_path_,
        " is corrupt; fix or remove it (removing it resets the daily round count)"));
  }
  for (const nlohmann::json& t : ledger["trained_unix_seconds"]) {
    if (!t.is_number_integer()) {
      return absl::DataLossError(
          absl::StrCat("the site's policy ledger ", enforcer.ledger_path_, " has a bad entry"));
    }
    enforcer.trained_.push_back(t.get<int64_t>());
  }
  if (ledger.contains("dp_steps")) {
    for (const nlohmann::json& step : ledger["dp_steps"]) {
      if (!step.is_array() || step.size() != 2 || !step[0].is_number() || !step[1].is_number()) {
        return absl::DataLossError(absl::StrCat("the site's policy ledger ", enforcer.ledger_path_,
                                                " has a bad privacy entry"));
      }
      enforcer.dp_steps_.emplace_back(step[0].get<double>(), step[1].get<double>());
    }
  }
  return enforcer;
}

absl::Status SitePolicyEnforcer::Check(const ClientTask& task, absl::Time now) const {
  auto refuse = [](std::string why) { return absl::FailedPreconditionError("site policy: " + why); };
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
    const std::string name = std::filesystem::path(task.model).filename().string();
    const auto& allowed = policy_.allowed_models;
    const bool ok = std::find(allowed.begin(), allowed.end(), task.model) != allowed.end() ||
                    std::find(allowed.begin(), allowed.end(), name) != allowed.end() ||
                    (!model_file_digest_.empty() &&
                     std::find(allowed.begin(), allowed.end(), model_file_digest_) != allowed.end() &&
                     !IsBuiltin(task.model));
    if (!ok) {
      return refuse(absl::StrCat("model '", task.model.substr(0, 128),
                                 "' is not among this site's allowed_models"));
    }
  }
  if (policy_.max_epsilon > 0) {
    if (!(task.dp.clip_norm > 0)) {
      return refuse(absl::StrCat("this site trains only with differential privacy (max_epsilon = ",
                                 policy_.max_epsilon, ")"));
    }
    if (!(task.dp.sampling_rate > 0 && task.dp.sampling_rate <= 1) ||
        !(task.dp.noise_multiplier > 0)) {
      return refuse("the task does not state its privacy cost (sampling rate, noise multiplier)");
    }
    security::dp::RdpAccountant accountant;
    for (const auto& [q, sigma] : dp_steps_) {
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
          "this round would bring the site's privacy loss to epsilon %.3f (delta %g), over its "
          "budget max_epsilon = %g",
          after->epsilon, policy_.max_epsilon_delta, policy_.max_epsilon));
    }
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

absl::StatusOr<double> SitePolicyEnforcer::EpsilonSpent() const {
  security::dp::RdpAccountant accountant;
  for (const auto& [q, sigma] : dp_steps_) SV_RETURN_IF_ERROR(accountant.Compose(q, sigma));
  SV_ASSIGN_OR_RETURN(security::dp::PrivacySpent spent, accountant.Spent(policy_.max_epsilon_delta));
  return spent.epsilon;
}

absl::Status SitePolicyEnforcer::RecordTraining(const ClientTask& task, absl::Time now) {
  if (task.kind != TaskKind::kTrain) return absl::OkStatus();
  const int64_t t = absl::ToUnixSeconds(now);
  trained_.erase(std::remove_if(trained_.begin(), trained_.end(),
                                [&](int64_t s) { return t - s >= kDaySeconds; }),
                 trained_.end());
  trained_.push_back(t);
  if (task.dp.clip_norm > 0 && task.dp.sampling_rate > 0 && task.dp.noise_multiplier > 0) {
    dp_steps_.emplace_back(task.dp.sampling_rate, task.dp.noise_multiplier);
  }
  if (ledger_path_.empty()) return absl::OkStatus();
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& [q, sigma] : dp_steps_) steps.push_back({q, sigma});
  nlohmann::json ledger = {{"trained_unix_seconds", trained_}, {"dp_steps", steps}};
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
