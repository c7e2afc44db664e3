// common/codec.h
#pragma once

#include <array>
#include <cstdint>
#include <memory>
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

// Receives a client's update to a model chunk by chunk and decodes it as it
// streams in, so that an upload costs one model's worth of floats and no
// assembled copy of its bytes. An update has the layout of the model it was
// computed from, so its encoding equals the model's encoding (`reference`,
// which must outlive the receiver) byte for byte except the float data:
// every other byte is compared with the reference, and the float data goes
// straight into the flat vector. The chunks' SHA-256 is computed on the way.
// Chunks must arrive in order, each at most `max_chunk_size`. Not
// thread-safe.
class UpdateReceiver {
 public:
  // kInvalidArgument if `reference` is not a float32 bundle. Allocates the
  // flat vector (the model's size) up front.
  static absl::StatusOr<std::unique_ptr<UpdateReceiver>> Create(std::string_view reference,
                                                                size_t max_chunk_size);
  ~UpdateReceiver();

  // Checks a sender's declared total size: kInvalidArgument unless it is
  // the reference's size.
  absl::Status CheckDeclaredSize(uint64_t total_bytes) const;
  // kInvalidArgument for an out-of-order or oversized chunk, bytes beyond
  // the model's size, or a byte outside the float data that differs from
  // the model's encoding (another layout or dtype: the message names the
  // tensor and lists the expected ones). The receiver is then unusable.
  absl::Status Add(uint64_t index, std::string_view chunk);
  uint64_t chunks() const { return next_index_; }
  uint64_t size() const { return position_; }
  // The decoded update once every byte arrived: kInvalidArgument if the
  // stream ended early, kDataLoss if its SHA-256 is not `sha256_hex`.
  absl::StatusOr<std::vector<float>> Finish(std::string_view sha256_hex);

 private:
  // A run of the reference's bytes: float data (copied into values_ at
  // `value_byte`) or header bytes that must match.
  struct Segment {
    uint64_t begin = 0;
    uint64_t end = 0;
    bool data = false;
    uint64_t value_byte = 0;
    size_t tensor = 0;  // the tensor the run belongs to (headers: the next one)
  };
  UpdateReceiver(std::string_view reference, size_t max_chunk_size);
  absl::Status Mismatch(uint64_t position, size_t tensor) const;

  std::string_view reference_;
  size_t max_chunk_size_;
  std::vector<Segment> segments_;
  ParameterLayout layout_;
  std::vector<float> values_;
  struct Hasher;
  std::unique_ptr<Hasher> hasher_;
  uint64_t next_index_ = 0;
  uint64_t position_ = 0;
  size_t segment_ = 0;
  bool failed_ = false;
};

}  // namespace samverka
