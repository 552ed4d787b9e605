// config.json of a model, any bytes.
#include <cstdint>

#include "model_runner/checkpoint/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<entroserve::ModelConfig> config = entroserve::ParseModelConfig(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
  if (config.ok()) (void)entroserve::ModelConfigToJson(*config);
  return 0;
}
