// statistics/summary.cc
#include "statistics/summary.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "statistics/privacy.h"
#include "statistics/site_statistics.h"

namespace samverka::statistics {
namespace {

using nlohmann::json;

// A released count: null when it is from 1 to min_count - 1.
json Count(int64_t count, int64_t min_count) {
  if (count > 0 && count < min_count) return nullptr;
  return count;
}

// Where order statistic `j` (0-based) of a histogram falls: -1 below the
// range, bins.size() above it, else the bin.
int64_t BinOf(int64_t j, int64_t below, const std::vector<int64_t>& bins) {
  if (j < below) return -1;
  int64_t seen = below;
  for (size_t k = 0; k < bins.size(); ++k) {
    seen += bins[k];
    if (j < seen) return static_cast<int64_t>(k);
  }
  return static_cast<int64_t>(bins.size());
}

// The value of order statistic `j`, spread evenly inside its bin `k`.
double Spread(int64_t j, int64_t k, int64_t below, const std::vector<int64_t>& bins,
              const std::vector<double>& edges) {
  int64_t before = below;
  for (int64_t i = 0; i < k; ++i) before += bins[i];
  const double within = (static_cast<double>(j - before) + 0.5) / static_cast<double>(bins[k]);
  return edges[k] + within * (edges[k + 1] - edges[k]);
}

json Quantile(double q, int64_t n, int64_t below, const std::vector<int64_t>& bins,
              const std::vector<double>& edges, int64_t min_count) {
  json out = {{"q", q}, {"value", nullptr}, {"error_bound", nullptr}};
  if (n < min_count || n == 0) return out;
  const double position = static_cast<double>(n - 1) * q;
  const int64_t j1 = static_cast<int64_t>(std::floor(position));
  const int64_t j2 = static_cast<int64_t>(std::ceil(position));
  const int64_t k1 = BinOf(j1, below, bins), k2 = BinOf(j2, below, bins);
  const int64_t last = static_cast<int64_t>(bins.size());
  if (k1 < 0 || k2 < 0 || k1 >= last || k2 >= last) {
    out["note"] = "outside the histogram's range";
    return out;
  }
  for (int64_t k = k1; k <= k2; ++k) {
    if (bins[k] < min_count) {
      out["note"] = "rests on a suppressed bin";
      return out;
    }
  }
  const double f = position - static_cast<double>(j1);
  const double lo = edges[k1], hi = edges[k2 + 1];
  const double estimate = std::clamp((1 - f) * Spread(j1, k1, below, bins, edges) +
                                         f * Spread(j2, k2, below, bins, edges),
                                     lo, hi);
  out["value"] = estimate;
  out["error_bound"] = std::max(estimate - lo, hi - estimate);
  return out;
}

json Numeric(const NumericColumn& c, const int64_t* slot, const StatisticsSpec& spec) {
  const int64_t n = slot[0];
  const size_t bins = c.edges.size() - 1;
  json out = {{"count", Count(n, spec.min_count)}, {"missing", Count(slot[1], spec.min_count)}};
  // The rounding of one value's share of the sum and of the squares.
  const double delta = 0.5 * SumUnit(spec, c);
  const double delta_squares = 0.5 * SquareUnit(spec, c);
  json mean = nullptr, variance = nullptr, sd = nullptr;
  json mean_bound = nullptr, variance_bound = nullptr, sd_bound = nullptr;
  if (n >= spec.min_count && n > 0) {
    const double sum = static_cast<double>(slot[2]) * SumUnit(spec, c);
    const double squares = static_cast<double>(slot[3]) * SquareUnit(spec, c);
    // Under DP the noisy mean stays in the range its values were clamped to.
    const double m = spec.dp() ? std::clamp(sum / static_cast<double>(n), c.edges.front(),
                                            c.edges.back())
                               : sum / static_cast<double>(n);
    mean = m;
    mean_bound = delta;
    if (n > 1) {
      const double v = std::max(0.0, (squares - sum * sum / static_cast<double>(n)) /
                                         static_cast<double>(n - 1));
      // From |error of sum| <= n delta, |error of squares| <= n delta_squares.
      const double vb = static_cast<double>(n) / static_cast<double>(n - 1) *
                        (delta_squares + delta * (2 * (std::fabs(m) + delta) + delta));
      variance = v;
      variance_bound = vb;
      sd = std::sqrt(v);
      sd_bound = std::sqrt(vb);  // |sqrt a - sqrt b| <= sqrt |a - b|
    }
  }
  out["mean"] = mean;
  out["mean_error_bound"] = mean_bound;
  out["variance"] = variance;
  out["variance_error_bound"] = variance_bound;
  out["sd"] = sd;
  out["sd_error_bound"] = sd_bound;
  if (spec.dp()) {
    // The standard deviation of the noise on the sum and on the squares, in
    // the column's units (statistics/privacy.h).
    const double scale = spec.dp_noise_multiplier * L2Sensitivity(spec) *
                         static_cast<double>(kDpSumUnits);
    out["sum_noise_sd"] = scale * SumUnit(spec, c);
    out["squares_noise_sd"] = scale * SquareUnit(spec, c);
  }
  std::vector<int64_t> counts(slot + 5, slot + 5 + bins);
  json released = json::array();
  for (int64_t k : counts) released.push_back(Count(k, spec.min_count));
  out["histogram"] = {{"edges", c.edges},
                      {"counts", released},
                      {"below", Count(slot[4], spec.min_count)},
                      {"above", Count(slot[5 + bins], spec.min_count)}};
  json quantiles = json::array();
  for (double q : c.quantiles) {
    quantiles.push_back(Quantile(q, n, slot[4], counts, c.edges, spec.min_count));
  }
  out["quantiles"] = quantiles;
  return out;
}

std::string Text(const json& value) {
  if (value.is_null()) return "";
  if (value.is_number_float()) {
    const double v = value.get<double>();
    return absl::StrCat(v);
  }
  return value.dump();
}

}  // namespace

absl::StatusOr<json> Summarise(const StatisticsSpec& spec, const std::vector<uint64_t>& sum,
                               int sites) {
  if (sum.size() != VectorLength(spec)) {
    return absl::InvalidArgumentError(absl::StrCat("the summed vector has ", sum.size(),
                                                   " elements; the spec's has ",
                                                   VectorLength(spec)));
  }
  std::vector<int64_t> values(sum.begin(), sum.end());  // two's complement
  if (spec.dp()) {
    // Noise can make a count negative; counts are released as at least 0
    // (post-processing keeps the guarantee).
    const size_t per_group = values.size() / spec.groups().size();
    for (size_t g = 0; g < spec.groups().size(); ++g) {
      size_t offset = g * per_group;
      values[offset] = std::max<int64_t>(0, values[offset]);
      offset += 1;
      for (const NumericColumn& c : spec.numeric) {
        for (size_t k = 0; k < 6 + (c.edges.size() - 1); ++k) {
          if (k != 2 && k != 3) values[offset + k] = std::max<int64_t>(0, values[offset + k]);
        }
        offset += 6 + (c.edges.size() - 1);
      }
      for (const CategoricalColumn& c : spec.categorical) {
        for (size_t k = 0; k < c.categories.size() + 2; ++k) {
          values[offset + k] = std::max<int64_t>(0, values[offset + k]);
        }
        offset += c.categories.size() + 2;
      }
    }
  }
  const std::vector<std::string> groups = spec.groups();
  const size_t per_group = values.size() / groups.size();
  json out = {{"sites", sites}, {"min_count", spec.min_count}, {"decimals", spec.decimals}};
  if (!spec.group_by.empty()) out["group_by"] = spec.group_by;
  if (spec.dp()) {
    const double delta = L2Sensitivity(spec);
    out["dp"] = {{"mechanism", "distributed discrete Gaussian"},
                 {"noise_multiplier", spec.dp_noise_multiplier},
                 {"l2_sensitivity", delta},
                 {"count_noise_sd", spec.dp_noise_multiplier * delta}};
  }
  json released = json::array();
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t* base = values.data() + g * per_group;
    if (base[0] < spec.min_count) {
      released.push_back({{"group", groups[g]}, {"suppressed", true}});
      continue;
    }
    json columns = json::object();
    size_t offset = 1;
    for (const NumericColumn& c : spec.numeric) {
      columns[c.name] = Numeric(c, base + offset, spec);
      offset += 6 + (c.edges.size() - 1);
    }
    for (const CategoricalColumn& c : spec.categorical) {
      json counts = json::object();
      for (size_t k = 0; k < c.categories.size(); ++k) {
        counts[c.categories[k]] = Count(base[offset + k], spec.min_count);
      }
      columns[c.name] = {{"counts", counts},
                         {"other", Count(base[offset + c.categories.size()], spec.min_count)},
                         {"missing", Count(base[offset + c.categories.size() + 1], spec.min_count)}};
      offset += c.categories.size() + 2;
    }
    released.push_back({{"group", groups[g]}, {"rows", base[0]}, {"columns", columns}});
  }
  out["groups"] = released;
  return out;
}

