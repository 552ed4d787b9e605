#include "sampler/sample_row.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sampler/base/guarded.h"
#include "sampler/base/status_macros.h"
#include "sampler/core/sampler.h"
#include "sampler/core/signals.h"
#include "sampler/core/token_mask.h"
#include "sampler/policies/top_tokens.h"
#include "sampler/registry.h"

namespace entroserve {
namespace {

// FAILED_PRECONDITION when a sampler that `needs_state` gets a row past step
// 0 without the state returned by the previous step.
absl::Status CheckStateSent(const Row& row, bool needs_state, absl::string_view prefix) {
  if (needs_state && row.step > 0 && row.state.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "state is required at step ", row.step, " for sampler ", SamplerName(row.config),
        ": send back the state returned with step ", row.step - 1));
  }
  return absl::OkStatus();
}

// The row a sampler sees under its allowed-token set: the logits of the
// tokens it does not allow at -inf (in `masked`), and no special token to
// insert that it does not allow. Every sampler then chooses among the allowed
// tokens only, and measures its signals on their distribution.
absl::StatusOr<Row> ApplyMask(const Row& row, absl::string_view prefix,
                              std::vector<float>* masked) {
  *masked = MaskLogits(row.logits, row.allowed_tokens);
  Row out = row;
  out.logits = *masked;
  out.allowed_tokens = {};
  if (std::none_of(masked->begin(), masked->end(), [](float z) { return std::isfinite(z); })) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "allowed_tokens allows only tokens whose logits are -inf"));
  }
  for (std::optional<int32_t>* id : {&out.special_tokens.clarifying_question,
                                     &out.special_tokens.pause, &out.special_tokens.eos}) {
    if (id->has_value() && !MaskAllows(row.allowed_tokens, **id)) id->reset();
  }
  return out;
}

// Sample() of a validated row whose mask, if any, is applied.
absl::Status SampleValid(const Row& row, absl::string_view prefix, RowResult* result) {
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(row.config);
  if (!sampler.ok()) {
    return absl::Status(sampler.status().code(),
                        absl::StrCat(prefix, "spec: ", sampler.status().message()));
  }
  RETURN_IF_ERROR(CheckStateSent(row, (*sampler)->NeedsState(), prefix));
  result->state = row.state;
  for (int32_t token : row.appended_tokens) result->state.PushToken(token);
  absl::StatusOr<RowOutput> output = (*sampler)->Sample(row, result->state);
  const std::string name = SamplerName(row.config);
  if (!output.ok()) {
    return absl::Status(output.status().code(),
                        absl::StrCat(prefix, "sampler ", name, ": ", output.status().message()));
  }
  if (output->token < 0 || output->token >= row.vocab_size()) {
    return absl::InternalError(absl::StrCat(prefix, "sampler ", name, " returned token ",
                                            output->token, ", outside the vocabulary [0, ",
                                            row.vocab_size(), ")"));
  }
  result->output = *std::move(output);
  if (row.top_logprobs > 0) result->output.top_logprobs = TopLogprobs(row.logits, row.top_logprobs);
  result->state.sampler = name;
  result->state.next_step = row.step + 1;
  result->seed = row.seed;
  return absl::OkStatus();
}

absl::Status SampleFloat(const Row& row, absl::string_view prefix, RowResult* result) {
  RETURN_IF_ERROR(ValidateRow(row, prefix));
  if (row.allowed_tokens.empty()) return SampleValid(row, prefix, result);
  std::vector<float> masked;
  ASSIGN_OR_RETURN(const Row masked_row, ApplyMask(row, prefix, &masked));
  RETURN_IF_ERROR(SampleValid(masked_row, prefix, result));
  if (!MaskAllows(row.allowed_tokens, result->output.token)) {
    return absl::InternalError(absl::StrCat(prefix, "sampler ", SamplerName(row.config),
                                            " returned token ", result->output.token,
                                            ", which allowed_tokens does not allow"));
  }
  return absl::OkStatus();
}

// A row whose logits came as bfloat16 bits is sampled from them widened,
// here on the sampling thread (into a buffer each thread keeps: half a
// megabyte of fresh pages a row would cost their faults every step).
absl::Status Sample(const Row& row, absl::string_view prefix, RowResult* result) {
  if (row.logits_bf16.empty() || !row.logits.empty()) return SampleFloat(row, prefix, result);
  thread_local std::vector<float> widened;
  Row widened_row = row;
  widened_row.logits = FloatLogits(row, &widened);
  widened_row.logits_bf16 = {};
  return SampleFloat(widened_row, prefix, result);
}

}  // namespace

std::vector<TokenLogprob> TopLogprobs(absl::Span<const float> logits, int32_t n) {
  std::vector<TokenLogprob> top;
  if (n <= 0 || logits.empty()) return top;
  Signals signals;
  LogitSummary summary;
  ComputeLogitSignals(logits, &signals, &summary);
  const TopTokens best = SelectTopTokens(logits, n, -std::numeric_limits<float>::infinity());
  top.reserve(best.items.size());
  for (const Candidate& c : best.items) {
    top.push_back({c.id, TokenLogProbFloat(summary, c.logit)});
  }
  return top;
}

RowResult SampleRow(const Row& row, absl::string_view prefix) {
  RowResult result;
  absl::Status status = RunGuarded(absl::StrCat(prefix, "internal error"),
                                   [&] { return Sample(row, prefix, &result); });
  if (!status.ok()) {
    result = RowResult();
    result.status = std::move(status);
  }
  return result;
}

}  // namespace entroserve
