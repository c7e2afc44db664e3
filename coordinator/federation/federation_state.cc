// coordinator/federation/federation_state.cc
#include "coordinator/federation/federation_state.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/peer_text.h"

namespace samverka::coordinator {
namespace {

bool Call(std::function<bool()>* predicate) { return (*predicate)(); }

constexpr char kKeySeparator = '\x1f';

}  // namespace

void FederationState::MarkDeadClients(absl::Time now) {
  for (const auto& [name, silence] : liveness.TakeSilent(now)) {
    ClientInfo& info = clients[name];
    if (!info.online) continue;
    info.online = false;
    info.last_seen = now - silence;
    if (active != nullptr) active->OnSiteOffline(name);
    Logger("coordinator")->warn("site {} went silent ({} s); taken for offline", name,
                                absl::ToInt64Seconds(silence));
    EndTask(name, "", "went offline");
  }
}

bool FederationState::WaitFor(std::function<bool()> done, absl::Time deadline) {
  while (true) {
    MarkDeadClients(absl::Now());
    AuditHeldBack(absl::Now());
    if (done() || stop) return !stop;
    const absl::Time now = absl::Now();
    if (now >= deadline) return false;
    mutex.AwaitWithDeadline(absl::Condition(&Call, &done),
                            std::min(deadline, now + absl::Seconds(1)));
  }
}

void FederationState::EndTask(const std::string& site, const std::string& task_id,
                              const std::string& reason) {
  auto it = assigned.find(site);
  if (it == assigned.end() || (!task_id.empty() && it->second.task_id != task_id)) return;
  const ClientTask task = it->second;
  assigned.erase(it);
  if (active != nullptr) active->OnTaskLost(site, task, reason);
}

void FederationState::AddRefusal(TaskRefusal refusal) {
  refusals.push_back(std::move(refusal));
  if (refusals.size() > 50) refusals.pop_front();
}

bool FederationState::AuditRefusal(const std::string& peer, const std::string& reason) {
  const std::string host = PeerHost(peer);
  int64_t held_back = 0;
  if (!refusals_seen.Admit(absl::StrCat(host, std::string(1, kKeySeparator), reason), absl::Now(),
                           &held_back)) {
    return false;
  }
  nlohmann::json details = {{"reason", reason}};
  if (held_back > 0) details["repeated"] = held_back;
  store->Audit("refused", host, details).IgnoreError();
  return true;
}

void FederationState::AuditHeldBack(absl::Time now) {
  for (const auto& [key, count] : refusals_seen.TakeHeldBack(now)) {
    const size_t split = key.find(kKeySeparator);
    Logger("coordinator")->warn("refused {} more calls from {} in the last minute: {}", count,
                                key.substr(0, split), key.substr(split + 1));
    store->Audit("refused", key.substr(0, split), {{"reason", key.substr(split + 1)}, {"repeated", count}})
        .IgnoreError();
  }
  for (const auto& [site, count] : joins_seen.TakeHeldBack(now)) {
    store->Audit("join", site, {{"repeated", count}}).IgnoreError();
  }
}

}  // namespace samverka::coordinator