namespace {

// Calls `row(group, column, statistic, value)` for each released number.
template <typename Row>
void ForEachStatistic(const json& summary, Row row) {
  for (const json& group : summary["groups"]) {
    const std::string name = group["group"];
    if (group.value("suppressed", false)) {
      row(name, "", "rows", json(nullptr));
      continue;
    }
    row(name, "", "rows", group["rows"]);
    for (const auto& [column, stats] : group["columns"].items()) {
      if (stats.contains("counts") && stats["counts"].is_object()) {
        for (const auto& [category, count] : stats["counts"].items()) {
          row(name, column, "count[" + category + "]", count);
        }
        row(name, column, "count[other]", stats["other"]);
        row(name, column, "missing", stats["missing"]);
        continue;
      }
      for (const char* key : {"count", "missing", "mean", "mean_error_bound", "sd",
                              "sd_error_bound", "variance", "variance_error_bound"}) {
        row(name, column, key, stats[key]);
      }
      const json& h = stats["histogram"];
      row(name, column, "below[" + Text(h["edges"].front()) + "]", h["below"]);
      for (size_t k = 0; k < h["counts"].size(); ++k) {
        row(name, column,
            "bin[" + Text(h["edges"][k]) + "," + Text(h["edges"][k + 1]) +
                (k + 2 == h["edges"].size() ? "]" : ")"),
            h["counts"][k]);
      }
      row(name, column, "above[" + Text(h["edges"].back()) + "]", h["above"]);
      for (const json& q : stats["quantiles"]) {
        const std::string label = "q" + Text(q["q"]);
        row(name, column, label, q["value"]);
        row(name, column, label + "_error_bound", q["error_bound"]);
      }
    }
  }
}

}  // namespace

