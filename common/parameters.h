// common/parameters.h
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace samverka {

// Name and shape of one float32 tensor of a model's state.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;

  int64_t num_elements() const;
  bool operator==(const TensorSpec&) const = default;
};

// The ordered list of float32 tensors that make up a model's trainable state
// (parameters, then float buffers such as batch-norm statistics). Two models
// exchange state only if their layouts are equal.
struct ParameterLayout {
  std::vector<TensorSpec> tensors;

  // Sum of the tensors' element counts.
  int64_t num_elements() const;
  bool operator==(const ParameterLayout&) const = default;
  // One line per tensor, e.g. "conv1.weight [32,1,5,5]", for error messages.
  std::string Describe() const;
};

// A model's state as one flat float vector in layout order. Aggregation,
// the wire codec and secure aggregation work on this, never on torch types.
struct ModelParameters {
  ParameterLayout layout;
  std::vector<float> values;

  // kInvalidArgument if values.size() differs from the layout's size.
  absl::Status Validate() const;
};

// kInvalidArgument naming the first NaN or infinite value ("what" names the
// vector in the message, e.g. "update from site-3").
absl::Status CheckFinite(std::span<const float> values, std::string_view what);

}  // namespace samverka
