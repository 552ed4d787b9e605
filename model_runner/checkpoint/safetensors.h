// The safetensors format (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"k": "v"}}, then the tensors' bytes; offsets are relative to
// the first byte after the header.
//
// SafetensorsFile memory-maps a file read-only and checks its header against
// the file before any tensor is read: header length within the file, valid
// JSON, every dtype known, offsets that hold exactly shape x dtype bytes and
// lie inside the file. Errors name the file and, where there is one, the
// tensor. No libtorch here: model_runner/model/transformer.cc turns the bytes into
// tensors.
//
// Thread-safety: a SafetensorsFile is immutable after Open(); the mapping
// lives as long as any holder of mapping() (tensors made with from_blob keep
// it alive through their deleter).
#ifndef ENTROSERVE_MODEL_RUNNER_CHECKPOINT_SAFETENSORS_H_
#define ENTROSERVE_MODEL_RUNNER_CHECKPOINT_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace entroserve {

// The dtypes of the safetensors format. Only kF32, kF16 and kBF16 can be
// loaded into a model; the others are known so that a header holding them is
// still checked and the error can name them.
enum class SafetensorsDType {
  kBool,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
};

// "F32", "BF16", ... as written in headers.
const char* SafetensorsDTypeName(SafetensorsDType dtype);
// Bytes per element.
int SafetensorsDTypeSize(SafetensorsDType dtype);
std::optional<SafetensorsDType> ParseSafetensorsDType(absl::string_view name);

// One read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static absl::StatusOr<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

struct SafetensorsTensorInfo {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;
  // Absolute byte range [begin, end) in the file (header included).
  uint64_t begin = 0;
  uint64_t end = 0;

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Largest header accepted, as in the reference implementation (100 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  // Maps `path` and checks its header. NOT_FOUND if the file is missing;
  // DATA_LOSS if it is truncated, its header is not the format's JSON or the
  // header lies (offsets that do not hold shape x dtype bytes).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return mapping_->path(); }
  // Sorted by name.
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  // nullptr when the file has no tensor `name`.
  const SafetensorsTensorInfo* Find(absl::string_view name) const;
  // The tensor's bytes, inside the mapping.
  const uint8_t* Data(const SafetensorsTensorInfo& info) const {
    return mapping_->data() + info.begin;
  }
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::shared_ptr<MappedFile> mapping_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Checks a header (the JSON text) against a file of `file_size` bytes whose
// header is `header_bytes` long; `path` names the file in errors. Used by
// Open() and by tests that need no file.
absl::StatusOr<std::vector<SafetensorsTensorInfo>> ParseSafetensorsHeader(
    absl::string_view json_text, uint64_t file_size, const std::string& path,
    std::map<std::string, std::string>* metadata);

// A tensor to write: `bytes` (not owned) must hold numel x dtype-size bytes.
struct SafetensorsTensorData {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;
  absl::string_view bytes;
};

// Writes a safetensors file, the header padded with spaces so that the data
// starts 64-byte aligned (the reference writer pads to 8; any padding is
// valid), so that tensors whose offsets are multiples of 64 are aligned in
// the mapping. INVALID_ARGUMENT if a tensor's bytes do not match
// its shape or a name repeats.
absl::Status WriteSafetensors(const std::string& path,
                              absl::Span<const SafetensorsTensorData> tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Float values encoded as F32, F16 or BF16 little-endian bytes (round to
// nearest even); and back. Used by the test fixtures and by model_tool.
std::string EncodeFloats(SafetensorsDType dtype, absl::Span<const float> values);
absl::StatusOr<std::vector<float>> DecodeFloats(SafetensorsDType dtype, absl::string_view bytes);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_CHECKPOINT_SAFETENSORS_H_
