// tests/integration/run_command.h
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/shell_command.h"

namespace samverka {

// Runs `samverka pki ARGS` with `dir` as the working directory.
inline CommandResult RunPki(const std::filesystem::path& dir, const std::string& args) {
  return RunCommand("cd " + dir.string() + " && " + SAMVERKA_BIN + " pki " + args);
}

// Runs `body` in Debian's Python with `db` opened on the SQLite database at
// `db_path` (read-only unless `writable`) and `args` as sys.argv[2:]: an
// independent reader of a state database. The script goes to `dir`.
inline CommandResult RunSqlitePython(const std::filesystem::path& dir,
                                     const std::filesystem::path& db_path, const std::string& body,
                                     const std::string& args = "", bool writable = false) {
  const std::filesystem::path script = dir / "sqlite_check.py";
  std::ofstream(script) << "import json, sqlite3, sys\n"
                        << (writable ? "db = sqlite3.connect(sys.argv[1])\n"
                                     : "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n")
                        << body;
  return RunCommand("/usr/bin/python3 " + script.string() + " " + db_path.string() + " " + args);
}

}  // namespace samverka
