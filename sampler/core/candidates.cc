#include "sampler/core/candidates.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
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

// KeepTopMass's buckets: bucket(z) = floor((max - z) * kBucketsPerNat),
// everything further below in the last one. A monotone map (a higher logit
// never lands in a later bucket) of a fixed width below the largest logit,
// so no pass for the smallest one; the last bucket holds tokens with
// p < e^-64 of the top token's, where no mass below 1 ends.
constexpr float kBucketsPerNat = 64.0f;
constexpr int32_t kBuckets = 4096;
// Two copies of the sums (even and odd items) halve the chains of additions
// into one bucket that the dense buckets of the tail make wait on each
// other: BM_TopPStage at V = 128256, p50 305-315 us with one copy, 281-294
// with two, 281-282 with four.
constexpr int32_t kBucketCopies = 2;

ENTROSERVE_INLINE int32_t MassBucket(float max_logit, float logit) {
  const float offset = (max_logit - logit) * kBucketsPerNat;  // >= 0
  return offset < static_cast<float>(kBuckets - 1) ? static_cast<int32_t>(offset) : kBuckets - 1;
}

// p = e^(logit - shift) for items[0, n), and the sum of those p. Per block
// of kLaneBlock items, the logits are copied into a float array, where the
// exp is plain vector arithmetic (GCC vectorises the strided loads and
// stores of the copies, but not the exp over the items' fields well). The
// sum is kept in kLanes double lanes (item i of a block in lane i mod
// kLanes, a short tail in lanes 0.. in order) added in lane order: the result
// does not depend on the vector width, and the double sum adds no measurable
// error to the ~1e-7 of the exp.
// kIntoBuckets: each p is also added into bucket_sums[MassBucket(shift, z)]
// (shift is then the largest logit), in kBucketCopies copies of the
// kBuckets sums (item i into copy i mod kBucketCopies).
template <bool kIntoBuckets>
ENTROSERVE_INLINE double ExpSumBlocks(Candidate* __restrict items, int64_t n, float shift,
                                      double* __restrict bucket_sums) {
  float e[kLaneBlock];
  int32_t bucket[kLaneBlock];
  double acc[kLanes] = {};
  for (int64_t begin = 0; begin < n; begin += kLaneBlock) {
    const int64_t len = std::min(kLaneBlock, n - begin);
    Candidate* block = items + begin;
    for (int64_t i = 0; i < len; ++i) e[i] = block[i].logit;
    if constexpr (kIntoBuckets) {
      for (int64_t i = 0; i < len; ++i)
        bucket[i] = MassBucket(shift, e[i]) + (i & (kBucketCopies - 1)) * kBuckets;
    }
    for (int64_t i = 0; i < len; ++i) e[i] = ExpOrZero(e[i] - shift);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) acc[j] += e[i + j];
    }
    for (int j = 0; i < len; ++i, ++j) acc[j] += e[i];
    if constexpr (kIntoBuckets) {
      for (int64_t k = 0; k < len; ++k) bucket_sums[bucket[k]] += e[k];
    }
    for (int64_t k = 0; k < len; ++k) block[k].p = e[k];
  }
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

ENTROSERVE_MULTIVERSION double StoreExpSum(Candidate* items, int64_t n, float shift) {
  return ExpSumBlocks<false>(items, n, shift, nullptr);
}

// bucket_sums: kBucketCopies * kBuckets zeros.
ENTROSERVE_MULTIVERSION double StoreExpSumIntoBuckets(Candidate* items, int64_t n, float max_logit,
                                                      double* bucket_sums) {
  return ExpSumBlocks<true>(items, n, max_logit, bucket_sums);
}

ENTROSERVE_MULTIVERSION void ScaleProbabilities(Candidate* items, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) items[i].p *= scale;
}

// The first bucket where the mass from the top reaches `mass` (the last one
// when rounding leaves the total short), given the bucket sums of
// StoreExpSumIntoBuckets and the scale that makes them probabilities; the
// mass of the buckets before it in *above.
int32_t BoundaryBucket(const std::vector<double>& sums, double scale, double mass, double* above) {
  *above = 0.0;
  int32_t boundary = 0;
  for (; boundary + 1 < kBuckets; ++boundary) {
    double bucket_sum = 0.0;
    for (int32_t copy = 0; copy < kBucketCopies; ++copy) {
      bucket_sum += sums[boundary + copy * kBuckets];
    }
    const double bucket_mass = scale * bucket_sum;
    if (*above + bucket_mass >= mass) break;
    *above += bucket_mass;
  }
  return boundary;
}

