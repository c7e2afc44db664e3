// tests/security/hkdf_test.cc
#include "security/hkdf.h"

#include <gtest/gtest.h>

#include <string>

#include "security/internal/hkdf_steps.h"
#include "tests/security/test_util.h"

namespace samverka::security {
namespace {

using testutil::Field;
using testutil::HexField;
using testutil::LoadTestData;
using testutil::SecretField;
using testutil::ToHexForTest;

class HkdfRfc5869Test : public ::testing::TestWithParam<std::string> {
 protected:
  nlohmann::json Case() const {
    const nlohmann::json doc = LoadTestData("rfc5869_hkdf.json");
    for (const nlohmann::json& c : doc["cases"]) {
      if (Field(c, "name") == GetParam()) return c;
    }
    ADD_FAILURE() << "no case " << GetParam();
    return {};
  }
};

TEST_P(HkdfRfc5869Test, OkmMatches) {
  const nlohmann::json v = Case();
  absl::StatusOr<SecretBytes> okm =
      HkdfSha256(SecretField(v, "ikm"), HexField(v, "salt"),
                 HexField(v, "info"), v["length"].get<size_t>());
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHexForTest(*okm), Field(v, "okm"));
}

TEST_P(HkdfRfc5869Test, ExtractAndExpandStepsMatch) {
  const nlohmann::json v = Case();
  absl::StatusOr<SecretBytes> prk =
      internal::HkdfSha256Extract(SecretField(v, "ikm"), HexField(v, "salt"));
  ASSERT_TRUE(prk.ok()) << prk.status();
  EXPECT_EQ(ToHexForTest(*prk), Field(v, "prk"));
  absl::StatusOr<SecretBytes> okm = internal::HkdfSha256Expand(
      *prk, HexField(v, "info"), v["length"].get<size_t>());
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHexForTest(*okm), Field(v, "okm"));
}

// RFC 5869 Appendix A.1-A.3 (the SHA-256 cases).
INSTANTIATE_TEST_SUITE_P(Rfc5869, HkdfRfc5869Test,
                         ::testing::Values("A.1", "A.2", "A.3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           name.erase(name.find('.'), 1);
                           return name;
                         });

TEST(HkdfTest, RejectsBadLengthsAndEmptyIkm) {
  const SecretBytes ikm = SecretBytes::Random(32);
  EXPECT_EQ(HkdfSha256(ikm, "", "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(ikm, "", "", 255 * 32 + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HkdfSha256(SecretBytes(), "salt", "info", 32).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SecretBytes> longest = HkdfSha256(ikm, "", "", 255 * 32);
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_EQ(longest->size(), 255u * 32);
}

TEST(HkdfTest, InfoSeparatesOutputs) {
  const SecretBytes ikm = SecretBytes::Random(32);
  absl::StatusOr<SecretBytes> a = HkdfSha256(ikm, "salt", "a", 32);
  absl::StatusOr<SecretBytes> b = HkdfSha256(ikm, "salt", "b", 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->Equals(*b));
}

}  // namespace
}  // namespace samverka::security