std::string SummaryText(const json& summary) {
  std::string out = absl::StrCat("statistics of ", summary["sites"].get<int>(),
                                 " sites (counts below ", summary["min_count"].get<int64_t>(),
                                 " suppressed: shown as -)\n");
  if (summary.contains("dp")) {
    const json& dp = summary["dp"];
    absl::StrAppend(&out, "differential privacy: ", dp["mechanism"].get<std::string>(),
                    " noise, multiplier ", Text(dp["noise_multiplier"]), "; every count carries "
                    "noise of sd ", Text(dp["count_noise_sd"]));
    if (dp.contains("epsilon")) {
      absl::StrAppend(&out, "; epsilon ", Text(dp["epsilon"]), " (delta ", Text(dp["delta"]), ")");
    }
    absl::StrAppend(&out, "\n");
  }
  // A group of group_by is shown as "grade=2".
  const std::string group_by = summary.contains("group_by") ? summary["group_by"].get<std::string>() : "";
  ForEachStatistic(summary, [&](const std::string& group, const std::string& column,
                                const std::string& statistic, const json& value) {
    const std::string shown = value.is_null() ? "-" : Text(value);
    const std::string label = group == "all" || group_by.empty() ? group : group_by + "=" + group;
    absl::StrAppend(&out, "  ", label, "  ", column.empty() ? "" : column + "  ", statistic,
                    " = ", shown, "\n");
  });
  return out;
}

std::string SummaryCsv(const json& summary) {
  std::string out = "group,column,statistic,value\n";
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  ForEachStatistic(summary, [&](const std::string& group, const std::string& column,
                                const std::string& statistic, const json& value) {
    absl::StrAppend(&out, quote(group), ",", quote(column), ",", quote(statistic), ",",
                    value.is_null() ? "" : value.dump(), "\n");
  });
  return out;
}

}  // namespace samverka::statistics
