// security/secagg/internal/wire.cc
#include "security/secagg/internal/wire.h"

#include <bit>
#include <cstring>

namespace samverka::security::secagg::internal {
namespace {

absl::Status Truncated(std::string_view what) {
  return absl::InvalidArgumentError("truncated message: " + std::string(what));
}

}  // namespace

void ByteWriter::U32(uint32_t value) {
  for (int i = 0; i < 4; ++i) U8(static_cast<uint8_t>(value >> (8 * i)));
}

void ByteWriter::U64(uint64_t value) {
  for (int i = 0; i < 8; ++i) U8(static_cast<uint8_t>(value >> (8 * i)));
}

void ByteWriter::F64(double value) { U64(std::bit_cast<uint64_t>(value)); }

void ByteWriter::Raw(std::span<const uint8_t> bytes) {
  out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void ByteWriter::Bytes(std::string_view bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  Raw(bytes);
}

void ByteWriter::Bytes(std::span<const uint8_t> bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  Raw(bytes);
}

absl::StatusOr<uint8_t> ByteReader::U8(std::string_view what) {
  if (in_.empty()) return Truncated(what);
  const uint8_t value = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return value;
}

absl::StatusOr<uint32_t> ByteReader::U32(std::string_view what) {
  if (in_.size() < 4) return Truncated(what);
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
  }
  in_.remove_prefix(4);
  return value;
}

absl::StatusOr<uint64_t> ByteReader::U64(std::string_view what) {
  if (in_.size() < 8) return Truncated(what);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
  }
  in_.remove_prefix(8);
  return value;
}

absl::StatusOr<int64_t> ByteReader::I64(std::string_view what) {
  absl::StatusOr<uint64_t> value = U64(what);
  if (!value.ok()) return value.status();
  return static_cast<int64_t>(*value);
}

absl::StatusOr<double> ByteReader::F64(std::string_view what) {
  absl::StatusOr<uint64_t> value = U64(what);
  if (!value.ok()) return value.status();
  return std::bit_cast<double>(*value);
}

absl::StatusOr<std::string_view> ByteReader::Raw(size_t size,
                                                 std::string_view what) {
  if (in_.size() < size) return Truncated(what);
  const std::string_view out = in_.substr(0, size);
  in_.remove_prefix(size);
  return out;
}

absl::StatusOr<std::string_view> ByteReader::Bytes(size_t max_size,
                                                   std::string_view what) {
  absl::StatusOr<uint32_t> size = U32(what);
  if (!size.ok()) return size.status();
  if (*size > max_size) {
    return absl::InvalidArgumentError(
        std::string(what) + " is too long: " + std::to_string(*size) +
        " bytes, at most " + std::to_string(max_size));
  }
  return Raw(*size, what);
}

absl::StatusOr<uint32_t> ByteReader::Count(uint32_t max_count,
                                           size_t min_element_size,
                                           std::string_view what) {
  absl::StatusOr<uint32_t> count = U32(what);
  if (!count.ok()) return count.status();
  if (*count > max_count) {
    return absl::InvalidArgumentError("too many " + std::string(what) + ": " +
                                      std::to_string(*count) + ", at most " +
                                      std::to_string(max_count));
  }
  if (min_element_size > 0 && *count > in_.size() / min_element_size) {
    return Truncated(what);
  }
  return *count;
}

absl::Status ByteReader::ExpectEnd(std::string_view what) const {
  if (!in_.empty()) {
    return absl::InvalidArgumentError(std::to_string(in_.size()) +
                                      " unexpected trailing bytes after " +
                                      std::string(what));
  }
  return absl::OkStatus();
}

}  // namespace samverka::security::secagg::internal
