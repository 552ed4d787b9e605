#include "sampler/stages/candidate_ops.h"

#include <algorithm>
#include <cmath>

namespace entroserve {

int32_t BestIndex(const CandidateSet& set) {
  const std::vector<Candidate>& items = set.items();
  if (items.empty()) return -1;
  if (set.sorted()) return 0;
  const ByLogitDescending before;
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    if (before(items[i], items[best])) best = i;
  }
  return static_cast<int32_t>(best);
}

double EntropyNats(const CandidateSet& set) {
  const Candidate& best = set.items()[BestIndex(set)];
  double spread = 0.0;  // sum_i p_i (z_i - z_b) <= 0
  for (const Candidate& c : set.items()) {
    if (c.p > 0.0f) spread += c.p * (static_cast<double>(c.logit) - best.logit);
  }
  return std::max(0.0, -std::log(static_cast<double>(best.p)) - spread);
}

namespace {

// The histogram of SelectTopMass: bucket(z) = floor((max - z) * scale),
// clamped to the last bucket.
struct LogitBuckets {
  float max = 0.0f;
  float scale = 0.0f;
  int32_t count = 1;

  int32_t Of(float logit) const {
    const float offset = (max - logit) * scale;  // >= 0, monotone in -logit
    return offset < static_cast<float>(count - 1) ? static_cast<int32_t>(offset) : count - 1;
  }
};

LogitBuckets BucketsFor(const std::vector<Candidate>& items) {
  float max = items[0].logit;
  float min = items[0].logit;
  for (const Candidate& c : items) {
    max = std::max(max, c.logit);
    min = std::min(min, c.logit);
  }
  LogitBuckets buckets;
  buckets.max = max;
  // About 16 items a bucket, at most 4096 buckets (32 KiB of sums, in L1/L2).
  buckets.count = static_cast<int32_t>(std::clamp<size_t>(items.size() / 16, 16, 4096));
  if (max > min) buckets.scale = static_cast<float>(buckets.count) / (max - min);
  return buckets;
}

}  // namespace

size_t SelectTopMass(std::vector<Candidate>& items, double mass) {
  if (items.empty()) return 0;
  const LogitBuckets buckets = BucketsFor(items);
  const size_t n = items.size();
  // The bucket of every item, computed once for both passes.
  // Two loops, not one: the first vectorises, and the sums' store-to-load
  // chain does not hold it up (fused, the pass is ~2x slower).
  std::vector<uint16_t> bucket_of(n);
  for (size_t i = 0; i < n; ++i) bucket_of[i] = static_cast<uint16_t>(buckets.Of(items[i].logit));
  std::vector<double> sums(static_cast<size_t>(buckets.count), 0.0);
  for (size_t i = 0; i < n; ++i) sums[bucket_of[i]] += items[i].p;
  // The first bucket where the mass from the top reaches `mass` (the last
  // one when rounding leaves the total short).
  uint16_t boundary = 0;
  double above = 0.0;  // mass of the buckets before `boundary`
  while (boundary + 1 < buckets.count && above + sums[boundary] < mass) above += sums[boundary++];
  // Stable, branch-free compaction of the buckets above the boundary to the
  // front (in id order when the set was); the boundary's items aside.
  std::vector<Candidate> edge;
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    const Candidate c = items[i];
    if (bucket_of[i] == boundary) edge.push_back(c);
    items[kept] = c;
    kept += bucket_of[i] < boundary ? 1 : 0;
  }
  const size_t more = SelectMassPrefix(absl::MakeSpan(edge), mass - above, ByLogitDescending());
  std::copy(edge.begin(), edge.begin() + static_cast<std::ptrdiff_t>(more), items.begin() + kept);
  return kept + more;
}

}  // namespace entroserve
