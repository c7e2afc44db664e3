// coordinator/studies/study_options.cc
#include "coordinator/studies/study_options.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model_names.h"
#include "common/status_macros.h"
#include "coordinator/strategy.h"

namespace samverka::coordinator {
absl::Status ReadPositiveSeconds(ConfigFile& file, const char* key, absl::Duration* out) {
  double seconds = absl::ToDoubleSeconds(*out);
  SV_RETURN_IF_ERROR(file.Get(key, &seconds));
  if (!(seconds > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": ", key, " must be > 0"));
  }
  *out = absl::Seconds(seconds);
  return absl::OkStatus();
}

absl::Status ApplyStudyKeys(ConfigFile& file, const std::string& base_path,
                            CoordinatorOptions* options) {
  CoordinatorOptions& o = *options;
  int64_t seed = static_cast<int64_t>(o.seed);
  SV_RETURN_IF_ERROR(file.Get("rounds", &o.rounds));
  SV_RETURN_IF_ERROR(file.Get("model", &o.model));
  SV_RETURN_IF_ERROR(file.Get("input_shape", &o.input_shape));
  SV_RETURN_IF_ERROR(file.Get("num_classes", &o.num_classes));
  SV_RETURN_IF_ERROR(file.Get("class_labels", &o.class_labels));
  SV_RETURN_IF_ERROR(file.Get("seed", &seed));
  SV_RETURN_IF_ERROR(file.Get("clients_per_round", &o.round.clients_per_round));
  SV_RETURN_IF_ERROR(file.Get("fraction", &o.round.fraction));
  SV_RETURN_IF_ERROR(file.Get("min_clients", &o.round.min_clients));
  SV_RETURN_IF_ERROR(file.Get("max_clients", &o.round.max_clients));
  SV_RETURN_IF_ERROR(file.Get("wait_for_clients", &o.wait_for_clients));
  SV_RETURN_IF_ERROR(ReadPositiveSeconds(file, "train_deadline_seconds", &o.round.train_deadline));
  SV_RETURN_IF_ERROR(ReadPositiveSeconds(file, "eval_deadline_seconds", &o.eval_deadline));
  SV_RETURN_IF_ERROR(file.Get("federated_evaluation", &o.federated_evaluation));
  SV_RETURN_IF_ERROR(file.Get("local_epochs", &o.round.train.local_epochs));
  SV_RETURN_IF_ERROR(file.Get("batch_size", &o.round.train.batch_size));
  SV_RETURN_IF_ERROR(file.Get("lr", &o.round.train.learning_rate));
  SV_RETURN_IF_ERROR(file.Get("momentum", &o.round.train.momentum));
  SV_RETURN_IF_ERROR(file.Get("weight_decay", &o.round.train.weight_decay));
  SV_RETURN_IF_ERROR(file.Get("proximal_mu", &o.round.train.proximal_mu));
  SV_RETURN_IF_ERROR(ApplyStrategyConfig(file, &o.strategy));
  SV_RETURN_IF_ERROR(file.Get("test_dataset", &o.test_dataset));
  SecureAggregationOptions& secagg = o.secure_aggregation;
  double stage_seconds = absl::ToDoubleSeconds(secagg.stage_deadline);
  std::string adversary = security::secagg::AdversaryModelName(secagg.threat.adversary);
  SV_RETURN_IF_ERROR(file.Get("secure_aggregation", &secagg.enabled));
  SV_RETURN_IF_ERROR(file.Get("secagg_dropout_rate", &secagg.threat.dropout_rate));
  SV_RETURN_IF_ERROR(file.Get("secagg_corrupt_rate", &secagg.threat.corrupt_rate));
  SV_RETURN_IF_ERROR(file.Get("secagg_adversary", &adversary));
  SV_RETURN_IF_ERROR(file.Get("secagg_clip_range", &secagg.clip_range));
  SV_RETURN_IF_ERROR(file.Get("secagg_modulus_bits", &secagg.modulus_bits));
  SV_RETURN_IF_ERROR(file.Get("secagg_neighbours", &secagg.neighbours));
  SV_RETURN_IF_ERROR(file.Get("secagg_threshold", &secagg.threshold));
  SV_RETURN_IF_ERROR(file.Get("secagg_stage_deadline_seconds", &stage_seconds));
  std::string dp_mode = "off";
  security::dp::DpConfig& dp = o.dp;
  SV_RETURN_IF_ERROR(file.Get("dp", &dp_mode));
  SV_RETURN_IF_ERROR(file.Get("dp_noise_multiplier", &dp.noise_multiplier));
  SV_RETURN_IF_ERROR(file.Get("dp_clip_norm", &dp.clip_norm));
  SV_RETURN_IF_ERROR(file.Get("dp_adaptive_clip", &dp.adaptive_clip));
  SV_RETURN_IF_ERROR(file.Get("dp_target_quantile", &dp.target_quantile));
  SV_RETURN_IF_ERROR(file.Get("dp_clip_learning_rate", &dp.clip_learning_rate));
  SV_RETURN_IF_ERROR(file.Get("dp_count_noise", &dp.count_noise_stddev));
  SV_RETURN_IF_ERROR(file.Get("dp_delta", &dp.delta));
  SV_RETURN_IF_ERROR(file.Get("dp_population", &o.dp_population));
  {
    using security::secagg::AdversaryModel;
    bool known = false;
    for (AdversaryModel m : {AdversaryModel::kNone, AdversaryModel::kSemiHonest,
                             AdversaryModel::kSemiMalicious}) {
      if (adversary == security::secagg::AdversaryModelName(m) ||
          (m == AdversaryModel::kNone && adversary == "none")) {
        secagg.threat.adversary = m;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.source_name(), ": secagg_adversary must be \"none\", \"semi-honest\" or \"semi-malicious\", got \"",
          adversary, "\""));
    }
    if (!(stage_seconds > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.source_name(), ": secagg_stage_deadline_seconds must be > 0"));
    }
    secagg.stage_deadline = absl::Seconds(stage_seconds);
    if (absl::Status valid = secagg.Validate(); !valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": ", valid.message()));
    }
  }
  for (int64_t d : o.input_shape) {
    if (d <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": input_shape entries must be positive"));
    }
  }
  if (seed < 0) return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": seed must be >= 0"));
  o.seed = static_cast<uint64_t>(seed);
  if (o.model.find('/') != std::string::npos || o.model.ends_with(".pt")) {
    o.model = ResolveConfigPath(base_path, o.model);
  }
  if (o.test_dataset.starts_with("csv:")) {
    o.test_dataset = "csv:" + ResolveConfigPath(base_path, o.test_dataset.substr(4));
  }
  absl::StatusOr<security::dp::DpMode> mode = security::dp::ParseDpMode(dp_mode);
  if (!mode.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.source_name(), ": ", mode.status().message()));
  }
  o.dp.mode = *mode;
  return absl::OkStatus();
}

