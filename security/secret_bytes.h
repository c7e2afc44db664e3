// security/secret_bytes.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace samverka::security {

// A fixed-size buffer for secret bytes: keys, seeds, shared secrets, Shamir
// shares. It exists so secrets are wiped when they die and cannot leak by
// accident: it is move-only, wipes its buffer with OPENSSL_cleanse on
// destruction and when assigned over, has no operator<<, no conversion to or
// from std::string, and no operator== (use the constant-time Equals).
// A moved-from SecretBytes is empty (the buffer moves, it is never copied).
//
// Thread-safety: like a std::vector; const methods may run concurrently,
// anything else needs external synchronisation.
class SecretBytes {
 public:
  // An empty buffer.
  SecretBytes() = default;
  // `size` zero bytes, to be filled through mutable_span().
  explicit SecretBytes(size_t size);

  // A copy of `bytes`. The caller remains responsible for wiping its source.
  static SecretBytes CopyFrom(std::span<const uint8_t> bytes);
  static SecretBytes CopyFrom(std::string_view bytes);

  // `size` bytes from OpenSSL's CSPRNG (RAND_bytes). Aborts the process if
  // the CSPRNG fails: there is no safe way to continue without randomness,
  // and returning predictable "secret" bytes would be worse.
  static SecretBytes Random(size_t size);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  // An explicit deep copy, for the rare case that needs two owners.
  SecretBytes Clone() const;

  const uint8_t* data() const { return data_.get(); }
  uint8_t* data() { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_.get(), size_}; }
  std::span<uint8_t> mutable_span() { return {data_.get(), size_}; }

  // True iff both hold the same bytes. Runs in time that depends only on the
  // sizes (CRYPTO_memcmp), so it is safe for keys, tags and tokens.
  bool Equals(const SecretBytes& other) const;

 private:
  void Wipe();

  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

}  // namespace samverka::security
