// common/peer_text.h
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace samverka {

// Text a peer chose (a site's failure reason or task id, a coordinator's
// error message), made safe to write into a log line or a terminal: control
// characters (a newline that would start a forged "round 999/400" line, an
// escape sequence, a carriage return) become C escapes ("\n", "\x1b"),
// a backslash is doubled so the escaping cannot be faked (quotes stay),
// and UTF-8 (a hospital's name with an "ö") stays readable. Longer text is
// cut at a character boundary after `max_bytes` of input and ends with
// " [... N more bytes]". Not for secrets: those never reach a log at all.
std::string PeerText(std::string_view text, size_t max_bytes = 1024);

}  // namespace samverka
