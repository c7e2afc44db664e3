// tests/security/secret_bytes_test.cc
#include "security/secret_bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace samverka::security {
namespace {

// Compile-time guarantees: a secret cannot be copied, printed or turned into
// (or made from) a std::string by accident.
template <typename T>
concept Streamable = requires(std::ostream& os, const T& t) {
  os << t;
};
static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);
static_assert(!Streamable<SecretBytes>);
static_assert(!std::is_convertible_v<SecretBytes, std::string>);
static_assert(!std::is_convertible_v<SecretBytes, std::string_view>);
static_assert(!std::is_convertible_v<std::string, SecretBytes>);
static_assert(!std::is_convertible_v<size_t, SecretBytes>);
static_assert(!std::equality_comparable<SecretBytes>);

TEST(SecretBytesTest, DefaultIsEmpty) {
  SecretBytes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(s.span().empty());
}

TEST(SecretBytesTest, SizedConstructorZeroFills) {
  SecretBytes s(16);
  ASSERT_EQ(s.size(), 16u);
  for (uint8_t b : s.span()) EXPECT_EQ(b, 0);
}

TEST(SecretBytesTest, CopyFromCopiesBytes) {
  const std::vector<uint8_t> source = {1, 2, 3, 250};
  SecretBytes s = SecretBytes::CopyFrom(source);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(s.span().begin(), s.span().end()), source);
  SecretBytes t =
      SecretBytes::CopyFrom(std::string_view("\x01\x02\x03\xfa", 4));
  EXPECT_TRUE(s.Equals(t));
}

TEST(SecretBytesTest, RandomHasRequestedSizeAndDiffers) {
  SecretBytes a = SecretBytes::Random(32);
  SecretBytes b = SecretBytes::Random(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_FALSE(a.Equals(b));  // equal with probability 2^-256
  EXPECT_TRUE(SecretBytes::Random(0).empty());
}

TEST(SecretBytesTest, EqualsComparesContentAndSize) {
  SecretBytes a = SecretBytes::CopyFrom(std::string_view("abcd"));
  SecretBytes same = SecretBytes::CopyFrom(std::string_view("abcd"));
  SecretBytes other = SecretBytes::CopyFrom(std::string_view("abce"));
  SecretBytes prefix = SecretBytes::CopyFrom(std::string_view("abc"));
  EXPECT_TRUE(a.Equals(same));
  EXPECT_FALSE(a.Equals(other));
  EXPECT_FALSE(a.Equals(prefix));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes(0)));
}

TEST(SecretBytesTest, MoveTransfersAndEmptiesSource) {
  SecretBytes a = SecretBytes::CopyFrom(std::string_view("secret"));
  const uint8_t* buffer = a.data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(b.data(), buffer);  // the buffer moved; no copy was left behind
  EXPECT_EQ(b.size(), 6u);
  EXPECT_TRUE(a.empty());        // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move)

  SecretBytes c = SecretBytes::CopyFrom(std::string_view("other"));
  c = std::move(b);
  EXPECT_EQ(c.data(), buffer);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
}

TEST(SecretBytesTest, CloneIsADeepCopy) {
  SecretBytes a = SecretBytes::CopyFrom(std::string_view("abc"));
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a.Equals(b));
  EXPECT_NE(a.data(), b.data());
  b.mutable_span()[0] = 'x';
  EXPECT_FALSE(a.Equals(b));
}

}  // namespace
}  // namespace samverka::security
