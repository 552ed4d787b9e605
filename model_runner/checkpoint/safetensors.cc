#include "model_runner/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sampler/base/float16.h"
#include "sampler/base/status_macros.h"

namespace entroserve {
namespace {

struct DTypeEntry {
  SafetensorsDType dtype;
  const char* name;
  int size;
};

constexpr DTypeEntry kDTypes[] = {
    {SafetensorsDType::kBool, "BOOL", 1},      {SafetensorsDType::kU8, "U8", 1},
    {SafetensorsDType::kI8, "I8", 1},          {SafetensorsDType::kF8E5M2, "F8_E5M2", 1},
    {SafetensorsDType::kF8E4M3, "F8_E4M3", 1}, {SafetensorsDType::kI16, "I16", 2},
    {SafetensorsDType::kU16, "U16", 2},        {SafetensorsDType::kF16, "F16", 2},
    {SafetensorsDType::kBF16, "BF16", 2},      {SafetensorsDType::kI32, "I32", 4},
    {SafetensorsDType::kU32, "U32", 4},        {SafetensorsDType::kF32, "F32", 4},
    {SafetensorsDType::kF64, "F64", 8},        {SafetensorsDType::kI64, "I64", 8},
    {SafetensorsDType::kU64, "U64", 8},
};

const DTypeEntry& Entry(SafetensorsDType dtype) {
  for (const DTypeEntry& e : kDTypes) {
    if (e.dtype == dtype) return e;
  }
  return kDTypes[0];  // unreachable: every enumerator is in the table
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// numel of `shape`, or nullopt on a negative dimension or overflow of int64.
std::optional<int64_t> CheckedNumel(const std::vector<int64_t>& shape) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    numel *= d;
  }
  return numel;
}

// Alignment of the data section in files this writer makes (a cache line).
constexpr size_t kDataAlignment = 64;

}  // namespace

const char* SafetensorsDTypeName(SafetensorsDType dtype) { return Entry(dtype).name; }
int SafetensorsDTypeSize(SafetensorsDType dtype) { return Entry(dtype).size; }

std::optional<SafetensorsDType> ParseSafetensorsDType(absl::string_view name) {
  for (const DTypeEntry& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return std::nullopt;
}

int64_t SafetensorsTensorInfo::numel() const { return CheckedNumel(shape).value_or(-1); }

absl::StatusOr<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  size_t size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  if (size > 0) {
    // MAP_POPULATE: fault every page in now, in one pass (a model reads all
    // of its weights), rather than one fault per 4 KiB page at first use.
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat(path, ": cannot mmap: ", std::strerror(err)));
    }
    data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return std::shared_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {

using nlohmann::json;

absl::Status ParseMetadata(const json& value, const std::string& path,
                           std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": __metadata__ is not an object"));
  }
  for (auto m = value.begin(); m != value.end(); ++m) {
    if (!m.value().is_string()) {
      return absl::DataLossError(
          absl::StrCat(path, ": __metadata__ value \"", m.key(), "\" is not a string"));
    }
    if (metadata != nullptr) (*metadata)[m.key()] = m.value().get<std::string>();
  }
  return absl::OkStatus();
}

// Where a tensor's bytes lie in the file (after the header).
struct DataRegion {
  uint64_t start;  // first byte after the header
  uint64_t size;   // bytes from there to the end of the file
  uint64_t file_size;
};

// One tensor's header entry: dtype, shape and data_offsets, each checked
// against the others and against the file's size, so that no later read
// can leave the mapping.
absl::StatusOr<SafetensorsTensorInfo> ParseTensorEntry(const std::string& name, const json& value,
                                                       const DataRegion& data,
                                                       const std::string& path) {
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(path, ": tensor \"", name, "\": ", what));
  };
  if (!value.is_object()) return bad("header entry is not an object");
  auto dtype_it = value.find("dtype");
  auto shape_it = value.find("shape");
  auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) return bad("no string \"dtype\"");
  if (shape_it == value.end() || !shape_it->is_array()) return bad("no array \"shape\"");
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return bad("no [begin, end] \"data_offsets\"");
  }
  SafetensorsTensorInfo info;
  info.name = name;
  const std::string dtype_name = dtype_it->get<std::string>();
  std::optional<SafetensorsDType> dtype = ParseSafetensorsDType(dtype_name);
  if (!dtype) return bad(absl::StrCat("unknown dtype \"", dtype_name, "\""));
  info.dtype = *dtype;
  for (const json& d : *shape_it) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return bad("shape holds something other than non-negative integers");
    }
    info.shape.push_back(d.get<int64_t>());
  }
  for (const json& o : *offsets_it) {
    if (!o.is_number_unsigned()) return bad("data_offsets are not non-negative integers");
  }
  const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end) {
    return bad(absl::StrCat("data_offsets [", begin, ", ", end, "] end before they begin"));
  }
  std::optional<int64_t> numel = CheckedNumel(info.shape);
  const uint64_t element_size = static_cast<uint64_t>(SafetensorsDTypeSize(info.dtype));
  if (!numel ||
      static_cast<uint64_t>(*numel) > std::numeric_limits<uint64_t>::max() / element_size) {
    return bad(absl::StrCat("shape ", ShapeString(info.shape), " is too large"));
  }
  const uint64_t expected = static_cast<uint64_t>(*numel) * element_size;
  if (end - begin != expected) {
    return bad(absl::StrCat("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                            " bytes but shape ", ShapeString(info.shape), " of ", dtype_name,
                            " needs ", expected));
  }
  if (end > data.size) {
    return bad(absl::StrCat("data ends at byte ", data.start + end, " but the file has ",
                            data.file_size, " bytes (truncated?)"));
  }
  info.begin = data.start + begin;
  info.end = data.start + end;
  return info;
}

}  // namespace

