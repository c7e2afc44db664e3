#include "common/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

namespace samverka {
namespace {

using ::testing::HasSubstr;

ModelParameters SmallModel() {
  ModelParameters p;
  p.layout.tensors = {{"fc.weight", {2, 3}}, {"fc.bias", {2}}};
  p.values = {1, -2, 3.5f, 4, 5, 6, 0.25f, -0.5f};
  return p;
}

TEST(CodecTest, ParametersRoundTripExactly) {
  const ModelParameters p = SmallModel();
  const std::string bytes = EncodeParameters(p);
  absl::StatusOr<ModelParameters> back = DecodeParameters(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->layout, p.layout);
  EXPECT_EQ(back->values, p.values);
}

TEST(CodecTest, FloatsAreLittleEndianAfterHeader) {
  ModelParameters p;
  p.layout.tensors = {{"w", {1}}};
  p.values = {1.0f};
  const std::string bytes = EncodeParameters(p);
  // 1.0f is 00 00 80 3f in IEEE-754 little-endian; it is the last 4 bytes.
  EXPECT_EQ(bytes.substr(bytes.size() - 4), std::string("\x00\x00\x80\x3f", 4));
  EXPECT_EQ(bytes.substr(0, 4), "SVTB");
}

TEST(CodecTest, GenericBundleKeepsDtypes) {
  TensorBundle bundle(2);
  bundle[0] = {"counts", DType::kInt64, {2}, std::string(16, '\x01')};
  bundle[1] = {"mask", DType::kUInt32, {3}, std::string(12, '\x7f')};
  absl::StatusOr<std::string> bytes = EncodeBundle(bundle);
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<TensorBundle> back = DecodeBundle(*bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].dtype, DType::kInt64);
  EXPECT_EQ((*back)[1].data, bundle[1].data);
  EXPECT_THAT(std::string(DecodeParameters(*bytes).status().message()), HasSubstr("int64"));
}

TEST(CodecTest, EncodeRejectsDataThatDoesNotMatchShape) {
  TensorBundle bundle = {{"w", DType::kFloat32, {4}, std::string(12, '\0')}};
  absl::StatusOr<std::string> bytes = EncodeBundle(bundle);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("'w'"));
}

TEST(CodecTest, EveryTruncationIsRejected) {
  const std::string bytes = EncodeParameters(SmallModel());
  for (size_t length = 0; length < bytes.size(); ++length) {
    absl::StatusOr<TensorBundle> decoded = DecodeBundle(bytes.substr(0, length));
    EXPECT_FALSE(decoded.ok()) << "prefix of " << length << " bytes decoded";
  }
}

TEST(CodecTest, TrailingBytesAreRejected) {
  const std::string bytes = EncodeParameters(SmallModel()) + "x";
  EXPECT_THAT(std::string(DecodeBundle(bytes).status().message()), HasSubstr("unexpected bytes"));
}

TEST(CodecTest, BadMagicAndVersionAreRejected) {
  std::string bytes = EncodeParameters(SmallModel());
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_THAT(std::string(DecodeBundle(bad_magic).status().message()), HasSubstr("magic"));
  std::string bad_version = bytes;
  bad_version[4] = 9;
  EXPECT_THAT(std::string(DecodeBundle(bad_version).status().message()), HasSubstr("version"));
}

TEST(CodecTest, InconsistentLengthIsRejectedNamingTheTensor) {
  std::string bytes = EncodeParameters(SmallModel());
  // Header 12 bytes; first tensor: u16 name length, 9-byte name, dtype, rank,
  // two i64 dims, then its u64 data length.
  const size_t length_at = 12 + 2 + 9 + 1 + 1 + 16;
  uint64_t wrong = 20;
  std::memcpy(bytes.data() + length_at, &wrong, sizeof(wrong));
  absl::StatusOr<TensorBundle> decoded = DecodeBundle(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr("fc.weight"));
}

TEST(CodecTest, OversizedTensorIsRejectedBeforeAllocation) {
  TensorBundle bundle = {{"w", DType::kFloat32, {4}, std::string(16, '\0')}};
  std::string bytes = *EncodeBundle(bundle);
  // Claim a dimension of 2^40 elements.
  const int64_t huge = int64_t{1} << 40;
  std::memcpy(bytes.data() + 12 + 2 + 1 + 1 + 1, &huge, sizeof(huge));
  DecodeLimits limits;
  limits.max_total_bytes = 1 << 20;
  EXPECT_THAT(std::string(DecodeBundle(bytes, limits).status().message()), HasSubstr("limit"));
}

