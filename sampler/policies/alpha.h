// AlphaSampler (EdwardDali/alpha; docs/SAMPLERS.md "alpha"): an uncertainty score alpha,
// smoothed over the last steps, sets a target entropy, and a bounded search
// chooses all five sampling parameters so that the filtered distribution
// comes close to it.
//
// Per step (bits throughout; the original mixed nats and bits):
//   1. alpha = w_h H / log2 V + w_v Var / (log2 V)^2
//            + w_ah H_attn / log2 L + w_av Var_attn / (log2 L)^2
//      with V the vocabulary size, L the attention keys, H/Var the entropy and
//      varentropy of softmax(z), H_attn/Var_attn the mean per-head attention
//      entropy and varentropy (Signals::attn_entropy, attn_varentropy). A term
//      whose log2 is 0 (V <= 1, L <= 1) or that has no attention is 0.
//   2. The raw alpha joins SamplerState::alpha_window (the last `window`
//      values); smoothed alpha = their mean; target = smoothed alpha / 2.
//   3. Search (SearchAlphaParameters) over temperature, top_k, top_p,
//      repetition_penalty and candidate_size, each within its bounds,
//      starting from the base values clamped into the bounds, minimising
//        objective = (normalised entropy of the filtered distribution - target)^2.
//   4. Draw from the filtered distribution of the parameters found:
//      inverse CDF of CounterRng(seed, step).Uniform(0) in the pool's order.
//
// The filtered distribution (FilterAlpha), in this order:
//   a. repetition penalty on the distinct tokens among the last
//      repetition_window tokens of SamplerState::recent_tokens: a positive
//      logit is divided by the penalty, a negative one multiplied (the
//      original divided both, which rewards repeating a negative token);
//   b. top_k: the k largest penalised logits (ties: lower id first);
//   c. softmax(z / T) over those k (as HF's warpers and the original: top_k
//      masks to -inf, then softmax);
//   d. top_p: sorted descending, drop a token when the mass before it exceeds
//      top_p; the most probable token always stays;
//   e. candidate_size: keep the candidate_size most probable;
//   f. renormalise. Its normalised entropy is H_bits / log2 V.
//
// The search is coordinate descent: each sweep (at most max_iterations)
// line-searches the coordinates in the order temperature, top_k, top_p,
// repetition_penalty, candidate_size. A line search
//   - brackets: evaluates the coordinate's whole range at a spacing of
//     learning_rate * (hi - lo) (the proto's "initial step as a fraction of
//     each range"; integers: at least 1). A local probe is not enough: the
//     objective has plateaus, e.g. wherever top_p leaves a single token the
//     entropy is exactly 0 over a wide range of temperatures;
//   - refines: golden-section search in the cell around the best point, to a
//     resolution of 1 for top_k and candidate_size and 1e-3 of the range for
//     the others; on a tie it keeps the part holding the best point so far.
// A coordinate moves only when the objective strictly falls, except that
// top_k, top_p and candidate_size, which each cap the support, move to the
// largest value that ties: the same distribution, but one of them no longer
// holds another at a corner (top_p and candidate_size both binding at the same
// support, where neither alone can widen it). The result is never worse than
// the start. The search stops as soon as the objective is below `tolerance`,
// after max_iterations sweeps, or after a sweep that moved nothing. Being
// coordinate-wise it can stop where only a joint move would help (e.g. a
// 0.1-bit target that needs a lower temperature and a higher top_p at once).
//
// Cost: the pool (BuildAlphaPool) is found once per step by partial selection
// (SelectTopTokens): the max_top_k largest unpenalised logits plus every
// penalised token, <= max_top_k + repetition_window items whatever V is. A
// penalty keeps the order within the penalised tokens, so every evaluation
// merges two sorted lists for its top_k prefix: O(top_k), no sort.
//
// Thread-safety: pure functions; the sampler is immutable.
#ifndef ENTROSERVE_SAMPLER_POLICIES_ALPHA_H_
#define ENTROSERVE_SAMPLER_POLICIES_ALPHA_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "sampler/core/candidates.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/core/types.h"

namespace entroserve {

// The five parameters the search chooses.
struct AlphaParameters {
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 0.0f;
  float repetition_penalty = 0.0f;
  int32_t candidate_size = 0;
};

// The starting point of the search: each base value clamped into its bounds.
AlphaParameters BaseAlphaParameters(const AlphaConfig& config);

// Step 1 above. `vocab_size` is V, `keys` is L.
float ComputeAlpha(const AlphaConfig& config, const Signals& signals, int64_t vocab_size,
                   int32_t keys);

// Step 2: appends `alpha` to `window`, drops the oldest values beyond
// config.window, and returns the mean of what is left (the smoothed alpha).
float PushAlpha(const AlphaConfig& config, float alpha, std::vector<float>* window);

// The tokens any filtered distribution within the bounds can hold.
struct AlphaPool {
  // The max_top_k largest logits among unpenalised tokens, sorted by logit
  // descending, ties by id ascending.
  std::vector<Candidate> free_tokens;
  // Every penalised token with a finite logit (raw logit), same order.
  std::vector<Candidate> penalised_tokens;
  int64_t vocab_size = 0;
};

// Partial selection over `logits`; the penalised tokens are the distinct ids
// in [0, V) among the last config.repetition_window of `recent_tokens`.
AlphaPool BuildAlphaPool(const AlphaConfig& config, absl::Span<const float> logits,
                         absl::Span<const int32_t> recent_tokens);

// The repetition penalty of one logit: z / penalty if z > 0, else z * penalty.
float PenalizeLogit(float logit, float penalty);

struct AlphaFiltered {
  // Filtered distribution in draw order; logit = penalised logit (before the
  // temperature), p normalised.
  std::vector<Candidate> items;
  double entropy_bits = 0.0;
  double normalized_entropy = 0.0;  // entropy_bits / log2 V (0 when V <= 1)
};

// Steps a-f above for `params` (which need not be within the config bounds
// but must have temperature > 0, top_k >= 1, top_p > 0, candidate_size >= 1,
// repetition_penalty > 0). An empty pool gives an empty result.
AlphaFiltered FilterAlpha(const AlphaPool& pool, const AlphaParameters& params);

// (normalised entropy of FilterAlpha(pool, params) - target)^2.
double AlphaObjective(const AlphaPool& pool, const AlphaParameters& params, double target);

struct AlphaSearchResult {
  AlphaParameters params;
  double objective = 0.0;          // at params
  double initial_objective = 0.0;  // at BaseAlphaParameters(config)
  int32_t sweeps = 0;              // coordinate sweeps run
  int32_t evaluations = 0;         // objective evaluations
};

// Step 3. `config` must be valid; deterministic.
AlphaSearchResult SearchAlphaParameters(const AlphaConfig& config, const AlphaPool& pool,
                                        double target);

// A sampler running steps 1-4. Its Sample() sets RowOutput (token, mode
// kAlpha, signals, params: temperature, top_k, top_p, repetition_penalty,
// candidate_size, alpha, smoothed_alpha, candidates; logprob under the
// unfiltered, unpenalised distribution) and the state (alpha_window, token
// pushed). `config` must be valid (Validate()).
std::unique_ptr<Sampler> MakeAlphaSampler(const AlphaConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_POLICIES_ALPHA_H_
