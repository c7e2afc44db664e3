// coordinator/federation/transfer_watch.h
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace samverka::coordinator {

// Transfers hold scarce things (an upload or download slot, a server thread,
// buffers), so they must keep moving. A hostile site once opened two upload
// streams and sent nothing, holding both upload slots, and opened eight
// downloads it never read; every honest site waited behind them. The watch
// bounds both: a site has at most one upload and one download open, and a
// transfer with no chunk moving for `stall_limit` is cut (its cancel
// callback runs, which for gRPC is ServerContext::TryCancel) and logged.
// A transfer's stall clock starts at its first Progress(), so time spent
// waiting in the queue for a slot does not count against it. Thread-safe.
class TransferWatch {
 public:
  enum class Kind { kUpload, kDownload };

  // One open transfer; ends when destroyed.
  class Transfer {
   public:
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;
    ~Transfer();
    // A chunk moved at `now` (and the stall clock runs from then on).
    void Progress(absl::Time now = absl::Now());
    // True once the watch cut this transfer.
    bool cut() const;

   private:
    friend class TransferWatch;
    Transfer(TransferWatch* watch, std::pair<std::string, Kind> key)
        : watch_(watch), key_(std::move(key)) {}
    TransferWatch* watch_;
    std::pair<std::string, Kind> key_;
  };

  // `check_every` > 0 runs a thread that cuts stalled transfers at that
  // interval; 0 leaves it to CutStalled (tests).
  TransferWatch(absl::Duration stall_limit, absl::Duration check_every);
  ~TransferWatch();
  TransferWatch(const TransferWatch&) = delete;
  TransferWatch& operator=(const TransferWatch&) = delete;

  // kResourceExhausted if `site` already has a transfer of `kind` open.
  // `cancel` must stay callable while the Transfer lives.
  absl::StatusOr<std::unique_ptr<Transfer>> Begin(const std::string& site, Kind kind,
                                                  std::function<void()> cancel);
  // Cuts every armed transfer whose last chunk moved before now -
  // stall_limit; returns how many it cut.
  int CutStalled(absl::Time now);

  absl::Duration stall_limit() const { return stall_limit_; }

 private:
  struct Entry {
    std::function<void()> cancel;
    bool armed = false;
    bool cut = false;
    absl::Time last;
  };
  void Run(absl::Duration check_every);

  const absl::Duration stall_limit_;
  mutable absl::Mutex mutex_;
  std::map<std::pair<std::string, Kind>, Entry> open_ ABSL_GUARDED_BY(mutex_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace samverka::coordinator
