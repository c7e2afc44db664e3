// apps/commands.h
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace samverka::apps {

// Each Add*Command registers a subcommand whose callback runs the command
// and records its exit code.
void AddSimulateCommand(CLI::App& app, const std::string* log_level);
void AddAuditCommand(CLI::App& app);  // audit verify
void AddPkiCommand(CLI::App& app);
void AddPrivacyCommand(CLI::App& app);  // privacy: epsilon planning
// coordinator, client, status and export.
void AddFederationCommands(CLI::App& app, const std::string* log_level);

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
