#include "common/task.h"

#include <cmath>

#include "absl/strings/str_cat.h"

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
