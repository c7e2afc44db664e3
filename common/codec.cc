#include "common/codec.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace samverka {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the codec writes host floats directly; big-endian hosts need a byte swap");

constexpr char kMagic[4] = {'S', 'V', 'T', 'B'};

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads little-endian fields from untrusted bytes, tracking the position for
// error messages.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  absl::Status Get(T* value, std::string_view field) {
    if (bytes_.size() - pos_ < sizeof(T)) return Truncated(field);
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }
  absl::Status GetBytes(uint64_t n, std::string_view* out, std::string_view field) {
    if (bytes_.size() - pos_ < n) return Truncated(field);
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }

 private:
  absl::Status Truncated(std::string_view field) const {
    return absl::DataLossError(absl::StrCat("tensor bundle truncated at byte ", pos_,
                                            " of ", bytes_.size(), " while reading ",
                                            std::string(field)));
  }
  std::string_view bytes_;
  size_t pos_ = 0;
};

bool KnownDType(uint8_t value) { return value >= 1 && value <= 7; }

// Validates one tensor's header against the limits; returns the byte count
// its shape and dtype imply.
absl::StatusOr<uint64_t> ExpectedBytes(const std::vector<int64_t>& shape, DType dtype,
                                       const std::string& name, uint64_t limit) {
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has negative dimension ", d));
    }
    if (d != 0 && elements > limit / static_cast<uint64_t>(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' is larger than the limit of ", limit, " bytes"));
    }
    elements *= static_cast<uint64_t>(d);
  }
  const uint64_t size = DTypeSize(dtype);
  if (elements > limit / size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' is larger than the limit of ", limit, " bytes"));
  }
  return elements * size;
}

void PutHeader(std::string& out, uint32_t count) {
  out.append(kMagic, 4);
  Put<uint16_t>(out, kCodecVersion);
  Put<uint16_t>(out, 0);
  Put<uint32_t>(out, count);
}

void PutTensorHeader(std::string& out, std::string_view name, DType dtype,
                     const std::vector<int64_t>& shape, uint64_t nbytes) {
  Put<uint16_t>(out, static_cast<uint16_t>(name.size()));
  out.append(name);
  Put<uint8_t>(out, static_cast<uint8_t>(dtype));
  Put<uint8_t>(out, static_cast<uint8_t>(shape.size()));
  for (int64_t d : shape) Put<int64_t>(out, d);
  Put<uint64_t>(out, nbytes);
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kUInt32: return 4;
    case DType::kUInt64: return 8;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
  }
  return "unknown";
}

absl::StatusOr<std::string> EncodeBundle(const TensorBundle& bundle) {
  const DecodeLimits limits;
  std::string out;
  PutHeader(out, static_cast<uint32_t>(bundle.size()));
  for (const NamedTensor& t : bundle) {
    if (t.name.size() > limits.max_name_length || t.shape.size() > limits.max_rank) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name.substr(0, 64), "': name or rank too large"));
    }
    SV_ASSIGN_OR_RETURN(uint64_t expected,
                        ExpectedBytes(t.shape, t.dtype, t.name, limits.max_total_bytes));
    if (expected != t.data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' holds ", t.data.size(),
                       " bytes but its shape and dtype need ", expected));
    }
    PutTensorHeader(out, t.name, t.dtype, t.shape, t.data.size());
    out.append(t.data);
  }
  return out;
}

