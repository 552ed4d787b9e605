// An OpenAIRequest (request.h) into the engine's GenerationRequest, with the
// checks that need the model: the prompt tokenized (text as runner.v1 does,
// BOS as the tokenizer's config says; token ids checked against the
// vocabulary), messages rendered with the model's chat template, stop
// strings, and the sampler:
//   - neither `sampler` nor `sampler_spec`: OpenAI's fields configure the
//     chain sampler (temperature 0: greedy, as chain with top_k 1, so that
//     logit_bias and the penalties still apply; top_k -1 or 0: off);
//   - `sampler`: that sampler with its defaults, and OpenAI's sampling fields
//     set on its config where it has a field of that name (entropix has
//     temperature, top_p, top_k, min_p); a field it lacks is a 400;
//   - `sampler_spec`: a sampler.v1.SamplerSpec in protobuf's JSON form, with
//     OpenAI's sampling fields applied the same way (a field given both at
//     the top level and in the spec is a 400).
// Defaults: max_tokens 16 for completions (OpenAI's), and for chat what
// runner.v1 takes (128, or what the context leaves). Choice i draws with
// seed + i (the engine's rule); the seed is picked when absent.
//
// Thread-safety: pure functions (the ServedModel is immutable).
#ifndef ENTROSERVE_SERVICES_OPENAI_GENERATION_H_
#define ENTROSERVE_SERVICES_OPENAI_GENERATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/served_model.h"
#include "sampler/core/configs.h"
#include "services/openai/api_error.h"
#include "services/openai/request.h"

namespace entroserve::openai {

// Default max_tokens of /v1/completions (OpenAI's).
inline constexpr int32_t kCompletionsDefaultMaxTokens = 16;

// The sampler config of `request` (see above), checked against a vocabulary
// of `vocab_size` tokens.
MaybeError BuildSamplerConfig(const OpenAIRequest& request, int64_t vocab_size, SamplerConfig* out);

// The whole GenerationRequest of `request` for `model`; `seed_if_absent`
// when it gives no seed.
MaybeError BuildGeneration(const OpenAIRequest& request, const ServedModel& model,
                           uint64_t seed_if_absent, GenerationRequest* out);

// An error of Engine::Submit as the API's: INVALID_ARGUMENT names the
// request's field (the engine says max_new_tokens where the client wrote
// max_tokens or max_completion_tokens, prompt where it wrote messages),
// RESOURCE_EXHAUSTED is 429, UNAVAILABLE 503.
ApiError SubmitError(const absl::Status& status, const OpenAIRequest& request);

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_GENERATION_H_
