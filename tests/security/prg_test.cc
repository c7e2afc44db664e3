// tests/security/prg_test.cc
#include "security/prg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "security/internal/aes_ctr.h"
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

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

SecretBytes CountingSeed(uint8_t start = 0) {
  SecretBytes seed(32);
  for (size_t i = 0; i < seed.size(); ++i) {
    seed.mutable_span()[i] = static_cast<uint8_t>(start + i);
  }
  return seed;
}

// --- AES-256-CTR core: NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt ---

internal::AesCtrStream Sp80038aStream(const nlohmann::json& v) {
  absl::StatusOr<internal::AesCtrStream> stream =
      internal::AesCtrStream::Create(SecretField(v, "key"),
                                     AsBytes(HexField(v, "initial_counter")));
  EXPECT_TRUE(stream.ok()) << stream.status();
  return std::move(stream).value();
}

TEST(AesCtrTest, MatchesSp80038aF55) {
  const nlohmann::json v = LoadTestData("sp800_38a_ctr.json");
  const std::string plaintext = HexField(v, "plaintext");
  internal::AesCtrStream stream = Sp80038aStream(v);
  std::vector<uint8_t> out(plaintext.size());
  ASSERT_TRUE(stream.Apply(AsBytes(plaintext), out).ok());
  EXPECT_EQ(ToHex(out), Field(v, "ciphertext"));
}

TEST(AesCtrTest, MatchesSp80038aF55InUnalignedPieces) {
  const nlohmann::json v = LoadTestData("sp800_38a_ctr.json");
  const std::string plaintext = HexField(v, "plaintext");
  internal::AesCtrStream stream = Sp80038aStream(v);
  std::vector<uint8_t> out(plaintext.size());
  const std::span<const uint8_t> in = AsBytes(plaintext);
  size_t offset = 0;
  for (size_t piece : {1, 14, 17, 31, 1}) {  // sums to 64
    ASSERT_TRUE(stream
                    .Apply(in.subspan(offset, piece),
                           std::span<uint8_t>(out).subspan(offset, piece))
                    .ok());
    offset += piece;
  }
  EXPECT_EQ(ToHex(out), Field(v, "ciphertext"));
}

TEST(AesCtrTest, GenerateIsTheKeyStream) {
  const nlohmann::json v = LoadTestData("sp800_38a_ctr.json");
  const std::string plaintext = HexField(v, "plaintext");
  const std::string ciphertext = HexField(v, "ciphertext");
  internal::AesCtrStream stream = Sp80038aStream(v);
  std::vector<uint8_t> key_stream(plaintext.size());
  ASSERT_TRUE(stream.Generate(key_stream).ok());
  for (size_t i = 0; i < key_stream.size(); ++i) {
    EXPECT_EQ(key_stream[i] ^ static_cast<uint8_t>(plaintext[i]),
              static_cast<uint8_t>(ciphertext[i]))
        << i;
  }
}

