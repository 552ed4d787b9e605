#include "services/runnerd/runner_convert.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/chat_template.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/core/token_mask.h"
#include "services/common/message_bytes.h"
#include "services/runnerd/sequence_breakers.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;

}  // namespace

absl::StatusOr<std::vector<int32_t>> ChatToTokens(const v1::ChatMessages& chat,
                                                  const ServedModel& model,
                                                  const std::string& field) {
  if (chat.messages().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".messages is empty"));
  }
  std::vector<ChatMessage> messages;
  messages.reserve(static_cast<size_t>(chat.messages_size()));
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& message = chat.messages(i);
    const std::string path = absl::StrCat(field, ".messages[", i, "]");
    if (message.role().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".role is empty"));
    }
    if (absl::Status s = CheckUtf8Field(message.role(), absl::StrCat(path, ".role")); !s.ok())
      return s;
    if (absl::Status s = CheckUtf8Field(message.content(), absl::StrCat(path, ".content"));
        !s.ok()) {
      return s;
    }
    messages.push_back({message.role(), message.content()});
  }
  const ChatTemplate* chat_template = model.chat_template();
  if (chat_template == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": this model has no usable chat template (",
                     model.chat_template_error(), "); send text or tokens"));
  }
  const bool add_generation_prompt =
      !chat.has_add_generation_prompt() || chat.add_generation_prompt();
  absl::StatusOr<std::string> prompt = chat_template->Apply(messages, add_generation_prompt);
  if (!prompt.ok()) {
    return absl::Status(prompt.status().code(),
                        absl::StrCat(field, ".", prompt.status().message()));
  }
  return model.tokenizer().Encode(*prompt, /*parse_special=*/true);
}

absl::StatusOr<std::vector<int32_t>> PromptTokens(const v1::GenerateRequest& request,
                                                  const ServedModel& model) {
  switch (request.input_case()) {
    case v1::GenerateRequest::kText: {
      if (absl::Status s = CheckUtf8Field(request.text(), "text"); !s.ok()) return s;
      std::vector<int32_t> ids =
          model.tokenizer().EncodeWithSpecialTokens(request.text(), /*parse_special=*/true);
      if (ids.empty()) {
        return absl::InvalidArgumentError(
            "text is empty and the tokenizer adds no BOS: the prompt has no tokens");
      }
      return ids;
    }
    case v1::GenerateRequest::kChat:
      return ChatToTokens(request.chat(), model, "chat");
    case v1::GenerateRequest::kTokens: {
      const auto& ids = request.tokens().ids();
      if (ids.empty()) return absl::InvalidArgumentError("tokens.ids is empty");
      if (absl::Status s = CheckTokenIds(ids, model.vocab_size(), "tokens.ids"); !s.ok()) {
        return s;
      }
      return std::vector<int32_t>(ids.begin(), ids.end());
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("input: set one of text, chat or tokens");
}

absl::Status AddSamplerExtras(absl::Span<const int32_t> allowed_token_ids,
                              absl::Span<const std::string> dry_sequence_breakers,
                              const ServedModel& model, GenerationRequest* out) {
  if (!dry_sequence_breakers.empty()) {
    absl::StatusOr<SequenceBreakers> breakers =
        SequenceBreakersOf(dry_sequence_breakers, model.tokenizer());
    if (!breakers.ok()) return breakers.status();
    if (absl::Status s = AddSequenceBreakers(*breakers, &out->sampler); !s.ok()) return s;
  }
  if (allowed_token_ids.empty()) return absl::OkStatus();
  if (absl::Status s = CheckTokenIds(allowed_token_ids, model.vocab_size(), "allowed_token_ids");
      !s.ok()) {
    return s;
  }
  out->allowed_tokens = MaskFromIds(allowed_token_ids, model.vocab_size());
  return absl::OkStatus();
}

absl::StatusOr<GenerationRequest> GenerationFromProto(const v1::GenerateRequest& request,
                                                      const ServedModel& model,
                                                      const SamplerConfig& default_sampler,
                                                      uint64_t seed_if_absent, absl::Time arrival,
                                                      absl::Time deadline) {
  GenerationRequest out;
  absl::StatusOr<std::vector<int32_t>> prompt = PromptTokens(request, model);
  if (!prompt.ok()) return prompt.status();
  out.prompt = *std::move(prompt);

  if (request.has_max_new_tokens()) {
    out.max_new_tokens = request.max_new_tokens();
  } else {
    const int64_t room = model.context_length() - static_cast<int64_t>(out.prompt.size());
    out.max_new_tokens = static_cast<int32_t>(std::min<int64_t>(kDefaultMaxNewTokens, room));
    out.max_new_tokens_is_context = room < kDefaultMaxNewTokens;
  }

  for (int i = 0; i < request.stop_size(); ++i) {
    const std::string field = absl::StrCat("stop[", i, "]");
    if (request.stop(i).empty())
      return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
    if (absl::Status s = CheckUtf8Field(request.stop(i), field); !s.ok()) return s;
    out.stop.push_back(request.stop(i));
  }
  if (absl::Status s =
          CheckTokenIds(request.stop_token_ids(), model.vocab_size(), "stop_token_ids");
      !s.ok()) {
    return s;
  }
  out.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  out.ignore_eos = request.ignore_eos();

  if (request.has_sampler()) {
    absl::StatusOr<SamplerConfig> config = SpecFieldToConfig(request.sampler(), "sampler");
    if (!config.ok()) return config.status();
    out.sampler = *std::move(config);
  } else {
    out.sampler = default_sampler;
  }
  const std::vector<std::string> breakers(request.dry_sequence_breakers().begin(),
                                          request.dry_sequence_breakers().end());
  if (absl::Status s = AddSamplerExtras(request.allowed_token_ids(), breakers, model, &out);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckConfigTokens(out.sampler, model.vocab_size(), "sampler"); !s.ok()) {
    return s;
  }
  out.seed = request.has_seed() ? request.seed() : seed_if_absent;
  if (request.has_n()) {
    if (request.n() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("n must be >= 1, got ", request.n()));
    }
    out.n = request.n();
  }
  if (request.top_logprobs() < 0 || request.top_logprobs() > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs must be in [0, ", kMaxTopLogprobs,
                                                   "], got ", request.top_logprobs()));
  }
  out.top_logprobs = request.top_logprobs();
  out.arrival = arrival;
  out.deadline = deadline;
  return out;
}

