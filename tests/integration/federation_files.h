// tests/integration/federation_files.h
#pragma once

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

namespace samverka {

// The [tls] section of a coordinator.toml whose PKI was made by
// `samverka pki` in the same directory as the file.
inline std::string CoordinatorTlsSection() {
  return "[tls]\nca_certificate = \"pki/ca/ca.crt\"\n"
         "certificate = \"pki/sites/coordinator/coordinator.crt\"\n"
         "private_key = \"pki/sites/coordinator/coordinator.key\"\ncrl = \"pki/ca/crl.pem\"\n";
}

// Writes DIR/SITE.toml for a client daemon of `site` (certificate from
// DIR/pki/sites/SITE) whose one data set, "breast", is
// examples/healthcare/DATA_FILE (or DATA_FILE itself if it is an absolute
// path); `extra` holds top-level keys. Returns its path.
inline std::filesystem::path WriteClientConfig(const std::filesystem::path& dir,
                                               const std::string& site, const std::string& target,
                                               const std::string& data_file,
                                               const std::string& extra = "") {
  const std::filesystem::path path = dir / (site + ".toml");
  std::ofstream(path) << "coordinator = \"" << target << "\"\n"
                      << "poll_seconds = 1\nmax_backoff_seconds = 1\n"
                      << "state_dir = \"state-" << site << "\"\n" << extra
                      << "[datasets]\nbreast = \"csv:"
                      << (data_file.starts_with("/")
                              ? data_file
                              : std::string(SAMVERKA_SOURCE_DIR) + "/examples/healthcare/" +
                                    data_file)
                      << ":malignant\"\n"
                      << "[tls]\nca_certificate = \"pki/ca/ca.crt\"\n"
                      << "certificate = \"pki/sites/" << site << "/" << site << ".crt\"\n"
                      << "private_key = \"pki/sites/" << site << "/" << site << ".key\"\n";
  return path;
}

// The port from the coordinator's "listening on ... (port N)" line, 0 if
// absent.
inline int ListeningPort(const std::string& coordinator_output) {
  std::smatch match;
  if (!std::regex_search(coordinator_output, match, std::regex("port ([0-9]+)"))) return 0;
  return std::stoi(match[1]);
}

}  // namespace samverka
