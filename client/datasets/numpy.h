// client/datasets/numpy.h
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dataset.h"
#include "models/tasks/task_type.h"

namespace samverka::client {

// One array of a NumPy .npy file, converted to float.
struct NumpyArray {
  std::string dtype;             // as in the header, e.g. "<f4"
  bool integral = false;         // an integer or boolean dtype
  std::vector<int64_t> shape;    // C order
  std::vector<float> values;     // product(shape) values
};

// Parses the bytes of a .npy file (format 1.0, 2.0 or 3.0). Accepted
// dtypes: little-endian float32/float64, (u)int8/16/32/64 and bool, in C
// order. `where` names the array in messages ("x.npz: x.npy").
// kInvalidArgument for a bad magic or header, another dtype (big-endian,
// complex, strings, objects), Fortran order, a float64 or integer value that
// float32 cannot hold, or data shorter or longer than the shape says.
absl::StatusOr<NumpyArray> ParseNpy(absl::string_view bytes, absl::string_view where);

// Reads a .npy file (plain or gzip): kNotFound and the errors of ParseNpy.
absl::StatusOr<NumpyArray> ReadNpyFile(const std::string& path);

// Reads every array of a .npz file (a zip archive as np.savez and
// np.savez_compressed write: stored or deflated members), by name without
// ".npy". kNotFound; kInvalidArgument for a file that is not a zip, a
// member that is not .npy or uses another compression; kDataLoss for a
// truncated archive or a CRC mismatch; messages name the file and member.
absl::StatusOr<std::map<std::string, NumpyArray>> ReadNpzFile(const std::string& path);

// A data set of features `x` [N, ...] and targets `y` for `task`:
// classification: y [N] of integers >= 0 (num_classes = max + 1);
// regression: y [N] or [N, T]; survival: y [N, 2] of (time >= 0, event 0/1);
// multilabel: y [N, L] of 0/1. kInvalidArgument naming `x_where` or
// `y_where` and the sample for arrays that disagree in length, a shape the
// task cannot take, a NaN or infinite value, or a bad label, time or event.
absl::StatusOr<Dataset> NumpyDataset(const NumpyArray& x, const NumpyArray& y,
                                     models::TaskType task, absl::string_view x_where,
                                     absl::string_view y_where);

}  // namespace samverka::client
