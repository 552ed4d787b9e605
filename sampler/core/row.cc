#include "sampler/core/row.h"

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "sampler/base/status_macros.h"
#include "sampler/core/tensor.h"
#include "sampler/core/token_mask.h"

namespace entroserve {
namespace {

bool InVocabulary(int64_t id, int64_t vocab_size) { return id >= 0 && id < vocab_size; }

absl::Status OutsideVocabulary(absl::string_view field, int64_t id, int64_t vocab_size) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", id, ", outside the vocabulary [0, ", vocab_size, ")"));
}

absl::Status CheckStep(int64_t step, absl::string_view prefix) {
  if (step < 0 || step > kMaxStep) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "step is ", step, "; must be in [0, ", kMaxStep, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckTopLogprobs(int32_t top_logprobs, absl::string_view prefix) {
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "top_logprobs is ", top_logprobs,
                                                   "; must be in [0, ", kMaxTopLogprobs, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckRowLogits(const Row& row, absl::string_view prefix) {
  const std::string field = absl::StrCat(prefix, "logits");
  if (!row.logits_bf16.empty()) {
    if (!row.logits.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " and ", field, "_bf16 are both set; a row carries one of them"));
    }
    std::vector<float> widened;
    WidenLogits(row.logits_bf16, &widened);
    return CheckLogits(widened, absl::StrCat(field, "_bf16"));
  }
  if (row.logits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty: shape [0], but V must be >= 1"));
  }
  return CheckLogits(row.logits, field);
}

absl::Status CheckRowAttention(const Row& row, absl::string_view prefix) {
  if (row.attention.empty() && row.heads == 0 && row.keys == 0) return absl::OkStatus();
  const std::string field = absl::StrCat(prefix, "attention");
  if (row.heads < 1 || row.keys < 1 ||
      row.attention.size() != static_cast<size_t>(row.heads) * static_cast<size_t>(row.keys)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must have shape [heads, keys] with both >= 1 and heads * keys values, got [",
        row.heads, ", ", row.keys, "] with ", row.attention.size(), " values"));
  }
  return CheckAttention(row.attention, field);
}

absl::Status CheckSpecialTokens(const SpecialTokens& special, int64_t vocab_size,
                                absl::string_view prefix) {
  const struct {
    const std::optional<int32_t>& id;
    const char* name;
  } special_ids[] = {
      {special.clarifying_question, "clarifying_question"},
      {special.pause, "pause"},
      {special.eos, "eos"},
  };
  for (const auto& token : special_ids) {
    if (token.id.has_value() && !InVocabulary(*token.id, vocab_size)) {
      return OutsideVocabulary(absl::StrCat(prefix, "special_tokens.", token.name), *token.id,
                               vocab_size);
    }
  }
  return absl::OkStatus();
}

// A state sent with a row continues that row's sampler at that step.
absl::Status CheckStateContinues(const Row& row, absl::string_view prefix) {
  if (row.state.empty()) return absl::OkStatus();
  const std::string field = absl::StrCat(prefix, "state");
  const std::string sampler_name = SamplerName(row.config);
  if (!row.state.sampler.empty() && row.state.sampler != sampler_name) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".sampler is \"", row.state.sampler, "\" but the row's sampler is ",
                     sampler_name, ": a state only continues the sampler that produced it"));
  }
  if (row.state.next_step != row.step) {
    return absl::FailedPreconditionError(absl::StrCat(field, " is for step ", row.state.next_step,
                                                      " but the row is step ", row.step));
  }
  return absl::OkStatus();
}

// Each sequence's ids in [0, vocab_size): "<field>[i] ...".
absl::Status CheckTokenSequences(const TokenSequences& sequences, int64_t vocab_size,
                                 const std::string& field) {
  for (size_t i = 0; i < sequences.size(); ++i) {
    RETURN_IF_ERROR(CheckTokenIds(sequences[i], vocab_size, absl::StrCat(field, "[", i, "]")));
  }
  return absl::OkStatus();
}

// The token ids of the pre-stage fields (configs.h) of the config at `field`
// ("rows[0].spec.chain"); the bias values are checked by Validate().
template <typename Config>
absl::Status CheckPreStageTokens(const Config& c, int64_t vocab_size, const std::string& field) {
  for (const auto& [token, bias] : c.logit_bias) {
    if (!InVocabulary(token, vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".logit_bias has token ", token,
                                                     ", outside the vocabulary [0, ", vocab_size,
                                                     ")"));
    }
  }
  RETURN_IF_ERROR(CheckTokenIds(c.dry_sequence_breaker_ids, vocab_size,
                                absl::StrCat(field, ".dry_sequence_breaker_ids")));
  return CheckTokenSequences(c.dry_sequence_breaker_sequences, vocab_size,
                             absl::StrCat(field, ".dry_sequence_breaker_sequences"));
}

}  // namespace

