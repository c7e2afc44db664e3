// common/logging.h
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "absl/strings/string_view.h"

#ifndef ABSL_USES_STD_STRING_VIEW
// Debian's Abseil has its own string_view (Status::message() returns it);
// let fmt and spdlog format it like std::string_view.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(absl::string_view text, Context& context) const {
    return fmt::formatter<std::string_view>::format(std::string_view(text.data(), text.size()),
                                                    context);
  }
};
#endif

namespace samverka {

// The logger of one area ("client", "coordinator", "simulation", ...),
// registered as "samverka.<area>" and writing to stderr. Created on first
// use; thread-safe. Never log keys, secret shares, raw updates or personal
// data through it.
std::shared_ptr<spdlog::logger> Logger(std::string_view area);

// Sets the level of every Samverka logger ("trace", "debug", "info",
// "warn", "error", "off"); false for an unknown name.
bool SetLogLevel(std::string_view level);

// The level last set by SetLogLevel ("info" by default), as SetLogLevel
// takes it: for passing --log-level on to a child process.
std::string LogLevelName();

}  // namespace samverka
