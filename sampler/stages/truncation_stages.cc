#include "sampler/stages/truncation_stages.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/types/span.h"
#include "sampler/stages/candidate_ops.h"

namespace entroserve {

absl::Status TopKStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->top_k = k_;
  // KeepTop(k >= size) would sort the whole set for nothing.
  if (k_ <= 0 || static_cast<size_t>(k_) >= set.size()) return absl::OkStatus();
  set.KeepTop(k_);  // partial selection, then sorts the k survivors
  return absl::OkStatus();
}

absl::Status TypicalStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->typical_p = p_;
  if (p_ >= 1.0f || set.size() <= 1) return absl::OkStatus();
  if (!set.normalized()) set.Normalize();
  std::vector<Candidate>& items = set.items();
  const double entropy = EntropyNats(set);
  // -ln p_i = log_z - z_i with log_z = z_max - ln p_max, so the typicality
  // score |-ln p_i - H| = |center - z_i|: no log per item or comparison.
  const Candidate& best = items[BestIndex(set)];
  const double center = best.logit - std::log(static_cast<double>(best.p)) - entropy;
  const auto more_typical = [center](const Candidate& a, const Candidate& b) {
    const double da = std::fabs(center - a.logit);
    const double db = std::fabs(center - b.logit);
    return da < db || (da == db && a.id < b.id);
  };
  const size_t keep = SelectMassPrefix(absl::MakeSpan(items), p_, more_typical);
  set.MarkReordered();  // by typicality: no longer sorted by logit
  if (keep < items.size()) {
    items.resize(keep);
    set.MarkRemoved();
  }
  return absl::OkStatus();
}

absl::Status TopPStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->top_p = top_p_;
  if (top_p_ >= 1.0f || set.size() <= 1) return absl::OkStatus();
  set.KeepTopMass(top_p_);
  return absl::OkStatus();
}

absl::Status MinPStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->min_p = min_p_;
  if (min_p_ <= 0.0f || set.size() <= 1) return absl::OkStatus();
  const float max_logit = set.items()[BestIndex(set)].logit;
  // p_i >= min_p * p_max  <=>  z_i - z_max >= ln(min_p).
  const float threshold = max_logit + std::log(min_p_);
  if (RemoveCandidatesIf(set.items(),
                         [threshold](const Candidate& c) { return c.logit < threshold; }) > 0) {
    set.MarkRemoved();
  }
  return absl::OkStatus();
}

absl::Status TopNSigmaStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->top_n_sigma = n_;
  if (n_ <= 0.0f || set.size() <= 1) return absl::OkStatus();
  const std::vector<Candidate>& items = set.items();
  double sum = 0.0;
  float max_logit = items[0].logit;
  for (const Candidate& c : items) {
    sum += c.logit;
    max_logit = std::max(max_logit, c.logit);
  }
  const double mean = sum / static_cast<double>(items.size());
  double squares = 0.0;
  for (const Candidate& c : items) squares += (c.logit - mean) * (c.logit - mean);
  const double sigma = std::sqrt(squares / static_cast<double>(items.size()));
  const double threshold = max_logit - n_ * sigma;
  if (RemoveCandidatesIf(set.items(),
                         [threshold](const Candidate& c) { return c.logit < threshold; }) > 0) {
    set.MarkRemoved();
  }
  return absl::OkStatus();
}

absl::Status XtcStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) {
    ctx.params->xtc_threshold = threshold_;
    ctx.params->xtc_probability = probability_;
  }
  if (ctx.rng == nullptr) {
    return absl::FailedPreconditionError("xtc: the step context has no random generator");
  }
  const uint32_t draw = ctx.next_draw++;
  if (set.size() < 2 || !(ctx.rng->Uniform(draw) < probability_)) return absl::OkStatus();
  if (!set.normalized()) set.Normalize();
  std::vector<Candidate>& items = set.items();
  // The tokens at or above the threshold and the least probable of them (the
  // last in ByLogitDescending order).
  const ByLogitDescending before;
  size_t above = 0;
  const Candidate* least = nullptr;
  for (const Candidate& c : items) {
    if (c.p < threshold_) continue;
    ++above;
    if (least == nullptr || before(*least, c)) least = &c;
  }
  if (above < 2) return absl::OkStatus();
  if (items.size() - (above - 1) < static_cast<size_t>(std::max(min_keep_, 1))) {
    return absl::OkStatus();
  }
  const int32_t least_id = least->id;
  const float threshold = threshold_;
  RemoveCandidatesIf(items, [threshold, least_id](const Candidate& c) {
    return c.p >= threshold && c.id != least_id;
  });
  set.MarkRemoved();
  return absl::OkStatus();
}

}  // namespace entroserve
