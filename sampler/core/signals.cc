// The signals of docs/SAMPLERS.md "Signals". See signals.h for the contract.
//
// How it is computed
// ------------------
// Everything is done in base 2, so entropies come out in bits directly.
// Logits, two passes over the row and no sort:
//   1. the max m (through an order-preserving integer key, which vectorises
//      without -ffast-math), the lowest index holding it, and the number of
//      finite logits;
//   2. with y_i = (z_i - m) log2(e) <= 0 and e_i = 2^y_i:
//        S = sum e,  A = sum e y,  B = sum e y^2,
//      so that with p_i = e_i / S and log2 p_i = y_i - log2 S:
//        H = log2 S - A/S,   V = Var_p(y) = B/S - (A/S)^2,
//        logsumexp(z) = m + ln S.
//      When V is small next to B/S (a narrow plateau below the max) that
//      difference cancels; a third, centred pass sum e (y - A/S)^2 is then
//      run instead (rare: see kCancellationRatio).
// Attention, per head h: a first pass for max_h and sum |s|, then the same
// moments over y = (s - max_h) log2(e), keeping e in a scratch buffer; e is
// normalised to a = e / S_h in place while the per-key sum over heads is
// accumulated, and a last pass sums |a - mean_h a| for the agreement.
//
// Numerics
// --------
// 2^y by fast_math.h's Exp2Unmasked (relative error ~8e-8 = 1.3 ulp). The
// rounding of y = d log2(e) adds a relative error of ~6e-8 |y| ln 2 to e,
// random in sign; e = 2^0 is exactly 1. Terms with y < kExp2Lowest
// (e < 2.4e-38: masked -inf logits, and anything 86.6 nats or more below the
// max) are cleared with a bit mask and add exactly 0 to S, A and B (never
// 0 * inf = NaN). S >= 1, as the maximum contributes 1.
// Sums are kept in kLanes float lanes over blocks of kLaneBlock elements and
// each block is added into double: measured against long double, H and V of
// 152k-token rows are within ~1e-6 relative.
//
// Vectorisation and determinism
// -----------------------------
// The kernels are plain loops over float arrays (every loop over j < kLanes
// is one vector operation) that GCC auto-vectorises, compiled as function
// multiversions (sampler/core/multiversion.h) for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2 + FMA) and the baseline. No float select sits in a hot loop (see
// fast_math.h), so all three vectorise. The lane layout fixes the order of
// every addition, so the result does not depend on the vector width, and the
// library is built with -ffp-contract=off (sampler/CMakeLists.txt), so no
// clone fuses a multiply-add that another rounds twice: all three clones
// return bit-identical signals (the kernel_clones_identical test builds the
// kernels of each clone and compares 300 rows bit for bit). The price:
// contracting into FMA made the v4 clone ~20% faster (p50 on one loaded Zen 5
// core, bench/sampler_bench.cc: 30 against 38 us for a 128k logit row, 49
// against 58 us for 32 x 4096 attention), with a baseline clone that
// differed in the last bits.
#include "sampler/core/signals.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sampler/core/fast_math.h"
#include "sampler/core/multiversion.h"

