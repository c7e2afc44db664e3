// simulation/internal/parallel.h
#pragma once

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace samverka::simulation::internal {

// Calls fn(worker, item) for every item in [0, items) on `workers` threads
// (worker in [0, workers)); items are handed out in order. Joins before
// returning. fn must not throw.
inline void ParallelFor(int workers, int items,
                        const std::function<void(int, int)>& fn) {
  std::atomic<int> next{0};
  auto run = [&](int worker) {
    for (int item = next++; item < items; item = next++) fn(worker, item);
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (std::thread& t : threads) t.join();
}

}  // namespace samverka::simulation::internal
