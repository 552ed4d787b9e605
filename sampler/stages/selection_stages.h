// Final stages: they pick the token (CandidateSet::set_selected) and must be
// last in a chain. GreedyStage takes the most probable candidate and draws
// nothing; the other two draw exactly one uniform, ctx.rng->Uniform at index
// ctx.next_draw (then incremented), and choose by inverse CDF over the
// normalised candidates in their current order (DrawIndex): an exact
// categorical draw, unlike the argmax(p/u) of the torch entropix port
// (docs/SAMPLERS.md "Conventions"). An empty set (every token masked, banned or biased to
// -inf) is FAILED_PRECONDITION for the row.
//
// All record `candidates` (the number left to choose from) into *ctx.params.
#ifndef ENTROSERVE_SAMPLER_STAGES_SELECTION_STAGES_H_
#define ENTROSERVE_SAMPLER_STAGES_SELECTION_STAGES_H_

#include <string>

#include "sampler/core/stage.h"

namespace entroserve {

// Draws a token from softmax over the candidates (llama.cpp's "dist").
class DistStage : public Stage {
 public:
  std::string Name() const override { return "dist"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;
};

// Takes the most probable candidate, the lowest id among equal logits
// (ByLogitDescending), as greedy decoding; the selector of a chain that
// filters and then wants the argmax of what is left.
class GreedyStage : public Stage {
 public:
  std::string Name() const override { return "greedy"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;
};

// Mirostat 2.0 (Basu et al. 2021, "Mirostat: a neural text decoding algorithm
// that directly controls perplexity", arXiv:2007.14966, Alg. 2; llama.cpp
// llama_sampler_init_mirostat_v2). With mu the running maximum surprise in
// bits (SamplerState::mirostat_mu, or kInitialMuPerTau * tau when unset):
// Apply removes the tokens whose surprise -log2 p exceeds mu (keeping the
// most probable one when none is left), renormalises and draws. Accept then
// sets state.mirostat_mu = mu - eta * (surprise(token) - tau), the surprise
// taken under the truncated, renormalised distribution the token was drawn
// from (as llama.cpp). Records mirostat_mu (the mu used for this step).
class MirostatV2Stage : public Stage {
 public:
  // mu starts at twice the target surprise (Basu et al. Alg. 2; llama.cpp).
  static constexpr float kInitialMuPerTau = 2.0f;

  MirostatV2Stage(float tau, float eta) : tau_(tau), eta_(eta) {}
  std::string Name() const override { return "mirostat_v2"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;
  void Accept(int32_t token, const CandidateSet& set, SamplerState& state) const override;

  // The mu of the step `state` is at.
  float Mu(const SamplerState* state) const;

 private:
  float tau_;
  float eta_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_SELECTION_STAGES_H_
