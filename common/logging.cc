#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <string>

namespace samverka {
namespace {

std::mutex& LoggerMutex() {
  static std::mutex mutex;
  return mutex;
}

spdlog::level::level_enum& CurrentLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

}  // namespace

std::shared_ptr<spdlog::logger> Logger(std::string_view area) {
  const std::string name = "samverka." + std::string(area);
  std::lock_guard<std::mutex> lock(LoggerMutex());
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_level(CurrentLevel());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  return logger;
}

bool SetLogLevel(std::string_view level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") return false;
  std::lock_guard<std::mutex> lock(LoggerMutex());
  CurrentLevel() = parsed;
  spdlog::apply_all([parsed](std::shared_ptr<spdlog::logger> l) {
    if (l->name().rfind("samverka.", 0) == 0) l->set_level(parsed);
  });
  return true;
}

std::string LogLevelName() {
  std::lock_guard<std::mutex> lock(LoggerMutex());
  const spdlog::string_view_t name = spdlog::level::to_string_view(CurrentLevel());
  return std::string(name.data(), name.size());
}

}  // namespace samverka
