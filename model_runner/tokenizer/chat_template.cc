#include "model_runner/tokenizer/chat_template.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

// How much of an unsupported template the error message quotes.
constexpr size_t kQuotedTemplateChars = 80;

// Jinja's `trim` on the ASCII whitespace characters (what llama.cpp trims).
absl::string_view Trim(absl::string_view text) {
  constexpr absl::string_view kSpace = " \t\n\r\v\f";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == absl::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

// The default system message a ChatML template writes when the conversation
// has none: the literal text of '<|im_start|>system\n...<|im_end|>' in the
// template (Qwen2: "You are a helpful assistant.", Qwen2.5: "You are Qwen,
// ..."). A system turn built from messages[0].content is not a literal and is
// skipped. Empty when there is none (Qwen3).
std::string FindChatMlDefaultSystem(absl::string_view text) {
  constexpr absl::string_view kStart = "<|im_start|>system";
  constexpr absl::string_view kEnd = "<|im_end|>";
  for (size_t at = text.find(kStart); at != absl::string_view::npos;
       at = text.find(kStart, at + 1)) {
    size_t body = at + kStart.size();
    // The newline is either escaped in the Jinja string or a real one.
    if (text.substr(body, 2) == "\\n") {
      body += 2;
    } else if (text.substr(body, 1) == "\n") {
      body += 1;
    } else {
      continue;
    }
    const size_t end = text.find(kEnd, body);
    if (end == absl::string_view::npos) continue;
    const absl::string_view candidate = text.substr(body, end - body);
    if (candidate.empty() || candidate.find_first_of("'\"+{}\\\n") != absl::string_view::npos) {
      continue;
    }
    return std::string(candidate);
  }
  return "";
}

absl::Status Unsupported(absl::string_view template_text, absl::string_view why) {
  std::string quoted(template_text.substr(0, kQuotedTemplateChars));
  if (template_text.size() > kQuotedTemplateChars) quoted += "...";
  return absl::InvalidArgumentError(absl::StrCat("unsupported chat template",
                                                 why.empty() ? "" : " (", why,
                                                 why.empty() ? "" : ")", ": \"", quoted, "\""));
}

}  // namespace

std::string_view ChatTemplateFamilyName(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::kChatMl:
      return "chatml";
    case ChatTemplateFamily::kLlama3:
      return "llama3";
    case ChatTemplateFamily::kLlama31:
      return "llama3.1";
  }
  return "unknown";
}

ChatTemplate::ChatTemplate(ChatTemplateFamily family, ChatTemplateOptions options)
    : family_(family), options_(std::move(options)) {}

absl::StatusOr<ChatTemplate> ChatTemplate::FromConfig(const TokenizerConfig& config) {
  return Detect(config.chat_template, config.bos_token);
}

absl::StatusOr<ChatTemplate> ChatTemplate::Detect(std::string_view text_view,
                                                  std::string_view bos_token) {
  // Debian's Abseil has its own string_view type.
  const absl::string_view text(text_view.data(), text_view.size());
  if (Trim(text).empty()) {
    return absl::NotFoundError("no chat template (tokenizer_config.json has no chat_template)");
  }
  ChatTemplateOptions options;
  // A family name instead of a template, as llama.cpp accepts.
  for (ChatTemplateFamily family :
       {ChatTemplateFamily::kChatMl, ChatTemplateFamily::kLlama3, ChatTemplateFamily::kLlama31}) {
    if (text_view == ChatTemplateFamilyName(family)) {
      if (family != ChatTemplateFamily::kChatMl) options.bos_token = std::string(bos_token);
      return ChatTemplate(family, std::move(options));
    }
  }
  auto contains = [text](absl::string_view marker) { return absl::StrContains(text, marker); };
  if (contains("bos_token")) options.bos_token = std::string(bos_token);
  // The order of llama.cpp's llm_chat_detect_template.
  if (contains("<|im_start|>")) {
    if (contains("<|im_sep|>")) return Unsupported(text, "Phi-4");
    if (contains("<end_of_utterance>")) return Unsupported(text, "SmolVLM");
    options.default_system_message = FindChatMlDefaultSystem(text);
    return ChatTemplate(ChatTemplateFamily::kChatMl, std::move(options));
  }
  if (contains("[INST]")) return Unsupported(text, "Mistral/Llama 2");
  if (contains("<start_of_turn>")) return Unsupported(text, "Gemma");
  if (contains("<|start_header_id|>") && contains("<|end_header_id|>")) {
    if (contains("Cutting Knowledge Date")) {
      return ChatTemplate(ChatTemplateFamily::kLlama31, std::move(options));
    }
    return ChatTemplate(ChatTemplateFamily::kLlama3, std::move(options));
  }
  return Unsupported(text, "");
}

absl::StatusOr<std::string> ChatTemplate::Apply(absl::Span<const ChatMessage> messages,
                                                bool add_generation_prompt) const {
  if (messages.empty()) return absl::InvalidArgumentError("conversation is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role is empty"));
    }
  }
  std::string prompt;
  switch (family_) {
    case ChatTemplateFamily::kChatMl: {
      if (!options_.default_system_message.empty() && messages[0].role != "system") {
        absl::StrAppend(&prompt, "<|im_start|>system\n", options_.default_system_message,
                        "<|im_end|>\n");
      }
      for (const ChatMessage& message : messages) {
        absl::StrAppend(&prompt, "<|im_start|>", message.role, "\n", message.content,
                        "<|im_end|>\n");
      }
      if (add_generation_prompt) prompt += "<|im_start|>assistant\n";
      break;
    }
    case ChatTemplateFamily::kLlama3:
    case ChatTemplateFamily::kLlama31: {
      prompt = options_.bos_token;
      size_t first = 0;
      if (family_ == ChatTemplateFamily::kLlama31) {
        absl::string_view system;
        if (messages[0].role == "system") {
          system = Trim(messages[0].content);
          first = 1;
        }
        absl::StrAppend(&prompt, "<|start_header_id|>system<|end_header_id|>\n\n",
                        "Cutting Knowledge Date: December 2023\n",
                        "Today Date: ", options_.date_string, "\n\n", system, "<|eot_id|>");
      }
      for (size_t i = first; i < messages.size(); ++i) {
        absl::StrAppend(&prompt, "<|start_header_id|>", messages[i].role, "<|end_header_id|>\n\n",
                        Trim(messages[i].content), "<|eot_id|>");
      }
      if (add_generation_prompt) prompt += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
  }
  return prompt;
}

}  // namespace entroserve
