// The simple samplers: greedy and fixed stage chains (chain, mirostat_v2,
// dynatemp, top_n_sigma, xtc, dry). Each factory assumes that its config has
// passed Validate() (configs.h: the rules of its table).
//
// Every Sample():
//   1. measures the logit signals (entropy, varentropy) of the row's logits
//      (ComputeLogitSignals); attention signals are not computed, since
//      these samplers do not read attention;
//   2. runs its chain over CandidateSet::FromLogits(row.logits) with the
//      draws of CounterRng(row.seed, row.step), starting at draw index 0;
//   3. returns the token, Mode::kSample (kGreedy for greedy), the parameters
//      the stages recorded, and logprob = z[token] - logsumexp(z) under the
//      original, unfiltered logits;
//   4. updates the state: SamplerChain::Accept pushes the token onto
//      recent_tokens (greedy pushes it itself) and the stages' Accept update
//      their state (mirostat mu); state.sampler is set to the sampler's name
//      and state.next_step to row.step + 1.
//
// Chains (stage names as in chain.h; -> is the order):
//   chain:        logit_bias (only when non-empty) -> penalties ->
//                 no_repeat_ngram (only when > 0) -> top_k -> typical_p ->
//                 top_p -> min_p -> temperature -> dist
//   mirostat_v2:  temperature -> mirostat_v2
//   dynatemp:     dynatemp -> dist
//   top_n_sigma:  top_n_sigma -> temperature -> dist
//   xtc:          temperature -> xtc -> dist
//   dry:          dry -> temperature -> dist
// Stages that are disabled by their value (top_k 0, top_p 1, ...) stay in the
// chain as no-ops so that the parameters they report are always present.
#ifndef ENTROSERVE_SAMPLER_STAGES_SAMPLERS_H_
#define ENTROSERVE_SAMPLER_STAGES_SAMPLERS_H_

#include <memory>

#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/stages/chain.h"

namespace entroserve {

std::unique_ptr<Sampler> MakeGreedySampler(const GreedyConfig&);
std::unique_ptr<Sampler> MakeChainSampler(const ChainConfig&);
std::unique_ptr<Sampler> MakeMirostatV2Sampler(const MirostatV2Config&);
std::unique_ptr<Sampler> MakeDynaTempSampler(const DynaTempConfig&);
std::unique_ptr<Sampler> MakeTopNSigmaSampler(const TopNSigmaConfig&);
std::unique_ptr<Sampler> MakeXtcSampler(const XtcConfig&);
std::unique_ptr<Sampler> MakeDrySampler(const DryConfig&);

// The stage chains the samplers above run (History::kPush), for reuse and
// for tests of the order.
std::unique_ptr<SamplerChain> BuildChain(const ChainConfig& config);
std::unique_ptr<SamplerChain> BuildMirostatV2Chain(const MirostatV2Config& config);
std::unique_ptr<SamplerChain> BuildDynaTempChain(const DynaTempConfig& config);
std::unique_ptr<SamplerChain> BuildTopNSigmaChain(const TopNSigmaConfig& config);
std::unique_ptr<SamplerChain> BuildXtcChain(const XtcConfig& config);
std::unique_ptr<SamplerChain> BuildDryChain(const DryConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_SAMPLERS_H_
