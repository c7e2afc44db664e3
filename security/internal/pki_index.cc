// security/internal/pki_index.cc
#include "security/internal/pki_index.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <utility>

namespace samverka::security::internal {
namespace {

constexpr char kUtcFormat[] = "%Y-%m-%dT%H:%M:%SZ";
constexpr int kFormatVersion = 1;

using nlohmann::json;

// Field readers that never throw: each returns false if `object` lacks `key`
// or it has another type.
bool GetString(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool GetInt(const json& object, const char* key, int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

bool GetInt(const json& object, const char* key, int* out) {
  int64_t value = 0;
  if (!GetInt(object, key, &value) || value < INT32_MIN || value > INT32_MAX) {
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

bool GetTime(const json& object, const char* key, absl::Time* out) {
  std::string text;
  return GetString(object, key, &text) && ParseUtc(text, out);
}

json RecordToJson(const CertificateRecord& record) {
  json object = {
      {"serial", record.serial_hex},
      {"name", record.name},
      {"role", std::string(RoleName(record.role))},
      {"subject_alt_names", record.subject_alt_names},
      {"not_after", FormatUtc(record.not_after)},
  };
  object["revoked_at"] =
      record.revoked_at ? json(FormatUtc(*record.revoked_at)) : json(nullptr);
  return object;
}

bool RecordFromJson(const json& object, CertificateRecord* record) {
  if (!object.is_object()) return false;
  std::string role;
  if (!GetString(object, "serial", &record->serial_hex) ||
      !GetString(object, "name", &record->name) ||
      !GetString(object, "role", &role) ||
      !GetTime(object, "not_after", &record->not_after)) {
    return false;
  }
  absl::StatusOr<Role> parsed_role = ParseRole(role);
  if (!parsed_role.ok()) return false;
  record->role = *parsed_role;
  auto sans = object.find("subject_alt_names");
  if (sans == object.end() || !sans->is_array()) return false;
  for (const json& san : *sans) {
    if (!san.is_string()) return false;
    record->subject_alt_names.push_back(san.get<std::string>());
  }
  auto revoked = object.find("revoked_at");
  if (revoked == object.end()) return false;
  if (!revoked->is_null()) {
    absl::Time revoked_at;
    if (!GetTime(object, "revoked_at", &revoked_at)) return false;
    record->revoked_at = revoked_at;
  }
  return true;
}

}  // namespace

std::string FormatUtc(absl::Time time) {
  return absl::FormatTime(kUtcFormat, time, absl::UTCTimeZone());
}

bool ParseUtc(const std::string& text, absl::Time* time) {
  std::string error;
  return absl::ParseTime(kUtcFormat, text, absl::UTCTimeZone(), time, &error);
}

std::string SerializePkiIndex(const PkiIndex& index) {
  json records = json::array();
  for (const CertificateRecord& record : index.records) {
    records.push_back(RecordToJson(record));
  }
  json object = {
      {"format", kFormatVersion},
      {"federation", index.federation},
      {"ca_validity_days", index.options.ca_validity_days},
      {"default_validity_days", index.options.default_validity_days},
      {"crl_validity_days", index.options.crl_validity_days},
      {"crl_number", index.crl_number},
      {"certificates", std::move(records)},
  };
  return object.dump(2) + "\n";
}

absl::StatusOr<PkiIndex> ParsePkiIndex(std::string_view text,
                                       std::string_view path) {
  auto corrupt = [&](std::string_view what) {
    return absl::DataLossError(std::string(path) +
                               " is corrupt: " + std::string(what));
  };
  const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded() || !object.is_object()) {
    return corrupt("not a JSON object");
  }
  int64_t format = 0;
  if (!GetInt(object, "format", &format) || format != kFormatVersion) {
    return corrupt("unknown \"format\" (this samverka reads format 1)");
  }
  PkiIndex index;
  if (!GetString(object, "federation", &index.federation)) {
    return corrupt("bad \"federation\"");
  }
  if (!GetInt(object, "ca_validity_days", &index.options.ca_validity_days) ||
      !GetInt(object, "default_validity_days",
              &index.options.default_validity_days) ||
      !GetInt(object, "crl_validity_days", &index.options.crl_validity_days) ||
      !index.options.Validate().ok()) {
    return corrupt("bad validity settings");
  }
  if (!GetInt(object, "crl_number", &index.crl_number) ||
      index.crl_number < 0) {
    return corrupt("bad \"crl_number\"");
  }
  auto records = object.find("certificates");
  if (records == object.end() || !records->is_array()) {
    return corrupt("bad \"certificates\"");
  }
  for (const json& entry : *records) {
    CertificateRecord record;
    if (!RecordFromJson(entry, &record)) {
      return corrupt("bad certificate entry #" +
                     std::to_string(index.records.size() + 1));
    }
    index.records.push_back(std::move(record));
  }
  return index;
}

}  // namespace samverka::security::internal