namespace {

// One tensor as the parser sees it; `data` points into the parsed bytes.
struct TensorView {
  std::string_view name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::string_view data;
};

// Validates a whole bundle and calls `on_tensor(TensorView&&)` for each
// tensor in order, without copying any tensor data. Every error of
// DecodeBundle comes from here.
template <typename OnTensor>
absl::Status ParseBundle(std::string_view bytes, const DecodeLimits& limits,
                         uint32_t* count_out, OnTensor on_tensor) {
  Reader in(bytes);
  std::string_view magic;
  SV_RETURN_IF_ERROR(in.GetBytes(4, &magic, "magic"));
  if (magic != std::string_view(kMagic, 4)) {
    return absl::InvalidArgumentError("not a tensor bundle: bad magic bytes");
  }
  uint16_t version = 0, flags = 0;
  uint32_t count = 0;
  SV_RETURN_IF_ERROR(in.Get(&version, "version"));
  SV_RETURN_IF_ERROR(in.Get(&flags, "flags"));
  SV_RETURN_IF_ERROR(in.Get(&count, "tensor count"));
  if (version != kCodecVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor bundle version ", version, " is not supported (expected ", kCodecVersion, ")"));
  }
  if (flags != 0) return absl::InvalidArgumentError("tensor bundle has unknown flags set");
  if (count > limits.max_tensors) {
    return absl::InvalidArgumentError(absl::StrCat("tensor bundle claims ", count,
                                                   " tensors; the limit is ", limits.max_tensors));
  }
  *count_out = count;
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    TensorView t;
    uint16_t name_length = 0;
    SV_RETURN_IF_ERROR(in.Get(&name_length, "name length"));
    if (name_length > limits.max_name_length) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, ": name of ", name_length,
                                                     " bytes exceeds the limit"));
    }
    SV_RETURN_IF_ERROR(in.GetBytes(name_length, &t.name, "tensor name"));
    const std::string name(t.name);
    uint8_t dtype = 0, rank = 0;
    SV_RETURN_IF_ERROR(in.Get(&dtype, "dtype"));
    SV_RETURN_IF_ERROR(in.Get(&rank, "rank"));
    if (!KnownDType(dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has unknown dtype ", int{dtype}));
    }
    if (rank > limits.max_rank) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has rank ", int{rank}, "; the limit is ",
                       limits.max_rank));
    }
    t.dtype = static_cast<DType>(dtype);
    t.shape.resize(rank);
    for (auto& d : t.shape) SV_RETURN_IF_ERROR(in.Get(&d, "dimension"));
    uint64_t nbytes = 0;
    SV_RETURN_IF_ERROR(in.Get(&nbytes, "data length"));
    SV_ASSIGN_OR_RETURN(uint64_t expected,
                        ExpectedBytes(t.shape, t.dtype, name, limits.max_total_bytes));
    if (nbytes != expected) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' declares ", nbytes,
                       " data bytes but its shape and dtype need ", expected));
    }
    total += nbytes;
    if (total > limits.max_total_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor bundle exceeds the limit of ", limits.max_total_bytes, " bytes"));
    }
    SV_RETURN_IF_ERROR(in.GetBytes(nbytes, &t.data, absl::StrCat("data of '", name, "'")));
    on_tensor(std::move(t));
  }
  if (in.remaining() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor bundle has ", in.remaining(), " unexpected bytes after the last tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TensorBundle> DecodeBundle(std::string_view bytes,
                                          const DecodeLimits& limits) {
  TensorBundle bundle;
  uint32_t count = 0;
  SV_RETURN_IF_ERROR(ParseBundle(bytes, limits, &count, [&](TensorView&& t) {
    if (bundle.empty()) bundle.reserve(count);
    bundle.push_back({std::string(t.name), t.dtype, std::move(t.shape), std::string(t.data)});
  }));
  return bundle;
}

std::string EncodeParameters(const ModelParameters& parameters) {
  std::string out;
  out.reserve(64 + parameters.values.size() * sizeof(float) +
              parameters.layout.tensors.size() * 96);
  PutHeader(out, static_cast<uint32_t>(parameters.layout.tensors.size()));
  const char* data = reinterpret_cast<const char*>(parameters.values.data());
  for (const TensorSpec& t : parameters.layout.tensors) {
    const uint64_t nbytes = static_cast<uint64_t>(t.num_elements()) * sizeof(float);
    PutTensorHeader(out, t.name, DType::kFloat32, t.shape, nbytes);
    out.append(data, nbytes);
    data += nbytes;
  }
  return out;
}

absl::StatusOr<ModelParameters> DecodeParameters(std::string_view bytes,
                                                 const DecodeLimits& limits) {
  // One validating pass that keeps views into `bytes`, then one copy of the
  // data straight into the flat vector (no per-tensor strings in between).
  std::vector<TensorView> tensors;
  uint32_t count = 0;
  SV_RETURN_IF_ERROR(ParseBundle(bytes, limits, &count, [&](TensorView&& t) {
    if (tensors.empty()) tensors.reserve(count);
    tensors.push_back(std::move(t));
  }));
  ModelParameters out;
  size_t total = 0;
  for (const TensorView& t : tensors) {
    if (t.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", std::string(t.name), "' is ",
                                                     DTypeName(t.dtype),
                                                     "; model state must be float32"));
    }
    total += t.data.size() / sizeof(float);
  }
  out.values.resize(total);
  out.layout.tensors.reserve(tensors.size());
  char* dst = reinterpret_cast<char*>(out.values.data());
  for (TensorView& t : tensors) {
    if (!t.data.empty()) std::memcpy(dst, t.data.data(), t.data.size());
    dst += t.data.size();
    out.layout.tensors.push_back({std::string(t.name), std::move(t.shape)});
  }
  return out;
}

