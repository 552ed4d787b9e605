#include "sampler/core/candidates.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>

#include "sampler/core/fast_math.h"
#include "sampler/core/multiversion.h"

namespace entroserve {
namespace {

using fast_math::ExpOrZero;
using fast_math::FloatAsInt;
using fast_math::IntAsFloat;
using fast_math::kLaneBlock;
using fast_math::kLanes;
using fast_math::OrderedKey;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// KeepTop selects with a bounded heap when k <= n / kHeapSelectMinRatio:
// then almost every item costs a single, well-predicted comparison with the
// current k-th best, against ~3 branchy comparisons per item for
// nth_element. Measured at n = 128k and 152k, k = 27 and 40
// (bench/sampler_bench.cc, BM_CandidateSetKeepTop): ~80 us against ~1.6 ms.
// (A tuning choice of this file, not from a paper.)
constexpr size_t kHeapSelectMinRatio = 16;

// 1 when a logit is kept by FromLogitsAtLeast(.., min_logit), else 0.
ENTROSERVE_INLINE int32_t KeepsLogit(float z, float min_logit) {
  return static_cast<int32_t>((z >= min_logit) & (z > kNegInf));
}

// The number of logits of z[0, n) that FromLogitsAtLeast keeps.
ENTROSERVE_MULTIVERSION int32_t CountKept(const float* z, int32_t n, float min_logit) {
  int32_t count = 0;
  for (int32_t i = 0; i < n; ++i) count += KeepsLogit(z[i], min_logit);
  return count;
}

// out[i] = {i, z[i], 0} for i < n: three scalar stores an item (GCC does
// not vectorise stores interleaving the int and float fields; a hand-written
// shuffle gained ~20 us at V = 128k on AVX-512 only: not worth the code).
void FillCandidates(const float* __restrict z, int32_t n, Candidate* __restrict out) {
  for (int32_t i = 0; i < n; ++i) out[i] = {i, z[i], 0.0f};
}

// Writes {i, z[i], 0} for the kept i < n into out[0, ..) in order and returns
// their number; `out` must hold n items. Branch-free: every item is written
// at the next free place, which advances only when the item is kept (a
// branch per token would be mispredicted wherever masked tokens are
// scattered).
int32_t CompactCandidates(const float* __restrict z, int32_t n, float min_logit,
                          Candidate* __restrict out) {
  int32_t kept = 0;
  for (int32_t i = 0; i < n; ++i) {
    out[kept] = {i, z[i], 0.0f};
    kept += KeepsLogit(z[i], min_logit);
  }
  return kept;
}

// The largest logit of items[0, n) (n >= 1), as an integer max over
// OrderedKey (vectorises without -ffast-math).
ENTROSERVE_MULTIVERSION float MaxLogit(const Candidate* items, int64_t n) {
  int32_t best = std::numeric_limits<int32_t>::min();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t key = OrderedKey(FloatAsInt(items[i].logit));
    best = key > best ? key : best;
  }
  return IntAsFloat(OrderedKey(best));
}

// p = e^(logit - shift) for items[0, n), and the sum of those p. Per block
// of kLaneBlock items, the logits are copied into a float array, where the
// exp is plain vector arithmetic (GCC vectorises the strided loads and
// stores of the copies, but not the exp over the items' fields well). The
// sum is kept in kLanes double lanes (item i of a block in lane i mod
// kLanes, a short tail in lanes 0.. in order) added in lane order: the result
// does not depend on the vector width, and the double sum adds no measurable
// error to the ~1e-7 of the exp.
ENTROSERVE_MULTIVERSION double StoreExpSum(Candidate* __restrict items, int64_t n, float shift) {
  float e[kLaneBlock];
  double acc[kLanes] = {};
  for (int64_t begin = 0; begin < n; begin += kLaneBlock) {
    const int64_t len = std::min(kLaneBlock, n - begin);
    Candidate* block = items + begin;
    for (int64_t i = 0; i < len; ++i) e[i] = block[i].logit;
    for (int64_t i = 0; i < len; ++i) e[i] = ExpOrZero(e[i] - shift);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) acc[j] += e[i + j];
    }
    for (int j = 0; i < len; ++i, ++j) acc[j] += e[i];
    for (int64_t k = 0; k < len; ++k) block[k].p = e[k];
  }
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