TEST(AesCtrTest, RejectsBadKeyAndIvSizes) {
  const std::string iv(16, '\0');
  EXPECT_EQ(internal::AesCtrStream::Create(SecretBytes::Random(16), AsBytes(iv))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(internal::AesCtrStream::Create(SecretBytes::Random(32),
                                           AsBytes(std::string(12, '\0')))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// --- PRG ---

// Pins the construction (HKDF-SHA256 key derivation + AES-256-CTR with a
// zero IV, little-endian words) so clients and coordinators of different
// builds derive identical masks. The expected words were computed outside
// this code base: HKDF with Python's hmac module, the key stream with
// `openssl enc -aes-256-ctr -K <key> -iv 00..00` over zero bytes.
TEST(PrgTest, MatchesIndependentlyComputedWords) {
  absl::StatusOr<std::vector<uint32_t>> w32 =
      ExpandMask32(CountingSeed(), "samverka-test", 8);
  ASSERT_TRUE(w32.ok()) << w32.status();
  EXPECT_EQ(*w32, (std::vector<uint32_t>{0xebfc445b, 0xd94bd04e, 0xb48cdf73,
                                         0x6a14c93d, 0x6e13efef, 0x631d1593,
                                         0xad414d85, 0x443d001b}));
  absl::StatusOr<std::vector<uint64_t>> w64 =
      ExpandMask64(CountingSeed(), "samverka-test", 4);
  ASSERT_TRUE(w64.ok()) << w64.status();
  EXPECT_EQ(*w64,
            (std::vector<uint64_t>{0x772e0952126a950f, 0x99eeebcec55b8571,
                                   0xe92f542900bc9ed3, 0x36b5edc02c6989c6}));
}

TEST(PrgTest, IsDeterministicAndPrefixConsistent) {
  absl::StatusOr<std::vector<uint32_t>> a =
      ExpandMask32(CountingSeed(), "round=1", 100000);
  absl::StatusOr<std::vector<uint32_t>> b =
      ExpandMask32(CountingSeed(), "round=1", 100000);
  absl::StatusOr<std::vector<uint32_t>> prefix =
      ExpandMask32(CountingSeed(), "round=1", 777);
  ASSERT_TRUE(a.ok() && b.ok() && prefix.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_TRUE(std::equal(prefix->begin(), prefix->end(), a->begin()));
  absl::StatusOr<std::vector<uint32_t>> empty =
      ExpandMask32(CountingSeed(), "round=1", 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(PrgTest, SeedsContextsAndWidthsGiveDifferentStreams) {
  const size_t n = 64;
  auto words = [&](const SecretBytes& seed, std::string_view context) {
    absl::StatusOr<std::vector<uint32_t>> w = ExpandMask32(seed, context, n);
    EXPECT_TRUE(w.ok()) << w.status();
    return *w;
  };
  const std::vector<uint32_t> base = words(CountingSeed(0), "round=1");
  EXPECT_NE(base, words(CountingSeed(1), "round=1"));
  EXPECT_NE(base, words(CountingSeed(0), "round=2"));
  EXPECT_NE(base, words(CountingSeed(0), "round=1 "));

  absl::StatusOr<std::vector<uint64_t>> wide =
      ExpandMask64(CountingSeed(0), "round=1", n / 2);
  ASSERT_TRUE(wide.ok());
  std::vector<uint32_t> wide_as_32(n);
  std::memcpy(wide_as_32.data(), wide->data(), n * sizeof(uint32_t));
  EXPECT_NE(base, wide_as_32);  // width is part of the domain separation
}

TEST(PrgTest, RejectsBadSeedAndEmptyContext) {
  EXPECT_EQ(ExpandMask32(SecretBytes::Random(16), "c", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandMask64(SecretBytes::Random(33), "c", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandMask32(CountingSeed(), "", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint32_t> v(4);
  EXPECT_EQ(AddMask(std::span<uint32_t>(v), SecretBytes(), "c", MaskSign::kAdd)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// Sizes straddling AddMask's 16 KiB blocks (4096 32-bit or 2048 64-bit
// words) and the earlier 64 KiB chunks.
class AddMaskTest : public ::testing::TestWithParam<size_t> {};

TEST_P(AddMaskTest, AddMatchesExpandAndSubtractUndoesIt32) {
  const size_t n = GetParam();
  std::vector<uint32_t> values(n);
  std::iota(values.begin(), values.end(), 0xfffff000u);  // wraps mod 2^32
  const std::vector<uint32_t> original = values;
  const SecretBytes seed = CountingSeed(7);

  ASSERT_TRUE(
      AddMask(std::span<uint32_t>(values), seed, "self-mask", MaskSign::kAdd)
          .ok());
  absl::StatusOr<std::vector<uint32_t>> mask =
      ExpandMask32(seed, "self-mask", n);
  ASSERT_TRUE(mask.ok());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(values[i], static_cast<uint32_t>(original[i] + (*mask)[i])) << i;
  }
  ASSERT_TRUE(AddMask(std::span<uint32_t>(values), seed, "self-mask",
                      MaskSign::kSubtract)
                  .ok());
  EXPECT_EQ(values, original);
}

TEST_P(AddMaskTest, AddMatchesExpandAndSubtractUndoesIt64) {
  const size_t n = GetParam();
  std::vector<uint64_t> values(n);
  std::iota(values.begin(), values.end(), ~uint64_t{0} - 100);
  const std::vector<uint64_t> original = values;
  const SecretBytes seed = CountingSeed(9);

  ASSERT_TRUE(
      AddMask(std::span<uint64_t>(values), seed, "self-mask", MaskSign::kAdd)
          .ok());
  absl::StatusOr<std::vector<uint64_t>> mask =
      ExpandMask64(seed, "self-mask", n);
  ASSERT_TRUE(mask.ok());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(values[i], original[i] + (*mask)[i]) << i;
  }
  ASSERT_TRUE(AddMask(std::span<uint64_t>(values), seed, "self-mask",
                      MaskSign::kSubtract)
                  .ok());
  EXPECT_EQ(values, original);
}

INSTANTIATE_TEST_SUITE_P(Sizes, AddMaskTest,
                         ::testing::Values(0, 1, 3, 2047, 2048, 2049, 4095,
                                           4096, 4097, 16383, 16384, 16385,
                                           100003));

// AddMasks is AddMask term by term, in one pass.
TEST_P(AddMaskTest, AddMasksEqualsAddMaskPerTerm) {
  const size_t n = GetParam();
  const SecretBytes seeds[] = {CountingSeed(1), CountingSeed(2),
                               CountingSeed(3)};
  const std::vector<MaskTerm> terms = {
      {&seeds[0], "self-mask", MaskSign::kAdd},
      {&seeds[1], "pair", MaskSign::kSubtract},
      {&seeds[2], "pair", MaskSign::kAdd},
      {&seeds[1], "other", MaskSign::kAdd},
  };
  std::vector<uint32_t> one_by_one(n);
  std::iota(one_by_one.begin(), one_by_one.end(), 0xffffff00u);
  std::vector<uint64_t> one_by_one64(n);
  std::iota(one_by_one64.begin(), one_by_one64.end(), ~uint64_t{0} - 7);
  std::vector<uint32_t> fused = one_by_one;
  std::vector<uint64_t> fused64 = one_by_one64;
  for (const MaskTerm& t : terms) {
    ASSERT_TRUE(
        AddMask(std::span<uint32_t>(one_by_one), *t.seed, t.context, t.sign)
            .ok());
    ASSERT_TRUE(
        AddMask(std::span<uint64_t>(one_by_one64), *t.seed, t.context, t.sign)
            .ok());
  }
  ASSERT_TRUE(AddMasks(std::span<uint32_t>(fused), terms).ok());
  ASSERT_TRUE(AddMasks(std::span<uint64_t>(fused64), terms).ok());
  EXPECT_EQ(fused, one_by_one);
  EXPECT_EQ(fused64, one_by_one64);
}

TEST(PrgTest, AddMasksChecksEveryTermBeforeChangingValues) {
  const SecretBytes good = CountingSeed(1);
  const SecretBytes short_seed(16);
  std::vector<uint32_t> values(100, 5);
  const std::vector<MaskTerm> bad_seed = {{&good, "a", MaskSign::kAdd},
                                          {&short_seed, "b", MaskSign::kAdd}};
  EXPECT_EQ(AddMasks(std::span<uint32_t>(values), bad_seed).code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<MaskTerm> empty_context = {{&good, "", MaskSign::kAdd}};
  EXPECT_EQ(AddMasks(std::span<uint32_t>(values), empty_context).code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<MaskTerm> no_seed = {{nullptr, "a", MaskSign::kAdd}};
  EXPECT_EQ(AddMasks(std::span<uint32_t>(values), no_seed).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(values, std::vector<uint32_t>(100, 5));
  EXPECT_TRUE(AddMasks(std::span<uint32_t>(values), {}).ok());
  EXPECT_EQ(values, std::vector<uint32_t>(100, 5));
}

// Pairwise masking (Bonawitz et al., CCS 2017): u adds PRG(s_uv), v subtracts
// it, so the pairwise masks cancel in the sum.
TEST(PrgTest, PairwiseMasksCancelInTheSum) {
  const size_t n = 5000;
  const SecretBytes shared = SecretBytes::Random(32);
  std::vector<uint32_t> x_u(n, 3), x_v(n, 4);
  ASSERT_TRUE(
      AddMask(std::span<uint32_t>(x_u), shared, "pair", MaskSign::kAdd).ok());
  ASSERT_TRUE(
      AddMask(std::span<uint32_t>(x_v), shared, "pair", MaskSign::kSubtract)
          .ok());
  EXPECT_NE(x_u, std::vector<uint32_t>(n, 3));
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(static_cast<uint32_t>(x_u[i] + x_v[i]), 7u) << i;
  }
}

// A chi-square goodness-of-fit test of the output bytes against the uniform
// distribution on 256 values (255 degrees of freedom; mean 255, standard
// deviation ~22.6). The bounds are ~5 standard deviations wide, and the seed
// is fixed, so the test is deterministic. Also checks each of the 32 bit
// positions of the words is balanced.
TEST(PrgTest, OutputBytesLookUniform) {
  const size_t kWords = 1 << 20;  // 4 MiB
  absl::StatusOr<std::vector<uint32_t>> words =
      ExpandMask32(CountingSeed(42), "uniformity", kWords);
  ASSERT_TRUE(words.ok());
  std::array<uint64_t, 256> counts = {};
  std::array<uint64_t, 32> ones = {};
  for (uint32_t w : *words) {
    for (int byte = 0; byte < 4; ++byte) ++counts[(w >> (8 * byte)) & 0xff];
    for (int bit = 0; bit < 32; ++bit) ones[bit] += (w >> bit) & 1;
  }
  const double expected = 4.0 * kWords / 256;
  double chi_square = 0;
  for (uint64_t c : counts) {
    chi_square += (c - expected) * (c - expected) / expected;
  }
  EXPECT_GT(chi_square, 255 - 5 * 22.6);
  EXPECT_LT(chi_square, 255 + 5 * 22.6);
  // Each bit is Binomial(2^20, 1/2): standard deviation 512.
  for (int bit = 0; bit < 32; ++bit) {
    EXPECT_NEAR(static_cast<double>(ones[bit]), kWords / 2.0, 5 * 512.0)
        << "bit " << bit;
  }
}

}  // namespace
}  // namespace samverka::security
