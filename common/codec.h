// common/codec.h
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/parameters.h"

namespace samverka {

// Element types a tensor bundle can carry.
enum class DType : uint8_t {
  kFloat32 = 1,
  kFloat64 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kUInt8 = 5,
  kUInt32 = 6,
  kUInt64 = 7,
};

// Bytes per element; 0 for an unknown value.
size_t DTypeSize(DType dtype);
const char* DTypeName(DType dtype);

// One named tensor with its raw little-endian element bytes.
struct NamedTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::string data;
};

using TensorBundle = std::vector<NamedTensor>;

// Bounds that a decoder enforces on untrusted input.
struct DecodeLimits {
  size_t max_tensors = 100000;
  size_t max_name_length = 1024;
  size_t max_rank = 8;
  uint64_t max_total_bytes = uint64_t{8} << 30;  // 8 GiB
};

// The wire format (version 1), all integers little-endian:
//   "SVTB" | u16 version | u16 flags (0) | u32 tensor count
//   per tensor: u16 name length | name | u8 dtype | u8 rank |
//               i64 dims[rank] | u64 data length | data
// Nothing may follow the last tensor.
inline constexpr uint16_t kCodecVersion = 1;

// Serialises `bundle`. kInvalidArgument if a tensor's data length does not
// match its shape and dtype, or a name or rank is out of bounds.
absl::StatusOr<std::string> EncodeBundle(const TensorBundle& bundle);

// Parses bytes produced by EncodeBundle. kInvalidArgument or kDataLoss with a
// message naming the tensor and field for truncated, oversized or
// inconsistent input.
absl::StatusOr<TensorBundle> DecodeBundle(std::string_view bytes,
                                          const DecodeLimits& limits = {});

// Fast paths for model state (all float32): encode straight from the flat
// vector, and decode into one, checking every tensor is float32.
std::string EncodeParameters(const ModelParameters& parameters);
absl::StatusOr<ModelParameters> DecodeParameters(std::string_view bytes,
                                                 const DecodeLimits& limits = {});

// SHA-256 of `bytes` (OpenSSL EVP), and its lower-case hex form. A model
// version's digest is the SHA-256 of its encoded bundle.
std::array<uint8_t, 32> Sha256(std::string_view bytes);
std::string Sha256Hex(std::string_view bytes);

// Views of consecutive chunks of at most `chunk_size` bytes (one empty chunk
// for empty input). The views point into `bytes`.
std::vector<std::string_view> SplitIntoChunks(std::string_view bytes,
                                              size_t chunk_size);

// Reassembles a chunked payload received from an untrusted peer: chunks must
// arrive in order (index 0, 1, ...), each at most `max_chunk_size`, the total
// at most `max_total_bytes`. Not thread-safe.
class ChunkAssembler {
 public:
  ChunkAssembler(size_t max_chunk_size, uint64_t max_total_bytes);

  // kInvalidArgument for an out-of-order or oversized chunk or a total above
  // the limit; the assembler is then unusable (every later call fails).
  absl::Status Add(uint64_t index, std::string_view chunk);
  // Pre-allocates for a payload the sender declares to be `total_bytes`
  // long, so that appending never reallocates (and never holds the payload
  // twice). Ignored above the limit: a declared size is only a hint.
  void Reserve(uint64_t total_bytes);
  uint64_t chunks() const { return next_index_; }
  uint64_t size() const { return data_.size(); }
  // Moves the assembled bytes out.
  std::string Take() { return std::move(data_); }

 private:
  size_t max_chunk_size_;
  uint64_t max_total_bytes_;
  uint64_t next_index_ = 0;
  bool failed_ = false;
  std::string data_;
};

}  // namespace samverka
