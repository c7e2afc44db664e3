// coordinator/federation/transfer_watch.cc
#include "coordinator/federation/transfer_watch.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace samverka::coordinator {
namespace {

const char* Name(TransferWatch::Kind kind) {
  return kind == TransferWatch::Kind::kUpload ? "upload" : "download";
}

}  // namespace

TransferWatch::Transfer::~Transfer() {
  absl::MutexLock lock(&watch_->mutex_);
  watch_->open_.erase(key_);
}

void TransferWatch::Transfer::Progress(absl::Time now) {
  absl::MutexLock lock(&watch_->mutex_);
  Entry& entry = watch_->open_.at(key_);
  entry.armed = true;
  entry.last = now;
}

bool TransferWatch::Transfer::cut() const {
  absl::MutexLock lock(&watch_->mutex_);
  return watch_->open_.at(key_).cut;
}

TransferWatch::TransferWatch(absl::Duration stall_limit, absl::Duration check_every)
    : stall_limit_(stall_limit) {
  if (check_every > absl::ZeroDuration()) thread_ = std::thread([this, check_every] { Run(check_every); });
}

TransferWatch::~TransferWatch() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<TransferWatch::Transfer>> TransferWatch::Begin(
    const std::string& site, Kind kind, std::function<void()> cancel) {
  absl::MutexLock lock(&mutex_);
  auto [it, inserted] = open_.try_emplace({site, kind});
  if (!inserted) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "site ", site, " already has a model ", Name(kind),
        " open; a site may have one at a time"));
  }
  it->second.cancel = std::move(cancel);
  return std::unique_ptr<Transfer>(new Transfer(this, it->first));
}

int TransferWatch::CutStalled(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  int cut = 0;
  for (auto& [key, entry] : open_) {
    if (!entry.armed || entry.cut || now - entry.last < stall_limit_) continue;
    entry.cut = true;
    ++cut;
    Logger("coordinator")->warn("cut the model {} of site {}: no bytes moved for {:.0f} s",
                                Name(key.second), key.first, absl::ToDoubleSeconds(now - entry.last));
    // Under the lock: the Transfer (and the stream its callback cancels)
    // cannot end meanwhile. Cancelling only marks the stream.
    entry.cancel();
  }
  return cut;
}

void TransferWatch::Run(absl::Duration check_every) {
  while (!stop_.WaitForNotificationWithTimeout(check_every)) CutStalled(absl::Now());
}

}  // namespace samverka::coordinator
