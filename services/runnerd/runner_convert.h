// The edge of the runner service: runner.v1 wire messages into the engine's
// domain objects and back, with the checks a request can fail (docs/ARCHITECTURE.md
// "Validation at the edge"). Messages start with the path of the field at
// fault: "text is not valid UTF-8: ...", "chat.messages is empty",
// "tokens.ids[3] is 7000, outside the vocabulary [0, 6144)",
// "sampler.name: unknown sampler ...". The checks that need the prompt's
// token count (its length against the context, max_new_tokens) are the
// engine's (Engine::Submit), with messages that name the same fields.
//
// Thread-safety: pure functions of their arguments (the ServedModel is
// immutable).
#ifndef ENTROSERVE_SERVICES_RUNNERD_RUNNER_CONVERT_H_
#define ENTROSERVE_SERVICES_RUNNERD_RUNNER_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/served_model.h"
#include "runner/v1/runner.pb.h"
#include "sampler/core/configs.h"

namespace entroserve {

// New tokens generated when a request does not say (runner.v1: "Unset: 128,
// or what the context leaves, if less").
inline constexpr int32_t kDefaultMaxNewTokens = 128;

// The prompt of a chat: each message's role and content checked (valid
// UTF-8, role not empty), rendered with the model's chat template (the
// assistant header appended unless add_generation_prompt is false) and
// encoded with special tokens parsed and no BOS added (templates that want
// one write it). `field` names the chat ("chat"). FAILED_PRECONDITION when
// the model has no usable chat template.
absl::StatusOr<std::vector<int32_t>> ChatToTokens(const runner::v1::ChatMessages& chat,
                                                  const ServedModel& model,
                                                  const std::string& field);

// The prompt of a request: text (checked to be UTF-8, BOS added as the
// tokenizer's config says, special tokens written in it parsed), chat, or
// token ids (each in the vocabulary, at least one).
absl::StatusOr<std::vector<int32_t>> PromptTokens(const runner::v1::GenerateRequest& request,
                                                  const ServedModel& model);

// What a request adds to its sampler's rows, for runner.v1 and the OpenAI
// API alike: `allowed_token_ids` (each in the vocabulary, any order) as
// out->allowed_tokens, a mask (left empty when none), and the ids of the
// DRY breaker strings added to out->sampler, which must be set
// (sequence_breakers.h). INVALID_ARGUMENT naming the field.
absl::Status AddSamplerExtras(absl::Span<const int32_t> allowed_token_ids,
                              absl::Span<const std::string> dry_sequence_breakers,
                              const ServedModel& model, GenerationRequest* out);

// GenerateRequest -> GenerationRequest: the prompt, max_new_tokens (the
// default when unset), stop strings (UTF-8, not empty), stop ids, the
// sampler (`default_sampler` when unset), the seed (`seed_if_absent` when
// unset), n (>= 1; its upper bound is the engine's), top_logprobs (in
// [0, 20]), dry_sequence_breakers (their ids added to the sampler's, see
// sequence_breakers.h), allowed_token_ids (each in the vocabulary, as a
// mask), and the arrival time and deadline.
absl::StatusOr<GenerationRequest> GenerationFromProto(const runner::v1::GenerateRequest& request,
                                                      const ServedModel& model,
                                                      const SamplerConfig& default_sampler,
                                                      uint64_t seed_if_absent, absl::Time arrival,
                                                      absl::Time deadline);

// The wire form of a generated token, with the details `details` asks for
// (all when it is null: GenerateRequest.details unset), its choice and the
// top log-probabilities the request asked for.
void TokenToProto(const TokenOutput& token, const runner::v1::TokenDetails* details,
                  runner::v1::GeneratedToken* proto);

runner::v1::FinishReason FinishReasonToProto(FinishReason reason);

// The token ids of a TokenizeRequest: its text (checked to be UTF-8; BOS as
// the tokenizer's config says unless add_special_tokens is false) or chat.
absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(
    const runner::v1::TokenizeRequest& request, const ServedModel& model);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_RUNNER_CONVERT_H_
