// apps/commands.h
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace samverka::apps {

// Each Add*Command registers a subcommand whose callback runs the command
// and records its exit code.
//
// `samverka` (never links LibTorch):
void AddAuditCommand(CLI::App& app);  // audit verify
void AddPkiCommand(CLI::App& app);
void AddPrivacyCommand(CLI::App& app);  // privacy: epsilon planning
void AddStudyCommand(CLI::App& app);    // study submit|list|show|abort|export|metrics
// statistics: federated statistics among virtual sites (one per CSV file).
void AddStatisticsCommand(CLI::App& app, const std::string* log_level);
// coordinator and status.
void AddCoordinatorCommands(CLI::App& app, const std::string* log_level);
//
// `samverka-torch`:
void AddSimulateCommand(CLI::App& app, const std::string* log_level);
// client, export, and the coordinator's internal `model` command.
void AddTorchFederationCommands(CLI::App& app, const std::string* log_level);

// The commands of samverka-torch that users run as `samverka COMMAND`: the
// front end lists them in its help and executes samverka-torch for them.
inline constexpr const char* kClientSummary = "Run a site's client daemon (dials out to the coordinator)";
inline constexpr const char* kSimulateSummary =
    "Train across many virtual clients in this process (same code as a real federation)";
inline constexpr const char* kExportSummary = "Write a round's global model as TorchScript";
struct TorchCommand {
  const char* name;
  const char* summary;
};
inline constexpr TorchCommand kTorchCommands[] = {
    {"simulate", kSimulateSummary}, {"client", kClientSummary}, {"export", kExportSummary}};

// Runs `run` while a watcher thread turns SIGTERM / SIGINT into `stop()`.
absl::Status RunUntilSignal(const std::function<absl::Status()>& run,
                            const std::function<void()>& stop);

// Exit code of a daemon that stops because only a person can fix what
// stops it (EX_CONFIG of sysexits.h): a site whose data cannot serve the
// federation's model, a federation that finished without training. The
// systemd units do not restart on it (RestartPreventExitStatus=78).
inline constexpr int kExitNeedsOperator = 78;

// The exit code of the subcommand that ran (0 if none failed).
int ExitCode();
void SetExitCode(int code);

// Prints "samverka: error: MESSAGE" to stderr and sets exit code 1.
void Fail(std::string_view message);
inline void Fail(const std::string& message) { Fail(std::string_view(message)); }
inline void Fail(const char* message) { Fail(std::string_view(message)); }
#ifndef ABSL_USES_STD_STRING_VIEW
inline void Fail(absl::string_view message) { Fail(std::string_view(message.data(), message.size())); }
#endif

}  // namespace samverka::apps
