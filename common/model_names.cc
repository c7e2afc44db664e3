#include "common/model_names.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace samverka {

std::vector<std::string> BuiltinModelNames() { return {"cnn", "logreg", "mlp"}; }

bool LooksLikeModelFile(const std::string& name) {
  return name.find('/') != std::string::npos || name.ends_with(".pt") || name.ends_with(".pth");
}

absl::Status CheckModelName(const std::string& name_or_path) {
  if (LooksLikeModelFile(name_or_path)) {
    if (std::filesystem::is_regular_file(name_or_path)) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("model file ", name_or_path, " does not exist"));
  }
  const std::vector<std::string> builtins = BuiltinModelNames();
  if (std::find(builtins.begin(), builtins.end(), name_or_path) != builtins.end()) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name_or_path,
                                          "'; built-in models are ", absl::StrJoin(builtins, ", "),
                                          ", or give a TorchScript file (.pt)"));
}

}  // namespace samverka
