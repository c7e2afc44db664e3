#include "security/secagg/consent.h"

#include <gtest/gtest.h>

#include <random>

namespace samverka::security::secagg {
namespace {

ModularVector RandomVector(int bits, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ModularVector v = ModularVector::Zeros(bits, size);
  for (size_t i = 0; i < size; ++i) v.Set(i, rng());
  return v;
}

TEST(ConsentTest, TheSeedDependsOnTheSiteKeyAndTheInstanceOnly) {
  const SecretBytes key = SecretBytes::Random(32);
  const SecretBytes other_key = SecretBytes::Random(32);
  absl::StatusOr<SecretBytes> a = DeriveConsentSeed(key, "instance-1");
  absl::StatusOr<SecretBytes> again = DeriveConsentSeed(key, "instance-1");
  absl::StatusOr<SecretBytes> b = DeriveConsentSeed(key, "instance-2");
  absl::StatusOr<SecretBytes> c = DeriveConsentSeed(other_key, "instance-1");
  ASSERT_TRUE(a.ok() && again.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->size(), kConsentSeedBytes);
  EXPECT_TRUE(a->Equals(*again));
  EXPECT_FALSE(a->Equals(*b));
  EXPECT_FALSE(a->Equals(*c));
  EXPECT_EQ(DeriveConsentSeed(SecretBytes::Random(16), "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveConsentSeed(key, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConsentTest, ACommitmentOpensOnlyWithItsSeedAndInstance) {
  const SecretBytes seed = SecretBytes::Random(32);
  const std::string commitment = ConsentCommitment("inst", seed);
  EXPECT_EQ(commitment.size(), 64u);
  EXPECT_TRUE(CheckConsent("inst", seed, commitment).ok());
  EXPECT_FALSE(CheckConsent("other", seed, commitment).ok());
  EXPECT_FALSE(CheckConsent("inst", SecretBytes::Random(32), commitment).ok());
  std::string tampered = commitment;
  tampered[0] = tampered[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(CheckConsent("inst", seed, tampered).ok());
  EXPECT_FALSE(CheckConsent("inst", seed, commitment.substr(0, 63)).ok());
  EXPECT_FALSE(CheckConsent("inst", SecretBytes::Random(31), commitment).ok());
}

// Three sites' consent-masked inputs summed: the coordinator gets the sum
// of the inputs only with every seed, and without one of them the result
// is neither the sum of all three nor of the other two.
TEST(ConsentTest, TheSumIsRevealedOnlyWithEverySeed) {
  for (int bits : {32, 64}) {
    SCOPED_TRACE(bits);
    const size_t d = 1000;
    std::vector<ModularVector> inputs;
    std::vector<SecretBytes> seeds;
    ModularVector z = ModularVector::Zeros(bits, d);
    ModularVector plain = ModularVector::Zeros(bits, d);
    ModularVector first_two = ModularVector::Zeros(bits, d);
    for (int i = 0; i < 3; ++i) {
      ModularVector x = RandomVector(bits, d, 100 + i);
      ASSERT_TRUE(plain.Add(x).ok());
      if (i < 2) ASSERT_TRUE(first_two.Add(x).ok());
      seeds.push_back(SecretBytes::Random(32));
      ModularVector masked = x;
      ASSERT_TRUE(ApplyConsentMask(masked, seeds.back(), "inst", MaskSign::kAdd).ok());
      EXPECT_NE(masked, x);
      ASSERT_TRUE(z.Add(masked).ok());
    }
    ModularVector partial = z;
    ASSERT_TRUE(ApplyConsentMask(partial, seeds[0], "inst", MaskSign::kSubtract).ok());
    ASSERT_TRUE(ApplyConsentMask(partial, seeds[1], "inst", MaskSign::kSubtract).ok());
    EXPECT_NE(partial, plain);
    EXPECT_NE(partial, first_two);
    ModularVector wrong_instance = partial;
    ASSERT_TRUE(ApplyConsentMask(wrong_instance, seeds[2], "other", MaskSign::kSubtract).ok());
    EXPECT_NE(wrong_instance, plain);
    ASSERT_TRUE(ApplyConsentMask(partial, seeds[2], "inst", MaskSign::kSubtract).ok());
    EXPECT_EQ(partial, plain);
  }
}

TEST(ConsentTest, TheInstanceIsTheRostersDigest) {
  EXPECT_EQ(ConsentInstance("roster-a"), ConsentInstance("roster-a"));
  EXPECT_NE(ConsentInstance("roster-a"), ConsentInstance("roster-b"));
  EXPECT_EQ(ConsentInstance("").size(), 64u);
}

}  // namespace
}  // namespace samverka::security::secagg
