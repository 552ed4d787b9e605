// The mutable candidate array the stages work on (llama.cpp's
// llama_token_data_array): token ids with their (possibly modified) logits and
// probabilities. Stages shrink it, modify logits, or pick a token.
//
// Large vocabularies are never fully sorted: filters use thresholds and
// partial selection (KeepTop), and only the survivors are ever sorted.
#ifndef ENTROSERVE_SAMPLER_CORE_CANDIDATES_H_
#define ENTROSERVE_SAMPLER_CORE_CANDIDATES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace entroserve {

struct Candidate {
  int32_t id = -1;
  float logit = 0.0f;
  float p = 0.0f;  // valid only while CandidateSet::normalized()
};

// The order of CandidateSet::Sort(): logit descending, ties by id ascending.
// A total order, so every selection and sort is deterministic.
struct ByLogitDescending {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

class CandidateSet {
 public:
  CandidateSet() = default;

  // Every token with a logit > -inf, in id order.
  static CandidateSet FromLogits(absl::Span<const float> logits);
  // Tokens with logit >= min_logit (a threshold prefilter in one pass).
  static CandidateSet FromLogitsAtLeast(absl::Span<const float> logits, float min_logit);
  // A set of the given items, of a vocabulary of vocab_size tokens (ids in
  // [0, vocab_size)), in their order; neither sorted() nor normalized().
  static CandidateSet FromItems(std::vector<Candidate> items, int32_t vocab_size);

  std::vector<Candidate>& items() { return items_; }
  const std::vector<Candidate>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  int32_t vocab_size() const { return vocab_size_; }

  // Sorted by logit descending, ties by id ascending.
  bool sorted() const { return sorted_; }
  // p holds softmax(logit) over the current items.
  bool normalized() const { return normalized_; }

  // Stages that modify logits, remove items or reorder them must call these.
  void MarkLogitsChanged() {
    sorted_ = false;
    normalized_ = false;
  }
  void MarkRemoved() { normalized_ = false; }
  // The same items in another order: p stays valid.
  void MarkReordered() { sorted_ = false; }

  // Sorts all items (call on small sets only; prefer KeepTop).
  void Sort();
  // Keeps the k best items (k <= 0 counts as 1), sorted. An unsorted set is
  // partially selected, never sorted whole: a one-pass bounded heap when
  // k <= size / 16 (about one comparison an item on LLM rows; O(n log k) at
  // worst, a row in ascending order), else nth_element. k >= size is a plain
  // Sort().
  void KeepTop(int32_t k);
  // Top-p: keeps the smallest prefix in ByLogitDescending order whose
  // softmax mass reaches `mass` (0 < mass < 1; at least one item); the
  // kept items are not sorted unless the set was. A sorted set is scanned.
  // An unsorted one is never sorted: while the exps of the softmax are
  // taken, their sum is also added up per logit bucket (1/64 nat wide,
  // below the largest logit); the buckets from the top give the bucket where
  // the prefix ends; one more pass scales the p and moves the buckets above
  // it to the front, keeping their order, and SelectMassPrefix finds the
  // rest among that bucket's items (on LLM rows a few hundred at most). The
  // same items as the sorted scan of the same p, up to the rounding of sums
  // taken in another order. O(n).
  void KeepTopMass(double mass);
  // Multiplies every logit by 1 / temperature (temperature > 0; configs
  // accept >= kMinTemperature, configs.h).
  void ApplyTemperature(float temperature);
  // p = softmax(logit) over the items; sets normalized(). Vectorised
  // (sampler/core/fast_math.h's exp, ~1e-7 relative error; sums in double), with
  // a fixed order of additions: the same p on every CPU. As with std::exp
  // over floats, p also carries the rounding of logit - max in float
  // (~6e-8 |logit - max| relative); p is 0 for an item more than 86.6 below
  // the largest logit (e^-86.6 = 2.4e-38).
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

// Below this many items a range is sorted outright rather than partitioned
// further (a std::sort of 64 items is cheaper than another partition pass).
inline constexpr size_t kMassSelectSortCutoff = 64;

// Weighted selection. `before` is a strict total order over candidates ("a
// comes first"); item p values must be valid. Rearranges `items` so that
// [0, k) holds the first k items in `before` order, where k is the smallest
// count whose probabilities sum to >= mass (k = items.size() when even all of
// them fall short through rounding), and returns k (>= 1 unless empty).
//
// A weighted quickselect: std::nth_element halves the open range each round
// and the mass of the better half decides which half holds the boundary, so
// the cost is O(n) and only the last <= kMassSelectSortCutoff items are
// sorted. [0, k) is in no particular order except its last few items.
template <typename Before>
size_t SelectMassPrefix(absl::Span<Candidate> items, double mass, Before before) {
  const size_t n = items.size();
  if (n == 0) return 0;
  size_t lo = 0;     // [0, lo) is inside the prefix
  size_t hi = n;     // [hi, n) is outside it
  double cum = 0.0;  // mass of [0, lo)
  while (hi - lo > kMassSelectSortCutoff) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(items.begin() + lo, items.begin() + mid, items.begin() + hi, before);
    double left = 0.0;
    for (size_t i = lo; i <= mid; ++i) left += items[i].p;
    if (cum + left >= mass) {
      hi = mid + 1;
    } else {
      cum += left;
      lo = mid + 1;
    }
  }
  std::sort(items.begin() + lo, items.begin() + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    cum += items[i].p;
    if (cum >= mass) return i + 1;
  }
  return hi;
}

// Exact categorical draw by inverse CDF over the (normalized) items in their
// current order with the uniform u in [0, 1). Returns the index of the item.
int32_t DrawIndex(const CandidateSet& set, double u);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_CANDIDATES_H_
