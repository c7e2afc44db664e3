// apps/commands.h
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace samverka::apps {

// Each Add*Command registers a subcommand whose callback runs the command
// and records its exit code.
void AddSimulateCommand(CLI::App& app, const std::string* log_level);

// The exit code of the subcommand that ran (0 if none failed).
int ExitCode();
void SetExitCode(int code);

// Prints "samverka: error: MESSAGE" to stderr and sets exit code 1.
void Fail(std::string_view message);

}  // namespace samverka::apps