TEST(CodecTest, Sha256MatchesFips180Example) {
  // FIPS 180-2, Appendix B.1: SHA-256("abc").
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ChunkTest, SplitAndReassemble) {
  const std::string payload(2500, 'z');
  std::vector<std::string_view> chunks = SplitIntoChunks(payload, 1024);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].size(), 452u);
  ChunkAssembler assembler(1024, 4096);
  for (size_t i = 0; i < chunks.size(); ++i) ASSERT_TRUE(assembler.Add(i, chunks[i]).ok());
  EXPECT_EQ(assembler.Take(), payload);
}

TEST(ChunkTest, OutOfOrderOversizedAndTooLongAreRejected) {
  ChunkAssembler out_of_order(8, 64);
  EXPECT_TRUE(out_of_order.Add(0, "abc").ok());
  EXPECT_THAT(std::string(out_of_order.Add(2, "def").message()), HasSubstr("out of order"));
  EXPECT_FALSE(out_of_order.Add(1, "def").ok()) << "a rejected stream stays rejected";

  ChunkAssembler oversized(4, 64);
  EXPECT_THAT(std::string(oversized.Add(0, "12345").message()), HasSubstr("limit"));

  ChunkAssembler too_long(8, 10);
  EXPECT_TRUE(too_long.Add(0, "12345678").ok());
  EXPECT_THAT(std::string(too_long.Add(1, "123").message()), HasSubstr("exceeds"));
}

TEST(CodecTest, DecodeParametersFailsExactlyLikeDecodeBundle) {
  // The direct decode path shares the validation of DecodeBundle: every
  // truncation and a corrupted dimension give the same error.
  const std::string bytes = EncodeParameters(SmallModel());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string_view prefix(bytes.data(), n);
    const absl::Status bundle = DecodeBundle(prefix).status();
    const absl::Status parameters = DecodeParameters(prefix).status();
    ASSERT_FALSE(parameters.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(parameters, bundle) << "prefix of " << n << " bytes";
  }
  std::string corrupt = bytes;
  corrupt[12 + 2 + 9 + 2] = '\x05';  // first dimension of fc.weight: 2 -> 5
  EXPECT_EQ(DecodeParameters(corrupt).status(), DecodeBundle(corrupt).status());
  EXPECT_FALSE(DecodeParameters(corrupt).ok());
}

TEST(ChunkTest, ReserveIsOnlyAHint) {
  const std::string payload = "0123456789";
  ChunkAssembler assembler(4, 16);
  assembler.Reserve(uint64_t{1} << 40);  // above the limit: ignored
  assembler.Reserve(payload.size());
  const std::vector<std::string_view> chunks = SplitIntoChunks(payload, 4);
  for (size_t i = 0; i < chunks.size(); ++i) ASSERT_TRUE(assembler.Add(i, chunks[i]).ok());
  EXPECT_EQ(assembler.Take(), payload);
  ChunkAssembler small(4, 8);
  small.Reserve(4);
  EXPECT_TRUE(small.Add(0, "1234").ok());
  EXPECT_TRUE(small.Add(1, "5678").ok());
  EXPECT_FALSE(small.Add(2, "9").ok()) << "a reservation never raises the limit";
}

// Feeds `bytes` to a receiver for `reference` in chunks of `chunk` bytes;
// the first error, or the decoded values.
absl::StatusOr<std::vector<float>> Receive(const std::string& reference, std::string_view bytes,
                                           size_t chunk) {
  absl::StatusOr<std::unique_ptr<UpdateReceiver>> receiver = UpdateReceiver::Create(reference, chunk);
  if (!receiver.ok()) return receiver.status();
  const std::vector<std::string_view> chunks = SplitIntoChunks(bytes, chunk);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (absl::Status added = (*receiver)->Add(i, chunks[i]); !added.ok()) return added;
  }
  return (*receiver)->Finish(Sha256Hex(bytes));
}

TEST(UpdateReceiverTest, DecodesAnUpdateInAnyChunkingLikeDecodeParameters) {
  const std::string reference = EncodeParameters(SmallModel());
  ModelParameters update = SmallModel();
  for (size_t i = 0; i < update.values.size(); ++i) update.values[i] = 0.5f * i - 1;
  const std::string bytes = EncodeParameters(update);
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{7}, size_t{29}, bytes.size()}) {
    absl::StatusOr<std::vector<float>> values = Receive(reference, bytes, chunk);
    ASSERT_TRUE(values.ok()) << "chunks of " << chunk << ": " << values.status();
    EXPECT_EQ(*values, update.values) << "chunks of " << chunk;
  }
}

