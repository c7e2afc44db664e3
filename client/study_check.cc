// client/study_check.cc
#include "client/study_check.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/codec.h"
#include "common/model_names.h"
#include "common/peer_text.h"
#include "common/status_macros.h"

namespace samverka::client {
namespace {

absl::Status Refuse(absl::string_view why) { return absl::FailedPreconditionError(why); }

// The first training option that differs, or "".
std::string TrainDifference(const TrainOptions& task, const TrainOptions& signed_options) {
  if (task.learning_rate != signed_options.learning_rate) return "lr";
  if (task.momentum != signed_options.momentum) return "momentum";
  if (task.weight_decay != signed_options.weight_decay) return "weight_decay";
  if (task.local_epochs != signed_options.local_epochs) return "local_epochs";
  if (task.batch_size != signed_options.batch_size) return "batch_size";
  if (task.proximal_mu != signed_options.proximal_mu) return "proximal_mu";
  return "";
}

// OK if `task` asks for what the signed manifest says (or something
// stricter: secure aggregation or DP the manifest does not require).
absl::Status CheckTaskAgrees(const ClientTask& task, const VerifiedStudy& study) {
  const StudyManifest& manifest = study.manifest;
  if (manifest.statistics() || task.kind == TaskKind::kStatistics) {
    if (task.kind != TaskKind::kStatistics && task.kind != TaskKind::kConsent) {
      return Refuse("the signed manifest is a statistics study; the task asks for training or "
                    "evaluation");
    }
    if (!manifest.statistics()) {
      return Refuse("the task asks for statistics; the signed manifest is a training study");
    }
    if (task.model_digest != study.manifest_sha256) {
      return Refuse("the task does not name the signed manifest's digest");
    }
    if (task.kind == TaskKind::kStatistics && !task.secure_aggregation.has_value()) {
      return Refuse("a statistics task must use secure aggregation");
    }
    return absl::OkStatus();
  }
  if (task.kind == TaskKind::kConsent) return absl::OkStatus();
  if (task.model != manifest.model.model) {
    return Refuse(absl::StrCat("the task names model '", PeerText(task.model, 128),
                               "' but the signed manifest says '", manifest.model.model, "'"));
  }
  if (task.kind != TaskKind::kTrain) return absl::OkStatus();
  if (task.round < 1 || task.round > manifest.rounds) {
    return Refuse(absl::StrCat("the task is for round ", task.round,
                               " but the signed manifest has rounds = ", manifest.rounds));
  }
  if (std::string key = TrainDifference(task.train, manifest.train); !key.empty()) {
    return Refuse(absl::StrCat("the task's training option ", key,
                               " differs from the signed manifest's"));
  }
  if (manifest.secure_aggregation && !task.secure_aggregation.has_value()) {
    return Refuse("the signed manifest says secure_aggregation = true but the task is a plain "
                  "round (the coordinator would see this site's update)");
  }
  if (manifest.dp != "off") {
    if (!(task.dp.clip_norm > 0)) {
      return Refuse(absl::StrCat("the signed manifest says dp = \"", manifest.dp,
                                 "\" but the task has no differential privacy"));
    }
    // Adaptive clipping spends a share of the budget on its count, so the
    // update's multiplier may exceed the signed one, never fall below it.
    if (task.dp.noise_multiplier < manifest.dp_noise_multiplier * (1 - 1e-9)) {
      return Refuse(absl::StrFormat(
          "the task's noise multiplier %g is below the signed manifest's dp_noise_multiplier %g",
          task.dp.noise_multiplier, manifest.dp_noise_multiplier));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VerifiedStudy> VerifyStudy(const FetchedStudy& study, const StudyTrust& trust,
                                          absl::Time now) {
  const security::StudyEnvelope& envelope = study.envelope;
  if (security::StudyId(envelope) != study.study_id) {
    return absl::UnauthenticatedError(absl::StrCat(
        "its id ", PeerText(study.study_id, 64),
        " does not name its signed bytes (the manifest, model digest, federation, time or nonce "
        "was changed)"));
  }
  if (envelope.federation_id != trust.federation_id) {
    return absl::UnauthenticatedError(
        absl::StrCat("it was signed for federation '", PeerText(envelope.federation_id, 64),
                     "', not this site's '", trust.federation_id, "'"));
  }
  if (trust.crl != nullptr && trust.crl->IsExpired(now)) {
    return absl::UnauthenticatedError(
        "this site's CRL (tls.crl) is past its nextUpdate, so whether the signer was revoked is "
        "unknown; install the CA's current crl.pem");
  }
  absl::StatusOr<security::PeerIdentity> signer = security::VerifyStudySignature(
      envelope, study.signature, study.operator_certificate, trust.ca_pem, trust.crl, now);
  if (!signer.ok()) {
    return absl::Status(signer.status().code(),
                        absl::StrCat("its signature does not verify: ", signer.status().message()));
  }
  const auto& allowed = trust.allowed_operators;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), signer->name) == allowed.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "it is signed by operator '", signer->name,
        "', who is not in this site's allowed_operators (", absl::StrJoin(allowed, ", "), ")"));
  }
  absl::StatusOr<StudyManifest> manifest =
      ParseStudyManifest(envelope.manifest, absl::StrCat("study ", study.study_id));
  if (!manifest.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("its signed manifest is not valid: ", manifest.status().message()));
  }
  const bool file_model = !manifest->statistics() && LooksLikeModelFile(manifest->model.model);
  if (file_model && envelope.model_sha256.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("its model '", manifest->model.model,
                                                   "' is a TorchScript file but no digest of "
                                                   "the file was signed"));
  }
  if (!file_model && !envelope.model_sha256.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("its model '", manifest->model.model,
                                                   "' is built in, yet a model file digest was "
                                                   "signed with it"));
  }
  VerifiedStudy verified{study.study_id, signer->name, *std::move(manifest), envelope.model_sha256,
                        study.model_bytes, Sha256Hex(envelope.manifest), std::nullopt};
  if (verified.manifest.statistics()) {
    absl::StatusOr<statistics::StatisticsSpec> spec = statistics::ReadManifestStatistics(
        envelope.manifest, absl::StrCat("study ", study.study_id));
    if (!spec.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("its signed manifest is not valid: ", spec.status().message()));
    }
    verified.statistics = *std::move(spec);
    if (verified.manifest.dp == "distributed") {
      verified.statistics->dp_noise_multiplier = verified.manifest.dp_noise_multiplier;
    }
  }
  return verified;
}

