// The signals of docs/SAMPLERS.md "Signals", per row, in one pass family and no sort.
//
// Logits: entropy H = -sum p log2 p and varentropy V = sum p (log2 p + H)^2
// of p = softmax(z); -inf entries are masked tokens with p = 0.
// Attention: a = softmax(s) per head over the keys given (valid keys only);
// attn_entropy = mean_h H_h, attn_varentropy = mean_h V_h,
// attn_entropy_spread = variance across heads of H_h (what entropix called
// attention varentropy), agreement = mean_{h,k} |a_hk - mean_h a_hk|,
// interaction_strength = mean_{h,k} |s_hk|.
//
// Precision, for any row of finite values (and -inf for masked logits):
// every signal, log_normalizer and TokenLogProb is within 1e-5 relative (or
// 1e-6 absolute, for values near 0) of the same quantity computed exactly
// from the float inputs, and none is ever NaN or infinite. That holds at the
// extremes: one token with all but 1e-7 of the mass (the maxima are counted
// apart from the rest, see signals.cc), logits tied at 1e30, scores near the
// float maximum (tests/sampler/core/signals_test.cc "Precision", against a
// long double reference).
//
// The kernels are vectorised (AVX-512 / AVX2+FMA / baseline clones chosen at
// load time, all three bit-identical) and accumulate in blocks so that
// 152k-token rows keep ~1e-6 relative accuracy. Cost on one core of an AMD
// EPYC (Zen 5, 2.1 GHz nominal, shared with other work): ~38 us for 128k
// logits, ~58 us for 32 x 4096 attention (p50, bench/sampler_bench.cc).
//
// Attention entropy is the exact softmax entropy: entropix e55e9a3 clipped a
// to [1e-10, 1] inside the log, which changes H_h by less than
// keys * 1e-10 * 33 bits (< 2e-5 at 4096 keys); we do not clip.
//
// Thread-safety: all functions are thread-safe; the attention pass reuses a
// thread_local scratch buffer (heads * keys floats) and allocates only when a
// thread first sees a larger row.
#ifndef ENTROSERVE_SAMPLER_CORE_SIGNALS_H_
#define ENTROSERVE_SAMPLER_CORE_SIGNALS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sampler/core/types.h"

namespace entroserve {

// By-products of the logit pass that samplers reuse.
struct LogitSummary {
  int32_t argmax = -1;        // lowest index of the maximum logit
  float max_logit = 0.0f;     // z[argmax]
  double log_normalizer = 0;  // logsumexp(z) = max_logit + log_sum
  double log_sum = 0;         // ln sum_i exp(z_i - max_logit), >= 0
  int32_t finite = 0;         // number of tokens with a finite logit
};

// log p of a token whose logit is `logit`, as (z - max) - log_sum: never
// z - log_normalizer, which loses what lies below the ulp of z (logits
// tied at 1e30 would get log p = 0 instead of -ln 2).
double TokenLogProb(const LogitSummary& summary, float logit);
// The same as a float: a finite logit so far below the maximum that its
// log p is below the lowest float gets the lowest float, not -inf.
float TokenLogProbFloat(const LogitSummary& summary, float logit);

// Entropy and varentropy of softmax(logits) in bits. `logits` must be
// non-empty with at least one finite value and no NaN or +inf (see
// CheckLogits). Outside that contract nothing crashes: empty logits give
// H = V = 0 and argmax -1; all -inf give H = V = 0, finite 0 and
// log_normalizer -inf. `summary` may be null.
void ComputeLogitSignals(absl::Span<const float> logits, Signals* signals, LogitSummary* summary);

// Attention signals of scores [heads, keys] (row-major), all finite (see
// CheckAttention). Sets signals->has_attention. heads, keys >= 1 and
// scores.size() == heads * keys; otherwise the attention fields are zeroed
// and has_attention is false.
void ComputeAttentionSignals(absl::Span<const float> scores, int32_t heads, int32_t keys,
                             Signals* signals);

// Both of the above; attention may be empty.
Signals ComputeSignals(absl::Span<const float> logits, absl::Span<const float> attention,
                       int32_t heads, int32_t keys, LogitSummary* summary = nullptr);

// The signals of a sampler's row (ComputeSignals of its logits and
// attention), after the checks a sampler that reads them needs:
// INVALID_ARGUMENT for empty logits, attention whose size is not
// heads * keys, or logits that are all -inf.
struct Row;  // sampler/core/row.h
absl::StatusOr<Signals> ComputeRowSignals(const Row& row, LogitSummary* summary);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_SIGNALS_H_
