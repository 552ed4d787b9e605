// Chat template detection and formatting, compared with the exact prompts
// the families' own templates produce for a two-turn conversation.
#include "model_runner/tokenizer/chat_template.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

const std::vector<ChatMessage> kTwoTurns = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello"},
    {"assistant", "Hi there!"},
    {"user", "How are you?"},
};

// Marker-bearing excerpts of the families' Jinja templates.
constexpr char kLlama3Template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr char kLlama31Template[] =
    "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" "
    "%}{%- endif %}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}";
constexpr char kQwen25Template[] =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}";
constexpr char kQwen3Template[] =
    "{%- if messages[0].role == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}";

std::string ApplyOrDie(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                       bool add_generation_prompt = true) {
  absl::StatusOr<std::string> prompt = chat_template.Apply(messages, add_generation_prompt);
  EXPECT_TRUE(prompt.ok()) << prompt.status();
  return prompt.ok() ? *prompt : "";
}

TEST(ChatTemplateTest, Llama3TwoTurnsWithGenerationPrompt) {
  absl::StatusOr<ChatTemplate> chat_template =
      ChatTemplate::Detect(kLlama3Template, "<|begin_of_text|>");
  ASSERT_TRUE(chat_template.ok()) << chat_template.status();
  EXPECT_EQ(chat_template->family(), ChatTemplateFamily::kLlama3);
  EXPECT_EQ(ApplyOrDie(*chat_template, kTwoTurns),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, Llama3TrimsContentAndOmitsGenerationPromptOnRequest) {
  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::Detect(kLlama3Template, "<BOS>");
  ASSERT_TRUE(chat_template.ok());
  EXPECT_EQ(ApplyOrDie(*chat_template, {{"user", "  Hello \n"}}, /*add_generation_prompt=*/false),
            "<BOS><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
}

TEST(ChatTemplateTest, Llama31AddsTheKnowledgeDateSystemTurn) {
  absl::StatusOr<ChatTemplate> chat_template =
      ChatTemplate::Detect(kLlama31Template, "<|begin_of_text|>");
  ASSERT_TRUE(chat_template.ok()) << chat_template.status();
  EXPECT_EQ(chat_template->family(), ChatTemplateFamily::kLlama31);
  EXPECT_EQ(ApplyOrDie(*chat_template, kTwoTurns),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "You are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a system message the system turn is still there, with the dates.
  EXPECT_EQ(ApplyOrDie(*chat_template, {{"user", "Hi"}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, ChatMlTwoTurnsWithGenerationPrompt) {
  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::Detect(kQwen25Template);
  ASSERT_TRUE(chat_template.ok()) << chat_template.status();
  EXPECT_EQ(chat_template->family(), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(ApplyOrDie(*chat_template, kTwoTurns),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there!<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Qwen25AddsItsDefaultSystemMessageWhenNoneIsGiven) {
  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::Detect(kQwen25Template);
  ASSERT_TRUE(chat_template.ok());
  EXPECT_EQ(chat_template->options().default_system_message,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(ApplyOrDie(*chat_template, {{"user", "Hello"}}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Qwen3HasNoDefaultSystemMessageAndKeepsContentAsIs) {
  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::Detect(kQwen3Template);
  ASSERT_TRUE(chat_template.ok());
  EXPECT_EQ(chat_template->options().default_system_message, "");
  EXPECT_EQ(ApplyOrDie(*chat_template, {{"user", " Hello\n"}}),
            "<|im_start|>user\n Hello\n<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, FamilyNamesSelectTheFamily) {
  absl::StatusOr<ChatTemplate> chatml = ChatTemplate::Detect("chatml", "<s>");
  ASSERT_TRUE(chatml.ok());
  EXPECT_EQ(chatml->family(), ChatTemplateFamily::kChatMl);
  EXPECT_EQ(ApplyOrDie(*chatml, {{"user", "x"}}),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
  absl::StatusOr<ChatTemplate> llama3 = ChatTemplate::Detect("llama3", "<s>");
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(llama3->family(), ChatTemplateFamily::kLlama3);
  EXPECT_EQ(ChatTemplateFamilyName(ChatTemplateFamily::kLlama31), "llama3.1");
}

TEST(ChatTemplateTest, FromConfigUsesTheConfigTemplateAndBos) {
  TokenizerConfig config;
  config.chat_template = kLlama3Template;
  config.bos_token = "<|begin_of_text|>";
  absl::StatusOr<ChatTemplate> chat_template = ChatTemplate::FromConfig(config);
  ASSERT_TRUE(chat_template.ok());
  EXPECT_EQ(chat_template->options().bos_token, "<|begin_of_text|>");
}

TEST(ChatTemplateTest, UnknownTemplateIsAnInvalidArgumentError) {
  absl::StatusOr<ChatTemplate> chat_template =
      ChatTemplate::Detect("{% for m in messages %}{{ m.content }}{% endfor %}");
  EXPECT_EQ(chat_template.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(chat_template.status().message(), HasSubstr("unsupported chat template"));
  EXPECT_THAT(chat_template.status().message(), HasSubstr("{% for m in messages %}"));
  // Families llama.cpp knows but this runner does not format.
  EXPECT_THAT(ChatTemplate::Detect("<|im_start|>{{ role }}<|im_sep|>").status().message(),
              HasSubstr("Phi-4"));
  EXPECT_THAT(ChatTemplate::Detect("{{ '[INST] ' + content + ' [/INST]' }}").status().message(),
              HasSubstr("unsupported chat template"));
}

TEST(ChatTemplateTest, EmptyTemplateIsNotFound) {
  EXPECT_EQ(ChatTemplate::Detect("").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ChatTemplate::FromConfig(TokenizerConfig()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ChatTemplateTest, EmptyConversationAndEmptyRoleAreErrors) {
  ChatTemplate chat_template(ChatTemplateFamily::kChatMl, ChatTemplateOptions());
  absl::StatusOr<std::string> empty = chat_template.Apply({}, true);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("conversation is empty"));
  absl::StatusOr<std::string> no_role = chat_template.Apply({{"user", "a"}, {"", "b"}}, true);
  EXPECT_EQ(no_role.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_role.status().message(), HasSubstr("messages[1].role is empty"));
}

}  // namespace
}  // namespace entroserve
