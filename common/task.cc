#include "common/task.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model_names.h"

namespace samverka {

absl::Status TrainOptions::Validate() const {
  auto bad = [](std::string field, auto value, std::string rule) {
    return absl::InvalidArgumentError(
        absl::StrCat("training option ", field, " = ", value, ": ", rule));
  };
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    return bad("learning_rate", learning_rate, "must be a positive number");
  }
  if (!(momentum >= 0 && momentum < 1)) return bad("momentum", momentum, "must be in [0, 1)");
  if (!(weight_decay >= 0)) return bad("weight_decay", weight_decay, "must be >= 0");
  if (local_epochs < 1) return bad("local_epochs", local_epochs, "must be >= 1");
  if (batch_size < 1) return bad("batch_size", batch_size, "must be >= 1");
  if (!(proximal_mu >= 0)) return bad("proximal_mu", proximal_mu, "must be >= 0");
  return absl::OkStatus();
}

}  // namespace samverka

namespace samverka {

const char* SecureStageName(SecureStage stage) {
  switch (stage) {
    case SecureStage::kAdvertiseKeys: return "advertise keys";
    case SecureStage::kShareKeys: return "share keys";
    case SecureStage::kMaskedInput: return "masked input";
    case SecureStage::kUnmask: return "unmask";
    case SecureStage::kConsent: return "consent";
  }
  return "unknown stage";
}

}  // namespace samverka

namespace samverka {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t ShapeElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status CheckSiteCanServe(const FederationModel& model, const SiteOffer& offer) {
  if (!offer.cannot_serve_reason.empty()) {
    return absl::FailedPreconditionError(offer.cannot_serve_reason);
  }
  // An older client states nothing; its tasks tell.
  if (offer.sample_shape.empty()) return absl::OkStatus();
  int64_t features = 1;
  for (int64_t d : offer.sample_shape) {
    if (d < 1 || d > (int64_t{1} << 31) || features > (int64_t{1} << 40) / d) {
      return absl::InvalidArgumentError("the site states an impossible sample shape");
    }
    features *= d;
  }
  if (features != ShapeElements(model.input_shape)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "its data has ", features, " features per sample (shape ", ShapeString(offer.sample_shape),
        "), but the federation's model '", model.model, "' takes input_shape ",
        ShapeString(model.input_shape), " (", ShapeElements(model.input_shape), " values)"));
  }
  const std::vector<std::string> builtins = BuiltinModelNames();
  if (std::find(builtins.begin(), builtins.end(), model.model) != builtins.end()) {
    return absl::OkStatus();
  }
  const std::string wanted = std::filesystem::path(model.model).filename().string();
  if (offer.model_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the federation's model is the TorchScript file '", wanted,
        "', which every site must hold as its model_file; this site has no model_file"));
  }
  if (std::filesystem::path(offer.model_file).filename().string() != wanted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the federation's model is the TorchScript file '", wanted,
        "', but this site's model_file is '", offer.model_file, "'"));
  }
  return absl::OkStatus();
}

}  // namespace samverka
