// Stages that remove candidates: top-k, typical, top-p, min-p, top-n-sigma
// and XTC. Each is O(n) on an unsorted set of n candidates (thresholds,
// nth_element, weighted quickselect); only small survivor ranges are sorted,
// and a set that is already sorted is scanned in order instead.
//
// Every stage here records the parameter it was built with into *ctx.params
// (when not null), also on a step where it removed nothing. None keeps
// per-sequence state.
#ifndef ENTROSERVE_SAMPLER_STAGES_TRUNCATION_STAGES_H_
#define ENTROSERVE_SAMPLER_STAGES_TRUNCATION_STAGES_H_

#include <cstdint>
#include <string>

#include "sampler/core/stage.h"

namespace entroserve {

// Keeps the k most probable tokens (Fan et al. 2018, "Hierarchical Neural
// Story Generation", arXiv:1805.04833). k <= 0 disables. Partial selection,
// never a sort of the vocabulary (CandidateSet::KeepTop: a one-pass bounded
// heap for k <= n/16, else nth_element); leaves the k survivors sorted. A set
// of <= k candidates is left as it is. Records top_k.
class TopKStage : public Stage {
 public:
  explicit TopKStage(int32_t k) : k_(k) {}
  std::string Name() const override { return "top_k"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  int32_t k_;
};

// Locally typical sampling (Meister et al. 2022, arXiv:2202.00666; the HF
// TypicalLogitsWarper): ordering tokens by |-ln p - H| (H the entropy in
// nats), keeps the smallest prefix of that order whose mass is >= p, at least
// one token. p >= 1 disables. Ties: lower id first. The survivors are not
// sorted by logit afterwards. Records typical_p.
class TypicalStage : public Stage {
 public:
  explicit TypicalStage(float p) : p_(p) {}
  std::string Name() const override { return "typical_p"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float p_;
};

// Nucleus sampling (Holtzman et al. 2020, arXiv:1904.09751): keeps the
// smallest prefix of the tokens sorted by probability whose cumulative
// probability is >= top_p, at least one token. top_p >= 1 disables.
// On an unsorted set it never sorts the vocabulary (CandidateSet::
// KeepTopMass: a histogram of the mass by logit bucket, added up while the
// softmax is taken, and one more pass, O(n)). A sorted set is scanned.
// Records top_p.
class TopPStage : public Stage {
 public:
  explicit TopPStage(float top_p) : top_p_(top_p) {}
  std::string Name() const override { return "top_p"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float top_p_;
};

// Min-p (Nguyen et al. 2024, arXiv:2407.01082): keeps tokens with
// p >= min_p * p_max, computed as the logit threshold
// z >= z_max + ln(min_p), so it needs neither a softmax nor a sort.
// min_p <= 0 disables. Order is kept. Records min_p.
class MinPStage : public Stage {
 public:
  explicit MinPStage(float min_p) : min_p_(min_p) {}
  std::string Name() const override { return "min_p"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float min_p_;
};

// Top-n-sigma (Tang et al. 2024, arXiv:2411.07641): keeps the logits
// z >= max(z) - n * std(z), mean and (population) standard deviation taken
// over the current candidates (all finite). Invariant under temperature.
// n <= 0 disables (as llama.cpp since PR #13345). Order is kept. Records
// top_n_sigma.
class TopNSigmaStage : public Stage {
 public:
  explicit TopNSigmaStage(float n) : n_(n) {}
  std::string Name() const override { return "top_n_sigma"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float n_;
};

// XTC, "Exclude Top Choices" (p-e-w, oobabooga/text-generation-webui PR
// #6335; llama.cpp llama_sampler_init_xtc). With probability `probability`
// (the draw ctx.rng->Uniform(ctx.next_draw); the stage always consumes that
// one draw index, applied or not, so later draws keep their indices), every
// token with p >= threshold except the least probable of them is removed,
// unless that would leave fewer than `min_keep` candidates. Nothing happens
// when fewer than two tokens reach the threshold. Order is kept. Records
// xtc_threshold and xtc_probability.
class XtcStage : public Stage {
 public:
  XtcStage(float threshold, float probability, int32_t min_keep)
      : threshold_(threshold), probability_(probability), min_keep_(min_keep) {}
  std::string Name() const override { return "xtc"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float threshold_;
  float probability_;
  int32_t min_keep_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_TRUNCATION_STAGES_H_