ENTROSERVE_MULTIVERSION void ScaleProbabilities(Candidate* items, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) items[i].p *= scale;
}

// Keeps the k best items (0 < k < size) in items[0, k), in heap order, in
// one pass: [0, k) is a heap whose top is the worst of the best k seen so far,
// and each later item replaces the top when it is better. Only [0, k) is
// written, so the items after it are read intact.
void SelectTopByHeap(std::vector<Candidate>& items, size_t k) {
  const ByLogitDescending before;  // as a heap's "less": the top is the worst
  const auto heap_end = items.begin() + static_cast<std::ptrdiff_t>(k);
  std::make_heap(items.begin(), heap_end, before);
  for (size_t i = k; i < items.size(); ++i) {
    if (!before(items[i], items.front())) continue;
    std::pop_heap(items.begin(), heap_end, before);
    *(heap_end - 1) = items[i];
    std::push_heap(items.begin(), heap_end, before);
  }
  items.resize(k);
}

}  // namespace

CandidateSet CandidateSet::FromLogits(absl::Span<const float> logits) {
  return FromLogitsAtLeast(logits, kNegInf);
}

CandidateSet CandidateSet::FromLogitsAtLeast(absl::Span<const float> logits, float min_logit) {
  CandidateSet set;
  const int32_t n = static_cast<int32_t>(logits.size());
  set.vocab_size_ = n;
  // A vectorised count first: most rows keep every token (FromLogits of an
  // unmasked row), and a plain copy is then cheaper than the compaction.
  const int32_t kept = CountKept(logits.data(), n, min_logit);
  if (kept == n) {
    set.items_.resize(static_cast<size_t>(n));
    FillCandidates(logits.data(), n, set.items_.data());
  } else if (kept > 0) {
    set.items_.resize(static_cast<size_t>(n));
    CompactCandidates(logits.data(), n, min_logit, set.items_.data());
    set.items_.resize(static_cast<size_t>(kept));
  }
  return set;
}

CandidateSet CandidateSet::FromItems(std::vector<Candidate> items, int32_t vocab_size) {
  CandidateSet set;
  set.items_ = std::move(items);
  set.vocab_size_ = vocab_size;
  return set;
}

void CandidateSet::Sort() {
  if (sorted_) return;
  std::sort(items_.begin(), items_.end(), ByLogitDescending());
  sorted_ = true;
}

void CandidateSet::KeepTop(int32_t k) {
  if (k <= 0) k = 1;
  const size_t keep = static_cast<size_t>(k);
  if (keep < items_.size()) {
    if (sorted_) {
      items_.resize(keep);
    } else if (keep <= items_.size() / kHeapSelectMinRatio) {
      SelectTopByHeap(items_, keep);
    } else {
      std::nth_element(items_.begin(), items_.begin() + (k - 1), items_.end(), ByLogitDescending());
      items_.resize(keep);
    }
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
  const int64_t n = static_cast<int64_t>(items_.size());
  // e^(z - max) <= 1, and the max contributes exactly 1: sum >= 1.
  const float max_logit = sorted_ ? items_[0].logit : MaxLogit(items_.data(), n);
  const double sum = StoreExpSum(items_.data(), n, max_logit);
  ScaleProbabilities(items_.data(), n, static_cast<float>(1.0 / sum));
  normalized_ = true;
}

void CandidateSet::RemoveZeroProbability() {
  items_.erase(
      std::remove_if(items_.begin(), items_.end(), [](const Candidate& c) { return c.p <= 0.0f; }),
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
