// common/config.h
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace samverka {

// Strict reader for a component's TOML configuration file. Keys are dotted
// paths ("secure_aggregation.threshold"). Every Get marks its key as known;
// CheckNoUnknownKeys then reports any key in the file that no Get asked
// for, so a misspelt key is an error rather than a silently ignored setting.
// Errors name the key and the file. Not thread-safe.
class ConfigFile {
 public:
  // kNotFound if the file is missing, kInvalidArgument with line and column
  // for a TOML syntax error.
  static absl::StatusOr<ConfigFile> Load(const std::string& path);
  static absl::StatusOr<ConfigFile> Parse(std::string_view text, std::string source_name);

  ConfigFile(ConfigFile&&) noexcept;
  ConfigFile& operator=(ConfigFile&&) noexcept;
  ~ConfigFile();

  // Each Get leaves *out unchanged when the key is absent and returns
  // kInvalidArgument when it is present with the wrong type.
  absl::Status Get(std::string_view key, std::string* out);
  absl::Status Get(std::string_view key, int64_t* out);
  absl::Status Get(std::string_view key, int* out);
  absl::Status Get(std::string_view key, double* out);
  absl::Status Get(std::string_view key, bool* out);
  absl::Status Get(std::string_view key, std::vector<std::string>* out);
  absl::Status Get(std::string_view key, std::vector<int64_t>* out);
  // Numbers, integer or not.
  absl::Status Get(std::string_view key, std::vector<double>* out);
  // The names of the sub-tables of table `key` (`[columns.age]` gives
  // "age"), sorted by name; their keys are read with Get("key.name.field").
  // kInvalidArgument when `key` is not a table of tables.
  absl::Status GetTableNames(std::string_view key, std::vector<std::string>* out);
  // The string entries of table `key` (e.g. `[datasets]`), each marked
  // known, sorted by name; *out is unchanged when the table is absent.
  // kInvalidArgument when `key` is not a table or an entry is not a string.
  absl::Status GetStringTable(std::string_view key,
                              std::vector<std::pair<std::string, std::string>>* out);
  bool Has(std::string_view key) const;

  // kInvalidArgument naming the first key that no Get has asked for.
  absl::Status CheckNoUnknownKeys() const;
  const std::string& source_name() const { return source_name_; }

 private:
  ConfigFile(std::unique_ptr<toml::table> table, std::string source_name);
  absl::Status WrongType(std::string_view key, std::string_view expected) const;
  // The array `key`, each element taken by `read` (an std::optional<T>,
  // empty for an element of another type).
  template <typename T, typename Read>
  absl::Status GetArray(std::string_view key, std::string_view expected, Read read,
                        std::vector<T>* out);

  std::unique_ptr<toml::table> table_;
  std::string source_name_;
  std::set<std::string, std::less<>> known_;
};

// `path` as written in the config file `config_path`: relative paths are
// taken relative to the file's directory; absolute and empty ones unchanged.
std::string ResolveConfigPath(const std::string& config_path, const std::string& path);

// Quotes a string for a TOML file (basic string with escapes).
std::string TomlQuote(std::string_view value);

}  // namespace samverka
