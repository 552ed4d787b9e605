#include "sampler/candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace entroserve {
namespace {

// Descending logit, ties by ascending id: a total order, so every selection
// and sort is deterministic.
inline bool Better(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

CandidateSet CandidateSet::FromLogits(absl::Span<const float> logits) {
  return FromLogitsAtLeast(logits, -std::numeric_limits<float>::infinity());
}

CandidateSet CandidateSet::FromLogitsAtLeast(absl::Span<const float> logits, float min_logit) {
  CandidateSet set;
  set.vocab_size_ = static_cast<int32_t>(logits.size());
  const bool all = min_logit == -std::numeric_limits<float>::infinity();
  if (all) set.items_.reserve(logits.size());
  const int32_t n = static_cast<int32_t>(logits.size());
  for (int32_t i = 0; i < n; ++i) {
    const float z = logits[i];
    if (z >= min_logit && z > -std::numeric_limits<float>::infinity()) {
      set.items_.push_back({i, z, 0.0f});
    }
  }
  return set;
}

void CandidateSet::Sort() {
  if (sorted_) return;
  std::sort(items_.begin(), items_.end(), Better);
  sorted_ = true;
}

void CandidateSet::KeepTop(int32_t k) {
  if (k <= 0) k = 1;
  if (static_cast<size_t>(k) < items_.size()) {
    if (!sorted_) {
      std::nth_element(items_.begin(), items_.begin() + (k - 1), items_.end(), Better);
    }
    items_.resize(static_cast<size_t>(k));
    normalized_ = false;
  }
  Sort();
}

void CandidateSet::ApplyTemperature(float temperature) {
  const float inv = 1.0f / temperature;
  for (Candidate& c : items_) c.logit *= inv;
  normalized_ = false;  // order unchanged for temperature > 0
}

void CandidateSet::Normalize() {
  if (items_.empty()) return;
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : items_) max_logit = std::max(max_logit, c.logit);
  double sum = 0.0;
  for (Candidate& c : items_) {
    c.p = std::exp(c.logit - max_logit);
    sum += c.p;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (Candidate& c : items_) c.p *= inv;
  normalized_ = true;
}

void CandidateSet::RemoveZeroProbability() {
  items_.erase(std::remove_if(items_.begin(), items_.end(),
                              [](const Candidate& c) { return c.p <= 0.0f; }),
               items_.end());
}

int32_t DrawIndex(const CandidateSet& set, double u) {
  const auto& items = set.items();
  double total = 0.0;
  for (const Candidate& c : items) total += c.p;
  const double target = u * total;
  double cumulative = 0.0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].p <= 0.0f) continue;
    cumulative += items[i].p;
    last_positive = static_cast<int32_t>(i);
    if (target < cumulative) return last_positive;
  }
  return last_positive;  // rounding at the top end
}

}  // namespace entroserve
