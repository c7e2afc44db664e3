// The `samverka` executable, the front end every user and script runs. It
// never links LibTorch (whose ~340 shared libraries cost ~170 MB of RSS and
// most of a second per start): it runs pki, audit, privacy, coordinator and
// status itself, and executes samverka-torch (installed next to it) for
// client, simulate and export. Subcommands only parse flags and wire
// components together.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "apps/commands.h"
#include "coordinator/model_helper.h"

namespace {

// The subcommand's name: the first argument that is neither an option nor
// the value of --log-level; nullptr if there is none.
const char* CommandName(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--log-level") {
      ++i;
    } else if (!arg.starts_with("-")) {
      return argv[i];
    }
  }
  return nullptr;
}

bool IsTorchCommand(std::string_view command) {
  for (const samverka::apps::TorchCommand& c : samverka::apps::kTorchCommands) {
    if (command == c.name) return true;
  }
  return false;
}

// Replaces this process (same pid, same arguments) with samverka-torch from
// our own directory. OpenBLAS reads OPENBLAS_NUM_THREADS when it loads; its
// pool would fight LibTorch's (CNN training 1.7x slower), so it is pinned to
// 1 unless the user chose a value. Returns only if exec fails.
int ExecTorch(char** argv) {
  std::string path = samverka::coordinator::DefaultModelHelperPath();
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) setenv("OPENBLAS_NUM_THREADS", "1", 1);
  argv[0] = path.data();
  execv(path.c_str(), argv);
  std::fprintf(stderr,
               "samverka: error: cannot run %s: %s (the client, simulate and export commands are "
               "in samverka-torch, which is installed next to samverka)\n",
               path.c_str(), std::strerror(errno));
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* command = CommandName(argc, argv); command != nullptr && IsTorchCommand(command)) {
    return ExecTorch(argv);
  }
  CLI::App app{"Samverka: federated learning with secure aggregation", "samverka"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("samverka ") + SAMVERKA_VERSION);
  // Options of samverka itself (--log-level) are accepted after the
  // subcommand too: `samverka audit verify ... --log-level debug`.
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  // Listed for --help only: main executes samverka-torch before parsing.
  for (const samverka::apps::TorchCommand& c : samverka::apps::kTorchCommands) {
    app.add_subcommand(c.name, c.summary);
  }
  samverka::apps::AddAuditCommand(app);
  samverka::apps::AddPkiCommand(app);
  samverka::apps::AddPrivacyCommand(app);
  samverka::apps::AddStudyCommand(app);
  samverka::apps::AddStatisticsCommand(app, &log_level);
  samverka::apps::AddCoordinatorCommands(app, &log_level);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return samverka::apps::ExitCode();
}
