// client/datasets/internal/csv_parser.cc
#include "client/datasets/internal/csv_parser.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace samverka::client::internal {
namespace {

constexpr absl::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

// A cursor over the text that counts lines. Not thread-safe.
class CsvScanner {
 public:
  CsvScanner(absl::string_view text, absl::string_view path)
      : text_(text), path_(path) {
    if (absl::StartsWith(text_, kUtf8ByteOrderMark)) {
      pos_ = kUtf8ByteOrderMark.size();
    }
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  int64_t line() const { return line_; }

  // Reads one record into `fields`; call only when !AtEnd().
  absl::Status ReadRecord(std::vector<std::string>& fields) {
    fields.clear();
    while (true) {
      std::string field;
      SV_RETURN_IF_ERROR(ReadField(field, fields.size() + 1));
      fields.push_back(std::move(field));
      if (AtEnd()) return absl::OkStatus();
      if (ConsumeLineEnd()) return absl::OkStatus();
      ++pos_;  // The comma.
    }
  }

 private:
  bool AtLineEnd() const {
    return text_[pos_] == '\n' ||
           (text_[pos_] == '\r' && pos_ + 1 < text_.size() &&
            text_[pos_ + 1] == '\n');
  }

  bool AtFieldEnd() const {
    return AtEnd() || text_[pos_] == ',' || AtLineEnd();
  }

  bool ConsumeLineEnd() {
    if (!AtLineEnd()) return false;
    pos_ += text_[pos_] == '\r' ? 2 : 1;
    ++line_;
    return true;
  }

  absl::Status ReadField(std::string& field, size_t column) {
    if (!AtEnd() && text_[pos_] == '"') return ReadQuoted(field, column);
    while (!AtFieldEnd()) field.push_back(text_[pos_++]);
    return absl::OkStatus();
  }

  absl::Status ReadQuoted(std::string& field, size_t column) {
    const int64_t start_line = line_;
    ++pos_;  // The opening quote.
    while (true) {
      if (AtEnd()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ":", start_line, ": column ", column,
                         ": unterminated quoted field"));
      }
      const char c = text_[pos_++];
      if (c == '"') {
        if (AtEnd() || text_[pos_] != '"') break;
        ++pos_;  // "" is one literal quote.
      } else if (c == '\n') {
        ++line_;
      }
      field.push_back(c);
    }
    if (AtFieldEnd()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ":", line_, ": column ", column, ": unexpected character '",
        absl::string_view(&text_[pos_], 1), "' after a closing quote"));
  }

  absl::string_view text_;
  absl::string_view path_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

bool IsBlank(const std::vector<std::string>& fields) {
  return fields.size() == 1 && fields[0].empty();
}

}  // namespace

absl::Status ForEachCsvRecord(absl::string_view text, absl::string_view path,
                              CsvRecordCallback callback) {
  CsvScanner scanner(text, path);
  std::vector<std::string> fields;
  while (!scanner.AtEnd()) {
    const int64_t line = scanner.line();
    SV_RETURN_IF_ERROR(scanner.ReadRecord(fields));
    if (IsBlank(fields)) continue;
    SV_RETURN_IF_ERROR(callback(line, fields));
  }
  return absl::OkStatus();
}

}  // namespace samverka::client::internal