TEST(UpdateReceiverTest, AnotherLayoutOrDtypeIsRejectedNamingTheTensor) {
  const std::string reference = EncodeParameters(SmallModel());
  ModelParameters wrong_shape = SmallModel();
  wrong_shape.layout.tensors[0].shape = {3, 2};
  absl::Status shape = Receive(reference, EncodeParameters(wrong_shape), 5).status();
  EXPECT_EQ(shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(shape.message()), HasSubstr("do not match the model"));
  EXPECT_THAT(std::string(shape.message()), HasSubstr("tensor 0 (the model's is 'fc.weight')"));
  EXPECT_THAT(std::string(shape.message()), HasSubstr("fc.bias [2]"));

  ModelParameters renamed = SmallModel();
  renamed.layout.tensors[1].name = "fc.biaz";
  EXPECT_THAT(std::string(Receive(reference, EncodeParameters(renamed), 64).status().message()),
              HasSubstr("tensor 1 (the model's is 'fc.bias')"));

  TensorBundle ints = {{"fc.weight", DType::kInt32, {2, 3}, std::string(24, '\0')},
                       {"fc.bias", DType::kInt32, {2}, std::string(8, '\0')}};
  absl::Status dtype = Receive(reference, *EncodeBundle(ints), 64).status();
  EXPECT_THAT(std::string(dtype.message()), HasSubstr("float32"));

  std::string bad_magic = EncodeParameters(SmallModel());
  bad_magic[1] = 'X';
  EXPECT_THAT(std::string(Receive(reference, bad_magic, 64).status().message()),
              HasSubstr("byte 1 differs in the bundle header"));
}

TEST(UpdateReceiverTest, TruncatedLongReorderedAndLyingStreamsAreRejected) {
  const std::string reference = EncodeParameters(SmallModel());
  const std::string bytes = EncodeParameters(SmallModel());
  absl::Status truncated = Receive(reference, bytes.substr(0, bytes.size() - 1), 16).status();
  EXPECT_EQ(truncated.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.message()), HasSubstr("ended after"));
  EXPECT_THAT(std::string(Receive(reference, bytes + "x", 16).status().message()),
              HasSubstr("limit"));

  auto receiver = UpdateReceiver::Create(reference, 8);
  ASSERT_TRUE(receiver.ok());
  EXPECT_THAT(std::string((*receiver)->Add(0, "123456789").message()), HasSubstr("limit"));
  EXPECT_FALSE((*receiver)->Add(0, std::string_view(bytes).substr(0, 8)).ok())
      << "a rejected stream stays rejected";

  receiver = UpdateReceiver::Create(reference, 8);
  ASSERT_TRUE(receiver.ok());
  EXPECT_THAT(std::string((*receiver)->Add(1, std::string_view(bytes).substr(0, 8)).message()),
              HasSubstr("out of order"));

  receiver = UpdateReceiver::Create(reference, 1024);
  ASSERT_TRUE(receiver.ok());
  EXPECT_TRUE((*receiver)->CheckDeclaredSize(bytes.size()).ok());
  EXPECT_THAT(std::string((*receiver)->CheckDeclaredSize(bytes.size() + 1).message()),
              HasSubstr("limit"));
  ASSERT_TRUE((*receiver)->Add(0, bytes).ok());
  absl::StatusOr<std::vector<float>> lying = (*receiver)->Finish(std::string(64, 'a'));
  EXPECT_EQ(lying.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(lying.status().message()), HasSubstr("SHA-256"));
}

TEST(UpdateReceiverTest, TheReferenceMustBeAFloatBundle) {
  TensorBundle ints = {{"w", DType::kInt32, {2}, std::string(8, '\0')}};
  EXPECT_EQ(UpdateReceiver::Create(*EncodeBundle(ints), 64).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(UpdateReceiver::Create("not a bundle", 64).ok());
}

TEST(ParametersTest, CheckFiniteNamesTheValue) {
  std::vector<float> v = {1, 2, std::nanf(""), 4};
  absl::Status s = CheckFinite(v, "update from site-3");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("site-3: value 2 is NaN"));
  v[2] = 1.0f / 0.0f;
  EXPECT_THAT(std::string(CheckFinite(v, "x").message()), HasSubstr("infinite"));
}

}  // namespace
}  // namespace samverka
