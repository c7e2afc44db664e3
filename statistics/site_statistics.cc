// statistics/site_statistics.cc
#include "statistics/site_statistics.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/datasets/internal/csv_parser.h"
#include "client/datasets/internal/file_reader.h"
#include "common/status_macros.h"

namespace samverka::statistics {
namespace {

absl::StatusOr<size_t> ColumnIndex(const Table& table, const std::string& name) {
  auto it = std::find(table.header.begin(), table.header.end(), name);
  if (it == table.header.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(table.path, ": no column '", name, "'; its columns are ",
                     absl::StrJoin(table.header, ", ")));
  }
  return static_cast<size_t>(it - table.header.begin());
}

// Adds `add` to the signed fixed-point sum in `slot`, refusing to pass the
// bound.
// Adds `add`, in units of `unit` (rounded), to the fixed-point sum `slot`.
absl::Status AddFixed(int64_t* slot, double add, double unit, const Table& table,
                      const std::string& column) {
  const double scaled = std::round(add / unit);
  const double total = static_cast<double>(*slot) + scaled;
  if (!(std::fabs(total) < static_cast<double>(kMaxSiteSum))) {
    return absl::InvalidArgumentError(absl::StrCat(
        table.path, ": the sums of column '", column, "' pass 2^56 units of ", unit,
        "; set a smaller `decimals` in the statistics spec"));
  }
  *slot += static_cast<int64_t>(scaled);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Table> ReadTable(const std::string& path) {
  SV_ASSIGN_OR_RETURN(const std::string text, client::internal::ReadFileMaybeGzip(path));
  Table table;
  table.path = path;
  bool have_header = false;
  SV_RETURN_IF_ERROR(client::internal::ForEachCsvRecord(
      text, path, [&](int64_t line, const std::vector<std::string>& fields) -> absl::Status {
        std::vector<std::string> cells;
        for (const std::string& f : fields) cells.emplace_back(absl::StripAsciiWhitespace(f));
        if (!have_header) {
          have_header = true;
          table.header = std::move(cells);
          return absl::OkStatus();
        }
        if (cells.size() != table.header.size()) {
          return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", cells.size(),
                                                         " fields; the header has ",
                                                         table.header.size()));
        }
        table.rows.push_back(std::move(cells));
        table.lines.push_back(line);
        return absl::OkStatus();
      }));
  if (!have_header) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, expected a header row"));
  if (table.rows.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no data rows after the header"));
  return table;
}

absl::StatusOr<std::vector<std::string>> ReadHeader(const std::string& path) {
  SV_ASSIGN_OR_RETURN(const std::string text, client::internal::ReadFileMaybeGzip(path));
  std::vector<std::string> header;
  absl::Status parsed = client::internal::ForEachCsvRecord(
      text, path, [&](int64_t, const std::vector<std::string>& fields) -> absl::Status {
        for (const std::string& f : fields) header.emplace_back(absl::StripAsciiWhitespace(f));
        return absl::CancelledError("the header is all that is read");
      });
  if (header.empty()) {
    return parsed.ok() || absl::IsCancelled(parsed)
               ? absl::InvalidArgumentError(absl::StrCat(path, ": empty file, expected a header row"))
               : parsed;
  }
  return header;
}

bool IsMissing(const std::string& cell) {
  const std::string c = absl::AsciiStrToLower(absl::StripAsciiWhitespace(cell));
  return c.empty() || c == "na" || c == "n/a" || c == "nan" || c == "null";
}

size_t VectorLength(const StatisticsSpec& spec) {
  size_t per_group = 1;
  for (const NumericColumn& c : spec.numeric) per_group += 6 + (c.edges.size() - 1);
  for (const CategoricalColumn& c : spec.categorical) per_group += c.categories.size() + 2;
  return per_group * spec.groups().size();
}

absl::StatusOr<std::vector<uint64_t>> EncodeSiteStatistics(const StatisticsSpec& spec,
                                                           const Table& table) {
  const std::vector<std::string> groups = spec.groups();
  // Each row's groups: "all", and its group_by category if it has one.
  std::vector<std::vector<size_t>> row_groups(table.rows.size(), std::vector<size_t>{0});
  if (!spec.group_by.empty()) {
    SV_ASSIGN_OR_RETURN(const size_t g, ColumnIndex(table, spec.group_by));
    for (size_t r = 0; r < table.rows.size(); ++r) {
      auto it = std::find(groups.begin() + 1, groups.end(), table.rows[r][g]);
      if (it != groups.end()) row_groups[r].push_back(static_cast<size_t>(it - groups.begin()));
    }
  }
  const size_t per_group = VectorLength(spec) / groups.size();
  std::vector<int64_t> out(per_group * groups.size(), 0);
  for (size_t r = 0; r < table.rows.size(); ++r) {
    for (size_t g : row_groups[r]) ++out[g * per_group];
  }
  size_t offset = 1;
  for (const NumericColumn& c : spec.numeric) {
    SV_ASSIGN_OR_RETURN(const size_t index, ColumnIndex(table, c.name));
    const size_t bins = c.edges.size() - 1;
    for (size_t r = 0; r < table.rows.size(); ++r) {
      const std::string& cell = table.rows[r][index];
      std::optional<double> value;
      if (!IsMissing(cell)) {
        double v = 0;
        if (!absl::SimpleAtod(cell, &v) || !std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat(table.path, ":", table.lines[r], ": column '", c.name, "' holds '",
                           cell.substr(0, 40), "', neither a number nor missing (empty, NA)"));
        }
        value = v;
      }
      for (size_t g : row_groups[r]) {
        int64_t* slot = &out[g * per_group + offset];
        if (!value.has_value()) {
          ++slot[1];
          continue;
        }
        ++slot[0];
        // Under DP a value's share of the sums is bounded by the edges.
        const double summed =
            spec.dp() ? std::clamp(*value, c.edges.front(), c.edges.back()) : *value;
        SV_RETURN_IF_ERROR(AddFixed(&slot[2], summed, SumUnit(spec, c), table, c.name));
        SV_RETURN_IF_ERROR(AddFixed(&slot[3], summed * summed, SquareUnit(spec, c), table, c.name));
        if (*value < c.edges.front()) {
          ++slot[4];
        } else if (*value > c.edges.back()) {
          ++slot[5 + bins];
        } else {
          // Bin k holds [edges[k], edges[k+1]); the last bin is closed.
          size_t k = std::upper_bound(c.edges.begin(), c.edges.end(), *value) - c.edges.begin() - 1;
          ++slot[5 + std::min(k, bins - 1)];
        }
      }
    }
    offset += 6 + bins;
  }
  for (const CategoricalColumn& c : spec.categorical) {
    SV_ASSIGN_OR_RETURN(const size_t index, ColumnIndex(table, c.name));
    const size_t k = c.categories.size();
    for (size_t r = 0; r < table.rows.size(); ++r) {
      const std::string& cell = table.rows[r][index];
      size_t slot = k + 1;  // missing
      if (!IsMissing(cell)) {
        slot = std::find(c.categories.begin(), c.categories.end(), cell) - c.categories.begin();
      }
      for (size_t g : row_groups[r]) ++out[g * per_group + offset + slot];
    }
    offset += k + 2;
  }
  return std::vector<uint64_t>(out.begin(), out.end());
}

}  // namespace samverka::statistics
