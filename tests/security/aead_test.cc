// tests/security/aead_test.cc
#include "security/aead.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "security/internal/aes_gcm.h"
#include "tests/security/test_util.h"

namespace samverka::security {
namespace {

using testutil::Field;
using testutil::FromHex;
using testutil::HexField;
using testutil::LoadTestData;
using testutil::SecretField;
using testutil::SecretFromHex;
using testutil::ToHex;

std::unique_ptr<Aead> MakeAead(const SecretBytes& key) {
  absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::Create(key);
  EXPECT_TRUE(aead.ok()) << aead.status();
  return std::move(aead).value();
}

void ExpectGenericFailure(const absl::StatusOr<std::string>& opened) {
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status(), absl::DataLossError("AEAD decryption failed"));
}

// Known answers: GCM specification test cases 13-16 and CAVP
// gcmEncryptExtIV256 (sources in tests/data/security/aes_gcm_256.json).
TEST(AeadTest, SealWithNonceMatchesNistVectors) {
  const nlohmann::json doc = LoadTestData("aes_gcm_256.json");
  ASSERT_EQ(doc["cases"].size(), 5u);
  for (const nlohmann::json& v : doc["cases"]) {
    SCOPED_TRACE(Field(v, "name"));
    const std::string iv = Field(v, "iv"), ct = Field(v, "ct"),
                      tag = Field(v, "tag");
    absl::StatusOr<std::string> sealed =
        internal::AesGcmSealWithNonce(SecretField(v, "key"), FromHex(iv),
                                      HexField(v, "pt"), HexField(v, "aad"));
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(ToHex(*sealed), iv + ct + tag);
  }
}

TEST(AeadTest, OpenAcceptsNistVectors) {
  const nlohmann::json doc = LoadTestData("aes_gcm_256.json");
  for (const nlohmann::json& v : doc["cases"]) {
    SCOPED_TRACE(Field(v, "name"));
    std::unique_ptr<Aead> aead = MakeAead(SecretField(v, "key"));
    const std::string sealed =
        FromHex(Field(v, "iv") + Field(v, "ct") + Field(v, "tag"));
    absl::StatusOr<std::string> opened = aead->Open(sealed, HexField(v, "aad"));
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(ToHex(*opened), Field(v, "pt"));
  }
}

TEST(AeadTest, RoundTripsWithFreshNonces) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  const std::string plaintext = "share for client 7, round 3";
  absl::StatusOr<std::string> a = aead->Seal(plaintext, "round=3;from=2;to=7");
  absl::StatusOr<std::string> b = aead->Seal(plaintext, "round=3;from=2;to=7");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 12 + plaintext.size() + 16);
  EXPECT_NE(a->substr(0, 12), b->substr(0, 12));  // nonces differ
  EXPECT_NE(*a, *b);
  absl::StatusOr<std::string> opened = aead->Open(*a, "round=3;from=2;to=7");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
}

TEST(AeadTest, RoundTripsEmptyAndLargeMessages) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{15}, size_t{17}, size_t{1} << 20}) {
    const std::string plaintext(size, 'x');
    absl::StatusOr<std::string> sealed = aead->Seal(plaintext, "");
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    absl::StatusOr<std::string> opened = aead->Open(*sealed, "");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
  }
}

// Wycheproof-style: flipping any bit of nonce, ciphertext or tag fails.
TEST(AeadTest, RejectsEveryTamperedByte) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  absl::StatusOr<std::string> sealed = aead->Seal("masked update", "ad");
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      std::string tampered = *sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ bit);
      SCOPED_TRACE("byte " + std::to_string(i));
      ExpectGenericFailure(aead->Open(tampered, "ad"));
    }
  }
}

TEST(AeadTest, RejectsTamperedTagOfNistVector) {
  const nlohmann::json v = LoadTestData("aes_gcm_256.json")["cases"][3];
  std::unique_ptr<Aead> aead = MakeAead(SecretField(v, "key"));
  std::string sealed =
      FromHex(Field(v, "iv") + Field(v, "ct") + Field(v, "tag"));
  sealed.back() = static_cast<char>(sealed.back() ^ 1);
  ExpectGenericFailure(aead->Open(sealed, HexField(v, "aad")));
}

TEST(AeadTest, RejectsWrongAssociatedData) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  absl::StatusOr<std::string> sealed = aead->Seal("payload", "round=3;to=7");
  ASSERT_TRUE(sealed.ok());
  ExpectGenericFailure(aead->Open(*sealed, "round=3;to=8"));
  ExpectGenericFailure(aead->Open(*sealed, ""));
  ExpectGenericFailure(aead->Open(*sealed, "round=3;to=7 "));
}

TEST(AeadTest, RejectsTruncatedAndExtendedInput) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  absl::StatusOr<std::string> sealed = aead->Seal("payload", "ad");
  ASSERT_TRUE(sealed.ok());
  for (size_t length = 0; length < sealed->size(); ++length) {
    SCOPED_TRACE("length " + std::to_string(length));
    ExpectGenericFailure(aead->Open(sealed->substr(0, length), "ad"));
  }
  ExpectGenericFailure(aead->Open(*sealed + '\0', "ad"));
}

TEST(AeadTest, RejectsWrongKey) {
  std::unique_ptr<Aead> aead = MakeAead(SecretBytes::Random(32));
  std::unique_ptr<Aead> other = MakeAead(SecretBytes::Random(32));
  absl::StatusOr<std::string> sealed = aead->Seal("payload", "ad");
  ASSERT_TRUE(sealed.ok());
  ExpectGenericFailure(other->Open(*sealed, "ad"));
}

TEST(AeadTest, CreateRejectsWrongKeySize) {
  for (size_t size : {0, 16, 24, 31, 33}) {
    EXPECT_EQ(Aead::Create(SecretBytes::Random(size)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << size;
  }
}

TEST(AeadTest, SealWithNonceRejectsWrongNonceSize) {
  const SecretBytes key = SecretBytes::Random(32);
  EXPECT_EQ(internal::AesGcmSealWithNonce(key, std::string(11, '\0'), "", "")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(internal::AesGcmSealWithNonce(key, std::string(16, '\0'), "", "")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::security
