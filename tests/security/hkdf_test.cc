// tests/security/hkdf_test.cc
#include "security/hkdf.h"

#include <string>

#include <gtest/gtest.h>

#include "security/internal/hkdf_steps.h"
#include "tests/security/test_util.h"

namespace samverka::security {
namespace {

using testutil::FromHex;
using testutil::LoadTestData;
using testutil::SecretFromHex;
using testutil::ToHexForTest;

class HkdfRfc5869Test : public ::testing::TestWithParam<std::string> {
 protected:
  nlohmann::json Case() const {
    for (const nlohmann::json& c : LoadTestData("rfc5869_hkdf.json")["cases"]) {
      if (c["name"] == GetParam()) return c;
    }
    ADD_FAILURE() << "no case " << GetParam();
    return {};
  }
};

TEST_P(HkdfRfc5869Test, OkmMatches) {
  const nlohmann::json v = Case();
  absl::StatusOr<SecretBytes> okm =
      HkdfSha256(SecretFromHex(v["ikm"]), FromHex(v["salt"]),
                 FromHex(v["info"]), v["length"].get<size_t>());
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHexForTest(*okm), v["okm"].get<std::string>());
}

TEST_P(HkdfRfc5869Test, ExtractAndExpandStepsMatch) {
  const nlohmann::json v = Case();
  absl::StatusOr<SecretBytes> prk =
      internal::HkdfSha256Extract(SecretFromHex(v["ikm"]), FromHex(v["salt"]));
  ASSERT_TRUE(prk.ok()) << prk.status();
  EXPECT_EQ(ToHexForTest(*prk), v["prk"].get<std::string>());
  absl::StatusOr<SecretBytes> okm = internal::HkdfSha256Expand(
      *prk, FromHex(v["info"]), v["length"].get<size_t>());
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(ToHexForTest(*okm), v["okm"].get<std::string>());
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