absl::StatusOr<std::vector<SafetensorsTensorInfo>> ParseSafetensorsHeader(
    absl::string_view json_text, uint64_t file_size, const std::string& path,
    std::map<std::string, std::string>* metadata) {
  json header = json::parse(json_text.begin(), json_text.end(), /*cb=*/nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return absl::DataLossError(absl::StrCat(path, ": safetensors header is not valid JSON"));
  }
  if (!header.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": safetensors header is not a JSON object"));
  }
  DataRegion data;
  data.start = 8 + json_text.size();
  data.size = file_size - data.start;  // the caller checked data.start <= file_size
  data.file_size = file_size;
  std::vector<SafetensorsTensorInfo> tensors;
  tensors.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      RETURN_IF_ERROR(ParseMetadata(it.value(), path, metadata));
      continue;
    }
    SafetensorsTensorInfo info;
    ASSIGN_OR_RETURN(info, ParseTensorEntry(it.key(), it.value(), data, path));
    tensors.push_back(std::move(info));
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensorInfo& a, const SafetensorsTensorInfo& b) {
              return a.name < b.name;
            });
  return tensors;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  absl::StatusOr<std::shared_ptr<MappedFile>> mapping = MappedFile::Open(path);
  if (!mapping.ok()) return mapping.status();
  const MappedFile& file = **mapping;
  if (file.size() < 8) {
    return absl::DataLossError(absl::StrCat(path, ": file has ", file.size(),
                                            " bytes, too short for a safetensors header"));
  }
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | file.data()[i];
  if (header_length > kMaxHeaderBytes) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_length,
                                            " exceeds the limit of ", kMaxHeaderBytes));
  }
  if (8 + header_length > file.size()) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_length,
                                            " is beyond the file size ", file.size()));
  }
  absl::string_view json_text(reinterpret_cast<const char*>(file.data()) + 8, header_length);
  auto result = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  absl::StatusOr<std::vector<SafetensorsTensorInfo>> tensors =
      ParseSafetensorsHeader(json_text, file.size(), path, &result->metadata_);
  if (!tensors.ok()) return tensors.status();
  result->mapping_ = *std::move(mapping);
  result->tensors_ = *std::move(tensors);
  for (size_t i = 0; i < result->tensors_.size(); ++i) {
    result->index_.emplace(result->tensors_[i].name, i);
  }
  return result;
}

const SafetensorsTensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status WriteSafetensors(const std::string& path,
                              absl::Span<const SafetensorsTensorData> tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const SafetensorsTensorData& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor name \"", t.name, "\" repeats or is reserved"));
    }
    std::optional<int64_t> numel = CheckedNumel(t.shape);
    if (!numel || static_cast<uint64_t>(*numel) * SafetensorsDTypeSize(t.dtype) != t.bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor \"", t.name, "\" has ", t.bytes.size(), " bytes, which shape ",
          ShapeString(t.shape), " of ", SafetensorsDTypeName(t.dtype), " does not match"));
    }
    header[t.name] = {{"dtype", SafetensorsDTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string json_text = header.dump();
  // Pad so that the data starts kDataAlignment-aligned (the length field
  // counts 8 bytes): tensors whose sizes keep that alignment stay aligned
  // for SIMD kernels when used in place from the mapping.
  const size_t unaligned = (8 + json_text.size()) % kDataAlignment;
  if (unaligned != 0) json_text.append(kDataAlignment - unaligned, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  char length[8];
  uint64_t n = json_text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  out.write(length, 8);
  out.write(json_text.data(), static_cast<std::streamsize>(json_text.size()));
  for (const SafetensorsTensorData& t : tensors) {
    out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

std::string EncodeFloats(SafetensorsDType dtype, absl::Span<const float> values) {
  std::string out;
  switch (dtype) {
    case SafetensorsDType::kF32:
      out.resize(values.size() * 4);
      std::memcpy(out.data(), values.data(), out.size());  // little-endian host
      break;
    case SafetensorsDType::kF16:
    case SafetensorsDType::kBF16:
      out.resize(values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t bits =
            dtype == SafetensorsDType::kF16 ? FloatToHalf(values[i]) : FloatToBFloat16(values[i]);
        out[2 * i] = static_cast<char>(bits & 0xFF);
        out[2 * i + 1] = static_cast<char>(bits >> 8);
      }
      break;
    default:
      break;  // only float dtypes are encoded; callers pass one of the three
  }
  return out;
}

absl::StatusOr<std::vector<float>> DecodeFloats(SafetensorsDType dtype, absl::string_view bytes) {
  std::vector<float> out;
  switch (dtype) {
    case SafetensorsDType::kF32:
      if (bytes.size() % 4 != 0) break;
      out.resize(bytes.size() / 4);
      std::memcpy(out.data(), bytes.data(), bytes.size());
      return out;
    case SafetensorsDType::kF16:
    case SafetensorsDType::kBF16:
      if (bytes.size() % 2 != 0) break;
      out.resize(bytes.size() / 2);
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t bits = static_cast<uint16_t>(static_cast<uint8_t>(bytes[2 * i]) |
                                              (static_cast<uint8_t>(bytes[2 * i + 1]) << 8));
        out[i] = dtype == SafetensorsDType::kF16 ? HalfToFloat(bits) : BFloat16ToFloat(bits);
      }
      return out;
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot decode ", SafetensorsDTypeName(dtype),
                                                     " as floats (F32, F16, BF16)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(bytes.size(), " bytes is not a whole number of ",
                                                 SafetensorsDTypeName(dtype), " values"));
}

}  // namespace entroserve
