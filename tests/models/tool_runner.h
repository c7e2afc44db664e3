// tests/models/tool_runner.h
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace samverka::testing_tools {

// The exit code and combined output of a shell command.
struct ToolResult {
  int exit_code = -1;
  std::string output;
};

inline ToolResult RunTool(const std::string& command) {
  ToolResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// True if Debian's Python has scikit-learn (python3-sklearn).
inline bool HaveSklearn() {
  return RunTool("/usr/bin/python3 -c 'import sklearn' >/dev/null").exit_code == 0;
}

// True if R and its survival package are installed (r-base-core,
// r-cran-survival).
inline bool HaveRSurvival() {
  return RunTool("Rscript -e 'suppressMessages(library(survival))' >/dev/null").exit_code == 0;
}

// Parses the "name value" lines a tool printed (other lines are ignored).
inline std::map<std::string, double> ParseNamedValues(const std::string& output) {
  std::map<std::string, double> out;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name;
    double value = 0;
    if (fields >> name >> value) out[name] = value;
  }
  return out;
}

// An empty directory for one test, named after it and the process.
inline std::filesystem::path FreshToolDir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (prefix + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
       std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

}  // namespace samverka::testing_tools
