// Requests of the OpenAI-compatible HTTP API, parsed and checked: the JSON
// body of POST /v1/completions or /v1/chat/completions into an
// OpenAIRequest, every field checked on its own (type and range). A field
// that is not known, of the wrong type or out of range is a 400 naming it
// in `param` ("temperature", "messages[1].content", "stream_options.foo");
// fields OpenAI has that this server does not implement (tools,
// response_format, echo, ...) are a 400 saying so. null is the same as an
// absent field. What needs the model (tokenizing, the chat template, the
// vocabulary, the context) is checked later (generation.h).
//
// Thread-safety: pure functions.
#ifndef ENTROSERVE_SERVICES_OPENAI_REQUEST_H_
#define ENTROSERVE_SERVICES_OPENAI_REQUEST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "services/openai/api_error.h"

namespace entroserve::openai {

enum class Endpoint { kCompletions, kChat };

// The most stop strings a request may give.
inline constexpr int kMaxStopStrings = 16;
// The most choices a request may ask for (the engine's max_batch also bounds it).
inline constexpr int kMaxChoices = 128;

struct ChatMessageIn {
  std::string role;
  std::string content;
};

// OpenAI's sampling fields and the extras vLLM and llama.cpp's server also
// take; unset when absent.
struct SamplingFields {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<float> min_p;
  std::optional<float> presence_penalty;
  std::optional<float> frequency_penalty;
  std::optional<float> repetition_penalty;
  std::optional<std::map<int32_t, float>> logit_bias;
};

struct OpenAIRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // Completions: a text prompt or token ids (exactly one is set).
  std::optional<std::string> prompt_text;
  std::optional<std::vector<int32_t>> prompt_ids;
  // Chat: the conversation.
  std::vector<ChatMessageIn> messages;
  // max_completion_tokens, else max_tokens; `max_tokens_field` names the
  // one given (for errors).
  std::optional<int32_t> max_tokens;
  std::string max_tokens_field = "max_tokens";
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // Extensions (vLLM's and llama.cpp's names): the only tokens that may be
  // generated, and DRY's sequence breakers as strings.
  std::vector<int32_t> allowed_token_ids;
  std::vector<std::string> dry_sequence_breakers;
  int32_t n = 1;
  // Per-token log-probabilities, and how many of the most probable tokens
  // each (chat: logprobs and top_logprobs; completions: logprobs = N).
  bool logprobs = false;
  int32_t top_logprobs = 0;
  bool stream = false;
  bool include_usage = false;
  // Extension: each token's mode, signals and parameters in the choices.
  bool sampler_details = false;
  SamplingFields sampling;
  // Extensions: a sampler by name, or a sampler.v1.SamplerSpec in
  // protobuf's JSON form (kept as JSON; generation.h converts it).
  std::optional<std::string> sampler;
  std::optional<nlohmann::json> sampler_spec;
};

// Parses `body` (the request's bytes) for `endpoint` into `out`.
MaybeError ParseRequest(Endpoint endpoint, const std::string& body, OpenAIRequest* out);

// The same from parsed JSON (tests).
MaybeError ParseRequestJson(Endpoint endpoint, const nlohmann::json& body, OpenAIRequest* out);

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_REQUEST_H_
