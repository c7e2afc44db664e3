// statistics/site_statistics.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "statistics/spec.h"

namespace samverka::statistics {

// A CSV file as read: its header and its cells as text, by row.
struct Table {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;  // the line each row starts on
};

// Reads a CSV file with a header row (plain or gzip). kNotFound, or
// kInvalidArgument naming the file and line: no header, no rows, a row
// with another number of fields than the header.
absl::StatusOr<Table> ReadTable(const std::string& path);

// The header row of a CSV file (its column names), trimmed. Errors as
// ReadTable.
absl::StatusOr<std::vector<std::string>> ReadHeader(const std::string& path);

// A cell that counts as missing: empty, NA, N/A, NaN or null (any case,
// after trimming spaces).
bool IsMissing(const std::string& cell);

// Elements of the vector a site sends for `spec`: for each group, the
// group's rows, then per numeric column count, missing, sum, sum of squares,
// below, one count per bin, above; per categorical column one count per
// category, other, missing.
size_t VectorLength(const StatisticsSpec& spec);

// The largest magnitude a site's sum may have (2^56): sums of up to 128
// sites cannot wrap the 64-bit ring.
inline constexpr int64_t kMaxSiteSum = int64_t{1} << 56;

// This site's vector for `spec` over `table`: counts, and the fixed-point
// sums (each value rounded to spec.decimals places, signed sums in two's
// complement), the one thing that leaves the site, masked. kInvalidArgument
// naming the file: a column the spec names that the file lacks (listing the
// file's columns), a cell of a numeric column that is neither a number nor
// missing (with line and column), a value whose fixed-point sum would pass
// kMaxSiteSum (lower `decimals`).
absl::StatusOr<std::vector<uint64_t>> EncodeSiteStatistics(const StatisticsSpec& spec,
                                                           const Table& table);

}  // namespace samverka::statistics