void TokenToProto(const TokenOutput& token, const v1::TokenDetails* details,
                  v1::GeneratedToken* proto) {
  proto->set_id(token.id);
  proto->set_text(token.text);
  proto->set_mode(static_cast<::sampler::v1::Mode>(static_cast<int>(token.sample.mode)));
  if (details == nullptr || details->signals()) {
    SignalsToProto(token.sample.signals, proto->mutable_signals());
  }
  if (details == nullptr || details->params()) {
    ParamsToProto(token.sample.params, proto->mutable_params());
  }
  if (details == nullptr || details->logprob()) proto->set_logprob(token.sample.logprob);
  proto->set_inserted(token.sample.inserted);
  proto->set_index(token.index);
  proto->set_choice(token.choice);
  for (const TokenLogprob& top : token.sample.top_logprobs) {
    ::sampler::v1::TokenLogprob* entry = proto->add_top_logprobs();
    entry->set_token_id(top.token);
    entry->set_logprob(top.logprob);
  }
}

v1::FinishReason FinishReasonToProto(FinishReason reason) {
  return static_cast<v1::FinishReason>(static_cast<int>(reason));
}

absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& request,
                                                           const ServedModel& model) {
  switch (request.input_case()) {
    case v1::TokenizeRequest::kText: {
      if (absl::Status s = CheckUtf8Field(request.text(), "text"); !s.ok()) return s;
      const bool special = !request.has_add_special_tokens() || request.add_special_tokens();
      return special ? model.tokenizer().EncodeWithSpecialTokens(request.text(), true)
                     : model.tokenizer().Encode(request.text(), true);
    }
    case v1::TokenizeRequest::kChat:
      return ChatToTokens(request.chat(), model, "chat");
    case v1::TokenizeRequest::INPUT_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("input: set one of text or chat");
}

}  // namespace entroserve