absl::StatusOr<ClientTask> DecideStudyTask(const ClientTask& task, const VerifiedStudy& study,
                                           const std::set<std::string>& datasets,
                                           const SitePolicyEnforcer& policy, absl::Time now) {
  const StudyManifest& manifest = study.manifest;
  if (task.study_id != study.study_id) {
    return Refuse(absl::StrCat("the task belongs to study ", PeerText(task.study_id, 64),
                               ", not ", study.study_id));
  }
  SV_RETURN_IF_ERROR(CheckTaskAgrees(task, study));
  if (!datasets.contains(manifest.dataset)) {
    return Refuse(absl::StrCat("it needs data set '", manifest.dataset,
                               "', which this site does not name (it has: ",
                               absl::StrJoin(datasets, ", "), ")"));
  }
  ClientTask decided = task;
  if (task.kind != TaskKind::kConsent && !manifest.statistics()) decided.model = manifest.model.model;
  if (task.kind == TaskKind::kStatistics) {
    // The privacy cost comes from the signed manifest, never the task.
    decided.dp = {};
    if (manifest.dp == "distributed") {
      decided.dp = DpOptions{1.0, manifest.dp_noise_multiplier, 1.0, manifest.dp_delta};
    }
  }
  if (task.kind == TaskKind::kTrain) {
    decided.train = manifest.train;
    if (manifest.dp != "off") {
      decided.dp.noise_multiplier =
          std::min(decided.dp.noise_multiplier, manifest.dp_noise_multiplier);
    }
  }
  SV_RETURN_IF_ERROR(
      policy.Check(decided, TaskScope{manifest.dataset, study.model_sha256}, now));
  return decided;
}

bool RefusesWholeStudy(const VerifiedStudy& study, const std::set<std::string>& datasets,
                       const SitePolicy& policy) {
  const StudyManifest& manifest = study.manifest;
  if (!datasets.contains(manifest.dataset)) return true;
  // A statistics study is one task: refusing it is refusing the study.
  if (manifest.statistics()) return true;
  if (policy.require_secure_aggregation && !manifest.secure_aggregation) return true;
  if (policy.allowed_models.empty()) return false;
  for (const std::string& allowed : policy.allowed_models) {
    if (allowed == manifest.model.model || (!study.model_sha256.empty() && allowed == study.model_sha256)) {
      return false;
    }
  }
  return true;
}

std::string StudyRefusal(const std::string& study_id, const absl::Status& why) {
  return absl::StrCat("refused study ", PeerText(study_id, 64), ": ", why.message());
}

}  // namespace samverka::client
