// Building blocks the stages share: lookup of candidates by token id,
// removal, the best item and the entropy of a set, all without sorting a
// large vocabulary (the candidate order, ByLogitDescending, top-k and top-p
// selection, CandidateSet::KeepTop and KeepTopMass, and the weighted
// selection SelectMassPrefix are in sampler/core/candidates.h).
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
