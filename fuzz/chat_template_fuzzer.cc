// Chat templates: detection from any template text, and Apply to any
// conversation. Input: template text, NUL, then messages as role NUL
// content NUL ... ; the first byte picks add_generation_prompt.
#include <cstdint>
#include <string_view>
#include <vector>

#include "model_runner/tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool add_generation_prompt = (data[0] & 1) != 0;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> parts;
  for (size_t at; (at = input.find('\0')) != std::string_view::npos;) {
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + 1);
  }
  parts.push_back(input);
  absl::StatusOr<entroserve::ChatTemplate> chat =
      entroserve::ChatTemplate::Detect(parts[0], "<|begin_of_text|>");
  if (!chat.ok()) return 0;
  std::vector<entroserve::ChatMessage> messages;
  for (size_t i = 1; i + 1 < parts.size(); i += 2) {
    messages.push_back({std::string(parts[i]), std::string(parts[i + 1])});
  }
  (void)chat->Apply(messages, add_generation_prompt);
  return 0;
}