std::array<uint8_t, 32> Sha256(std::string_view bytes) {
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

namespace {

std::string HexDigest(const std::array<uint8_t, 32>& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) { return HexDigest(Sha256(bytes)); }

std::vector<std::string_view> SplitIntoChunks(std::string_view bytes, size_t chunk_size) {
  std::vector<std::string_view> chunks;
  if (bytes.empty() || chunk_size == 0) {
    chunks.push_back(bytes);
    return chunks;
  }
  for (size_t pos = 0; pos < bytes.size(); pos += chunk_size) {
    chunks.push_back(bytes.substr(pos, chunk_size));
  }
  return chunks;
}

ChunkAssembler::ChunkAssembler(size_t max_chunk_size, uint64_t max_total_bytes)
    : max_chunk_size_(max_chunk_size), max_total_bytes_(max_total_bytes) {}

namespace {

// The checks every chunk of an untrusted stream passes: in order, at most
// `max_chunk_size` bytes, the running total at most `max_total_bytes`.
absl::Status CheckChunk(uint64_t index, uint64_t expected_index, size_t size,
                        size_t max_chunk_size, uint64_t received, uint64_t max_total_bytes) {
  if (index != expected_index) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", index, " arrived out of order; expected chunk ", expected_index));
  }
  if (size > max_chunk_size) {
    return absl::InvalidArgumentError(absl::StrCat("chunk ", index, " holds ", size,
                                                   " bytes; the limit is ", max_chunk_size));
  }
  if (received + size > max_total_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload exceeds the limit of ", max_total_bytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ChunkAssembler::Add(uint64_t index, std::string_view chunk) {
  if (failed_) return absl::FailedPreconditionError("chunk stream already rejected");
  absl::Status ok = CheckChunk(index, next_index_, chunk.size(), max_chunk_size_, data_.size(),
                               max_total_bytes_);
  if (!ok.ok()) {
    failed_ = true;
    return ok;
  }
  data_.append(chunk);
  ++next_index_;
  return absl::OkStatus();
}

void ChunkAssembler::Reserve(uint64_t total_bytes) {
  if (failed_ || total_bytes > max_total_bytes_ || total_bytes <= data_.capacity()) return;
  data_.reserve(total_bytes);
}

struct UpdateReceiver::Hasher {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  ~Hasher() { EVP_MD_CTX_free(context); }
};

UpdateReceiver::UpdateReceiver(std::string_view reference, size_t max_chunk_size)
    : reference_(reference), max_chunk_size_(max_chunk_size), hasher_(std::make_unique<Hasher>()) {}

UpdateReceiver::~UpdateReceiver() = default;

absl::StatusOr<std::unique_ptr<UpdateReceiver>> UpdateReceiver::Create(std::string_view reference,
                                                                       size_t max_chunk_size) {
  auto receiver = std::unique_ptr<UpdateReceiver>(new UpdateReceiver(reference, max_chunk_size));
  std::vector<TensorView> tensors;
  uint32_t count = 0;
  SV_RETURN_IF_ERROR(ParseBundle(reference, {}, &count, [&](TensorView&& t) {
    tensors.push_back(std::move(t));
  }));
  uint64_t header_begin = 0;
  uint64_t value_byte = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& t = tensors[i];
    if (t.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat("reference tensor '", std::string(t.name),
                                                     "' is not float32"));
    }
    const uint64_t data_begin = static_cast<uint64_t>(t.data.data() - reference.data());
    receiver->segments_.push_back({header_begin, data_begin, false, 0, i});
    if (!t.data.empty()) {
      receiver->segments_.push_back(
          {data_begin, data_begin + t.data.size(), true, value_byte, i});
    }
    value_byte += t.data.size();
    header_begin = data_begin + t.data.size();
    receiver->layout_.tensors.push_back({std::string(t.name), t.shape});
  }
  if (header_begin < reference.size() || tensors.empty()) {
    receiver->segments_.push_back({header_begin, reference.size(), false, 0, tensors.size()});
  }
  receiver->values_.resize(value_byte / sizeof(float));
  if (EVP_DigestInit_ex(receiver->hasher_->context, EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("cannot initialise SHA-256");
  }
  return receiver;
}

absl::Status UpdateReceiver::CheckDeclaredSize(uint64_t total_bytes) const {
  if (total_bytes == reference_.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the update declares ", total_bytes, " bytes; an update of this model is ",
                   reference_.size(), " bytes, and that is the limit"));
}

absl::Status UpdateReceiver::Mismatch(uint64_t position, size_t tensor) const {
  const std::string where =
      position < 12 ? std::string("in the bundle header")
      : tensor < layout_.tensors.size()
          ? absl::StrCat("in the header of tensor ", tensor, " (the model's is '",
                         layout_.tensors[tensor].name, "')")
          : std::string("after the last tensor");
  return absl::InvalidArgumentError(
      absl::StrCat("tensors do not match the model: byte ", position, " differs ", where,
                   "; expected float32 tensors\n", layout_.Describe()));
}

absl::Status UpdateReceiver::Add(uint64_t index, std::string_view chunk) {
  if (failed_) return absl::FailedPreconditionError("chunk stream already rejected");
  absl::Status status = CheckChunk(index, next_index_, chunk.size(), max_chunk_size_, position_,
                                   reference_.size());
  while (status.ok() && !chunk.empty()) {
    const Segment& segment = segments_[segment_];
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), segment.end - position_));
    if (segment.data) {
      std::memcpy(reinterpret_cast<char*>(values_.data()) + segment.value_byte +
                      (position_ - segment.begin),
                  chunk.data(), n);
    } else if (std::memcmp(chunk.data(), reference_.data() + position_, n) != 0) {
      const auto differs = std::mismatch(chunk.begin(), chunk.begin() + n,
                                         reference_.begin() + position_);
      status = Mismatch(position_ + (differs.first - chunk.begin()), segment.tensor);
      break;
    }
    if (EVP_DigestUpdate(hasher_->context, chunk.data(), n) != 1) {
      status = absl::InternalError("SHA-256 failed");
      break;
    }
    position_ += n;
    chunk.remove_prefix(n);
    if (position_ == segment.end) ++segment_;
  }
  if (!status.ok()) {
    failed_ = true;
    return status;
  }
  ++next_index_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> UpdateReceiver::Finish(std::string_view sha256_hex) {
  if (failed_) return absl::FailedPreconditionError("chunk stream already rejected");
  if (position_ != reference_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the update ended after ", position_, " of ",
                                                   reference_.size(), " bytes"));
  }
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(hasher_->context, digest.data(), &length) != 1) {
    return absl::InternalError("SHA-256 failed");
  }
  failed_ = true;  // finished: no more chunks
  if (HexDigest(digest) != sha256_hex) {
    return absl::DataLossError(
        "the update's SHA-256 does not match the digest its chunks declare");
  }
  return std::move(values_);
}

}  // namespace samverka
