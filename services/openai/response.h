// The JSON that the OpenAI-compatible API answers, from the engine's
// output: whole responses (ResponseBuilder) and server-sent events
// (ChunkWriter) of /v1/completions and /v1/chat/completions, in OpenAI's
// shapes (object "text_completion" / "chat.completion" /
// "chat.completion.chunk", choices by index, usage), with:
//   - logprobs: chat {"content": [{"token", "logprob", "bytes",
//     "top_logprobs": [...]}]}; completions {"tokens", "token_logprobs",
//     "top_logprobs": [{token: logprob}], "text_offset"}. Log-probabilities
//     are under the model's unfiltered distribution.
//   - the extension "sampler_details" (when the request asks for it): per
//     token {"token", "mode", "inserted", "signals", "params"} with
//     sampler.v1's field names.
//   - the extension "seed": the seed the request used (choice i drew with
//     seed + i).
// finish_reason: "stop" for an EOS / stop token or a stop string, "length"
// for max_tokens or a full context.
//
// Thread-safety: each object is used by one thread at a time.
#ifndef ENTROSERVE_SERVICES_OPENAI_RESPONSE_H_
#define ENTROSERVE_SERVICES_OPENAI_RESPONSE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model_runner/engine/engine.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "services/openai/api_error.h"
#include "services/openai/request.h"

namespace entroserve::openai {

// What every response of one request shares.
struct ResponseContext {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;  // "cmpl-N" / "chatcmpl-N"
  int64_t created = 0;
  std::string model;
  int32_t n = 1;
  bool logprobs = false;
  bool sampler_details = false;
  bool include_usage = false;
  uint64_t seed = 0;
  const Tokenizer* tokenizer = nullptr;
};

// "stop" or "length".
const char* FinishReasonString(FinishReason reason);

// The non-stream response, built as the tokens arrive.
class ResponseBuilder {
 public:
  explicit ResponseBuilder(ResponseContext context);
  void AddToken(const TokenOutput& token);
  void EndChoice(const ChoiceEnd& end);
  // The whole response once the generation ended well.
  nlohmann::json Finish(const GenerationEnd& end) const;

 private:
  struct Choice {
    std::string text;
    nlohmann::json logprobs;  // null without logprobs
    nlohmann::json details = nlohmann::json::array();
    int64_t text_offset = 0;  // code points so far (completions' text_offset)
    std::string finish_reason = "length";
  };
  ResponseContext context_;
  std::vector<Choice> choices_;
};

// The event stream: each call returns the bytes to send ("data: ...\n\n"
// events; possibly none).
class ChunkWriter {
 public:
  explicit ChunkWriter(ResponseContext context);
  // Chat: a first chunk per choice with the role.
  std::string Start();
  std::string Token(const TokenOutput& token);
  std::string ChoiceEnded(const ChoiceEnd& end);
  // The usage chunk when asked for, then "data: [DONE]".
  std::string Finish(const GenerationEnd& end);
  // An error event ("data: {\"error\": ...}") that ends the stream.
  static std::string Error(const ApiError& error);

 private:
  nlohmann::json Chunk(nlohmann::json choices) const;
  std::string Event(const nlohmann::json& chunk) const;
  ResponseContext context_;
  std::vector<int64_t> text_offsets_;
};

// The usage object of a generation that ended.
nlohmann::json UsageJson(const GenerationEnd& end);

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_RESPONSE_H_
