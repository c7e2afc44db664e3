#include "common/parameters.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace samverka {

int64_t TensorSpec::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t ParameterLayout::num_elements() const {
  int64_t n = 0;
  for (const TensorSpec& t : tensors) n += t.num_elements();
  return n;
}

std::string ParameterLayout::Describe() const {
  std::string out;
  for (const TensorSpec& t : tensors) {
    absl::StrAppend(&out, t.name, " [", absl::StrJoin(t.shape, ","), "]\n");
  }
  return out;
}

absl::Status ModelParameters::Validate() const {
  const int64_t expected = layout.num_elements();
  if (static_cast<int64_t>(values.size()) != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("model parameters hold ", values.size(),
                     " values but their layout needs ", expected));
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(std::span<const float> values, std::string_view what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(what), ": value ", i, " is ",
                       std::isnan(values[i]) ? "NaN" : "infinite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace samverka
