// The mutable candidate array the stages work on (llama.cpp's
// llama_token_data_array): token ids with their (possibly modified) logits and
// probabilities. Stages shrink it, modify logits, or pick a token.
//
// Large vocabularies are never fully sorted: filters use thresholds and
// partial selection (KeepTop), and only the survivors are ever sorted.
#ifndef ENTROSERVE_SAMPLER_CANDIDATES_H_
#define ENTROSERVE_SAMPLER_CANDIDATES_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace entroserve {

struct Candidate {
  int32_t id;
  float logit;
  float p;  // valid only while CandidateSet::normalized()
};

class CandidateSet {
 public:
  CandidateSet() = default;

  // Every token with a logit > -inf.
  static CandidateSet FromLogits(absl::Span<const float> logits);
  // Tokens with logit >= min_logit (a threshold prefilter in one pass).
  static CandidateSet FromLogitsAtLeast(absl::Span<const float> logits,
                                        float min_logit);

  std::vector<Candidate>& items() { return items_; }
  const std::vector<Candidate>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  int32_t vocab_size() const { return vocab_size_; }

  // Sorted by logit descending, ties by id ascending.
  bool sorted() const { return sorted_; }
  // p holds softmax(logit) over the current items.
  bool normalized() const { return normalized_; }

  // Stages that modify logits or remove items must call these.
  void MarkLogitsChanged() { sorted_ = false; normalized_ = false; }
  void MarkRemoved() { normalized_ = false; }

  // Sorts all items (call on small sets only; prefer KeepTop).
  void Sort();
  // Keeps the k best items (partial selection, O(n)), sorted. k >= size is a
  // plain Sort().
  void KeepTop(int32_t k);
  // Divides every logit by temperature (> 0).
  void ApplyTemperature(float temperature);
  // p = softmax(logit) over the items; sets normalized().
  void Normalize();
  // Removes items with p == 0 after a filter set them so, keeping order.
  void RemoveZeroProbability();

  // The selected token, set by the final stage; -1 until then.
  int32_t selected() const { return selected_; }
  void set_selected(int32_t id) { selected_ = id; }

 private:
  std::vector<Candidate> items_;
  int32_t vocab_size_ = 0;
  bool sorted_ = false;
  bool normalized_ = false;
  int32_t selected_ = -1;
};

// Exact categorical draw by inverse CDF over the (normalized) items in their
// current order with the uniform u in [0, 1). Returns the index of the item.
int32_t DrawIndex(const CandidateSet& set, double u);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CANDIDATES_H_
