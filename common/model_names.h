// common/model_names.h
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace samverka {

// What a model option may name, checked without LibTorch, so that processes
// which never load a model (the coordinator) can validate their options.
// models/ builds exactly these built-ins.

// Names of the built-in architectures: "cnn", "logreg", "mlp".
std::vector<std::string> BuiltinModelNames();

// True if `name` is a path rather than a built-in name (has a '/' or ends in
// .pt / .pth).
bool LooksLikeModelFile(const std::string& name);

// OK if `name_or_path` names a built-in or an existing file; kNotFound
// (listing the built-ins) otherwise. Cheap: use it to validate options
// before loading data.
absl::Status CheckModelName(const std::string& name_or_path);

}  // namespace samverka
