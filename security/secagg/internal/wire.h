// security/secagg/internal/wire.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace samverka::security::secagg::internal {

// Little-endian, length-prefixed encoding for SecAgg messages and for the
// byte strings that are signed or hashed (so they are unambiguous).
// Not thread-safe.
class ByteWriter {
 public:
  void U8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void U32(uint32_t value);
  void U64(uint64_t value);
  void I64(int64_t value) { U64(static_cast<uint64_t>(value)); }
  void F64(double value);
  // Raw bytes, no length prefix (fixed-size fields).
  void Raw(std::string_view bytes) { out_.append(bytes); }
  void Raw(std::span<const uint8_t> bytes);
  // u32 length || bytes.
  void Bytes(std::string_view bytes);
  void Bytes(std::span<const uint8_t> bytes);

  const std::string& data() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote from untrusted input. Every read fails with
// kInvalidArgument naming `what` on truncation or an over-long field.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  absl::StatusOr<uint8_t> U8(std::string_view what);
  absl::StatusOr<uint32_t> U32(std::string_view what);
  absl::StatusOr<uint64_t> U64(std::string_view what);
  absl::StatusOr<int64_t> I64(std::string_view what);
  absl::StatusOr<double> F64(std::string_view what);
  // Exactly `size` raw bytes.
  absl::StatusOr<std::string_view> Raw(size_t size, std::string_view what);
  // A u32-length-prefixed field of at most `max_size` bytes.
  absl::StatusOr<std::string_view> Bytes(size_t max_size,
                                         std::string_view what);
  // A u32 element count of at most `max_count`, also bounded by the bytes
  // left (each element takes at least `min_element_size` bytes), so a
  // forged count cannot make the caller reserve huge memory.
  absl::StatusOr<uint32_t> Count(uint32_t max_count, size_t min_element_size,
                                 std::string_view what);

  size_t remaining() const { return in_.size(); }
  // kInvalidArgument if bytes are left over.
  absl::Status ExpectEnd(std::string_view what) const;

 private:
  std::string_view in_;
};

}  // namespace samverka::security::secagg::internal
