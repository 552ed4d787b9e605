// Synthetic next-token distributions for the demo and benchmarks: a
// deterministic sequence of logits whose shape walks through the regimes the
// entropix policy distinguishes (peaked, flat over a few, one strong token
// over a long tail, an even split with a tail, Zipf-like). Not a language
// model: it only exercises the sampler service end to end.
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_SYNTHETIC_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_SYNTHETIC_H_

#include <cstdint>
#include <vector>

namespace entroserve {

// Logits [vocab] for `step` of a synthetic sequence keyed by `seed`; the
// previous token gets its logit lowered so that a repeat is less likely.
std::vector<float> SyntheticLogits(uint64_t seed, int64_t step, int32_t vocab,
                                   int32_t previous_token);

// Attention scores [heads, keys] for `step`.
std::vector<float> SyntheticAttention(uint64_t seed, int64_t step, int32_t heads,
                                      int32_t keys);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_SYNTHETIC_H_
