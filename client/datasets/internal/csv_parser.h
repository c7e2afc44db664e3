// client/datasets/internal/csv_parser.h
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace samverka::client::internal {

// Called once per record with the 1-based line on which the record starts
// and its fields (quotes removed, "" unescaped, whitespace kept). A non-OK
// return stops the parse and is returned as is.
using CsvRecordCallback = absl::FunctionRef<absl::Status(
    int64_t line, const std::vector<std::string>& fields)>;

// Splits RFC 4180 text into records: comma-separated fields, optional double
// quotes (which may hold commas, line breaks and "" for a quote), LF or CRLF
// line ends, an optional UTF-8 byte-order mark. Blank lines are skipped.
// kInvalidArgument naming `path` and the line for an unterminated quoted
// field or text after a closing quote.
absl::Status ForEachCsvRecord(absl::string_view text, absl::string_view path,
                              CsvRecordCallback callback);

}  // namespace samverka::client::internal
