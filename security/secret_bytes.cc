// security/secret_bytes.cc
#include "security/secret_bytes.h"

#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "security/internal/openssl_util.h"

namespace samverka::security {

SecretBytes::SecretBytes(size_t size)
    : data_(size == 0 ? nullptr : std::make_unique<uint8_t[]>(size)),
      size_(size) {}

SecretBytes SecretBytes::CopyFrom(std::span<const uint8_t> bytes) {
  SecretBytes result(bytes.size());
  if (!bytes.empty()) std::memcpy(result.data(), bytes.data(), bytes.size());
  return result;
}

SecretBytes SecretBytes::CopyFrom(std::string_view bytes) {
  return CopyFrom(
      std::span<const uint8_t>(internal::Bytes(bytes), bytes.size()));
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes result(size);
  if (!internal::RandomBytes(result.mutable_span()).ok()) {
    // Documented: without a working CSPRNG no secret can be made safely.
    std::fputs("samverka: RAND_bytes failed, aborting\n", stderr);
    std::abort();
  }
  return result;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes SecretBytes::Clone() const { return CopyFrom(span()); }

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return CRYPTO_memcmp(data_.get(), other.data_.get(), size_) == 0;
}

void SecretBytes::Wipe() {
  if (data_ != nullptr) OPENSSL_cleanse(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

}  // namespace samverka::security
