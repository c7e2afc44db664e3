#include "client/datasets/numpy.h"

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/datasets/internal/file_reader.h"
#include "common/status_macros.h"
#include "common/task.h"

namespace samverka::client {
namespace {

absl::Status Bad(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

uint64_t LittleEndian(absl::string_view bytes, size_t offset, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  }
  return value;
}

// The value of `key` in the header dict, e.g. "'<f4'" or "(3, 4)".
absl::StatusOr<absl::string_view> HeaderValue(absl::string_view header, absl::string_view key,
                                             absl::string_view where) {
  const std::string quoted = absl::StrCat("'", key, "'");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) {
    return Bad(where, absl::StrCat("bad .npy header: no ", quoted, " in ", header));
  }
  size_t begin = header.find(':', at + quoted.size());
  if (begin == absl::string_view::npos) return Bad(where, "bad .npy header");
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(header.substr(begin + 1));
  size_t end = 0;
  if (!rest.empty() && rest[0] == '(') {
    end = rest.find(')');
    if (end == absl::string_view::npos) return Bad(where, "bad .npy header: unclosed shape");
    return rest.substr(0, end + 1);
  }
  if (!rest.empty() && rest[0] == '\'') {
    end = rest.find('\'', 1);
    if (end == absl::string_view::npos) return Bad(where, "bad .npy header: unclosed string");
    return rest.substr(0, end + 1);
  }
  end = rest.find_first_of(",}");
  return absl::StripTrailingAsciiWhitespace(rest.substr(0, end));
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view text, absl::string_view where) {
  std::vector<int64_t> shape;
  text = text.substr(1, text.size() - 2);
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t d = 0;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return Bad(where, absl::StrCat("bad .npy shape (", text, ")"));
    }
    shape.push_back(d);
  }
  return shape;
}

// Size in bytes and kind of an accepted dtype ('f', 'i', 'u', 'b'); 0 if not.
struct Dtype {
  int size = 0;
  char kind = 0;
};

Dtype ParseDtype(absl::string_view descr) {
  if (descr.size() < 3) return {};
  const char order = descr[0];
  const char kind = descr[1];
  int size = 0;
  if (!absl::SimpleAtoi(descr.substr(2), &size)) return {};
  if (size == 1 && (order == '|' || order == '<' || order == '=') &&
      (kind == 'u' || kind == 'i' || kind == 'b')) {
    return {1, kind};
  }
  if (order != '<') return {};  // '>' is big-endian; '=' is only written for 1 byte
  if (kind == 'f' && (size == 4 || size == 8)) return {size, kind};
  if ((kind == 'i' || kind == 'u') && (size == 2 || size == 4 || size == 8)) return {size, kind};
  return {};
}

// Value `i` of the raw data as float; false when float32 cannot hold it.
bool ReadValue(const char* data, size_t i, const Dtype& dtype, float* out) {
  const char* p = data + i * dtype.size;
  double value = 0;
  switch (dtype.kind) {
    case 'f':
      if (dtype.size == 4) {
        std::memcpy(out, p, 4);
        return true;
      } else {
        std::memcpy(&value, p, 8);
        if (std::isfinite(value) && std::abs(value) > std::numeric_limits<float>::max()) {
          return false;
        }
      }
      break;
    case 'b':
      value = *p != 0;
      break;
    case 'u': {
      uint64_t v = 0;
      std::memcpy(&v, p, dtype.size);
      value = static_cast<double>(v);
      break;
    }
    case 'i': {
      int64_t v = 0;
      std::memcpy(&v, p, dtype.size);
      const int shift = 64 - 8 * dtype.size;
      v = static_cast<int64_t>(static_cast<uint64_t>(v) << shift) >> shift;  // sign-extend
      value = static_cast<double>(v);
      break;
    }
  }
  if (dtype.kind != 'f' && std::abs(value) > (1 << 24)) return false;  // not exact in float32
  *out = static_cast<float>(value);
  return true;
}

