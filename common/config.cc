#include "common/config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace samverka {
namespace {

void CollectKeys(const toml::table& table, const std::string& prefix,
                 std::vector<std::string>* keys) {
  for (const auto& [key, node] : table) {
    std::string path = prefix.empty() ? std::string(key.str())
                                      : absl::StrCat(prefix, ".", std::string(key.str()));
    if (const toml::table* sub = node.as_table()) {
      CollectKeys(*sub, path, keys);
    } else {
      keys->push_back(std::move(path));
    }
  }
}

}  // namespace

ConfigFile::ConfigFile(std::unique_ptr<toml::table> table, std::string source_name)
    : table_(std::move(table)), source_name_(std::move(source_name)) {}
ConfigFile::ConfigFile(ConfigFile&&) noexcept = default;
ConfigFile& ConfigFile::operator=(ConfigFile&&) noexcept = default;
ConfigFile::~ConfigFile() = default;

absl::StatusOr<ConfigFile> ConfigFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<ConfigFile> ConfigFile::Parse(std::string_view text, std::string source_name) {
  // Debian's toml++ is built with exceptions: parse errors throw.
  try {
    toml::table table = toml::parse(text, source_name);
    return ConfigFile(std::make_unique<toml::table>(std::move(table)), std::move(source_name));
  } catch (const toml::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", error.source().begin.line, ":",
                     error.source().begin.column, ": ", std::string(error.description())));
  }
}

bool ConfigFile::Has(std::string_view key) const {
  return static_cast<bool>(table_->at_path(key));
}

absl::Status ConfigFile::WrongType(std::string_view key, std::string_view expected) const {
  return absl::InvalidArgumentError(
      absl::StrCat(source_name_, ": key '", std::string(key), "' must be ",
                   std::string(expected)));
}

absl::Status ConfigFile::Get(std::string_view key, std::string* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  if (auto v = node.value<std::string>(); v && node.is_string()) {
    *out = *v;
    return absl::OkStatus();
  }
  return WrongType(key, "a string");
}

absl::Status ConfigFile::Get(std::string_view key, int64_t* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  if (!node.is_integer()) return WrongType(key, "an integer");
  *out = *node.value<int64_t>();
  return absl::OkStatus();
}

absl::Status ConfigFile::Get(std::string_view key, int* out) {
  int64_t value = *out;
  if (absl::Status s = Get(key, &value); !s.ok()) return s;
  if (value < INT32_MIN || value > INT32_MAX) return WrongType(key, "a 32-bit integer");
  *out = static_cast<int>(value);
  return absl::OkStatus();
}

absl::Status ConfigFile::Get(std::string_view key, double* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  if (!node.is_number()) return WrongType(key, "a number");
  *out = *node.value<double>();
  return absl::OkStatus();
}

absl::Status ConfigFile::Get(std::string_view key, bool* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  if (!node.is_boolean()) return WrongType(key, "true or false");
  *out = *node.value<bool>();
  return absl::OkStatus();
}

// The elements of array `node`, each taken by `read` (nullopt: not of the
// array's type); nullopt if `node` is no such array.
template <typename T, typename Read>
std::optional<std::vector<T>> ReadArray(const toml::node_view<toml::node>& node, Read read) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return std::nullopt;
  std::vector<T> values;
  for (const toml::node& element : *array) {
    std::optional<T> value = read(element);
    if (!value.has_value()) return std::nullopt;
    values.push_back(*std::move(value));
  }
  return values;
}

template <typename T, typename Read>
absl::Status ConfigFile::GetArray(std::string_view key, std::string_view expected, Read read,
                                  std::vector<T>* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  std::optional<std::vector<T>> values = ReadArray<T>(node, read);
  if (!values.has_value()) return WrongType(key, expected);
  *out = *std::move(values);
  return absl::OkStatus();
}

absl::Status ConfigFile::Get(std::string_view key, std::vector<std::string>* out) {
  return GetArray(key, "an array of strings",
                  [](const toml::node& e) { return e.value<std::string>(); }, out);
}

absl::Status ConfigFile::Get(std::string_view key, std::vector<int64_t>* out) {
  return GetArray(key, "an array of integers", [](const toml::node& e) {
    return e.is_integer() ? e.value<int64_t>() : std::nullopt;
  }, out);
}

absl::Status ConfigFile::Get(std::string_view key, std::vector<double>* out) {
  return GetArray(key, "an array of numbers", [](const toml::node& e) -> std::optional<double> {
    if (e.is_integer()) return static_cast<double>(*e.value<int64_t>());
    return e.is_floating_point() ? e.value<double>() : std::nullopt;
  }, out);
}

absl::Status ConfigFile::GetTableNames(std::string_view key, std::vector<std::string>* out) {
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  const toml::table* table = node.as_table();
  if (table == nullptr) return WrongType(key, "a table of tables ([key.name] sections)");
  std::vector<std::string> names;
  for (const auto& [name, value] : *table) {
    const std::string path = absl::StrCat(std::string(key), ".", std::string(name.str()));
    if (!value.is_table()) return WrongType(path, "a table ([" + path + "])");
    names.emplace_back(name.str());
  }
  *out = std::move(names);
  return absl::OkStatus();
}

absl::Status ConfigFile::GetStringTable(std::string_view key,
                                        std::vector<std::pair<std::string, std::string>>* out) {
  known_.emplace(key);
  toml::node_view<toml::node> node = table_->at_path(key);
  if (!node) return absl::OkStatus();
  const toml::table* table = node.as_table();
  if (table == nullptr) return WrongType(key, "a table ([name] with name = \"...\" lines)");
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [name, value] : *table) {
    const std::string path = absl::StrCat(std::string(key), ".", std::string(name.str()));
    known_.emplace(path);
    if (!value.is_string()) return WrongType(path, "a string");
    entries.emplace_back(std::string(name.str()), *value.value<std::string>());
  }
  *out = std::move(entries);
  return absl::OkStatus();
}

absl::Status ConfigFile::CheckNoUnknownKeys() const {
  std::vector<std::string> keys;
  CollectKeys(*table_, "", &keys);
  for (const std::string& key : keys) {
    if (!known_.contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name_, ": unknown key '", key, "'"));
    }
  }
  return absl::OkStatus();
}

std::string ResolveConfigPath(const std::string& config_path, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::absolute(config_path).parent_path() / path).lexically_normal().string();
}

std::string TomlQuote(std::string_view value) {
  std::ostringstream out;
  out << toml::value<std::string>(std::string(value));
  return out.str();
}

}  // namespace samverka
