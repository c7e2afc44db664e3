// The `samverka-torch` executable: the commands that need LibTorch (client,
// simulate, export, and the coordinator's internal `model` command). Users
// run them through `samverka`, which executes this binary with the same
// arguments; running it directly works too.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

#include "apps/commands.h"

namespace {

// OpenBLAS reads OPENBLAS_NUM_THREADS when the library loads, before main;
// its own thread pool would fight LibTorch's (measured: CNN training 1.7x
// slower). `samverka` and the coordinator set it before executing this
// binary; run directly, it re-executes itself once with the variable set,
// unless the user chose a value.
void PinOpenBlasThreads(char** argv) {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  execv("/proc/self/exe", argv);
  // If exec fails we carry on with OpenBLAS's default threads.
}

}  // namespace

int main(int argc, char** argv) {
  PinOpenBlasThreads(argv);
  // Named "samverka" so that `samverka client --help` reads as the user typed it.
  CLI::App app{"Samverka: federated learning with secure aggregation (LibTorch commands)", "samverka"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  samverka::apps::AddSimulateCommand(app, &log_level);
  samverka::apps::AddTorchFederationCommands(app, &log_level);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return samverka::apps::ExitCode();
}
