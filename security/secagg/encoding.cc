// security/secagg/encoding.cc
#include "security/secagg/encoding.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "security/secagg/internal/prg_stream.h"

namespace samverka::security::secagg {
namespace {

constexpr std::string_view kRoundingContext =
    "samverka/secagg/stochastic-rounding/v1";
constexpr int kMaxQuantisationBits = 52;
constexpr uint64_t kMaxVectorLength = uint64_t{1} << 31;
constexpr size_t kCoinChunk = 1024;

// ceil(log2 n) for n >= 1.
int CeilLog2(uint64_t n) { return n <= 1 ? 0 : std::bit_width(n - 1); }

// Rounds y to floor(y) or floor(y) + 1 with E[result] = y, using the coin
// `word`; clamped to [0, levels]. Needs 0 <= y < 2^63 (EncodeInput's y is in
// [0, Q] with Q <= 2^52): there truncation is floor, and floor(y) and
// floor(y) + 1 are exact in a double, so this is floor/compare/add without a
// libm call or a branchy double -> uint64 conversion.
inline uint64_t StochasticRound(double y, uint64_t word, uint64_t levels) {
  const int64_t floor_y = static_cast<int64_t>(y);
  const bool up =
      internal::UnitInterval(word) < y - static_cast<double>(floor_y);
  return std::min(static_cast<uint64_t>(floor_y) + (up ? 1 : 0), levels);
}

// Encodes update[i] into words[i] for every coordinate (see EncodeInput).
template <typename Word>
absl::Status EncodeCoordinates(std::span<const float> update, double scale,
                               const EncodingParameters& parameters,
                               internal::PrgStream& coins, Word* words,
                               size_t* num_clipped) {
  const double c = parameters.options.clip_range;
  const double to_levels = static_cast<double>(parameters.levels) / (2 * c);
  const uint64_t levels = parameters.levels;
  std::array<uint64_t, kCoinChunk> coin;
  size_t clipped = 0;
  for (size_t begin = 0; begin < update.size(); begin += kCoinChunk) {
    const size_t n = std::min(kCoinChunk, update.size() - begin);
    SV_RETURN_IF_ERROR(coins.Fill(std::span<uint64_t>(coin).first(n)));
    const float* const x = update.data() + begin;
    Word* const out = words + begin;
    for (size_t j = 0; j < n; ++j) {
      const double value = x[j];
      if (!std::isfinite(value)) [[unlikely]] {
        return absl::InvalidArgumentError("update coordinate " +
                                          std::to_string(begin + j) +
                                          " is not finite");
      }
      const double clamped = std::clamp(value, -c, c);
      clipped += clamped != value ? 1 : 0;
      const double y = (clamped * scale + c) * to_levels;  // in [0, Q]
      out[j] = static_cast<Word>(StochasticRound(y, coin[j], levels));
    }
  }
  *num_clipped = clipped;
  return absl::OkStatus();
}

// EncodeInput over Z_2^bits with Word = uint{bits}_t.
template <typename Word>
absl::StatusOr<EncodedInput> Encode(std::span<const float> update, double scale,
                                    const EncodingParameters& parameters,
                                    internal::PrgStream& coins) {
  std::vector<Word> words(parameters.encoded_length());
  EncodedInput out;
  SV_RETURN_IF_ERROR(EncodeCoordinates<Word>(update, scale, parameters, coins,
                                             words.data(), &out.num_clipped));
  // The weight, last, with the next coin of the same stream.
  SV_ASSIGN_OR_RETURN(const uint64_t coin, coins.Next());
  words[parameters.vector_length] = static_cast<Word>(StochasticRound(
      scale * static_cast<double>(parameters.levels), coin, parameters.levels));
  out.values = ModularVector::FromWords(std::move(words));
  return out;
}

}  // namespace

absl::Status EncodingOptions::Validate() const {
  if (!(std::isfinite(clip_range) && clip_range > 0)) {
    return absl::InvalidArgumentError(
        "encoding.clip_range must be finite and > 0, got " +
        std::to_string(clip_range));
  }
  if (!(std::isfinite(max_weight) && max_weight > 0)) {
    return absl::InvalidArgumentError(
        "encoding.max_weight must be finite and > 0, got " +
        std::to_string(max_weight));
  }
  if (modulus_bits != 32 && modulus_bits != 64) {
    return absl::InvalidArgumentError(
        "encoding.modulus_bits must be 32 or 64, got " +
        std::to_string(modulus_bits));
  }
  if (quantisation_bits < 0 || quantisation_bits > kMaxQuantisationBits) {
    return absl::InvalidArgumentError(
        "encoding.quantisation_bits must be in [0, 52] (0: automatic), got " +
        std::to_string(quantisation_bits));
  }
  return absl::OkStatus();
}

absl::StatusOr<EncodingParameters> ResolveEncoding(
    const EncodingOptions& options, int max_summands, uint64_t vector_length) {
  SV_RETURN_IF_ERROR(options.Validate());
  if (max_summands < 1 || max_summands > 1'000'000) {
    return absl::InvalidArgumentError(
        "number of summands must be in [1, 1000000], got " +
        std::to_string(max_summands));
  }
  if (vector_length > kMaxVectorLength) {
    return absl::InvalidArgumentError(
        "vector length " + std::to_string(vector_length) + " exceeds 2^31");
  }
  // n summands of at most Q each stay below M = 2^bits iff
  // bits >= log2 Q + ceil(log2 n) + 1 (one bit of margin, notes 4.1).
  const int headroom = CeilLog2(static_cast<uint64_t>(max_summands)) + 1;
  const int available = options.modulus_bits - headroom;
  int bits = options.quantisation_bits;
  if (bits == 0) {
    bits = std::min(available, kMaxQuantisationBits);
  } else if (bits > available) {
    return absl::InvalidArgumentError(
        "encoding could wrap: " + std::to_string(max_summands) +
        " summands of " + std::to_string(bits) + " quantisation bits need " +
        std::to_string(bits + headroom) + " bits, the ring has " +
        std::to_string(options.modulus_bits));
  }
  if (bits < 1) {
    return absl::InvalidArgumentError(
        "no quantisation bits left for " + std::to_string(max_summands) +
        " summands in Z_2^" + std::to_string(options.modulus_bits));
  }
  return EncodingParameters{.options = options,
                            .max_summands = max_summands,
                            .vector_length = vector_length,
                            .quantisation_bits = bits,
                            .levels = uint64_t{1} << bits};
}

absl::StatusOr<EncodedInput> EncodeInput(std::span<const float> update,
                                         double weight,
                                         const EncodingParameters& parameters,
                                         const SecretBytes& rounding_seed) {
  const EncodingOptions& options = parameters.options;
  if (update.size() != parameters.vector_length) {
    return absl::InvalidArgumentError("update has " +
                                      std::to_string(update.size()) +
                                      " coordinates, the round expects " +
                                      std::to_string(parameters.vector_length));
  }
  if (!(std::isfinite(weight) && weight >= 0 && weight <= options.max_weight)) {
    return absl::InvalidArgumentError("weight must be in [0, max_weight = " +
                                      std::to_string(options.max_weight) +
                                      "], got " + std::to_string(weight));
  }
  SV_ASSIGN_OR_RETURN(
      internal::PrgStream coins,
      internal::PrgStream::Create(rounding_seed, kRoundingContext));
  const double scale = weight / options.max_weight;
  if (options.modulus_bits == 32) {
    return Encode<uint32_t>(update, scale, parameters, coins);
  }
  return Encode<uint64_t>(update, scale, parameters, coins);
}

absl::StatusOr<EncodedInput> EncodeInput(std::span<const float> update,
                                         double weight,
                                         const EncodingParameters& parameters) {
  return EncodeInput(update, weight, parameters, SecretBytes::Random(32));
}

absl::StatusOr<DecodedSum> DecodeSum(const ModularVector& sum,
                                     const EncodingParameters& parameters,
                                     int num_summands) {
  const EncodingOptions& options = parameters.options;
  if (sum.bits() != options.modulus_bits ||
      sum.size() != parameters.encoded_length()) {
    return absl::InvalidArgumentError(
        "sum over Z_2^" + std::to_string(sum.bits()) + " of length " +
        std::to_string(sum.size()) + " does not match the encoding (Z_2^" +
        std::to_string(options.modulus_bits) + ", length " +
        std::to_string(parameters.encoded_length()) + ")");
  }
  if (num_summands < 1 || num_summands > parameters.max_summands) {
    return absl::InvalidArgumentError("number of summands must be in [1, " +
                                      std::to_string(parameters.max_summands) +
                                      "], got " + std::to_string(num_summands));
  }
  const uint64_t max_value =
      static_cast<uint64_t>(num_summands) * parameters.levels;
  for (size_t i = 0; i < sum.size(); ++i) {
    if (sum.Get(i) > max_value) {
      return absl::DataLossError(
          "decoded sum element " + std::to_string(i) +
          " exceeds num_summands * Q: the sum wrapped or a summand was not a "
          "valid encoding");
    }
  }
  const double step = parameters.step();
  const double c = options.clip_range;
  const double w = options.max_weight;
  DecodedSum out;
  out.weighted_sum.resize(parameters.vector_length);
  for (size_t i = 0; i < parameters.vector_length; ++i) {
    out.weighted_sum[i] =
        w * (static_cast<double>(sum.Get(i)) * step - num_summands * c);
  }
  out.total_weight = static_cast<double>(sum.Get(parameters.vector_length)) *
                     w / static_cast<double>(parameters.levels);
  return out;
}

}  // namespace samverka::security::secagg
