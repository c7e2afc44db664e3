// security/internal/pki_index.h
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "security/pki.h"

namespace samverka::security::internal {

// The CA's index (ca/index.json): its options, the CRL counter and a record
// of every certificate issued. Human-readable on purpose, so an operator can
// audit it with any JSON tool.
struct PkiIndex {
  std::string federation;
  CaOptions options;
  int64_t crl_number = 0;  // of the CRL most recently published
  std::vector<CertificateRecord> records;
};

// Pretty-printed JSON with a "format": 1 field.
std::string SerializePkiIndex(const PkiIndex& index);
// kDataLoss (naming `path` and the bad field) for anything but a well-formed
// index of format 1.
absl::StatusOr<PkiIndex> ParsePkiIndex(std::string_view json,
                                       std::string_view path);

// RFC 3339 in UTC with whole seconds ("2025-03-01T12:00:00Z"), and back.
std::string FormatUtc(absl::Time time);
bool ParseUtc(const std::string& text, absl::Time* time);

}  // namespace samverka::security::internal
