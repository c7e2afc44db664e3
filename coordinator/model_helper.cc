#include "coordinator/model_helper.h"

#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/subprocess.h"

namespace samverka::coordinator {
namespace {

// The arguments both commands share, after `model CMD`.
std::vector<std::string> HelperArgv(const ModelHelperOptions& options, const char* command) {
  return {options.executable,
          "--log-level",
          LogLevelName(),
          "model",
          command,
          "--model",
          options.model,
          "--input-shape",
          absl::StrJoin(options.input_shape, ","),
          "--num-classes",
          absl::StrCat(options.num_classes),
          "--seed",
          absl::StrCat(options.seed)};
}

// Runs the helper; a failure names what it was doing.
absl::StatusOr<std::string> RunHelper(SubprocessOptions run, const std::string& what) {
  // OpenBLAS reads this when it loads; set, the helper need not re-execute
  // itself to pin it (apps/torch_main.cc).
  run.environment_defaults.emplace_back("OPENBLAS_NUM_THREADS", "1");
  absl::StatusOr<std::string> out = RunSubprocess(run);
  if (out.ok()) return out;
  if (out.status().code() == absl::StatusCode::kInternal) {
    // The child ran and said why it failed: most likely the model or data.
    // Its last line repeats our own "samverka: error: " prefix; once is enough.
    return absl::InvalidArgumentError(absl::StrCat(
        what, " failed: ",
        absl::StrReplaceAll(out.status().message(), {{": samverka: error: ", ": "}})));
  }
  return absl::Status(out.status().code(),
                      absl::StrCat(what, ": ", out.status().message(),
                                   " (the coordinator needs samverka-torch; set model_helper "
                                   "in coordinator.toml if it is installed elsewhere)"));
}

}  // namespace

std::string DefaultModelHelperPath() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "samverka-torch";
  return (self.parent_path() / "samverka-torch").string();
}

absl::StatusOr<ModelParameters> BuildInitialModel(const ModelHelperOptions& options) {
  SubprocessOptions run;
  run.argv = HelperArgv(options, "init");
  SV_ASSIGN_OR_RETURN(std::string encoded,
                      RunHelper(std::move(run), absl::StrCat("building model '", options.model, "'")));
  absl::StatusOr<ModelParameters> parameters = DecodeParameters(encoded);
  if (!parameters.ok()) {
    return absl::InternalError(absl::StrCat(options.executable, " model init wrote no valid parameters: ",
                                            parameters.status().message()));
  }
  return parameters;
}

absl::Status SaveTorchScript(const ModelHelperOptions& options, const std::string& encoded_parameters,
                             const std::string& out_path) {
  SubprocessOptions run;
  run.argv = HelperArgv(options, "save");
  run.argv.push_back("--out");
  run.argv.push_back(out_path);
  run.stdin_data = encoded_parameters;
  return RunHelper(std::move(run), absl::StrCat("writing ", out_path)).status();
}

absl::StatusOr<std::map<std::string, double>> EvaluateModel(const ModelHelperOptions& options,
                                                            const std::string& dataset_spec,
                                                            const std::string& encoded_parameters) {
  SubprocessOptions run;
  run.argv = HelperArgv(options, "evaluate");
  run.argv.push_back("--dataset");
  run.argv.push_back(dataset_spec);
  run.stdin_data = encoded_parameters;
  run.timeout = options.evaluate_timeout;
  SV_ASSIGN_OR_RETURN(std::string out,
                      RunHelper(std::move(run), absl::StrCat("evaluating on test set ", dataset_spec)));
  const nlohmann::json json = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  std::map<std::string, double> metrics;
  if (json.is_object()) {
    for (const auto& [key, value] : json.items()) {
      if (value.is_number()) metrics[key] = value.get<double>();
    }
  }
  if (!metrics.contains("test_loss") || !metrics.contains("test_accuracy")) {
    return absl::InternalError(absl::StrCat(options.executable,
                                            " model evaluate wrote no test_loss and test_accuracy: ",
                                            out.substr(0, 200)));
  }
  return metrics;
}

}  // namespace samverka::coordinator