namespace entroserve {
namespace {

using fast_math::Exp2KeepMask;
using fast_math::Exp2Unmasked;
using fast_math::FloatAsInt;
using fast_math::IntAsFloat;
using fast_math::kLanes;
using fast_math::kLog2e;
using fast_math::Masked;
using fast_math::MaskIf;
using fast_math::OrderedKey;
using fast_math::SumLanes;

// Elements per block: each block's float lanes are added into double.
constexpr int64_t kBlock = fast_math::kLaneBlock;

// When the naive variance B/S - (A/S)^2 falls below this fraction of B/S its
// relative error, ~1e-8 * (B/S) / V, could pass ~1e-6, and the centred pass
// is used instead. Measured on a 152k row with a plateau 1 nat below the
// max: naive 5% off, centred 2e-7.
constexpr double kCancellationRatio = 1e-2;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kFloatMax = std::numeric_limits<float>::max();

// ---------------------------------------------------------------------------
// Kernels over contiguous float arrays.

// Max key of x[0, n), computed on OrderedKey so that the reduction is an
// integer max (GCC vectorises float max reductions only under -ffast-math),
// and the number of -inf entries. n <= kBlock: the count fits 32-bit lanes.
ENTROSERVE_MULTIVERSION int32_t MaxKeyCountMasked(const float* x, int32_t n, int32_t* masked) {
  const int32_t neg_inf_key = OrderedKey(FloatAsInt(kNegInf));
  int32_t best = std::numeric_limits<int32_t>::min();
  int32_t count = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t key = OrderedKey(FloatAsInt(x[i]));
    best = key > best ? key : best;
    count += key == neg_inf_key;
  }
  *masked = count;
  return best;
}

struct MaxResult {
  float max = kNegInf;
  int64_t argmax = -1;  // lowest index holding max; -1 when n == 0
  int64_t finite = 0;   // elements other than -inf
};

MaxResult MaxArgmaxFinite(const float* x, int64_t n) {
  MaxResult result;
  int32_t best_key = std::numeric_limits<int32_t>::min();
  int64_t best_block = -1;
  int64_t masked = 0;
  // Per block, so that the first block holding the maximum is known and only
  // that block is scanned for the lowest index.
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t len = std::min(kBlock, n - begin);
    int32_t block_masked = 0;
    const int32_t key = MaxKeyCountMasked(x + begin, static_cast<int32_t>(len), &block_masked);
    masked += block_masked;
    if (key > best_key) {
      best_key = key;
      best_block = begin;
    }
  }
  if (best_block < 0) return result;
  result.max = IntAsFloat(OrderedKey(best_key));
  result.finite = n - masked;
  const int64_t end = std::min(n, best_block + kBlock);
  for (int64_t i = best_block; i < end; ++i) {
    if (x[i] == result.max) {  // also matches -0.0 against +0.0
      result.argmax = i;
      break;
    }
  }
  return result;
}

// S is kept in two parts: the maxima, each exactly e = 1, counted apart
// (in integer lanes) from the rest. Added into float lanes, 1 + 1.8e-7 is rounded to a whole
// float ulp (1.2e-7), which on a peaked row (one token at 1 - 2e-4) made
// log S, hence H and log p of the top token, 1e-3 to 6e-2 off; the rest alone
// sums values of like size and keeps ~1e-7 relative.
struct Moments {
  double maxima = 0.0;   // terms with y = 0 (e = 1 exactly)
  double rest = 0.0;     // sum of the other e (y < 0)
  double sum_e = 0.0;    // S = maxima + rest, once the pass is done
  double sum_ey = 0.0;   // A = sum e y
  double sum_eyy = 0.0;  // B = sum e y^2

  // ln S = ln(maxima) + ln(1 + rest / maxima), exact where rest << maxima.
  double LogSum() const { return std::log(maxima) + std::log1p(rest / maxima); }
};

// One block (len <= kBlock) of the moments pass: y = (x - shift) log2(e),
// e = 2^y; adds S, A, B of the block into *m and, when kStore, writes e.
template <bool kStore>
ENTROSERVE_INLINE void Exp2MomentsBlock(const float* __restrict x, int64_t len, float shift,
                                        float* __restrict e_out, Moments* m) {
  int32_t t[kLanes] = {};  // minus the number of maxima
  float s[kLanes] = {};
  float a[kLanes] = {};
  float b[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      // z - max first: exactly 0 for every maximum, so e = 1 exactly there.
      const float y = (x[i + j] - shift) * kLog2e;
      const int32_t keep = Exp2KeepMask(y);
      const int32_t top = MaskIf(y >= 0.0f);
      const float e = Masked(Exp2Unmasked(y), keep);
      if (kStore) e_out[i + j] = e;
      const float ey = Masked(e * y, keep);  // 0 * -inf would be NaN
      t[j] += top;
      s[j] += Masked(e, ~top);
      a[j] += ey;
      b[j] += Masked(ey * y, keep);
    }
  }
  // The tail goes to lanes 0.. in order, so the result does not depend on
  // how the vector loop above was compiled.
  for (int j = 0; i < len; ++i, ++j) {
    const float y = (x[i] - shift) * kLog2e;
    const int32_t keep = Exp2KeepMask(y);
    const int32_t top = MaskIf(y >= 0.0f);
    const float e = Masked(Exp2Unmasked(y), keep);
    if (kStore) e_out[i] = e;
    const float ey = Masked(e * y, keep);
    t[j] += top;
    s[j] += Masked(e, ~top);
    a[j] += ey;
    b[j] += Masked(ey * y, keep);
  }
  int64_t maxima = 0;
  for (int j = 0; j < kLanes; ++j) maxima -= t[j];
  m->maxima += static_cast<double>(maxima);
  m->rest += SumLanes(s);
  m->sum_ey += SumLanes(a);
  m->sum_eyy += SumLanes(b);
}

