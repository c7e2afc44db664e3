// common/logging.h
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace samverka {

// The logger of one area ("client", "coordinator", "simulation", ...),
// registered as "samverka.<area>" and writing to stderr. Created on first
// use; thread-safe. Never log keys, secret shares, raw updates or personal
// data through it.
std::shared_ptr<spdlog::logger> Logger(std::string_view area);

// Sets the level of every Samverka logger ("trace", "debug", "info",
// "warn", "error", "off"); false for an unknown name.
bool SetLogLevel(std::string_view level);

}  // namespace samverka
