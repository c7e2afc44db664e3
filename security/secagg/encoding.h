// security/secagg/encoding.h
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secagg/modular_vector.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// How a client turns its float update and weight into ring elements.
// Following Flower's SecAgg+ quantisation (notes section 4.1): clip each
// coordinate to [-c, c], multiply by weight / max_weight, map [-c, c] onto
// [0, Q] and round stochastically; the weight, as weight / max_weight * Q,
// rides along as one more coordinate so the server learns only the total.
struct EncodingOptions {
  // c: coordinates are clipped to [-c, c]. Must be finite and > 0.
  double clip_range = 8.0;
  // Weights (e.g. sample counts) must lie in [0, max_weight]. Finite, > 0.
  double max_weight = 1000.0;
  // The ring Z_2^32 or Z_2^64.
  int modulus_bits = 32;
  // log2 Q, the quantisation levels per client. 0 picks the most that
  // cannot wrap: modulus_bits - ceil(log2 n) - 1, at most 52 (a double's
  // mantissa). An explicit value that could wrap is rejected.
  int quantisation_bits = 0;

  // kInvalidArgument naming the field.
  absl::Status Validate() const;
};

// EncodingOptions resolved for a round: the quantisation step follows from
// the ring and the largest possible number of summands.
struct EncodingParameters {
  EncodingOptions options;
  // The most clients whose inputs can be summed (the roster size bound).
  int max_summands = 0;
  // Model coordinates d; encoded vectors have d + 1 elements (the weight).
  uint64_t vector_length = 0;
  int quantisation_bits = 0;
  uint64_t levels = 0;  // Q = 2^quantisation_bits

  // Width of one quantisation level, 2c / Q.
  double step() const {
    return 2 * options.clip_range / static_cast<double>(levels);
  }
  // Elements of an encoded (and masked) vector: d + 1.
  size_t encoded_length() const { return vector_length + 1; }
};

// Resolves `options` for `max_summands` clients and `vector_length`
// coordinates so that the sum never wraps: log2 M >= log2 Q +
// ceil(log2 n) + 1 (notes section 4.1). kInvalidArgument for bad options,
// for n outside [1, 10^6], for a vector_length over 2^31, or if an explicit
// quantisation_bits could wrap (or no quantisation bit is left).
absl::StatusOr<EncodingParameters> ResolveEncoding(
    const EncodingOptions& options, int max_summands, uint64_t vector_length);

// One client's encoded input.
struct EncodedInput {
  ModularVector values;  // d + 1 elements, the weight last
  // Coordinates outside [-c, c] that were clipped.
  size_t num_clipped = 0;
};

// Encodes `update` with `weight`. Stochastic rounding draws its coins from
// internal::PrgStream(rounding_seed), so a fixed seed gives a fixed result
// (tests); production code uses the overload without a seed.
// kInvalidArgument if update.size() != vector_length, a coordinate is NaN or
// infinite, or the weight is not in [0, max_weight]; kInternal if OpenSSL
// fails.
absl::StatusOr<EncodedInput> EncodeInput(std::span<const float> update,
                                         double weight,
                                         const EncodingParameters& parameters,
                                         const SecretBytes& rounding_seed);
// As above with a fresh 32-byte seed from the CSPRNG.
absl::StatusOr<EncodedInput> EncodeInput(std::span<const float> update,
                                         double weight,
                                         const EncodingParameters& parameters);

// The decoded aggregate.
struct DecodedSum {
  // sum_i weight_i * clip(update_i), per coordinate.
  std::vector<double> weighted_sum;
  // sum_i weight_i.
  double total_weight = 0;
};

// Decodes the unmasked modular sum of `num_summands` encoded inputs.
// kInvalidArgument if the ring or length does not match `parameters` or
// num_summands is outside [1, max_summands]; kDataLoss if an element exceeds
// num_summands * Q, which no honest sum can (the sum wrapped or a summand
// was not a valid encoding).
absl::StatusOr<DecodedSum> DecodeSum(const ModularVector& sum,
                                     const EncodingParameters& parameters,
                                     int num_summands);

}  // namespace samverka::security::secagg
