// The safetensors header of a checkpoint: the JSON text is checked against a
// file size taken from the input's first 8 bytes.
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "model_runner/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t file_size = 0;
  if (size >= sizeof(file_size)) {
    std::memcpy(&file_size, data, sizeof(file_size));
    data += sizeof(file_size);
    size -= sizeof(file_size);
  }
  std::map<std::string, std::string> metadata;
  (void)entroserve::ParseSafetensorsHeader(
      absl::string_view(reinterpret_cast<const char*>(data), size), file_size, "fuzz.safetensors",
      &metadata);
  return 0;
}
