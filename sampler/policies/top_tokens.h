// Partial selection and tempered masses over a raw logit row, without
// materialising or sorting the row (docs/ARCHITECTURE.md "Large vocabularies
// without a full sort"). Used by the entropix and alpha policies.
//
// How: one vectorised pass records the maximum of every group of 64 logits
// (one lane's share of a 1024-token chunk: the tokens i = j mod 16) and counts
// the tokens above a threshold. The k-th largest group maximum is a lower
// bound on the k-th largest logit (k groups each hold a token at least that
// large), so only the groups whose maximum reaches it can hold a top-k token:
// about k groups are then scanned, and the few survivors are partially
// selected and sorted. Ties in the logits (every group maximum equal) degrade
// gracefully to a scan of the whole row.
//
// Determinism: the kernels keep kLanes independent float lanes combined in a
// fixed order and the sampler library is compiled with -ffp-contract=off, so
// the AVX-512, AVX2 and baseline clones return bit-identical results.
//
// Thread-safety: pure functions.
#ifndef ENTROSERVE_SAMPLER_POLICIES_TOP_TOKENS_H_
#define ENTROSERVE_SAMPLER_POLICIES_TOP_TOKENS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "sampler/core/candidates.h"

namespace entroserve {

struct TopTokens {
  // The min(k, at_least) best tokens with logit >= min_logit, sorted by logit
  // descending, ties by id ascending (CandidateSet's order); p is 0.
  std::vector<Candidate> items;
  // Number of tokens with logit >= min_logit (masked -inf tokens never count).
  int64_t at_least = 0;
};

// The k best tokens of `logits` among those with logit >= min_logit
// (min_logit = -inf: every unmasked token). k <= 0 returns no items.
TopTokens SelectTopTokens(absl::Span<const float> logits, int32_t k, float min_logit);

// sum over tokens with logit >= min_logit of
// TemperedWeight(logit, max_logit, inv_temperature), in one vectorised pass.
// max_logit must be the row's maximum and inv_temperature > 0.
double TemperedMass(absl::Span<const float> logits, float max_logit, float inv_temperature,
                    float min_logit);

// exp((logit - max_logit) * inv_temperature) with the same float arithmetic
// as TemperedMass (sampler/core/fast_math.h's exp, ~1e-7 relative error; 0 for
// -inf and for exponents below -86.6, i.e. weights under 2.4e-38), so that
// weights and masses agree to the last bit.
float TemperedWeight(float logit, float max_logit, float inv_temperature);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_POLICIES_TOP_TOKENS_H_
