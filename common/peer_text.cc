// common/peer_text.cc
#include "common/peer_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace samverka {
namespace {

// Quotes stay as they are (absl's CHexEscape would escape them, which makes
// every "no open task 'x'" unreadable); only what could change the line does.
void AppendEscaped(std::string_view text, std::string* out) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out->append(absl::StrFormat("\\x%02x", byte));
        } else {
          out->push_back(c);
        }
    }
  }
}

}  // namespace

std::string PeerText(std::string_view text, size_t max_bytes) {
  std::string out;
  if (text.size() <= max_bytes) {
    AppendEscaped(text, &out);
    return out;
  }
  // Back off to the start of a UTF-8 character (never split one).
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  AppendEscaped(text.substr(0, cut), &out);
  absl::StrAppend(&out, " [... ", text.size() - cut, " more bytes]");
  return out;
}

}  // namespace samverka