ENTROSERVE_MULTIVERSION Moments Exp2Moments(const float* x, int64_t n, float shift) {
  Moments m;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    Exp2MomentsBlock<false>(x + begin, std::min(kBlock, n - begin), shift, nullptr, &m);
  }
  m.sum_e = m.maxima + m.rest;
  return m;
}

ENTROSERVE_MULTIVERSION Moments Exp2MomentsStore(const float* __restrict x, int64_t n, float shift,
                                                 float* __restrict e_out) {
  Moments m;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    Exp2MomentsBlock<true>(x + begin, std::min(kBlock, n - begin), shift, e_out + begin, &m);
  }
  m.sum_e = m.maxima + m.rest;
  return m;
}

// sum e (y - mu)^2 with y and e as in Exp2MomentsBlock: the centred second
// moment, for rows where B/S - (A/S)^2 cancels.
ENTROSERVE_MULTIVERSION double Exp2CentredSecondMoment(const float* x, int64_t n, float shift,
                                                       float mu) {
  double total = 0.0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t len = std::min(kBlock, n - begin);
    const float* xb = x + begin;
    float c[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const float y = (xb[i + j] - shift) * kLog2e;
        const float dev = y - mu;
        c[j] += Masked(Exp2Unmasked(y) * dev * dev, Exp2KeepMask(y));
      }
    }
    for (int j = 0; i < len; ++i, ++j) {
      const float y = (xb[i] - shift) * kLog2e;
      const float dev = y - mu;
      c[j] += Masked(Exp2Unmasked(y) * dev * dev, Exp2KeepMask(y));
    }
    total += SumLanes(c);
  }
  return total;
}

// Attention pass 1 of a head: the maximum of x[0, n) (n >= 1), and sum |x|
// added into *abs_sum. Two simple loops per L1-resident block: GCC 12
// vectorises one loop holding both reductions badly.
ENTROSERVE_MULTIVERSION float MaxAndAbsSum(const float* x, int64_t n, double* abs_sum) {
  int32_t best = std::numeric_limits<int32_t>::min();
  double total = 0.0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t len = std::min(kBlock, n - begin);
    const float* xb = x + begin;
    for (int64_t i = 0; i < len; ++i) {
      const int32_t key = OrderedKey(FloatAsInt(xb[i]));
      best = key > best ? key : best;
    }
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) acc[j] += std::fabs(xb[i + j]);
    }
    for (int j = 0; i < len; ++i, ++j) acc[j] += std::fabs(xb[i]);
    double block = SumLanes(acc);
    // Finite scores near the float maximum overflow a float lane: such a
    // block (never a real one) is summed again in double.
    if (!std::isfinite(block)) {
      block = 0.0;
      for (int64_t k = 0; k < len; ++k) block += std::fabs(static_cast<double>(xb[k]));
    }
    total += block;
  }
  *abs_sum += total;
  return IntAsFloat(OrderedKey(best));
}

