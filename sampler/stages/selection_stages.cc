#include "sampler/stages/selection_stages.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sampler/stages/candidate_ops.h"

namespace entroserve {
namespace {

absl::Status NothingLeft(absl::string_view stage) {
  return absl::FailedPreconditionError(
      absl::StrCat(stage,
                   ": no candidate token left to choose from (every token was masked, banned or "
                   "biased to -inf)"));
}

// Normalises `set`, draws one uniform and selects by inverse CDF.
absl::Status Draw(absl::string_view stage, CandidateSet& set, StepContext& ctx) {
  if (set.empty()) return NothingLeft(stage);
  if (ctx.rng == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(stage, ": the step context has no random generator"));
  }
  if (!set.normalized()) set.Normalize();
  const double u = ctx.rng->Uniform(ctx.next_draw++);
  const int32_t index = DrawIndex(set, u);
  if (index < 0) {
    return absl::InternalError(absl::StrCat(stage, ": no candidate has a positive probability"));
  }
  set.set_selected(set.items()[index].id);
  if (ctx.params != nullptr) ctx.params->candidates = static_cast<int32_t>(set.size());
  return absl::OkStatus();
}

}  // namespace

absl::Status DistStage::Apply(CandidateSet& set, StepContext& ctx) const {
  return Draw(Name(), set, ctx);
}

absl::Status GreedyStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (set.empty()) return NothingLeft(Name());
  set.set_selected(set.items()[BestIndex(set)].id);
  if (ctx.params != nullptr) ctx.params->candidates = static_cast<int32_t>(set.size());
  return absl::OkStatus();
}

float MirostatV2Stage::Mu(const SamplerState* state) const {
  if (state != nullptr && state->mirostat_mu.has_value()) return *state->mirostat_mu;
  return kInitialMuPerTau * tau_;
}

absl::Status MirostatV2Stage::Apply(CandidateSet& set, StepContext& ctx) const {
  const float mu = Mu(ctx.state);
  if (ctx.params != nullptr) ctx.params->mirostat_mu = mu;
  if (set.size() > 1) {
    if (!set.normalized()) set.Normalize();
    // Surprise -log2 p > mu  <=>  p < 2^-mu.
    const float min_p = std::exp2(-mu);
    std::vector<Candidate>& items = set.items();
    const Candidate best = items[BestIndex(set)];
    if (RemoveCandidatesIf(items, [min_p](const Candidate& c) { return c.p < min_p; }) > 0) {
      if (items.empty()) items.push_back(best);
      set.MarkRemoved();
    }
  }
  return Draw(Name(), set, ctx);
}

void MirostatV2Stage::Accept(int32_t token, const CandidateSet& set, SamplerState& state) const {
  const float mu = Mu(&state);
  for (const Candidate& c : set.items()) {
    if (c.id != token) continue;
    if (!set.normalized() || !(c.p > 0.0f)) break;
    const float surprise = -std::log2(c.p);
    state.mirostat_mu = mu - eta_ * (surprise - tau_);
    return;
  }
  // A token that was not drawn from this set (e.g. one a policy inserted) has
  // no surprise under it: mu carries over unchanged.
  state.mirostat_mu = mu;
}

}  // namespace entroserve