// Multiplies each p by `scale`, moves the items of the buckets before
// `boundary` to the front of items[0, n), keeping their order, and appends
// those of `boundary` to `edge`; returns the number moved. Per block: the
// buckets vectorise; the moves (with the scaling) are branch-free (every item
// is written at the next free place, which advances only when it is kept),
// so that kept and dropped items interleaved at random cost no mispredicted
// branches; a block's few boundary items are picked out before its moves.
ENTROSERVE_MULTIVERSION size_t ScaleAndCompact(Candidate* items, int64_t n, float scale,
                                               float max_logit, int32_t boundary,
                                               std::vector<Candidate>& edge) {
  float z[kLaneBlock];
  uint8_t keep[kLaneBlock];
  size_t kept = 0;
  for (int64_t begin = 0; begin < n; begin += kLaneBlock) {
    const int64_t len = std::min(kLaneBlock, n - begin);
    Candidate* block = items + begin;
    for (int64_t i = 0; i < len; ++i) z[i] = block[i].logit;
    // keep[i]: 1 above the boundary, 2 on it, 0 below.
    int32_t on_edge = 0;
    for (int64_t i = 0; i < len; ++i) {
      const int32_t bucket = MassBucket(max_logit, z[i]);
      keep[i] = static_cast<uint8_t>(bucket < boundary ? 1 : bucket == boundary ? 2 : 0);
      on_edge += bucket == boundary ? 1 : 0;
    }
    const uint8_t* from = keep;
    for (; on_edge > 0; --on_edge) {
      from =
          static_cast<const uint8_t*>(std::memchr(from, 2, static_cast<size_t>(keep + len - from)));
      Candidate c = block[from - keep];
      c.p *= scale;
      edge.push_back(c);
      ++from;
    }
    // items[kept] is at or before block[i]: never an item still to read.
    // The id and logit move as one 8-byte word (two loads and two stores an
    // item rather than three each).
    static_assert(offsetof(Candidate, logit) == 4 && offsetof(Candidate, p) == 8);
    for (int64_t i = 0; i < len; ++i) {
      uint64_t id_and_logit;
      std::memcpy(&id_and_logit, &block[i], sizeof(id_and_logit));
      const float p = block[i].p * scale;
      std::memcpy(&items[kept], &id_and_logit, sizeof(id_and_logit));
      items[kept].p = p;
      kept += keep[i] & 1;
    }
  }
  return kept;
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

void CandidateSet::KeepTopMass(double mass) {
  if (items_.size() <= 1) return;
  size_t keep = items_.size();
  if (sorted_) {
    if (!normalized_) Normalize();
    double cum = 0.0;
    for (size_t i = 0; i < items_.size(); ++i) {
      cum += items_[i].p;
      if (cum >= mass) {
        keep = i + 1;
        break;
      }
    }
  } else {
    // Normalize()'s p (the same exps and scale; recomputed when the set was
    // normalized already, to the same bits), and their sums per bucket.
    const int64_t n = static_cast<int64_t>(items_.size());
    const float max_logit = MaxLogit(items_.data(), n);
    std::vector<double> sums(kBucketCopies * kBuckets, 0.0);
    const double total = StoreExpSumIntoBuckets(items_.data(), n, max_logit, sums.data());
    const double scale = static_cast<float>(1.0 / total);
    double above = 0.0;  // mass of the buckets before the boundary
    const int32_t boundary = BoundaryBucket(sums, scale, mass, &above);
    std::vector<Candidate> edge;
    const size_t kept =
        ScaleAndCompact(items_.data(), n, static_cast<float>(scale), max_logit, boundary, edge);
    const size_t more = SelectMassPrefix(absl::MakeSpan(edge), mass - above, ByLogitDescending());
    std::copy(edge.begin(), edge.begin() + static_cast<std::ptrdiff_t>(more),
              items_.begin() + static_cast<std::ptrdiff_t>(kept));
    keep = kept + more;
    normalized_ = true;  // every p is Normalize()'s, until items go
  }
  if (keep < items_.size()) {
    items_.resize(keep);
    normalized_ = false;
  }
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
