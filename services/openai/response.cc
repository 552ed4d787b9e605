#include "services/openai/response.h"

#include <string>
#include <utility>

#include "google/protobuf/util/json_util.h"
#include "sampler/v1/sampler.pb.h"
#include "services/wire/sampler_convert.h"

namespace entroserve::openai {
namespace {

using nlohmann::json;

// The token's own bytes (not the text it completes, which may hold back a
// partial character or a possible stop string).
std::string Piece(const Tokenizer& tokenizer, int32_t id) {
  std::string piece;
  tokenizer.AppendTokenBytes(id, /*skip_special=*/false, &piece);
  return piece;
}

json Bytes(const std::string& piece) {
  json bytes = json::array();
  for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
  return bytes;
}

int64_t CodePoints(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

// Chat: one entry of logprobs.content.
json ChatLogprob(const Tokenizer& tokenizer, const TokenOutput& token) {
  const std::string piece = Piece(tokenizer, token.id);
  json top = json::array();
  for (const TokenLogprob& t : token.sample.top_logprobs) {
    const std::string p = Piece(tokenizer, t.token);
    top.push_back({{"token", p}, {"logprob", t.logprob}, {"bytes", Bytes(p)}});
  }
  return {{"token", piece},
          {"logprob", token.sample.logprob},
          {"bytes", Bytes(piece)},
          {"top_logprobs", std::move(top)}};
}

json EmptyCompletionLogprobs() {
  return {{"tokens", json::array()},
          {"token_logprobs", json::array()},
          {"top_logprobs", json::array()},
          {"text_offset", json::array()}};
}

// Completions: appends `token` to a logprobs object.
void AddCompletionLogprob(const Tokenizer& tokenizer, const TokenOutput& token, int64_t offset,
                          json* logprobs) {
  json top = json::object();
  for (const TokenLogprob& t : token.sample.top_logprobs) {
    const std::string p = Piece(tokenizer, t.token);
    if (!top.contains(p)) top[p] = t.logprob;  // a dict: the first (likeliest) wins
  }
  (*logprobs)["tokens"].push_back(Piece(tokenizer, token.id));
  (*logprobs)["token_logprobs"].push_back(token.sample.logprob);
  (*logprobs)["top_logprobs"].push_back(std::move(top));
  (*logprobs)["text_offset"].push_back(offset);
}

// The extension: what the sampler chose and measured for the token.
json Details(const TokenOutput& token) {
  ::sampler::v1::Signals signals;
  SignalsToProto(token.sample.signals, &signals);
  ::sampler::v1::SamplingParams params;
  ParamsToProto(token.sample.params, &params);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string signals_json;
  std::string params_json;
  (void)google::protobuf::util::MessageToJsonString(signals, &signals_json, options);
  options.always_print_primitive_fields = false;
  (void)google::protobuf::util::MessageToJsonString(params, &params_json, options);
  return {{"token", token.id},
          {"mode", ModeName(token.sample.mode)},
          {"inserted", token.sample.inserted},
          {"signals", json::parse(signals_json, nullptr, false)},
          {"params", json::parse(params_json, nullptr, false)}};
}

}  // namespace

const char* FinishReasonString(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
    case FinishReason::kStop:
      return "stop";
    default:
      return "length";
  }
}

json UsageJson(const GenerationEnd& end) {
  return {{"prompt_tokens", end.prompt_tokens},
          {"completion_tokens", end.generated_tokens},
          {"total_tokens", end.prompt_tokens + end.generated_tokens}};
}

ResponseBuilder::ResponseBuilder(ResponseContext context)
    : context_(std::move(context)), choices_(static_cast<size_t>(context_.n)) {
  for (Choice& choice : choices_) {
    if (!context_.logprobs) continue;
    choice.logprobs = context_.endpoint == Endpoint::kChat
                          ? json{{"content", json::array()}, {"refusal", nullptr}}
                          : EmptyCompletionLogprobs();
  }
}

void ResponseBuilder::AddToken(const TokenOutput& token) {
  if (token.choice < 0 || token.choice >= context_.n) return;
  Choice& choice = choices_[static_cast<size_t>(token.choice)];
  if (context_.logprobs) {
    if (context_.endpoint == Endpoint::kChat) {
      choice.logprobs["content"].push_back(ChatLogprob(*context_.tokenizer, token));
    } else {
      AddCompletionLogprob(*context_.tokenizer, token, choice.text_offset, &choice.logprobs);
    }
  }
  if (context_.sampler_details) choice.details.push_back(Details(token));
  choice.text += token.text;
  choice.text_offset += CodePoints(token.text);
}

void ResponseBuilder::EndChoice(const ChoiceEnd& end) {
  if (end.choice < 0 || end.choice >= context_.n) return;
  choices_[static_cast<size_t>(end.choice)].finish_reason = FinishReasonString(end.reason);
}

json ResponseBuilder::Finish(const GenerationEnd& end) const {
  const bool chat = context_.endpoint == Endpoint::kChat;
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json choice = {{"index", i}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = c.logprobs;
    choice["finish_reason"] = c.finish_reason;
    if (context_.sampler_details) choice["sampler_details"] = c.details;
    choices.push_back(std::move(choice));
  }
  return {{"id", context_.id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", context_.created},
          {"model", context_.model},
          {"choices", std::move(choices)},
          {"usage", UsageJson(end)},
          {"seed", context_.seed}};
}

ChunkWriter::ChunkWriter(ResponseContext context)
    : context_(std::move(context)), text_offsets_(static_cast<size_t>(context_.n), 0) {}

json ChunkWriter::Chunk(json choices) const {
  json chunk = {{"id", context_.id},
                {"object", context_.endpoint == Endpoint::kChat ? "chat.completion.chunk"
                                                                : "text_completion"},
                {"created", context_.created},
                {"model", context_.model},
                {"choices", std::move(choices)},
                {"seed", context_.seed}};
  if (context_.include_usage) chunk["usage"] = nullptr;
  return chunk;
}

std::string ChunkWriter::Event(const json& chunk) const { return "data: " + Dump(chunk) + "\n\n"; }

std::string ChunkWriter::Start() {
  if (context_.endpoint != Endpoint::kChat) return "";
  std::string out;
  for (int i = 0; i < context_.n; ++i) {
    json choice = {{"index", i},
                   {"delta", {{"role", "assistant"}, {"content", ""}}},
                   {"logprobs", nullptr},
                   {"finish_reason", nullptr}};
    out += Event(Chunk(json::array({std::move(choice)})));
  }
  return out;
}

std::string ChunkWriter::Token(const TokenOutput& token) {
  if (token.choice < 0 || token.choice >= context_.n) return "";
  if (token.text.empty() && !context_.logprobs && !context_.sampler_details) return "";
  int64_t& offset = text_offsets_[static_cast<size_t>(token.choice)];
  json choice = {{"index", token.choice}};
  json logprobs = nullptr;
  if (context_.endpoint == Endpoint::kChat) {
    choice["delta"] = {{"content", token.text}};
    if (context_.logprobs) {
      logprobs = {{"content", json::array({ChatLogprob(*context_.tokenizer, token)})},
                  {"refusal", nullptr}};
    }
  } else {
    choice["text"] = token.text;
    if (context_.logprobs) {
      logprobs = EmptyCompletionLogprobs();
      AddCompletionLogprob(*context_.tokenizer, token, offset, &logprobs);
    }
  }
  offset += CodePoints(token.text);
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = nullptr;
  if (context_.sampler_details) choice["sampler_details"] = json::array({Details(token)});
  return Event(Chunk(json::array({std::move(choice)})));
}

std::string ChunkWriter::ChoiceEnded(const ChoiceEnd& end) {
  if (end.reason == FinishReason::kCancelled) return "";  // StreamEnd says why
  json choice = {{"index", end.choice}};
  if (context_.endpoint == Endpoint::kChat) {
    choice["delta"] = json::object();
  } else {
    choice["text"] = "";
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = FinishReasonString(end.reason);
  return Event(Chunk(json::array({std::move(choice)})));
}

std::string ChunkWriter::Finish(const GenerationEnd& end) {
  std::string out;
  if (context_.include_usage) {
    json chunk = Chunk(json::array());
    chunk["usage"] = UsageJson(end);
    out += Event(chunk);
  }
  return out + "data: [DONE]\n\n";
}

std::string ChunkWriter::Error(const ApiError& error) {
  return "data: " + Dump(ErrorJson(error)) + "\n\n";
}

}  // namespace entroserve::openai
