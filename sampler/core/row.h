// The row: one sequence's step, the unit every sampler, backend and wire
// format of the project works on. One type whichever way a row arrives:
//   samplerd      decodes a sampler.v1.SampleRow into an OwnedRow
//                 (services/wire/sampler_convert.h);
//   runnerd       builds Rows from the engine's forward pass
//                 (model_runner/engine/engine.cc) and samples them in process
//                 or sends them to samplerd (services/runnerd/*_backend.*);
//   a library user builds one by hand.
// ValidateRow is the one place a row's content is checked, with one message
// per fault naming the field; SampleRow (sampler/sample_row.h) runs it before
// sampling.
#ifndef ENTROSERVE_SAMPLER_CORE_ROW_H_
#define ENTROSERVE_SAMPLER_CORE_ROW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sampler/core/configs.h"
#include "sampler/core/types.h"

namespace entroserve {

// A row. The tensors are spans: whoever builds the Row keeps them alive for
// as long as it is used (an OwnedRow, the engine's forward-pass output).
struct Row {
  // The caller's id of the sequence; echoed in results.
  std::string sequence_id;
  // Index of this step in the sequence (0 for the first sampled token).
  int64_t step = 0;
  // The sampler and its configuration.
  SamplerConfig config;
  // Key of the counter-based generator (picked at the edge when a client
  // sent none).
  uint64_t seed = 0;
  // The state returned with the previous step; empty at step 0.
  SamplerState state;
  // Next-token logits [V]: finite or -inf (a masked token).
  absl::Span<const float> logits;
  // Or the same as bfloat16 bits, instead of `logits` (a row sets one): a
  // BF16 model's values handed on without widening them first. SampleRow
  // widens them on the sampling thread (exactly: every bfloat16 is a
  // float32); a remote backend puts them on the wire as they are.
  absl::Span<const uint16_t> logits_bf16;
  // Last-layer pre-softmax attention scores [heads, keys], row-major; empty
  // for none.
  absl::Span<const float> attention;
  int32_t heads = 0;
  int32_t keys = 0;
  // Token ids a policy may insert or needs.
  SpecialTokens special_tokens;
  // Tokens appended to the sequence since the last step that the sampler
  // did not choose (the prompt at step 0): they enter the history that
  // penalties read.
  absl::Span<const int32_t> appended_tokens;
  // How many of the most probable tokens to return with their
  // log-probabilities (RowOutput::top_logprobs), in [0, kMaxTopLogprobs].
  int32_t top_logprobs = 0;
  // The tokens the sampler may choose at this step (a grammar's or JSON
  // schema's), as a bitmask of MaskWords(V) words (sampler/core/
  // token_mask.h); empty allows every token. Every sampler sees the logits
  // of the tokens it does not allow as -inf (SampleRow).
  absl::Span<const uint64_t> allowed_tokens;

  int64_t vocab_size() const {
    return static_cast<int64_t>(logits.empty() ? logits_bf16.size() : logits.size());
  }
};

// `bits` (Row::logits_bf16) as float32 in `out`, resized.
void WidenLogits(absl::Span<const uint16_t> bits, std::vector<float>* out);

// The row's logits as float32: `logits` itself, or `logits_bf16` widened
// into `buffer` (valid while both are).
absl::Span<const float> FloatLogits(const Row& row, std::vector<float>* buffer);

// A Row together with the storage its spans point into (a row decoded from
// the wire, or rounded through a wire dtype). Move-only: a move keeps the
// vectors' buffers, so `row`'s spans stay valid.
struct OwnedRow {
  Row row;
  std::vector<float> logits;
  std::vector<float> attention;
  std::vector<int32_t> appended_tokens;
  std::vector<uint64_t> allowed_tokens;

  OwnedRow() = default;
  OwnedRow(OwnedRow&&) = default;
  OwnedRow& operator=(OwnedRow&&) = default;
  OwnedRow(const OwnedRow&) = delete;
  OwnedRow& operator=(const OwnedRow&) = delete;

  // Points row.logits, row.attention, row.appended_tokens and
  // row.allowed_tokens at the vectors above (and clears row.logits_bf16);
  // call after filling them.
  void Bind();
};

// What sampling a row gave.
struct RowResult {
  // Not OK: this row failed (an in-band error; the other rows of its batch
  // are unaffected) and nothing below is set.
  absl::Status status;
  RowOutput output;
  // The sequence's new state, to send back with its next step.
  SamplerState state;
  // The seed used (echoed).
  uint64_t seed = 0;
};

// Largest step: next_step = step + 1 must not overflow.
inline constexpr int64_t kMaxStep = INT64_MAX - 1;

// Every check of a row's content, in this order: the step, the config, the
// logits, the attention, the token ids the config and the special tokens
// name, the state's own values, that the state continues this sampler at
// this step, the appended tokens, and the allowed tokens (CheckMask: a
// mask allowing nothing is FAILED_PRECONDITION). INVALID_ARGUMENT or
// FAILED_PRECONDITION whose message starts with `prefix` and the field
// ("rows[2].logits[7] is NaN; ..."). A vocabulary of V = logits.size().
absl::Status ValidateRow(const Row& row, absl::string_view prefix);

// The config's Validate(), its message prefixed with `field` and a dot
// ("rows[0].spec" gives "rows[0].spec.entropix.temperature must be > 0, ...").
absl::Status ValidateConfig(const SamplerConfig& config, absl::string_view field);

// The token ids a config names (logit_bias and dry_sequence_breaker_ids of
// chain, entropix and alpha; dry.sequence_breaker_ids)
// are in [0, vocab_size); `field` is the spec's path ("rows[0].spec").
absl::Status CheckConfigTokens(const SamplerConfig& config, int64_t vocab_size,
                               absl::string_view field);

// Every id in [0, vocab_size); the error names `field`[i].
absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                           absl::string_view field);

// A state's own values: history tokens in [0, vocab_size), finite floats.
// `field` names the state ("rows[0].state").
absl::Status CheckStateValues(const SamplerState& state, int64_t vocab_size,
                              absl::string_view field);

// The path of row `index` of a batch in error messages: "rows[3].".
std::string RowPrefix(int index);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_ROW_H_