absl::StatusOr<Study> ReadStudy(std::string_view manifest_text, const std::string& source_name,
                                const CoordinatorOptions& federation,
                                const std::set<std::string>& known_datasets,
                                const std::string& model_file) {
  SV_ASSIGN_OR_RETURN(ConfigFile file, ConfigFile::Parse(manifest_text, source_name));
  Study study;
  study.options = federation;
  SV_RETURN_IF_ERROR(ReadStudyManifest(file, &study.manifest));
  if (study.manifest.statistics()) {
    SV_ASSIGN_OR_RETURN(study.statistics, statistics::ReadStatisticsSpec(file, "statistics"));
    if (study.manifest.dp == "distributed") {
      study.statistics->dp_noise_multiplier = study.manifest.dp_noise_multiplier;
    }
  }
  // A study's test set is a file on the coordinator's machine named by an
  // absolute path; a relative one would depend on where it was submitted.
  SV_RETURN_IF_ERROR(ApplyStudyKeys(file, "/", &study.options));
  SV_RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  if (!known_datasets.empty() && !known_datasets.contains(study.manifest.dataset)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": dataset = \"", study.manifest.dataset,
        "\" is not a data set any site of the federation has named; the sites have named: ",
        absl::StrJoin(known_datasets, ", ")));
  }
  if (study.manifest.statistics()) {
    if (!model_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": a statistics study takes no model file"));
    }
    CoordinatorOptions& o = study.options;
    o.rounds = 1;
    o.secure_aggregation.enabled = true;
    // Three sites at least: with two, each learns the other's numbers. (The
    // sites size their share of DP noise by the same number.)
    o.round.min_clients = study.manifest.dp_sites();
    absl::Status valid = o.ValidateFederation();
    if (valid.ok()) valid = o.secure_aggregation.Validate();
    if (valid.ok() && o.ca_pem.empty()) {
      valid = absl::InvalidArgumentError(
          "secure aggregation needs the federation CA certificate (tls.ca_certificate)");
    }
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", valid.message()));
    }
    return study;
  }
  if (LooksLikeModelFile(study.manifest.model.model)) {
    if (model_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ": model = \"", study.manifest.model.model,
          "\" names a TorchScript file; submit the file with the study (--model-file)"));
    }
    study.options.model = model_file;
  } else if (!model_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": a model file came with the study, but model = \"",
        study.manifest.model.model, "\" is a built-in model; name the file in model"));
  }
  if (absl::Status valid = study.options.Validate(); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", valid.message()));
  }
  return study;
}

}  // namespace samverka::coordinator
