// `samverka audit verify`: recomputes the coordinator's hash-chained audit log.
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "coordinator/state_store.h"

namespace samverka::apps {

void AddAuditCommand(CLI::App& app) {
  CLI::App* audit =
      app.add_subcommand("audit", "Inspect the coordinator's audit log");
  audit->require_subcommand(1);
  CLI::App* verify =
      audit->add_subcommand("verify",
                            "Recompute the hash chain of the audit log "
                            "(read-only; safe while it runs)");
  auto state_dir = std::make_shared<std::string>();
  verify
      ->add_option("--state-dir", *state_dir,
                   "the coordinator's state directory")
      ->required();
  verify->callback([state_dir] {
    absl::StatusOr<coordinator::AuditSummary> summary =
        coordinator::VerifyAuditLog(*state_dir);
    if (!summary.ok()) return Fail(std::string(summary.status().message()));
    std::printf("audit log OK: %lld entries, head %s\n",
                static_cast<long long>(summary->entries),
                summary->head_hash.c_str());
    for (const auto& [event, count] : summary->events) {
      std::printf("  %-18s %lld\n", event.c_str(), static_cast<long long>(count));
    }
  });
}

}  // namespace samverka::apps
