// common/malloc_tuning.h
#pragma once

#include <cstdlib>
#include <cstring>

namespace samverka {

// True if the user tuned glibc's malloc through the environment
// (GLIBC_TUNABLES glibc.malloc.*, MALLOC_MMAP_THRESHOLD_, ...): code that
// sets its own malloc parameters (mallopt) then leaves them alone.
inline bool MallocTunedByEnvironment() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
         std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
         std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
         std::getenv("MALLOC_ARENA_MAX") != nullptr;
}

}  // namespace samverka
