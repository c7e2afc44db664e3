// common/study_manifest.cc
#include "common/study_manifest.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model_names.h"
#include "common/status_macros.h"

namespace samverka {
namespace {

absl::Status Bad(const ConfigFile& file, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file.source_name(), ": ", message));
}

}  // namespace

absl::Status CheckStudyName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("a study name must have 1 to 64 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "study name '", std::string(name), "' may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStudyModelName(const std::string& model) {
  if (LooksLikeModelFile(model)) {
    if (model.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model = \"", model, "\": name a TorchScript model by its file name alone (e.g. "
          "\"resnet.pt\") and submit the file with --model-file"));
    }
    return absl::OkStatus();
  }
  std::vector<std::string> builtins = BuiltinModelNames();
  if (std::find(builtins.begin(), builtins.end(), model) == builtins.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model = \"", model, "\" is not a built-in model (", absl::StrJoin(builtins, ", "),
        ") nor a TorchScript file name ending in .pt"));
  }
  return absl::OkStatus();
}

absl::Status ReadStudyManifest(ConfigFile& file, StudyManifest* out) {
  SV_RETURN_IF_ERROR(file.Get("name", &out->name));
  SV_RETURN_IF_ERROR(file.Get("kind", &out->kind));
  SV_RETURN_IF_ERROR(file.Get("dataset", &out->dataset));
  SV_RETURN_IF_ERROR(file.Get("model", &out->model.model));
  SV_RETURN_IF_ERROR(file.Get("input_shape", &out->model.input_shape));
  SV_RETURN_IF_ERROR(file.Get("num_classes", &out->model.num_classes));
  SV_RETURN_IF_ERROR(file.Get("class_labels", &out->model.class_labels));
  SV_RETURN_IF_ERROR(file.Get("rounds", &out->rounds));
  SV_RETURN_IF_ERROR(file.Get("local_epochs", &out->train.local_epochs));
  SV_RETURN_IF_ERROR(file.Get("batch_size", &out->train.batch_size));
  SV_RETURN_IF_ERROR(file.Get("lr", &out->train.learning_rate));
  SV_RETURN_IF_ERROR(file.Get("momentum", &out->train.momentum));
  SV_RETURN_IF_ERROR(file.Get("weight_decay", &out->train.weight_decay));
  SV_RETURN_IF_ERROR(file.Get("proximal_mu", &out->train.proximal_mu));
  SV_RETURN_IF_ERROR(file.Get("secure_aggregation", &out->secure_aggregation));
  SV_RETURN_IF_ERROR(file.Get("dp", &out->dp));
  SV_RETURN_IF_ERROR(file.Get("dp_noise_multiplier", &out->dp_noise_multiplier));
  SV_RETURN_IF_ERROR(file.Get("dp_clip_norm", &out->dp_clip_norm));
  SV_RETURN_IF_ERROR(file.Get("dp_delta", &out->dp_delta));
  SV_RETURN_IF_ERROR(file.Get("min_clients", &out->min_clients));

  if (!file.Has("name")) return Bad(file, "name must be set (what the study is called)");
  if (absl::Status s = CheckStudyName(out->name); !s.ok()) return Bad(file, s.message());
  if (out->kind != "train" && out->kind != "statistics") {
    return Bad(file, absl::StrCat("kind = \"", out->kind,
                                  "\" is not a study kind this version runs (\"train\" or "
                                  "\"statistics\")"));
  }
  if (out->dataset.empty()) {
    return Bad(file, "dataset must name the data set the sites use (their client.toml "
                     "[datasets] names)");
  }
  if (absl::Status s = CheckStudyName(out->dataset); !s.ok()) {
    return Bad(file, absl::StrCat("dataset: ", s.message()));
  }
  if (out->statistics()) {
    // One secure sum, always: the [statistics] table says what it holds
    // (statistics/spec.h reads it); no model is trained.
    for (const char* key : {"model", "input_shape", "num_classes", "class_labels", "rounds",
                            "local_epochs", "batch_size", "lr", "momentum", "weight_decay",
                            "proximal_mu"}) {
      if (file.Has(key)) {
        return Bad(file, absl::StrCat(key, " is a key of training studies; a statistics study "
                                           "names its columns in [statistics]"));
      }
    }
    out->rounds = 1;
    if (!out->secure_aggregation) {
      return Bad(file, "a statistics study always uses secure aggregation (remove "
                       "secure_aggregation = false)");
    }
    if (out->dp == "central") {
      return Bad(file, "a statistics study takes dp = \"distributed\" (each site adds its share "
                       "of the noise, so no one sees exact totals) or \"off\"");
    }
    if (out->dp != "off" && out->dp != "distributed") {
      return Bad(file, absl::StrCat("dp must be \"off\" or \"distributed\", got \"", out->dp, "\""));
    }
    if (out->dp != "off" && !(out->dp_noise_multiplier > 0 && out->dp_noise_multiplier <= 1000)) {
      return Bad(file, "dp_noise_multiplier must be in (0, 1000]");
    }
    if (out->dp != "off" && !(out->dp_delta > 0 && out->dp_delta < 1)) {
      return Bad(file, "dp_delta must be in (0, 1)");
    }
    return absl::OkStatus();
  }
  if (absl::Status s = CheckStudyModelName(out->model.model); !s.ok()) {
    return Bad(file, s.message());
  }
  if (out->model.input_shape.empty()) return Bad(file, "input_shape must be set, e.g. [30]");
  for (int64_t d : out->model.input_shape) {
    if (d <= 0) return Bad(file, "input_shape entries must be positive");
  }
  if (out->model.num_classes < 2) return Bad(file, "num_classes must be >= 2");
  if (out->rounds < 1) return Bad(file, absl::StrCat("rounds must be >= 1, got ", out->rounds));
  if (absl::Status s = out->train.Validate(); !s.ok()) return Bad(file, s.message());
  if (out->dp != "off" && out->dp != "central" && out->dp != "distributed") {
    return Bad(file, absl::StrCat("dp must be \"off\", \"central\" or \"distributed\", got \"",
                                  out->dp, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<StudyManifest> ParseStudyManifest(std::string_view text,
                                                 const std::string& source_name) {
  SV_ASSIGN_OR_RETURN(ConfigFile file, ConfigFile::Parse(text, source_name));
  StudyManifest manifest;
  SV_RETURN_IF_ERROR(ReadStudyManifest(file, &manifest));
  return manifest;
}

}  // namespace samverka
