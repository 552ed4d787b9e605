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
//   3. returns the token, Mode::kSample (kGreedy for greedy and for a chain
//      ending in the greedy selector), the parameters the stages recorded,
//      and logprob = z[token] - logsumexp(z) under the original, unfiltered
//      logits;
//   4. updates the state: SamplerChain::Accept pushes the token onto
//      recent_tokens (greedy pushes it itself) and the stages' Accept update
//      their state (mirostat mu); state.sampler is set to the sampler's name
//      and state.next_step to row.step + 1.
//
// The chain runs ChainConfig::stages in the order listed (validated by
// CheckStageList, configs.h). An empty list is the default order (stage
// names as in chain.h):
//   logit_bias (only when non-empty) -> penalties -> no_repeat_ngram (only
//   when > 0) -> dry (only when dry_multiplier > 0) -> top_n_sigma (only
//   when > 0) -> top_k -> typical_p -> top_p -> min_p -> xtc (only when
//   xtc_probability > 0) -> temperature -> dist
// which with the new stages at their defaults is the fixed order the chain
// had before it took a list. dynatemp, greedy and mirostat_v2 run only when
// listed. Stages of the default order that are disabled by their value
// (top_k 0, top_p 1, ...) stay in it as no-ops so that the parameters they
// report are always present.
//
// The other samplers are presets: named chains (ChainConfig built by the
// *Preset functions below) that run exactly as a chain with that list:
//   mirostat_v2:  temperature -> mirostat_v2
//   dynatemp:     dynatemp -> dist
//   top_n_sigma:  top_n_sigma -> temperature -> dist
//   xtc:          temperature -> xtc -> dist
//   dry:          dry -> temperature -> dist
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

// The stages `config` runs: its list, or the default order when empty.
StageList ChainStages(const ChainConfig& config);
// The stage chain (History::kPush) of a validated config, in ChainStages'
// order.
std::unique_ptr<SamplerChain> BuildChain(const ChainConfig& config);

// The pre-stages `c`'s values enable, in chain order.
StageList ActivePreStages(const ChainConfig& c);

// The pre-stages of a config with ENTROSERVE_PRE_STAGE_FIELDS (entropix,
// alpha) as a chain config: those fields, and as stages the ones their values
// enable, in chain order: logit_bias (non-empty), penalties, dry. No
// selector: the list is run by WithPreStages, never as a sampler.
template <typename Config>
ChainConfig PreStages(const Config& c) {
  ChainConfig pre;
#define ENTROSERVE_COPY_PRE_STAGE_FIELD(type, name, value, rule, help) pre.name = c.name;
  ENTROSERVE_PRE_STAGE_FIELDS(ENTROSERVE_COPY_PRE_STAGE_FIELD)
#undef ENTROSERVE_COPY_PRE_STAGE_FIELD
  pre.stages = ActivePreStages(pre);
  return pre;
}

// `inner` sampling the row's logits after `pre`'s stages (a token they
// remove is -inf): the policy measures its signals, draws and reports its
// logprob on that distribution. A sampler whose pre-stages need the history
// needs its state. `inner` itself when `pre` lists no stage.
std::unique_ptr<Sampler> WithPreStages(std::unique_ptr<Sampler> inner, const ChainConfig& pre);

// The chains the presets run.
ChainConfig MirostatV2Preset(const MirostatV2Config& config);
ChainConfig DynaTempPreset(const DynaTempConfig& config);
ChainConfig TopNSigmaPreset(const TopNSigmaConfig& config);
ChainConfig XtcPreset(const XtcConfig& config);
ChainConfig DryPreset(const DryConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_SAMPLERS_H_
