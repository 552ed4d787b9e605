// SamplerChain: an ordered list of stages that is itself a Stage, as
// llama.cpp's llama_sampler_chain (src/llama-sampling.cpp).
//
// Stage order. A chain runs its stages in the order they were added: the
// chain sampler in the order its config lists (ChainConfig::stages), and
// when the list is empty in this one (llama.cpp's default order, and
// kChainStages' in configs.h):
//
//   logit_bias -> penalties -> no_repeat_ngram -> dry      (history/request:
//                                                           change logits of
//                                                           the whole vocab)
//   -> top_n_sigma -> top_k -> typical_p -> top_p -> min_p (truncation)
//   -> xtc                                                 (before temperature,
//                                                           as llama.cpp)
//   -> temperature | dynatemp                              (rescaling)
//   -> dist | greedy | mirostat_v2                         (the final pick)
//
// Stages that look tokens up by id (the first group) are cheapest while the
// set is still in FromLogits' id order, but work in any position; exactly one
// final stage (dist, greedy or mirostat_v2) ends a chain that is used to
// choose a token.
//
// History. SamplerChain::Accept calls every stage's Accept in order and then
// pushes the token onto state.recent_tokens (SamplerState::PushToken): the
// history push lives here, in the outermost chain, and nowhere else. Stages
// never push, and callers that run a chain must not push the token again.
// A chain nested in another one is built with History::kLeave so that the
// token is pushed once. Stages' Accept therefore see the history without the
// new token.
//
// Timing. Apply measures its own wall time (steady clock, two reads a call)
// into relaxed atomic counters readable with timing(); nothing is logged.
//
// Thread-safety: build with Add() before use; afterwards Apply and Accept may
// run concurrently (the timing counters are atomic).
#ifndef ENTROSERVE_SAMPLER_STAGES_CHAIN_H_
#define ENTROSERVE_SAMPLER_STAGES_CHAIN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sampler/core/stage.h"

namespace entroserve {

class SamplerChain : public Stage {
 public:
  // Whether Accept pushes the token onto state.recent_tokens.
  enum class History { kPush, kLeave };

  struct Timing {
    int64_t applies = 0;   // number of Apply calls
    int64_t apply_ns = 0;  // their total wall time
  };

  explicit SamplerChain(History history = History::kPush) : history_(history) {}

  // Appends `stage`; returns *this so that calls chain. Not thread-safe.
  SamplerChain& Add(std::unique_ptr<Stage> stage);

  size_t size() const { return stages_.size(); }
  const Stage& stage(size_t i) const { return *stages_[i]; }
  // "logit_bias -> penalties -> ... -> dist": the stage names in order.
  std::string Describe() const;

  std::string Name() const override { return "chain"; }
  // Runs every stage in order; stops at the first error and returns it.
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;
  // Every stage's Accept, in order, then (History::kPush) the history push.
  void Accept(int32_t token, const CandidateSet& set, SamplerState& state) const override;

  Timing timing() const;

 private:
  History history_;
  std::vector<std::unique_ptr<Stage>> stages_;
  mutable std::atomic<int64_t> applies_{0};
  mutable std::atomic<int64_t> apply_ns_{0};
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_CHAIN_H_
