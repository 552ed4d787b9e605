// Chat templates: turns a conversation into the prompt string a chat model
// was trained on. Not a Jinja interpreter: like llama.cpp's
// llm_chat_detect_template / llm_chat_apply_template, the family is detected
// from marker strings in the template text of tokenizer_config.json and each
// family is formatted in C++.
//
// Families (what Apply produces for system S, user U, assistant A, then user U2
// with add_generation_prompt):
//   kChatMl   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n
//             <|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n
//             <|im_start|>assistant\n
//             Qwen2, Qwen2.5, Qwen3, the bundled tiny model. When the template
//             writes a default system message for conversations without one
//             (Qwen2.5: "You are Qwen, created by Alibaba Cloud. You are a
//             helpful assistant."), it is read from the template text and used.
//             Qwen3's reasoning extras (<think> blocks, enable_thinking) are not
//             rendered: the plain ChatML turns are.
//   kLlama3   BOS<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>
//             <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>... and
//             <|start_header_id|>assistant<|end_header_id|>\n\n for the
//             generation prompt. Contents are trimmed (the template's `| trim`,
//             here of ASCII whitespace only, as llama.cpp does).
//   kLlama31  Llama 3.1 / 3.2 / 3.3: as kLlama3, but the first turn is always a
//             system turn "Cutting Knowledge Date: December 2023\nToday Date:
//             <date>\n\n" followed by the conversation's system message, if any.
//
// BOS: when the family's template writes `bos_token` itself (Llama 3), the
// prompt starts with the BOS text, so encode it with
// Tokenizer::Encode(prompt, /*parse_special=*/true) and not with
// EncodeWithSpecialTokens, which would add a second BOS. ChatML writes none.
//
// The raw prompt needs no template: callers that are given plain text encode
// it directly.
//
// Thread-safety: a ChatTemplate is immutable; Apply may run concurrently.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_CHAT_TEMPLATE_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_CHAT_TEMPLATE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model_runner/tokenizer/tokenizer.h"

namespace entroserve {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", or another role name
  std::string content;
};

enum class ChatTemplateFamily { kChatMl, kLlama3, kLlama31 };

// "chatml", "llama3", "llama3.1".
std::string_view ChatTemplateFamilyName(ChatTemplateFamily family);

struct ChatTemplateOptions {
  // The BOS text written at the start by families whose template writes
  // `bos_token` (Llama 3); empty writes none.
  std::string bos_token;
  // ChatML only: the system message used when the conversation has none;
  // empty for none.
  std::string default_system_message;
  // Llama 3.1 only: the "Today Date:" line. The template's own fallback when
  // the caller passes no date_string.
  std::string date_string = "26 Jul 2024";
};

class ChatTemplate {
 public:
  // Detects the family from `template_text` (the Jinja source, or one of the
  // family names above), as llama.cpp does: "<|im_start|>" means ChatML,
  // "<|start_header_id|>" with "<|end_header_id|>" means Llama 3 (3.1 when
  // the text also has "Cutting Knowledge Date"). `bos_token` is written first
  // only when the template text mentions `bos_token` (or names a Llama family).
  // Errors: NOT_FOUND for an empty template (the model has none: use the raw
  // prompt); INVALID_ARGUMENT "unsupported chat template: ..." for a template
  // of another family (Phi-4, Mistral, Gemma, ...) or none known.
  static absl::StatusOr<ChatTemplate> Detect(std::string_view template_text,
                                             std::string_view bos_token = "");

  // Detect(config.chat_template, config.bos_token).
  static absl::StatusOr<ChatTemplate> FromConfig(const TokenizerConfig& config);

  ChatTemplate(ChatTemplateFamily family, ChatTemplateOptions options);

  // The prompt for `messages`, ending with the assistant header when
  // `add_generation_prompt`. INVALID_ARGUMENT for an empty conversation or a
  // message with an empty role (naming its index).
  absl::StatusOr<std::string> Apply(absl::Span<const ChatMessage> messages,
                                    bool add_generation_prompt) const;

  ChatTemplateFamily family() const { return family_; }
  const ChatTemplateOptions& options() const { return options_; }

 private:
  ChatTemplateFamily family_;
  ChatTemplateOptions options_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_CHAT_TEMPLATE_H_
