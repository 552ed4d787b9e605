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

}  // namespace entroserve