// a[k] = e[k] * scale in place, and column[k] += a[k], for k < n (the per-key
// sum of a over heads). Storing the rounded a, rather than recomputing
// e * scale later, keeps SumAbsDeviation exact: with one head, or identical
// heads, a - mean is exactly 0 even where a product would be fused into an
// FMA.
ENTROSERVE_MULTIVERSION void ScaleAndAccumulate(float* __restrict a, int64_t n, float scale,
                                                float* __restrict column) {
  for (int64_t k = 0; k < n; ++k) {
    a[k] *= scale;
    column[k] += a[k];
  }
}

// sum over rows r < rows and k < n of |a[r n + k] - mean[k]|: the agreement
// numerator.
ENTROSERVE_MULTIVERSION double SumAbsDeviation(const float* a, int64_t rows, int64_t n,
                                               const float* mean) {
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = a + r * n;
    for (int64_t begin = 0; begin < n; begin += kBlock) {
      const int64_t len = std::min(kBlock, n - begin);
      const float* ab = row + begin;
      const float* mb = mean + begin;
      float acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= len; i += kLanes) {
        for (int j = 0; j < kLanes; ++j) acc[j] += std::fabs(ab[i + j] - mb[i + j]);
      }
      for (int j = 0; i < len; ++i, ++j) acc[j] += std::fabs(ab[i] - mb[i]);
      total += SumLanes(acc);
    }
  }
  return total;
}

// ---------------------------------------------------------------------------

struct EntropyBits {
  double log2_sum = 0.0;    // log2 S
  double entropy = 0.0;     // bits
  double varentropy = 0.0;  // bits^2
};

// Entropy and varentropy of softmax over x[0, n) from the moments, running
// the centred pass when the variance cancels.
EntropyBits EntropyFromMoments(const Moments& m, const float* x, int64_t n, float shift) {
  EntropyBits out;
  const double mean_y = m.sum_ey / m.sum_e;    // E_p[y] <= 0
  const double mean_yy = m.sum_eyy / m.sum_e;  // E_p[y^2]
  out.log2_sum = m.LogSum() / std::log(2.0);
  out.entropy = std::max(0.0, out.log2_sum - mean_y);
  double var = mean_yy - mean_y * mean_y;
  if (var < kCancellationRatio * mean_yy) {
    var = Exp2CentredSecondMoment(x, n, shift, static_cast<float>(mean_y)) / m.sum_e;
  }
  out.varentropy = std::max(0.0, var);
  return out;
}

// Reused per thread: the attention probabilities a [heads, keys], their
// per-key mean over heads, and the per-head entropies. Grows to the largest
// row seen; never shrinks.
struct AttentionScratch {
  std::vector<float> probs;
  std::vector<float> key_mean;
  std::vector<double> head_entropy;
};

AttentionScratch& ThreadScratch() {
  thread_local AttentionScratch scratch;
  return scratch;
}

}  // namespace

void ComputeLogitSignals(absl::Span<const float> logits, Signals* signals, LogitSummary* summary) {
  LogitSummary local;
  LogitSummary& sum = summary != nullptr ? *summary : local;
  sum = LogitSummary();
  signals->entropy = 0.0f;
  signals->varentropy = 0.0f;
  const int64_t n = static_cast<int64_t>(logits.size());
  if (n == 0) return;

  const MaxResult max = MaxArgmaxFinite(logits.data(), n);
  sum.argmax = static_cast<int32_t>(max.argmax);
  sum.max_logit = max.max;
  sum.finite = static_cast<int32_t>(max.finite);
  if (max.finite == 0) {  // every token masked: outside the contract
    sum.log_normalizer = -std::numeric_limits<double>::infinity();
    return;
  }

  const Moments m = Exp2Moments(logits.data(), n, max.max);
  const EntropyBits h = EntropyFromMoments(m, logits.data(), n, max.max);
  sum.log_sum = m.LogSum();
  sum.log_normalizer = static_cast<double>(max.max) + sum.log_sum;
  signals->entropy = static_cast<float>(h.entropy);
  signals->varentropy = static_cast<float>(h.varentropy);
}

