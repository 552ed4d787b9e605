// Domain types of the sampler library: what a sampler reads and returns for
// one row (one sequence's step). No gRPC and no protobuf here: services/
// converts the wire messages into these in one place.
#ifndef ENTROSERVE_SAMPLER_CORE_TYPES_H_
#define ENTROSERVE_SAMPLER_CORE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace entroserve {

// What the sampler measures at each step (docs/SAMPLERS.md "Signals"). Entropies are in
// bits, varentropies in bits^2. Attention fields are meaningful only when
// `has_attention`.
struct Signals {
  float entropy = 0.0f;
  float varentropy = 0.0f;
  bool has_attention = false;
  float attn_entropy = 0.0f;          // mean over heads of the per-head entropy
  float attn_varentropy = 0.0f;       // mean over heads of the per-head varentropy
  float attn_entropy_spread = 0.0f;   // variance across heads of the per-head entropy
  float agreement = 0.0f;             // mean over heads and keys of |a_h - mean_h a|
  float interaction_strength = 0.0f;  // mean over heads and keys of |s|
};

// Why a token was chosen. Mirrors sampler.v1.Mode (same order, no zero).
enum class Mode {
  kGreedy = 1,
  kSample = 2,
  kFlowing = 3,
  kClarify = 4,
  kExplore = 5,
  kResample = 6,
  kAdaptive = 7,
  kAlpha = 8,
};

const char* ModeName(Mode mode);

// The parameters a sampler actually used for one token; unset where the
// sampler has no such parameter. Mirrors sampler.v1.SamplingParams.
struct SamplingParams {
  std::optional<float> temperature;
  std::optional<int32_t> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> typical_p;
  std::optional<float> repetition_penalty;
  std::optional<float> frequency_penalty;
  std::optional<float> presence_penalty;
  std::optional<int32_t> candidate_size;
  std::optional<int32_t> samples;
  std::optional<float> mirostat_mu;
  std::optional<float> top_n_sigma;
  std::optional<float> xtc_threshold;
  std::optional<float> xtc_probability;
  std::optional<float> dry_multiplier;
  std::optional<float> alpha;
  std::optional<float> smoothed_alpha;
  std::optional<int32_t> candidates;
};

// Everything a sequence's sampler carries from one step to the next. The
// server keeps none of it: it goes out with each result and comes back with
// the next row (docs/ARCHITECTURE.md "No state lost to a restart").
struct SamplerState {
  // Number of tokens of history kept for penalties (entropix's penalties use
  // the last 128; DRY looks back up to its penalty_last_n, at most this).
  static constexpr int kMaxRecentTokens = 256;

  std::string sampler;                 // name of the sampler that produced it
  int64_t next_step = 0;               // the step the next row must carry
  std::vector<int32_t> recent_tokens;  // oldest first, at most kMaxRecentTokens
  std::vector<float> alpha_window;     // AlphaSampler raw alphas, oldest first
  bool last_inserted = false;          // entropix: last token was inserted
  std::optional<float> mirostat_mu;    // Mirostat running mu, bits

  bool empty() const {
    return sampler.empty() && next_step == 0 && recent_tokens.empty() && alpha_window.empty() &&
           !last_inserted && !mirostat_mu.has_value();
  }
  // Appends a token to the history, dropping the oldest past the bound.
  void PushToken(int32_t token);
};

// Token ids a policy may insert or needs (resolved by the runner).
struct SpecialTokens {
  std::optional<int32_t> clarifying_question;
  std::optional<int32_t> pause;
  std::optional<int32_t> eos;
};

// One of the most probable tokens of a row, with its log-probability under
// the unfiltered distribution (log softmax(logits)[token], nats).
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// The most probable tokens a row may ask for (OpenAI's and vLLM's limit).
inline constexpr int32_t kMaxTopLogprobs = 20;

// What a sampler returns for one row.
struct RowOutput {
  int32_t token = -1;
  Mode mode = Mode::kSample;
  Signals signals;
  SamplingParams params;
  bool inserted = false;
  float logprob = 0.0f;  // log softmax(logits)[token], nats, unfiltered
  // The row's Row::top_logprobs most probable tokens, most probable first
  // (ties: the lower id first); empty when it asked for none.
  std::vector<TokenLogprob> top_logprobs;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_TYPES_H_
