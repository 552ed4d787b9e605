// tokenizer.json (and, after a NUL byte, tokenizer_config.json), any bytes;
// a tokenizer that loads encodes and decodes a fixed text.
#include <cstdint>
#include <string_view>

#include "model_runner/tokenizer/tokenizer.h"
#include "model_runner/tokenizer/tokenizer_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  absl::StatusOr<entroserve::Tokenizer> tokenizer =
      entroserve::Tokenizer::FromJson(input.substr(0, split), "fuzz/tokenizer.json");
  if (!tokenizer.ok()) return 0;
  if (split != std::string_view::npos) {
    absl::StatusOr<entroserve::TokenizerConfig> config = entroserve::TokenizerConfig::FromJson(
        input.substr(split + 1), "fuzz/tokenizer_config.json");
    if (config.ok()) (void)tokenizer->ApplyConfig(*config);
  }
  const std::vector<int32_t> ids = tokenizer->Encode("Hello, world! 123 <|eot|> \xe2\x82");
  (void)tokenizer->Decode(ids);
  return 0;
}