// The bytes of zip member `name` at local header `offset`.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t offset = 0;
};

absl::StatusOr<std::vector<ZipEntry>> ZipDirectory(absl::string_view zip, absl::string_view path) {
  constexpr uint32_t kEnd = 0x06054b50, kCentral = 0x02014b50;
  if (zip.size() < 22 || LittleEndian(zip, 0, 4) != 0x04034b50) {
    return Bad(path, "not a .npz file (no zip signature); np.savez writes one");
  }
  size_t end = absl::string_view::npos;
  for (size_t i = zip.size() - 22 + 1; i-- > 0 && zip.size() - i < 65536 + 22;) {
    if (LittleEndian(zip, i, 4) == kEnd) {
      end = i;
      break;
    }
  }
  if (end == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat(path, ": truncated .npz (no end of zip directory)"));
  }
  const uint64_t count = LittleEndian(zip, end + 10, 2);
  uint64_t at = LittleEndian(zip, end + 16, 4);
  std::vector<ZipEntry> entries;
  for (uint64_t k = 0; k < count; ++k) {
    if (at + 46 > zip.size() || LittleEndian(zip, at, 4) != kCentral) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt zip directory"));
    }
    ZipEntry e;
    e.method = static_cast<uint16_t>(LittleEndian(zip, at + 10, 2));
    e.crc = static_cast<uint32_t>(LittleEndian(zip, at + 16, 4));
    e.compressed = LittleEndian(zip, at + 20, 4);
    e.uncompressed = LittleEndian(zip, at + 24, 4);
    const uint64_t name_length = LittleEndian(zip, at + 28, 2);
    const uint64_t extra_length = LittleEndian(zip, at + 30, 2);
    const uint64_t comment_length = LittleEndian(zip, at + 32, 2);
    e.offset = LittleEndian(zip, at + 42, 4);
    if (at + 46 + name_length + extra_length > zip.size()) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt zip directory"));
    }
    e.name = std::string(zip.substr(at + 46, name_length));
    // ZIP64: the 0xffffffff fields are in the extra field, in this order.
    absl::string_view extra = zip.substr(at + 46 + name_length, extra_length);
    for (size_t x = 0; x + 4 <= extra.size();) {
      const uint64_t id = LittleEndian(extra, x, 2), size = LittleEndian(extra, x + 2, 2);
      if (id == 1) {
        size_t f = x + 4;
        for (uint64_t* field : {&e.uncompressed, &e.compressed, &e.offset}) {
          if (*field == 0xffffffffu && f + 8 <= x + 4 + size && f + 8 <= extra.size()) {
            *field = LittleEndian(extra, f, 8);
            f += 8;
          }
        }
      }
      x += 4 + size;
    }
    entries.push_back(std::move(e));
    at += 46 + name_length + extra_length + comment_length;
  }
  return entries;
}

absl::StatusOr<std::string> ZipMember(absl::string_view zip, const ZipEntry& e,
                                      absl::string_view where) {
  if (e.offset + 30 > zip.size()) return absl::DataLossError(absl::StrCat(where, ": truncated"));
  const uint64_t start =
      e.offset + 30 + LittleEndian(zip, e.offset + 26, 2) + LittleEndian(zip, e.offset + 28, 2);
  if (start + e.compressed > zip.size()) {
    return absl::DataLossError(absl::StrCat(where, ": truncated (the archive ends inside it)"));
  }
  const absl::string_view raw = zip.substr(start, e.compressed);
  std::string out;
  if (e.method == 0) {
    out = std::string(raw);
  } else if (e.method == 8) {
    if (e.uncompressed > internal::kMaxFileBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(where, ": too large"));
    }
    out.resize(e.uncompressed);
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return absl::InternalError("zlib init failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    const uint64_t produced = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != e.uncompressed) {
      return absl::DataLossError(absl::StrCat(where, ": corrupt deflate data"));
    }
  } else {
    return Bad(where, absl::StrCat("zip compression method ", e.method,
                                   " is not supported (np.savez and np.savez_compressed "
                                   "write 0 and 8)"));
  }
  if (out.size() != e.uncompressed ||
      crc32(0, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size())) !=
          e.crc) {
    return absl::DataLossError(absl::StrCat(where, ": CRC mismatch (corrupt or truncated)"));
  }
  return out;
}