void WidenLogits(absl::Span<const uint16_t> bits, std::vector<float>* out) {
  out->resize(bits.size());
  DecodeTensorTo(DType::kBFloat16, reinterpret_cast<const char*>(bits.data()),
                 static_cast<int64_t>(bits.size()), out->data());
}

absl::Span<const float> FloatLogits(const Row& row, std::vector<float>* buffer) {
  if (row.logits_bf16.empty()) return row.logits;
  WidenLogits(row.logits_bf16, buffer);
  return *buffer;
}

void OwnedRow::Bind() {
  row.logits = logits;
  row.logits_bf16 = {};
  row.attention = attention;
  row.appended_tokens = appended_tokens;
  row.allowed_tokens = allowed_tokens;
}

absl::Status ValidateConfig(const SamplerConfig& config, absl::string_view field) {
  absl::Status valid = std::visit([](const auto& c) { return c.Validate(); }, config);
  if (!valid.ok()) return absl::Status(valid.code(), absl::StrCat(field, ".", valid.message()));
  return absl::OkStatus();
}

absl::Status ValidateRow(const Row& row, absl::string_view prefix) {
  RETURN_IF_ERROR(CheckStep(row.step, prefix));
  RETURN_IF_ERROR(CheckTopLogprobs(row.top_logprobs, prefix));
  const std::string spec_field = absl::StrCat(prefix, "spec");
  RETURN_IF_ERROR(ValidateConfig(row.config, spec_field));
  RETURN_IF_ERROR(CheckRowLogits(row, prefix));
  RETURN_IF_ERROR(CheckRowAttention(row, prefix));
  const int64_t vocab_size = row.vocab_size();
  RETURN_IF_ERROR(CheckConfigTokens(row.config, vocab_size, spec_field));
  RETURN_IF_ERROR(CheckSpecialTokens(row.special_tokens, vocab_size, prefix));
  RETURN_IF_ERROR(CheckStateValues(row.state, vocab_size, absl::StrCat(prefix, "state")));
  RETURN_IF_ERROR(CheckStateContinues(row, prefix));
  RETURN_IF_ERROR(
      CheckTokenIds(row.appended_tokens, vocab_size, absl::StrCat(prefix, "appended_tokens")));
  if (row.allowed_tokens.empty()) return absl::OkStatus();
  return CheckMask(row.allowed_tokens, vocab_size, absl::StrCat(prefix, "allowed_tokens"));
}

absl::Status CheckConfigTokens(const SamplerConfig& config, int64_t vocab_size,
                               absl::string_view field) {
  if (const auto* dry = std::get_if<DryConfig>(&config)) {
    RETURN_IF_ERROR(CheckTokenIds(dry->sequence_breaker_ids, vocab_size,
                                  absl::StrCat(field, ".dry.sequence_breaker_ids")));
    return CheckTokenSequences(dry->sequence_breaker_sequences, vocab_size,
                               absl::StrCat(field, ".dry.sequence_breaker_sequences"));
  }
  return std::visit(
      [&](const auto& c) -> absl::Status {
        using Config = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<Config, ChainConfig> ||
                      std::is_same_v<Config, EntropixConfig> ||
                      std::is_same_v<Config, AlphaConfig>) {
          return CheckPreStageTokens(c, vocab_size, absl::StrCat(field, ".", Config::kName));
        }
        return absl::OkStatus();
      },
      config);
}

absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                           absl::string_view field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!InVocabulary(ids[i], vocab_size)) {
      return OutsideVocabulary(absl::StrCat(field, "[", i, "]"), ids[i], vocab_size);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStateValues(const SamplerState& state, int64_t vocab_size,
                              absl::string_view field) {
  RETURN_IF_ERROR(
      CheckTokenIds(state.recent_tokens, vocab_size, absl::StrCat(field, ".recent_tokens")));
  for (size_t i = 0; i < state.alpha_window.size(); ++i) {
    if (!std::isfinite(state.alpha_window[i])) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".alpha_window[", i, "] is ",
                                                     state.alpha_window[i], "; must be finite"));
    }
  }
  if (state.mirostat_mu.has_value() && !std::isfinite(*state.mirostat_mu)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".mirostat_mu is ", *state.mirostat_mu, "; must be finite"));
  }
  return absl::OkStatus();
}

std::string RowPrefix(int index) { return absl::StrCat("rows[", index, "]."); }

}  // namespace entroserve
