// coordinator/coordinator_options.cc
#include "coordinator/coordinator_options.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/model_names.h"
#include "common/status_macros.h"

namespace samverka::coordinator {

absl::Status CoordinatorOptions::ValidateFederation() const {
  if (federation_id.empty()) return absl::InvalidArgumentError("federation_id must be set");
  if (state_dir.empty()) return absl::InvalidArgumentError("state_dir must be set");
  if (heartbeat_interval <= absl::ZeroDuration() || max_poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat and poll times must be positive");
  }
  if (max_concurrent_uploads < 1 || max_concurrent_downloads < 1) {
    return absl::InvalidArgumentError(
        "max_concurrent_uploads and max_concurrent_downloads must be >= 1");
  }
  if (max_samples_per_site < 1) return absl::InvalidArgumentError("max_samples_per_site must be >= 1");
  if (transfer_stall <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("transfer_stall_seconds must be > 0");
  }
  if (max_active_studies != 1) {
    return absl::InvalidArgumentError(
        "max_active_studies must be 1: this version trains one study at a time and queues the "
        "others");
  }
  return absl::OkStatus();
}

absl::Status CoordinatorOptions::Validate() const {
  SV_RETURN_IF_ERROR(ValidateFederation());
  if (rounds < 1) return absl::InvalidArgumentError("rounds must be >= 1");
  if (input_shape.empty()) return absl::InvalidArgumentError("input_shape must be set, e.g. [30]");
  if (num_classes < 2) return absl::InvalidArgumentError("num_classes must be >= 2");
  if (!class_labels.empty()) {
    if (static_cast<int64_t>(class_labels.size()) != num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class_labels has ", class_labels.size(), " names but num_classes = ", num_classes));
    }
    std::set<std::string> distinct(class_labels.begin(), class_labels.end());
    if (distinct.size() != class_labels.size() || distinct.contains("")) {
      return absl::InvalidArgumentError("class_labels must be distinct, non-empty names");
    }
  }
  if (failed_round_backoff < absl::ZeroDuration() ||
      max_failed_round_backoff < failed_round_backoff) {
    return absl::InvalidArgumentError(
        "failed_round_backoff must be >= 0 and at most max_failed_round_backoff");
  }
  if (eval_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("eval_deadline_seconds must be > 0");
  }
  if (wait_for_clients < 0) return absl::InvalidArgumentError("wait_for_clients must be >= 0");
  SV_RETURN_IF_ERROR(CheckModelName(model));
  SV_RETURN_IF_ERROR(secure_aggregation.Validate());
  if (secure_aggregation.enabled) {
    if (ca_pem.empty()) {
      return absl::InvalidArgumentError(
          "secure aggregation needs the federation CA certificate (tls.ca_certificate)");
    }
    if (round.min_clients < 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secure aggregation needs min_clients >= 3, got ", round.min_clients,
          ": with two sites each one learns the other's update from the sum; raise "
          "min_clients or set secure_aggregation = false"));
    }
  }
  SV_RETURN_IF_ERROR(dp.Validate());
  if (dp.mode != security::dp::DpMode::kOff) {
    if (dp.mode == security::dp::DpMode::kDistributed) {
      return absl::InvalidArgumentError(
          "dp = \"distributed\" runs in the simulation only so far; use dp = \"central\" (the "
          "coordinator adds the noise to the secure sum)");
    }
    if (!secure_aggregation.enabled) {
      return absl::InvalidArgumentError(
          "dp = \"central\" needs secure_aggregation = true: the coordinator adds the noise to "
          "the secure sum, so no single update is ever seen without it");
    }
    if (dp.clip_norm > secure_aggregation.clip_range) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dp_clip_norm = ", dp.clip_norm, " is larger than secagg_clip_range = ",
          secure_aggregation.clip_range));
    }
    if (dp_population < 1) {
      return absl::InvalidArgumentError(
          "dp needs the number of sites that could be sampled: set dp_population (or "
          "allowed_clients)");
    }
    SV_RETURN_IF_ERROR(
        security::dp::DpFedAvgServer::Create(dp, dp_population, ExpectedCohort()).status());
  }
  SV_RETURN_IF_ERROR(strategy.ValidateFor(round.min_clients, secure_aggregation.enabled,
                                          round.train.proximal_mu));
  return round.Validate();
}

double CoordinatorOptions::ExpectedCohort() const {
  double n = round.clients_per_round > 0
                 ? round.clients_per_round
                 : std::ceil(round.fraction * static_cast<double>(dp_population));
  if (round.max_clients > 0) n = std::min<double>(n, round.max_clients);
  return std::max<double>(n, round.min_clients);
}

}  // namespace samverka::coordinator
