// Stages that change logits from the sequence's history or the request:
// logit bias, repetition/frequency/presence penalties, no-repeat n-grams and
// DRY. They run first in a chain, while the set still holds the whole
// vocabulary in id order, so they look candidates up by id in O(#ids).
//
// History: every stage here reads SamplerState::recent_tokens (oldest first,
// at most SamplerState::kMaxRecentTokens) through StepContext::state; none of
// them writes it. SamplerChain::Accept pushes the chosen token (chain.h).
// A null ctx.state reads as an empty history.
//
// Removed tokens (a -inf bias, a banned n-gram) leave the set; a set left
// empty is reported by the final stage (DistStage / MirostatV2Stage).
#ifndef ENTROSERVE_SAMPLER_STAGES_PENALTY_STAGES_H_
#define ENTROSERVE_SAMPLER_STAGES_PENALTY_STAGES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "sampler/core/config_schema.h"
#include "sampler/core/stage.h"

namespace entroserve {

// Adds a fixed bias to the logits of listed token ids; a -inf bias removes
// the token. Ids outside the vocabulary (or already masked) are ignored.
// Source: OpenAI API `logit_bias`; llama.cpp llama_sampler_init_logit_bias.
class LogitBiasStage : public Stage {
 public:
  explicit LogitBiasStage(const std::map<int32_t, float>& bias);
  std::string Name() const override { return "logit_bias"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  std::vector<int32_t> ids_;  // ascending, >= 0
  std::vector<float> biases_;
};

// Repetition, frequency and presence penalties over the last `last_n` tokens
// of the history. For a token seen c > 0 times in the window:
//   logit <- logit / repetition   if logit > 0, logit * repetition otherwise
//            (CTRL, Keskar et al. 2019, arXiv:1909.05858, with the sign fix
//            of llama.cpp: dividing a negative logit would raise it)
//   logit <- logit - c * frequency - presence
//            (OpenAI frequency/presence penalties, as llama.cpp's
//            llama_sampler_init_penalties).
// Records repetition_penalty, frequency_penalty and presence_penalty.
class PenaltiesStage : public Stage {
 public:
  PenaltiesStage(float repetition, float frequency, float presence, int32_t last_n);
  std::string Name() const override { return "penalties"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float repetition_;
  float frequency_;
  float presence_;
  int32_t last_n_;
};

// Bans every token that would complete an n-gram of size `n` already present
// in the history (Hugging Face NoRepeatNGramLogitsProcessor, after Paulus et
// al. 2017, arXiv:1705.04304): with the last n-1 tokens as prefix, each
// earlier occurrence of that prefix bans the token that followed it; n = 1
// bans every token of the history. The history is the whole of
// recent_tokens (HF uses the whole sequence; ours is bounded by
// SamplerState::kMaxRecentTokens).
class NoRepeatNGramStage : public Stage {
 public:
  explicit NoRepeatNGramStage(int32_t n);
  std::string Name() const override { return "no_repeat_ngram"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  int32_t n_;
};

// DRY, "Don't Repeat Yourself" (p-e-w, oobabooga/text-generation-webui PR
// #5677; llama.cpp's port of koboldcpp PR #982). Over the last
// `penalty_last_n` tokens of the history: for every earlier position whose
// suffix matches the end of the history for n tokens, the token that followed
// it would extend a repeat of length n; if n >= allowed_length its logit is
// reduced by multiplier * base^(n - allowed_length) (the longest n per token
// counts). A sequence breaker in the history caps n at the number of tokens
// after the most recent breaker, and a breaker token is never itself
// penalised. A breaker is a token id or a sequence of them (llama.cpp's
// restart sequences, which runnerd makes from breaker strings); a sequence
// breaks where its tokens stand in a row, and the longest one ending there
// counts, so n is capped at the tokens after its last one.
//
// Simplification against llama.cpp, documented: the history is
// recent_tokens, not the whole context. Like llama.cpp, nothing happens when
// the window holds <= allowed_length tokens, and the exponent is clamped so
// that the penalty stays a finite float. Records dry_multiplier.
class DryStage : public Stage {
 public:
  DryStage(float multiplier, float base, int32_t allowed_length, int32_t penalty_last_n,
           std::vector<int32_t> sequence_breaker_ids, TokenSequences sequence_breakers = {});
  std::string Name() const override { return "dry"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  bool IsBreaker(int32_t token) const;
  // The tokens after the most recent breaker in `reversed` (the window, most
  // recent first), or its size when there is none.
  int32_t TokensAfterLastBreaker(absl::Span<const int32_t> reversed) const;

  float multiplier_;
  float base_;
  int32_t allowed_length_;
  int32_t penalty_last_n_;
  std::vector<int32_t> breakers_;  // ascending, unique
  // Sequences of two or more tokens, by first token (ties: longest first).
  TokenSequences sequences_;
  int32_t max_exponent_;  // base^max_exponent < FLT_MAX; 0: unbounded
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_PENALTY_STAGES_H_
