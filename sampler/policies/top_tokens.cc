// Row kernels of top_tokens.h. The vectorisation conventions follow
// signals.cc: float lanes (every loop over j < kLanes is one vector
// operation; the integer scan uses a GCC vector type outright), comparisons
// turned into integer masks and bitwise selects, and the exp of
// sampler/core/fast_math.h, compiled as ENTROSERVE_MULTIVERSION clones that agree
// to the last bit (the library is built with -ffp-contract=off;
// tests/sampler/policies/top_tokens_test.cc checks the loaded clone against a scalar
// emulation of the lane layout, and kernel_clones_identical compares the
// clones).
#include "sampler/policies/top_tokens.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>

#include "sampler/core/fast_math.h"
#include "sampler/core/multiversion.h"

namespace entroserve {
namespace {

using fast_math::ExpKeepMask;
using fast_math::ExpUnmasked;
using fast_math::FloatAsInt;
using fast_math::IntAsFloat;
using fast_math::kLanes;
using fast_math::Masked;
using fast_math::MaskIf;
using fast_math::OrderedKey;
using fast_math::SumLanes;

// Tokens per chunk. A chunk's token i belongs to group (chunk, i mod kLanes):
// each group is one lane's kChunk / kLanes = 64 tokens, so the group maxima
// come out of the lane-wise loop with no horizontal reduction. 64 tokens a
// group keeps the groups holding a top-k token small (~64 k tokens) and the
// index (V / 64 keys) cheap to partially select. Sums use the same chunks
// (fast_math.h's kLaneBlock: 64 terms a lane, ~4e-6 worst-case relative
// rounding).
constexpr int64_t kChunk = fast_math::kLaneBlock;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The tempered weight of one logit, or 0 when it is below min_logit; the
// scalar and vector paths run exactly these operations.
ENTROSERVE_INLINE float WeightAtLeast(float z, float max_logit, float inv_temperature,
                                      float min_logit) {
  const float x = (z - max_logit) * inv_temperature;
  return Masked(ExpUnmasked(x), ExpKeepMask(x) & MaskIf(z >= min_logit));
}

// kLanes int32 lanes as one GCC/Clang vector: lowered to one AVX-512, two
// AVX2 or four SSE registers by each clone. Written explicitly because the
// auto-vectoriser turns the lane loop below into a transposing, spilling
// loop over 16 interleaved streams.
typedef int32_t Int32Lanes __attribute__((vector_size(kLanes * sizeof(int32_t))));

// Per group (see kChunk): the largest ordered key, into group_max_key[g] for
// g = chunk * kLanes + lane (a short last chunk leaves trailing lanes at
// INT32_MIN). Returns the number of keys >= min_key.
ENTROSERVE_MULTIVERSION int64_t ScanGroupMaxima(const float* z, int64_t n, int32_t min_key,
                                                int32_t* group_max_key) {
  int64_t count = 0;
  const Int32Lanes min_keys = Int32Lanes{} + min_key;
  const Int32Lanes magnitude = Int32Lanes{} + 0x7fffffff;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t len = std::min(kChunk, n - begin);
    const float* x = z + begin;
    Int32Lanes best = Int32Lanes{} + std::numeric_limits<int32_t>::min();
    Int32Lanes above = Int32Lanes{};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      Int32Lanes bits;
      std::memcpy(&bits, x + i, sizeof(bits));
      const Int32Lanes key = bits ^ ((bits >> 31) & magnitude);  // OrderedKey
      best = key > best ? key : best;
      above -= key >= min_keys;  // a true comparison is -1
    }
    int32_t best_lanes[kLanes];
    int32_t above_lanes[kLanes];
    std::memcpy(best_lanes, &best, sizeof(best));
    std::memcpy(above_lanes, &above, sizeof(above));
    // The tail: token i is still in lane i mod kLanes.
    for (int j = 0; i < len; ++i, ++j) {
      const int32_t key = OrderedKey(FloatAsInt(x[i]));
      best_lanes[j] = std::max(best_lanes[j], key);
      above_lanes[j] += key >= min_key;
    }
    int32_t* out = group_max_key + (begin / kChunk) * kLanes;
    for (int j = 0; j < kLanes; ++j) {
      out[j] = best_lanes[j];
      count += above_lanes[j];
    }
  }
  return count;
}

ENTROSERVE_MULTIVERSION double TemperedMassKernel(const float* z, int64_t n, float max_logit,
                                                  float inv_temperature, float min_logit) {
  double total = 0.0;
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t len = std::min(kChunk, n - begin);
    const float* x = z + begin;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        acc[j] += WeightAtLeast(x[i + j], max_logit, inv_temperature, min_logit);
      }
    }
    // The tail goes to lanes 0.. in order, independent of the vector width.
    for (int j = 0; i < len; ++i, ++j) {
      acc[j] += WeightAtLeast(x[i], max_logit, inv_temperature, min_logit);
    }
    total += SumLanes(acc);
  }
  return total;
}

}  // namespace

TopTokens SelectTopTokens(absl::Span<const float> logits, int32_t k, float min_logit) {
  TopTokens out;
  const int64_t n = static_cast<int64_t>(logits.size());
  if (n == 0 || k <= 0) return out;
  // -0.0 compares equal to +0.0 but orders below it as a key: use the lower.
  if (min_logit == 0.0f) min_logit = -0.0f;
  const int32_t masked_key = OrderedKey(FloatAsInt(kNegInf));
  const int32_t min_key = std::max(OrderedKey(FloatAsInt(min_logit)), masked_key + 1);

  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t groups = chunks * kLanes;
  std::vector<int32_t> group_max_key(static_cast<size_t>(groups));
  out.at_least = ScanGroupMaxima(logits.data(), n, min_key, group_max_key.data());
  if (out.at_least == 0) return out;

  // The k-th largest group maximum bounds the k-th largest logit from below.
  int32_t cut_key = min_key;
  if (out.at_least > k && groups > k) {
    std::vector<int32_t> keys = group_max_key;
    std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<int32_t>());
    cut_key = std::max(cut_key, keys[static_cast<size_t>(k - 1)]);
  }
  const float cut = IntAsFloat(OrderedKey(cut_key));

  // Only the groups whose maximum reaches the cut can hold a top-k token.
  std::vector<Candidate>& items = out.items;
  items.reserve(static_cast<size_t>(std::min<int64_t>(out.at_least, 4 * int64_t{k})));
  for (int64_t g = 0; g < groups; ++g) {
    if (group_max_key[static_cast<size_t>(g)] < cut_key) continue;
    const int64_t begin = (g / kLanes) * kChunk;
    const int64_t end = std::min(n, begin + kChunk);
    for (int64_t i = begin + g % kLanes; i < end; i += kLanes) {
      const float z = logits[static_cast<size_t>(i)];
      if (z >= cut && z > kNegInf) items.push_back({static_cast<int32_t>(i), z, 0.0f});
    }
  }
  if (items.size() > static_cast<size_t>(k)) {
    std::nth_element(items.begin(), items.begin() + (k - 1), items.end(), ByLogitDescending());
    items.resize(static_cast<size_t>(k));
  }
  std::sort(items.begin(), items.end(), ByLogitDescending());
  return out;
}

double TemperedMass(absl::Span<const float> logits, float max_logit, float inv_temperature,
                    float min_logit) {
  return TemperedMassKernel(logits.data(), static_cast<int64_t>(logits.size()), max_logit,
                            inv_temperature, min_logit);
}

float TemperedWeight(float logit, float max_logit, float inv_temperature) {
  return WeightAtLeast(logit, max_logit, inv_temperature, kNegInf);
}

}  // namespace entroserve
