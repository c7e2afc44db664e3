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

#include "tests/shell_command.h"

namespace samverka::testing_tools {

// True if Debian's Python has scikit-learn (python3-sklearn).
inline bool HaveSklearn() {
  return RunCommand("/usr/bin/python3 -c 'import sklearn' >/dev/null").exit_code == 0;
}

// True if R and its survival package are installed (r-base-core,
// r-cran-survival).
inline bool HaveRSurvival() {
  return RunCommand("Rscript -e 'suppressMessages(library(survival))' >/dev/null").exit_code == 0;
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

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

}  // namespace samverka::testing_tools
