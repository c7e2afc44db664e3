#include "common/peer_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace samverka {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PeerTextTest, ANewlineCannotStartAForgedLogLine) {
  const std::string forged =
      "out of memory\n2026-12-01T10:00:00.000 info [samverka.coordinator] round 999/400: 9 sites";
  const std::string safe = PeerText(forged);
  EXPECT_EQ(safe.find('\n'), std::string::npos);
  EXPECT_THAT(safe, HasSubstr("out of memory\\n2026-12-01"));
}

TEST(PeerTextTest, ControlCharactersAndEscapeSequencesAreEscaped) {
  const std::string safe = PeerText(std::string("a\rb\x1b[2Jc\td\x7f") + '\0' + "e");
  for (char c : safe) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << safe;
    EXPECT_NE(c, '\x7f') << safe;
  }
  EXPECT_THAT(safe, HasSubstr("\\r"));
  EXPECT_THAT(safe, HasSubstr("\\x1b[2J"));
}

TEST(PeerTextTest, ABackslashCannotFakeAnEscape) {
  // Without escaping the backslash, "\\n" from a peer would read as an
  // escaped newline.
  EXPECT_EQ(PeerText("a\\nb"), "a\\\\nb");
}

TEST(PeerTextTest, Utf8StaysReadable) {
  EXPECT_EQ(PeerText("S\xc3\xb6" "dersjukhuset"), "S\xc3\xb6" "dersjukhuset");
}

TEST(PeerTextTest, LongTextIsCutAtACharacterBoundary) {
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "\xc3\xb6";  // 1,200 bytes
  const std::string safe = PeerText(long_text, 1023);
  // 1,023 would split the 512th character: the cut comes before it.
  EXPECT_EQ(safe.substr(0, 1022), long_text.substr(0, 1022));
  EXPECT_THAT(safe.substr(1022), Not(HasSubstr("\xc3")));
  EXPECT_THAT(safe, HasSubstr("[... 178 more bytes]"));
  EXPECT_EQ(PeerText("short", 1023), "short");
}

}  // namespace
}  // namespace samverka
