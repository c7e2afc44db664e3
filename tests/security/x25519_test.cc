// tests/security/x25519_test.cc
#include "security/x25519.h"

#include <gtest/gtest.h>

#include <string>

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
using testutil::ToHexForTest;

X25519PublicKey PublicFromHex(const std::string& hex) {
  absl::StatusOr<X25519PublicKey> key =
      X25519PublicKey::FromBytes(FromHex(hex));
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

X25519PrivateKey PrivateFromHex(const std::string& hex) {
  absl::StatusOr<X25519PrivateKey> key =
      X25519PrivateKey::FromBytes(SecretFromHex(hex));
  EXPECT_TRUE(key.ok()) << key.status();
  return std::move(key).value();
}

std::string PublicHex(const X25519PublicKey& key) {
  return ToHex(std::span<const uint8_t>(key.bytes()));
}

// RFC 7748 section 5.2: X25519(scalar, u) for the two published pairs.
TEST(X25519Test, MatchesRfc7748Section52Vectors) {
  const nlohmann::json doc = LoadTestData("rfc7748_x25519.json");
  ASSERT_EQ(doc["scalar_mult"].size(), 2u);
  for (const nlohmann::json& v : doc["scalar_mult"]) {
    SCOPED_TRACE(Field(v, "name"));
    X25519PrivateKey scalar = PrivateFromHex(Field(v, "scalar"));
    absl::StatusOr<SecretBytes> out =
        Agree(scalar, PublicFromHex(Field(v, "u")));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(ToHexForTest(*out), Field(v, "out"));
  }
}

// RFC 7748 section 5.2, iterated: k = X25519(k, u), u = old k, from k = u = 9.
// (The 1,000,000-iteration value is left out: it takes about a minute.)
TEST(X25519Test, MatchesRfc7748Section52IteratedVectors) {
  const nlohmann::json v = LoadTestData("rfc7748_x25519.json")["iterated"];
  SecretBytes k = SecretField(v, "start");
  SecretBytes u = SecretField(v, "start");
  for (int i = 1; i <= 1000; ++i) {
    absl::StatusOr<X25519PrivateKey> scalar = X25519PrivateKey::FromBytes(k);
    ASSERT_TRUE(scalar.ok()) << scalar.status();
    absl::StatusOr<X25519PublicKey> point =
        X25519PublicKey::FromBytes(u.span());
    ASSERT_TRUE(point.ok()) << point.status();
    absl::StatusOr<SecretBytes> next = Agree(*scalar, *point);
    ASSERT_TRUE(next.ok()) << "iteration " << i << ": " << next.status();
    u = std::move(k);
    k = std::move(next).value();
    if (i == 1) {
      EXPECT_EQ(ToHexForTest(k), Field(v, "after_1"));
    }
  }
  EXPECT_EQ(ToHexForTest(k), Field(v, "after_1000"));
}

// RFC 7748 section 6.1: Alice and Bob's key pairs and shared secret.
TEST(X25519Test, MatchesRfc7748Section61DiffieHellman) {
  const nlohmann::json v =
      LoadTestData("rfc7748_x25519.json")["diffie_hellman"];
  X25519PrivateKey alice = PrivateFromHex(Field(v, "alice_private"));
  X25519PrivateKey bob = PrivateFromHex(Field(v, "bob_private"));
  EXPECT_EQ(PublicHex(alice.public_key()), Field(v, "alice_public"));
  EXPECT_EQ(PublicHex(bob.public_key()), Field(v, "bob_public"));

  absl::StatusOr<SecretBytes> alice_shared = Agree(alice, bob.public_key());
  absl::StatusOr<SecretBytes> bob_shared = Agree(bob, alice.public_key());
  ASSERT_TRUE(alice_shared.ok()) << alice_shared.status();
  ASSERT_TRUE(bob_shared.ok()) << bob_shared.status();
  EXPECT_EQ(ToHexForTest(*alice_shared), Field(v, "shared"));
  EXPECT_TRUE(alice_shared->Equals(*bob_shared));
}

TEST(X25519Test, GeneratedKeysAgreeAndDiffer) {
  absl::StatusOr<X25519PrivateKey> a = X25519PrivateKey::Generate();
  absl::StatusOr<X25519PrivateKey> b = X25519PrivateKey::Generate();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->public_key(), b->public_key());
  absl::StatusOr<SecretBytes> ab = Agree(*a, b->public_key());
  absl::StatusOr<SecretBytes> ba = Agree(*b, a->public_key());
  ASSERT_TRUE(ab.ok()) << ab.status();
  ASSERT_TRUE(ba.ok()) << ba.status();
  EXPECT_EQ(ab->size(), 32u);
  EXPECT_TRUE(ab->Equals(*ba));
}

TEST(X25519Test, SameSeedGivesSameKey) {
  SecretBytes seed = SecretBytes::Random(32);
  absl::StatusOr<X25519PrivateKey> a = X25519PrivateKey::FromBytes(seed);
  absl::StatusOr<X25519PrivateKey> b = X25519PrivateKey::FromBytes(seed);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->public_key(), b->public_key());
}

// Points of order 1, 2, 4 and 8 (and non-canonical encodings of them) make
// the shared secret all zero for every clamped scalar; RFC 7748 section 6.1
// says to check for that. Values as in Wycheproof's x25519 low-order cases.
TEST(X25519Test, RejectsLowOrderPeerKeys) {
  const char*
      kLowOrder[] =
          {
              "000000000000000000000000000000000000000000000000000000000000000"
              "0",  // 0
              "010000000000000000000000000000000000000000000000000000000000000"
              "0",  // 1
              "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b80"
              "0",  // order
                    // 8
              "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f115"
              "7",  // order
                    // 8
              "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7"
              "f",  // p
                    // -
                    // 1
              "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7"
              "f",  // p
              "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7"
              "f",  // p
                    // +
                    // 1
          };
  absl::StatusOr<X25519PrivateKey> own = X25519PrivateKey::Generate();
  ASSERT_TRUE(own.ok()) << own.status();
  for (const char* hex : kLowOrder) {
    SCOPED_TRACE(hex);
    absl::StatusOr<SecretBytes> shared = Agree(*own, PublicFromHex(hex));
    EXPECT_EQ(shared.status().code(), absl::StatusCode::kInvalidArgument)
        << shared.status();
  }
}

TEST(X25519Test, RejectsWrongKeySizes) {
  EXPECT_EQ(X25519PublicKey::FromBytes(std::string(31, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(X25519PublicKey::FromBytes(std::string(33, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      X25519PrivateKey::FromBytes(SecretBytes::Random(31)).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(X25519PrivateKey::FromBytes(SecretBytes()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::security
