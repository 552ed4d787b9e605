// Building blocks the stages share: lookup of candidates by token id, and
// selection of the smallest probability-mass prefix, all without sorting a
// large vocabulary (the candidate order, ByLogitDescending, and top-k
// selection, CandidateSet::KeepTop, are in sampler/core/candidates.h).
//
// Every function here is O(n) (expected or worst case) in the number of
// candidates; only small survivor ranges are ever sorted.
#ifndef ENTROSERVE_SAMPLER_STAGES_CANDIDATE_OPS_H_
#define ENTROSERVE_SAMPLER_STAGES_CANDIDATE_OPS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "sampler/core/candidates.h"

namespace entroserve {

// Below this many items a range is sorted outright rather than partitioned
// further (a std::sort of 64 items is cheaper than another partition pass).
inline constexpr size_t kMassSelectSortCutoff = 64;

// Calls fn(candidate, j) for every candidate whose id is sorted_ids[j].
// `sorted_ids` must be ascending and unique; ids absent from `items` are
// skipped. Returns the number of candidates visited.
//
// Fast path, O(|ids|): the set still has FromLogits' layout (items[id].id ==
// id) for every requested id, the common case for stages that run first.
// Otherwise one pass over the items with a bitmap of the requested ids,
// O(n + max_id / 64).
template <typename Fn>
size_t ForEachCandidateWithId(std::vector<Candidate>& items, absl::Span<const int32_t> sorted_ids,
                              Fn&& fn) {
  if (sorted_ids.empty() || items.empty()) return 0;
  const size_t n = items.size();
  bool identity_layout = true;
  for (int32_t id : sorted_ids) {
    if (id < 0 || static_cast<size_t>(id) >= n || items[id].id != id) {
      identity_layout = false;
      break;
    }
  }
  if (identity_layout) {
    for (size_t j = 0; j < sorted_ids.size(); ++j) fn(items[sorted_ids[j]], j);
    return sorted_ids.size();
  }
  const int32_t max_id = sorted_ids.back();
  if (max_id < 0) return 0;
  std::vector<uint64_t> bitmap(static_cast<size_t>(max_id) / 64 + 1, 0);
  for (int32_t id : sorted_ids) {
    if (id >= 0) bitmap[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
  }
  size_t visited = 0;
  for (Candidate& c : items) {
    if (c.id < 0 || c.id > max_id) continue;
    if ((bitmap[static_cast<size_t>(c.id) / 64] >> (c.id % 64) & 1) == 0) continue;
    const auto it = std::lower_bound(sorted_ids.begin(), sorted_ids.end(), c.id);
    fn(c, static_cast<size_t>(it - sorted_ids.begin()));
    ++visited;
  }
  return visited;
}

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

// SelectMassPrefix in ByLogitDescending order for a large unsorted set: the
// same k and the same items in [0, k) (up to the rounding of the sums, taken
// in another order), in two passes instead of ~log n partitions. Pass one
// adds each item's p into a histogram over (max logit - logit), linear
// buckets between the largest and smallest logit (a monotone map: a higher
// logit never lands in a later bucket), and walks the buckets from the top
// to the one where the mass reaches `mass`. Pass two moves the items of the
// buckets above it to the front, keeping their order, and SelectMassPrefix
// finds the rest of the prefix among the items of that bucket (on LLM rows a
// few hundred at most), which follow them. Item p values must be valid; the
// items past the returned k are left unspecified.
size_t SelectTopMass(std::vector<Candidate>& items, double mass);

// Removes the items for which pred(item) is true, keeping the order of the
// others (so a sorted set stays sorted). Returns the number removed.
template <typename Pred>
size_t RemoveCandidatesIf(std::vector<Candidate>& items, Pred&& pred) {
  const auto end = std::remove_if(items.begin(), items.end(), pred);
  const size_t removed = static_cast<size_t>(items.end() - end);
  items.erase(end, items.end());
  return removed;
}

// The index of the best item in ByLogitDescending order (items[0] when the
// set is sorted); -1 when empty.
int32_t BestIndex(const CandidateSet& set);

// Entropy in nats of the (normalized, non-empty) set's p, without a log per
// item: with b the best item, ln p_i = (z_i - z_b) + ln p_b, so
//   H = -ln p_b - sum_i p_i (z_i - z_b),
// a sum of two non-negative terms (no cancellation).
double EntropyNats(const CandidateSet& set);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_CANDIDATE_OPS_H_
