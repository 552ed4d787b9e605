// entropix adaptive sampling (xjdr-alt/entropix, commit e55e9a3;
// docs/SAMPLERS.md "entropix"): the entropy H and varentropy V of the
// next-token distribution, and the attention signals of the decoded query,
// choose a mode and its sampling parameters.
//
// Modes: the first row whose condition holds wins (thresholds and every
// coefficient are EntropixConfig fields, defaults in configs.h).
//
// clang-format off
//   mode      condition                   what it does
//   flowing   H < low_entropy             argmax (lowest id on ties)
//             and V < low_varentropy
//   clarify   H > medium_entropy          insert clarifying_question (else pause) unless
//             and V < low_varentropy      the previous token was inserted; otherwise sample
//                                         with T = min(clarify_max_temperature,
//                                           temperature * (offset + coef * attn_ent))
//   explore   H < high_entropy            T = min(explore_max_temperature,
//             and V > high_varentropy       temperature * (offset + coef * IS)),
//                                         top_k = max(explore_min_top_k,
//                                           int(top_k * (1 + coef * (1 - agreement))))
//   resample  H > high_entropy            T = max(resample_min_temperature,
//             and V > high_varentropy       temperature * (offset + coef * attn_vent)),
//                                         top_p = max(resample_min_top_p,
//                                           top_p - coef * attn_ent)
//   adaptive  otherwise                   T = temperature * (1 + a (H + V)
//                                           + b (attn_ent + attn_vent) - c agreement),
//                                         top_p = clip(top_p (1 + coef attn_vent), 0.1, 1),
//                                         top_k = clip(round(top_k (1 + s IS - g agreement)),
//                                           1, adaptive_max_top_k),
//                                         min_p = clip(min_p (1 - coef (H + V)), 0.01, 0.5);
//                                         draw adaptive_samples tokens and keep the one
//                                         with the highest log_softmax(z)
// clang-format on
//
// Parameters a mode does not set are the base temperature, top_k, top_p and
// min_p. IS = interaction_strength; attn_vent = Signals::attn_varentropy, or
// attn_entropy_spread (entropix's quantity) when attn_varentropy_is_spread.
// Without attention every attention term (attn_ent, attn_vent, agreement, IS)
// is 0. round() is round-half-to-even, as torch.round. A clarify step with
// neither special token id given samples with the clarify temperature. Every
// T a mode computes is at least kMinTemperature (1e-3, config_schema.h), the
// smallest temperature Validate() accepts.
//
// Sampling pipeline (EntropixFilter, then the draw), in this order:
//   1. softmax(z / T) over the whole vocabulary (never materialised);
//   2. min_p: drop p < min_p * p_max, i.e. keep z >= z_max + T ln(min_p) (a
//      logit threshold); the survivors' probabilities are renormalised over
//      the survivors only;
//   3. top_k: the k most probable survivors (partial selection, SelectTopTokens);
//   4. top_p: over the survivors' renormalised probabilities, sorted
//      descending, drop a token when the mass before it exceeds top_p
//      (cumsum - p > top_p); the most probable token always stays;
//   5. renormalise what is left;
//   6. draw: inverse CDF of CounterRng(seed, step).Uniform(i) over the tokens
//      in (logit descending, id ascending) order, draw index i = 0, 1, ...
// Cost for a 152k-token row: one vectorised pass (block maxima and the count
// above the min_p threshold, SelectTopTokens), a scan of the ~top_k blocks that
// can hold a top-k token, and, only when top_p < 1 and top_k dropped some
// survivors, a second vectorised pass for the survivors' mass (TemperedMass).
// Nothing of vocabulary size is allocated or sorted.
//
// Upstream bugs fixed (each pinned by a test in tests/sampler/policies/entropix_test.cc):
//   - min_p wrote -inf into the logits but top-k/top-p then read the stale
//     probabilities, so min_p never removed anything: here it does;
//   - the torch port drew argmax(p / u) with uniform u, which is not a sample
//     from p: here an exact inverse-CDF draw;
//   - the JAX key never advanced, so every step reused the same uniform: here
//     the draw is keyed by (seed, step, draw index);
//   - the HF port's clarify branch fell through and returned None: here clarify
//     always returns a token (inserted, or sampled);
//   - metrics were averaged over the batch, so one row's uncertainty set
//     another's parameters: here everything is per row;
//   - the HF port's "attention" hook captured the attention block's output
//     hidden state: here the caller sends the pre-softmax scores of the
//     decoded query over the valid keys (Row::attention);
//   - in both _sample()s (JAX and torch): the top-k
//     probabilities were flipped to ascending order before the top-p cumsum,
//     so top_p removed the most probable tokens first: here the cumsum runs
//     from the most probable token.
//
// Thread-safety: the policy is a pure function; the sampler is immutable.
#ifndef ENTROSERVE_SAMPLER_POLICIES_ENTROPIX_H_
#define ENTROSERVE_SAMPLER_POLICIES_ENTROPIX_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/types/span.h"
#include "sampler/core/candidates.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/core/types.h"

namespace entroserve {

// What the policy decided for one step.
struct EntropixDecision {
  Mode mode = Mode::kAdaptive;
  // flowing: take the argmax; nothing below is used.
  bool argmax = false;
  // clarify: emit this token instead of sampling (inserted = true).
  std::optional<int32_t> insert_token;
  // Sampling parameters (the base values where the mode sets none).
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 0.0f;
  float min_p = 0.0f;
  // Tokens drawn; the one with the highest log_softmax(z) is kept.
  int32_t samples = 1;
};

// The policy: a pure function of the config, the signals, whether the previous
// token was inserted by clarify (SamplerState::last_inserted), and the special
// token ids of the request. `config` must be valid.
EntropixDecision DecideEntropix(const EntropixConfig& config, const Signals& signals,
                                bool last_inserted, const SpecialTokens& special_tokens);

// Pipeline steps 1-5 over a logit row whose maximum is `max_logit`: the
// filtered distribution, items in draw order with p normalised and logit set
// to (z - max_logit) / temperature. Requires
// temperature > 0, top_k >= 1, 0 < top_p, 0 <= min_p < 1 and at least one
// finite logit.
CandidateSet EntropixFilter(absl::Span<const float> logits, float max_logit, float temperature,
                            int32_t top_k, float top_p, float min_p);

// A sampler running DecideEntropix and the pipeline above. Its Sample():
// signals -> decision -> argmax, inserted token, or filtered draw(s); sets
// RowOutput (token, mode, signals, params, inserted, logprob) and the state
// (token pushed, last_inserted). `config` must be valid (Validate()).
std::unique_ptr<Sampler> MakeEntropixSampler(const EntropixConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_POLICIES_ENTROPIX_H_
