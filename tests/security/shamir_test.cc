// tests/security/shamir_test.cc
#include "security/shamir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "tests/security/test_util.h"

namespace samverka::security {
namespace {

using testutil::FromHex;

// A fixed secret per test, so failures reproduce (the polynomial
// coefficients are still drawn from the CSPRNG, as in production).
SecretBytes TestSecret(uint32_t seed) {
  std::mt19937 rng(seed);
  SecretBytes secret(32);
  for (uint8_t& b : secret.mutable_span()) b = static_cast<uint8_t>(rng());
  return secret;
}

std::vector<ShamirShare> Split(const SecretBytes& secret, int t, int k) {
  absl::StatusOr<std::vector<ShamirShare>> shares = ShamirSplit(secret, t, k);
  EXPECT_TRUE(shares.ok()) << shares.status();
  return std::move(shares).value();
}

// Copies shares[indices] (shares are move-only; a round trip through the
// wire format is the only way to duplicate one).
std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& shares,
                              const std::vector<int>& indices) {
  std::vector<ShamirShare> picked;
  for (int i : indices) {
    absl::StatusOr<ShamirShare> copy =
        ShamirShare::Parse(shares[i].Serialize());
    EXPECT_TRUE(copy.ok()) << copy.status();
    picked.push_back(std::move(copy).value());
  }
  return picked;
}

// Copies `bytes` into a share buffer and parses it.
absl::StatusOr<ShamirShare> ParseHex(const std::string& hex) {
  return ShamirShare::Parse(SecretBytes::CopyFrom(FromHex(hex)));
}

TEST(ShamirTest, SplitGivesIndexedSharesOfFixedSize) {
  std::vector<ShamirShare> shares = Split(TestSecret(1), 3, 5);
  ASSERT_EQ(shares.size(), 5u);
  for (size_t i = 0; i < shares.size(); ++i) {
    EXPECT_EQ(shares[i].x(), i + 1);
    EXPECT_EQ(shares[i].Serialize().size(), ShamirShare::kSerializedSize);
  }
}

TEST(ShamirTest, EveryThreeOfFiveReconstruct) {
  const SecretBytes secret = TestSecret(2);
  std::vector<ShamirShare> shares = Split(secret, 3, 5);
  int subsets = 0;
  for (int a = 0; a < 5; ++a) {
    for (int b = a + 1; b < 5; ++b) {
      for (int c = b + 1; c < 5; ++c) {
        for (const std::vector<int>& order :
             {std::vector<int>{a, b, c}, std::vector<int>{c, a, b}}) {
          std::vector<ShamirShare> subset = Pick(shares, order);
          absl::StatusOr<SecretBytes> got = ShamirReconstruct(subset, 3);
          ASSERT_TRUE(got.ok()) << got.status();
          EXPECT_TRUE(got->Equals(secret)) << a << b << c;
        }
        ++subsets;
      }
    }
  }
  EXPECT_EQ(subsets, 10);
}

// Property test: random (t, k), random subsets of size >= t reconstruct;
// t - 1 shares are refused, and interpolating them anyway gives another
// value.
TEST(ShamirTest, RandomThresholdsAndSubsets) {
  std::mt19937 rng(20240607);
  for (int trial = 0; trial < 40; ++trial) {
    const int k = std::uniform_int_distribution<int>(2, 60)(rng);
    const int t = std::uniform_int_distribution<int>(2, k)(rng);
    SCOPED_TRACE("t=" + std::to_string(t) + " k=" + std::to_string(k));
    const SecretBytes secret = TestSecret(1000 + trial);
    std::vector<ShamirShare> shares = Split(secret, t, k);

    std::vector<int> order(k);
    std::iota(order.begin(), order.end(), 0);
    for (int draw = 0; draw < 3; ++draw) {
      std::shuffle(order.begin(), order.end(), rng);
      const int size = std::uniform_int_distribution<int>(t, k)(rng);
      std::vector<ShamirShare> subset =
          Pick(shares, std::vector<int>(order.begin(), order.begin() + size));
      absl::StatusOr<SecretBytes> got = ShamirReconstruct(subset, t);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(got->Equals(secret));
    }

    std::vector<ShamirShare> too_few =
        Pick(shares, std::vector<int>(order.begin(), order.begin() + t - 1));
    EXPECT_EQ(ShamirReconstruct(too_few, t).status().code(),
              absl::StatusCode::kInvalidArgument);
    if (t - 1 >= 2) {
      absl::StatusOr<SecretBytes> wrong = ShamirReconstruct(too_few, t - 1);
      EXPECT_TRUE(!wrong.ok() || !wrong->Equals(secret));
    }
  }
}

TEST(ShamirTest, ExtremeSecretsRoundTrip) {
  for (uint8_t fill : {0x00, 0xff}) {
    SecretBytes secret(32);
    std::fill(secret.mutable_span().begin(), secret.mutable_span().end(), fill);
    std::vector<ShamirShare> shares = Split(secret, 4, 7);
    std::vector<ShamirShare> subset = Pick(shares, {6, 0, 3, 5});
    absl::StatusOr<SecretBytes> got = ShamirReconstruct(subset, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(got->Equals(secret));
  }
}

TEST(ShamirTest, LargeShareCount) {
  const SecretBytes secret = TestSecret(3);
  std::vector<ShamirShare> shares = Split(secret, 200, 400);
  std::vector<int> odd;
  for (int i = 1; i < 400; i += 2) odd.push_back(i);
  std::vector<ShamirShare> subset = Pick(shares, odd);
  absl::StatusOr<SecretBytes> got = ShamirReconstruct(subset, 200);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->Equals(secret));
}

TEST(ShamirTest, TamperedShareGivesWrongSecret) {
  const SecretBytes secret = TestSecret(4);
  std::vector<ShamirShare> shares = Split(secret, 3, 5);
  SecretBytes bytes = shares[1].Serialize();
  bytes.mutable_span()[bytes.size() - 1] ^= 0x01;
  absl::StatusOr<ShamirShare> tampered = ShamirShare::Parse(bytes);
  ASSERT_TRUE(tampered.ok()) << tampered.status();
  std::vector<ShamirShare> subset = Pick(shares, {0, 2});
  subset.push_back(std::move(tampered).value());
  absl::StatusOr<SecretBytes> got = ShamirReconstruct(subset, 3);
  EXPECT_TRUE(!got.ok() || !got->Equals(secret));
}

TEST(ShamirTest, ParseRejectsMalformedShares) {
  const std::string x1 = "00000001";
  const std::string y_ok = "00" + std::string(64, '1');
  ASSERT_TRUE(ParseHex("01" + x1 + y_ok).ok());
  // Wrong sizes.
  for (const std::string& hex :
       {std::string(), "01" + x1 + y_ok.substr(2), "01" + x1 + y_ok + "00"}) {
    EXPECT_EQ(ParseHex(hex).status().code(), absl::StatusCode::kInvalidArgument)
        << hex.size();
  }
  // Unknown version.
  EXPECT_EQ(ParseHex("02" + x1 + y_ok).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHex("00" + x1 + y_ok).status().code(),
            absl::StatusCode::kInvalidArgument);
  // x = 0 would be the secret itself.
  EXPECT_EQ(ParseHex("01"
                     "00000000" +
                     y_ok)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // y must be below p = 2^256 + 297 (= 0x01 00..00 0129).
  const std::string p_minus_1 = "01" + std::string(60, '0') + "0128";
  const std::string p = "01" + std::string(60, '0') + "0129";
  EXPECT_TRUE(ParseHex("01" + x1 + p_minus_1).ok());
  EXPECT_EQ(ParseHex("01" + x1 + p).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHex("01" + x1 + std::string(66, 'f')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ShamirTest, SerializeParseRoundTrip) {
  std::vector<ShamirShare> shares = Split(TestSecret(5), 2, 3);
  for (const ShamirShare& share : shares) {
    absl::StatusOr<ShamirShare> parsed = ShamirShare::Parse(share.Serialize());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->x(), share.x());
    EXPECT_TRUE(parsed->Serialize().Equals(share.Serialize()));
  }
}

TEST(ShamirTest, ReconstructRejectsDuplicateX) {
  const SecretBytes secret = TestSecret(6);
  std::vector<ShamirShare> shares = Split(secret, 3, 5);
  std::vector<ShamirShare> subset = Pick(shares, {0, 1, 1});
  EXPECT_EQ(ShamirReconstruct(subset, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Also when the duplicate is beyond the first t shares.
  std::vector<ShamirShare> longer = Pick(shares, {0, 1, 2, 3, 0});
  EXPECT_EQ(ShamirReconstruct(longer, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ShamirTest, RejectsBadParameters) {
  const SecretBytes secret = TestSecret(7);
  EXPECT_EQ(ShamirSplit(secret, 1, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 6, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 2, (1 << 20) + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(SecretBytes::Random(31), 2, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(SecretBytes::Random(33), 2, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<ShamirShare> shares = Split(secret, 2, 3);
  EXPECT_EQ(ShamirReconstruct(shares, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirReconstruct({}, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::security
