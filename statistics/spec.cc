// statistics/spec.cc
#include "statistics/spec.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace samverka::statistics {
namespace {

std::string Key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : absl::StrCat(prefix, ".", key);
}

absl::Status Bad(const ConfigFile& config, const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(config.source_name(), ": ", key, " ", why));
}

absl::StatusOr<std::vector<double>> Edges(ConfigFile& config, const std::string& column) {
  std::vector<double> edges, range;
  int64_t bins = 0;
  SV_RETURN_IF_ERROR(config.Get(column + ".edges", &edges));
  SV_RETURN_IF_ERROR(config.Get(column + ".range", &range));
  SV_RETURN_IF_ERROR(config.Get(column + ".bins", &bins));
  if (!edges.empty() && (!range.empty() || bins != 0)) {
    return Bad(config, column, "gives edges and also range or bins; give one or the other");
  }
  if (edges.empty()) {
    if (range.size() != 2 || !std::isfinite(range[0]) || !std::isfinite(range[1]) ||
        !(range[0] < range[1])) {
      return Bad(config, column + ".range", "must be [low, high] with low < high");
    }
    if (bins < 1 || bins > static_cast<int64_t>(kMaxBins)) {
      return Bad(config, column + ".bins", absl::StrCat("must be in [1, ", kMaxBins, "]"));
    }
    for (int64_t k = 0; k <= bins; ++k) {
      edges.push_back(range[0] + (range[1] - range[0]) * static_cast<double>(k) / bins);
    }
    return edges;
  }
  if (edges.size() < 2 || edges.size() > kMaxBins + 1) {
    return Bad(config, column + ".edges", absl::StrCat("must hold 2 to ", kMaxBins + 1, " edges"));
  }
  for (size_t k = 0; k < edges.size(); ++k) {
    if (!std::isfinite(edges[k]) || (k > 0 && !(edges[k - 1] < edges[k]))) {
      return Bad(config, column + ".edges",
                 absl::StrCat("must be finite and strictly increasing (edge ", k + 1, ")"));
    }
  }
  return edges;
}

}  // namespace

std::vector<std::string> StatisticsSpec::groups() const {
  std::vector<std::string> out = {"all"};
  for (const CategoricalColumn& c : categorical) {
    if (c.name == group_by) out.insert(out.end(), c.categories.begin(), c.categories.end());
  }
  return out;
}

absl::StatusOr<StatisticsSpec> ReadStatisticsSpec(ConfigFile& config, const std::string& prefix) {
  StatisticsSpec spec;
  SV_RETURN_IF_ERROR(config.Get(Key(prefix, "min_count"), &spec.min_count));
  SV_RETURN_IF_ERROR(config.Get(Key(prefix, "group_by"), &spec.group_by));
  SV_RETURN_IF_ERROR(config.Get(Key(prefix, "decimals"), &spec.decimals));
  if (spec.min_count < 1) return Bad(config, Key(prefix, "min_count"), "must be at least 1");
  if (spec.decimals < 0 || spec.decimals > kMaxDecimals) {
    return Bad(config, Key(prefix, "decimals"), absl::StrCat("must be in [0, ", kMaxDecimals, "]"));
  }
  std::vector<std::string> names;
  SV_RETURN_IF_ERROR(config.GetTableNames(Key(prefix, "columns"), &names));
  if (names.empty()) {
    return Bad(config, Key(prefix, "columns"),
               absl::StrCat("names no column; add a [", Key(prefix, "columns"),
                            ".NAME] section for each column to describe"));
  }
  for (const std::string& name : names) {
    const std::string column = Key(prefix, "columns." + name);
    if (name.find('.') != std::string::npos || name.empty()) {
      return Bad(config, column, "is not a usable column name (no '.', not empty)");
    }
    std::vector<std::string> categories;
    SV_RETURN_IF_ERROR(config.Get(column + ".categories", &categories));
    const bool numeric = config.Has(column + ".edges") || config.Has(column + ".range") ||
                         config.Has(column + ".bins");
    if (numeric == !categories.empty()) {
      return Bad(config, column,
                 "must be numeric (range and bins, or edges) or categorical (categories), "
                 "and not both");
    }
    if (!numeric) {
      if (categories.size() > kMaxCategories) {
        return Bad(config, column + ".categories",
                   absl::StrCat("lists ", categories.size(), " categories; at most ",
                                kMaxCategories));
      }
      if (std::set<std::string>(categories.begin(), categories.end()).size() != categories.size()) {
        return Bad(config, column + ".categories", "lists a category twice");
      }
      spec.categorical.push_back({name, std::move(categories)});
      continue;
    }
    NumericColumn c{name, {}, {}};
    SV_ASSIGN_OR_RETURN(c.edges, Edges(config, column));
    SV_RETURN_IF_ERROR(config.Get(column + ".quantiles", &c.quantiles));
    for (double q : c.quantiles) {
      if (!(q > 0 && q < 1)) return Bad(config, column + ".quantiles", "must lie in (0, 1)");
    }
    spec.numeric.push_back(std::move(c));
  }
  if (!spec.group_by.empty() &&
      std::none_of(spec.categorical.begin(), spec.categorical.end(),
                   [&](const CategoricalColumn& c) { return c.name == spec.group_by; })) {
    return Bad(config, Key(prefix, "group_by"),
               absl::StrCat("names '", spec.group_by,
                            "', which is not a categorical column of [columns]"));
  }
  return spec;
}

absl::StatusOr<StatisticsSpec> LoadStatisticsSpec(const std::string& path) {
  SV_ASSIGN_OR_RETURN(ConfigFile config, ConfigFile::Load(path));
  SV_ASSIGN_OR_RETURN(StatisticsSpec spec, ReadStatisticsSpec(config, ""));
  SV_RETURN_IF_ERROR(config.CheckNoUnknownKeys());
  return spec;
}

absl::StatusOr<StatisticsSpec> ReadManifestStatistics(std::string_view manifest,
                                                      const std::string& source_name) {
  SV_ASSIGN_OR_RETURN(ConfigFile config, ConfigFile::Parse(manifest, source_name));
  return ReadStatisticsSpec(config, "statistics");
}

namespace {
double Bound(const NumericColumn& column) {
  return std::max(std::fabs(column.edges.front()), std::fabs(column.edges.back()));
}
}  // namespace

double SumUnit(const StatisticsSpec& spec, const NumericColumn& column) {
  if (spec.dp()) return Bound(column) / static_cast<double>(kDpSumUnits);
  return std::pow(10.0, -spec.decimals);
}

double SquareUnit(const StatisticsSpec& spec, const NumericColumn& column) {
  if (spec.dp()) return Bound(column) * Bound(column) / static_cast<double>(kDpSumUnits);
  return std::pow(10.0, -spec.decimals);
}

std::vector<std::string> SpecColumns(const StatisticsSpec& spec) {
  std::vector<std::string> out;
  for (const NumericColumn& c : spec.numeric) out.push_back(c.name);
  for (const CategoricalColumn& c : spec.categorical) out.push_back(c.name);
  return out;
}

absl::Status CheckSpecColumns(const StatisticsSpec& spec, const std::set<std::string>& columns,
                              const std::string& where) {
  for (const std::string& name : SpecColumns(spec)) {
    if (!columns.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", name, "' is not a column of ", where, " (its columns: ",
          absl::StrJoin(columns, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace samverka::statistics