void ComputeAttentionSignals(absl::Span<const float> scores, int32_t heads, int32_t keys,
                             Signals* signals) {
  signals->has_attention = false;
  signals->attn_entropy = 0.0f;
  signals->attn_varentropy = 0.0f;
  signals->attn_entropy_spread = 0.0f;
  signals->agreement = 0.0f;
  signals->interaction_strength = 0.0f;
  if (heads <= 0 || keys <= 0) return;
  const int64_t h_count = heads;
  const int64_t k_count = keys;
  if (static_cast<int64_t>(scores.size()) != h_count * k_count) return;

  AttentionScratch& scratch = ThreadScratch();
  if (scratch.probs.size() < scores.size()) scratch.probs.resize(scores.size());
  if (scratch.key_mean.size() < static_cast<size_t>(k_count)) scratch.key_mean.resize(k_count);
  if (scratch.head_entropy.size() < static_cast<size_t>(h_count)) {
    scratch.head_entropy.resize(h_count);
  }
  float* probs = scratch.probs.data();
  float* key_mean = scratch.key_mean.data();
  std::fill(key_mean, key_mean + k_count, 0.0f);

  double entropy_sum = 0.0;
  double varentropy_sum = 0.0;
  double abs_score_sum = 0.0;
  for (int64_t h = 0; h < h_count; ++h) {
    const float* s = scores.data() + h * k_count;
    float* a = probs + h * k_count;
    const float max = MaxAndAbsSum(s, k_count, &abs_score_sum);
    const Moments m = Exp2MomentsStore(s, k_count, max, a);
    const EntropyBits ent = EntropyFromMoments(m, s, k_count, max);
    ScaleAndAccumulate(a, k_count, static_cast<float>(1.0 / m.sum_e), key_mean);
    scratch.head_entropy[h] = ent.entropy;
    entropy_sum += ent.entropy;
    varentropy_sum += ent.varentropy;
  }
  const float inv_heads = static_cast<float>(1.0 / static_cast<double>(h_count));
  for (int64_t k = 0; k < k_count; ++k) key_mean[k] *= inv_heads;

  const double mean_entropy = entropy_sum / h_count;
  double spread = 0.0;
  for (int64_t h = 0; h < h_count; ++h) {
    const double dev = scratch.head_entropy[h] - mean_entropy;
    spread += dev * dev;
  }
  spread /= h_count;  // population variance, as jnp.var in entropix

  const double cells = static_cast<double>(h_count * k_count);
  signals->has_attention = true;
  signals->attn_entropy = static_cast<float>(mean_entropy);
  signals->attn_varentropy = static_cast<float>(varentropy_sum / h_count);
  signals->attn_entropy_spread = static_cast<float>(spread);
  signals->agreement =
      static_cast<float>(SumAbsDeviation(probs, h_count, k_count, key_mean) / cells);
  // The mean of |s| is at most the float maximum; the clamp only catches
  // the rounding of the division there.
  signals->interaction_strength =
      static_cast<float>(std::min(abs_score_sum / cells, double{kFloatMax}));
}

double TokenLogProb(const LogitSummary& summary, float logit) {
  // z - max first: exact for the tokens that matter, where z - logsumexp(z)
  // would lose everything below the ulp of z (two logits tied at 1e30 gave
  // log p = 0, not -ln 2).
  return (static_cast<double>(logit) - static_cast<double>(summary.max_logit)) - summary.log_sum;
}

float TokenLogProbFloat(const LogitSummary& summary, float logit) {
  const double log_p = TokenLogProb(summary, logit);
  // A finite logit 2^128 or more below the maximum: p rounds to 0 in any
  // float, and its log to the lowest float rather than -inf.
  if (std::isfinite(logit) && log_p < -double{kFloatMax}) return -kFloatMax;
  return static_cast<float>(log_p);
}

Signals ComputeSignals(absl::Span<const float> logits, absl::Span<const float> attention,
                       int32_t heads, int32_t keys, LogitSummary* summary) {
  Signals signals;
  ComputeLogitSignals(logits, &signals, summary);
  if (!attention.empty()) ComputeAttentionSignals(attention, heads, keys, &signals);
  return signals;
}

}  // namespace entroserve