// The first value of each sample that is NaN or infinite.
absl::Status CheckFinite(const NumpyArray& a, absl::string_view where) {
  const int64_t n = a.shape.empty() ? 1 : a.shape[0];
  const int64_t per = n > 0 ? static_cast<int64_t>(a.values.size()) / n : 0;
  for (size_t i = 0; i < a.values.size(); ++i) {
    if (!std::isfinite(a.values[i])) {
      return Bad(where, absl::StrCat("sample ", i / per, ", value ", i % per, " is ",
                                     std::isnan(a.values[i]) ? "NaN" : "infinite",
                                     "; every value must be a finite number"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NumpyArray> ParseNpy(absl::string_view bytes, absl::string_view where) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") {
    return Bad(where, "not a .npy file (bad magic; np.save writes \\x93NUMPY)");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  if (major < 1 || major > 3) return Bad(where, absl::StrCat(".npy format ", major, " unknown"));
  const int length_size = major == 1 ? 2 : 4;
  const uint64_t header_length = LittleEndian(bytes, 8, length_size);
  const size_t data_start = 8 + length_size + header_length;
  if (data_start > bytes.size()) return Bad(where, "truncated .npy header");
  const absl::string_view header = bytes.substr(8 + length_size, header_length);
  NumpyArray array;
  SV_ASSIGN_OR_RETURN(absl::string_view descr, HeaderValue(header, "descr", where));
  SV_ASSIGN_OR_RETURN(absl::string_view fortran, HeaderValue(header, "fortran_order", where));
  SV_ASSIGN_OR_RETURN(absl::string_view shape, HeaderValue(header, "shape", where));
  if (descr.size() < 2 || descr.front() != '\'') {
    return Bad(where, absl::StrCat("dtype ", descr, " is not supported (a structured dtype?)"));
  }
  array.dtype = std::string(descr.substr(1, descr.size() - 2));
  const Dtype dtype = ParseDtype(array.dtype);
  if (dtype.size == 0) {
    return Bad(where, absl::StrCat("dtype '", array.dtype,
                                   "' is not supported; save little-endian float32, float64, "
                                   "integers or bool"));
  }
  array.integral = dtype.kind != 'f';
  if (fortran != "False") {
    return Bad(where, "Fortran-ordered arrays are not supported; save np.ascontiguousarray(a)");
  }
  if (shape.empty() || shape.front() != '(') return Bad(where, "bad .npy shape");
  SV_ASSIGN_OR_RETURN(array.shape, ParseShape(shape, where));
  const int64_t count = ShapeElements(array.shape);
  const uint64_t expected = static_cast<uint64_t>(count) * dtype.size;
  const uint64_t found = bytes.size() - data_start;
  if (found != expected) {
    return Bad(where, absl::StrCat(found < expected ? "truncated: " : "", "shape ",
                                   ShapeString(array.shape), " of ", array.dtype, " needs ",
                                   expected, " bytes of data, the file has ", found));
  }
  array.values.resize(count);
  const char* data = bytes.data() + data_start;
  for (int64_t i = 0; i < count; ++i) {
    if (!ReadValue(data, i, dtype, &array.values[i])) {
      return Bad(where, absl::StrCat("value ", i, " does not fit float32 exactly"));
    }
  }
  return array;
}

absl::StatusOr<NumpyArray> ReadNpyFile(const std::string& path) {
  SV_ASSIGN_OR_RETURN(const std::string bytes, internal::ReadFileMaybeGzip(path));
  return ParseNpy(bytes, path);
}

absl::StatusOr<std::map<std::string, NumpyArray>> ReadNpzFile(const std::string& path) {
  SV_ASSIGN_OR_RETURN(const std::string zip, internal::ReadFileMaybeGzip(path));
  SV_ASSIGN_OR_RETURN(const std::vector<ZipEntry> entries, ZipDirectory(zip, path));
  std::map<std::string, NumpyArray> arrays;
  for (const ZipEntry& e : entries) {
    const std::string where = absl::StrCat(path, ": ", e.name);
    if (e.name.size() < 5 || e.name.substr(e.name.size() - 4) != ".npy") {
      return Bad(where, "is not a .npy member");
    }
    SV_ASSIGN_OR_RETURN(const std::string bytes, ZipMember(zip, e, where));
    SV_ASSIGN_OR_RETURN(NumpyArray array, ParseNpy(bytes, where));
    arrays[e.name.substr(0, e.name.size() - 4)] = std::move(array);
  }
  return arrays;
}

absl::StatusOr<Dataset> NumpyDataset(const NumpyArray& x, const NumpyArray& y,
                                     models::TaskType task, absl::string_view x_where,
                                     absl::string_view y_where) {
  if (x.shape.size() < 2) {
    return Bad(x_where, absl::StrCat("features shaped ", ShapeString(x.shape),
                                     "; expected [samples, ...]"));
  }
  if (y.shape.empty() || y.shape[0] != x.shape[0]) {
    return Bad(y_where, absl::StrCat("targets shaped ", ShapeString(y.shape), " for ",
                                     x.shape[0], " samples of features (", x_where,
                                     "); the arrays must agree in length"));
  }
  if (x.shape[0] == 0) return Bad(x_where, "no samples");
  SV_RETURN_IF_ERROR(CheckFinite(x, x_where));
  SV_RETURN_IF_ERROR(CheckFinite(y, y_where));
  const int64_t n = x.shape[0];
  Dataset d;
  d.sample_shape.assign(x.shape.begin() + 1, x.shape.end());
  d.features = x.values;
  std::vector<int64_t> tail(y.shape.begin() + 1, y.shape.end());
  auto bad_shape = [&](absl::string_view needs) {
    return Bad(y_where, absl::StrCat("task ", models::TaskTypeName(task), " needs targets ",
                                     needs, "; got ", ShapeString(y.shape)));
  };
  if (task == models::TaskType::kClassification) {
    if (!tail.empty()) return bad_shape("shaped [N] (one class id per sample)");
    int64_t max_id = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float v = y.values[i];
      if (v < 0 || v != std::floor(v)) {
        return Bad(y_where, absl::StrCat("sample ", i, ": label ", v,
                                         " is not a class id (an integer >= 0)"));
      }
      d.labels.push_back(static_cast<int64_t>(v));
      max_id = std::max(max_id, d.labels.back());
    }
    d.num_classes = max_id + 1;
    return d;
  }
  if (tail.empty()) tail = {1};
  if (tail.size() != 1) return bad_shape("shaped [N, T]");
  if (task == models::TaskType::kSurvival && tail[0] != 2) {
    return bad_shape("shaped [N, 2] (time, event)");
  }
  const int64_t width = tail[0];
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < width; ++k) {
      const float v = y.values[i * width + k];
      const bool survival = task == models::TaskType::kSurvival;
      if (survival && k == 0 && v < 0) {
        return Bad(y_where, absl::StrCat("sample ", i, ": survival time ", v, " is negative"));
      }
      if (((survival && k == 1) || task == models::TaskType::kMultilabel) && v != 0 && v != 1) {
        return Bad(y_where, absl::StrCat("sample ", i, ", value ", k, ": ", v,
                                         " is not 0 or 1"));
      }
    }
    d.labels.push_back(task == models::TaskType::kSurvival
                           ? static_cast<int64_t>(y.values[i * 2 + 1]) : 0);
  }
  d.num_classes = task == models::TaskType::kSurvival ? 2 : 1;
  d.target_shape = tail;
  d.targets = y.values;
  return d;
}

}  // namespace samverka::client
