// Branch-free float arithmetic for the sampler's vectorised loops (internal
// to the .cc files of sampler/, not part of any API): float bit helpers, an
// exp2 and an exp without branches or library calls, and the float lane
// layout that fixes the order of every sum.
//
// Everything here is an always-inline function, meant to be called from a
// function marked ENTROSERVE_MULTIVERSION (sampler/core/multiversion.h) so that it
// is compiled into each clone. No float select (`c ? a : b`) and no
// comparison-driven branch sits in these helpers: GCC does not if-convert
// `cond ? 0 : a * b` (the multiply might trap) without AVX-512 masking, and
// would leave a loop holding one scalar in the AVX2 and baseline clones.
// Comparisons become all-ones / zero integer masks applied with Masked().
//
// Determinism: the sampler library is compiled with -ffp-contract=off
// (sampler/CMakeLists.txt), so no multiply-add below is fused into an FMA in
// one clone and not in another: with the lane layout (kLanes), every clone,
// the baseline included, computes bit-identical results (the
// kernel_clones_identical test, tests/sampler/clones.cmake).
//
// Numerics of Exp2Unmasked: 2^y = 2^n * 2^r with n = round(y) (a
// magic-number rounding) and r = y - n in [-1/2, 1/2] (exact); 2^r by a
// degree-6 minimax polynomial (relative error 2e-9; ~8e-8 = 1.3 ulp evaluated
// in float), and 2^n built in the exponent field. ExpUnmasked(x) reduces x by
// n ln 2 in two parts (Cody and Waite), so that its relative error stays
// ~1e-7 over the whole range rather than growing with |x| as
// Exp2Unmasked(x * log2 e) would (the rounding of x log2 e alone costs
// ~6e-8 |x| relative).
#ifndef ENTROSERVE_SAMPLER_CORE_FAST_MATH_H_
#define ENTROSERVE_SAMPLER_CORE_FAST_MATH_H_

#include <cstdint>
#include <cstring>

#include "sampler/core/multiversion.h"

namespace entroserve {
namespace fast_math {

// Float lanes per partial sum: one AVX-512 register, two AVX2, four SSE.
// Kernels keep kLanes partial sums and add element i of a block into lane
// i mod kLanes (a short tail into lanes 0.. in order), so the order of every
// addition, and the result, does not depend on the vector width.
inline constexpr int kLanes = 16;
// Elements summed in float lanes before the block is added into double: each
// lane sums kLaneBlock / kLanes = 64 terms, a relative rounding error of at
// most 64 * 2^-24 ~ 4e-6 (typically ~5e-7), and the double sum adds nothing
// measurable for 152k-entry rows. 1024 floats = 4 KiB also stays in L1.
inline constexpr int64_t kLaneBlock = 1024;
static_assert(kLaneBlock % kLanes == 0, "blocks hold whole lane groups");

inline constexpr float kLog2e = 1.44269504088896340736f;
// ln 2 in two parts for the reduction of ExpUnmasked (Cephes expf, Moshier,
// cephes/single/expf.c): kLn2Hi has 9 significant bits, so n * kLn2Hi is
// exact for |n| < 2^15.
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;

// 2^r = 1 + r (c1 + r (c2 + ... + r c6)) on [-1/2, 1/2]: minimax for the
// relative error (max 2.0e-9), fitted by iteratively reweighted least squares
// on Chebyshev nodes: `tests/sampler/core/signals_numpy_check.py --fit_exp2`
// prints them. Close to the Taylor coefficients ln(2)^k / k!.
inline constexpr float kExp2C1 = 6.931472028670e-01f;
inline constexpr float kExp2C2 = 2.402264791276e-01f;
inline constexpr float kExp2C3 = 5.550332452173e-02f;
inline constexpr float kExp2C4 = 9.618437385710e-03f;
inline constexpr float kExp2C5 = 1.339888050308e-03f;
inline constexpr float kExp2C6 = 1.535336738571e-04f;
// Smallest y with 2^y kept: n = round(y) >= -125 keeps 2^n and 2^n * 2^r
// (r >= -1/2) normal floats, so no subnormal arithmetic occurs; smaller
// terms (< 2^-125 = 2.4e-38) are returned as 0.
inline constexpr float kExp2Lowest = -125.0f;
// Largest y allowed (2^y must be a finite float). The sampler only passes
// y <= 0.
inline constexpr float kExp2Highest = 127.0f;
// The same bounds for ExpUnmasked: -125 ln 2 = -86.64 (e^x < 2.4e-38 below)
// and 127 ln 2.
inline constexpr float kExpLowest = -86.6433975f;
inline constexpr float kExpHighest = 88.0296919f;
// 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to an integer
// (round to nearest even), which then sits in the low mantissa bits.
inline constexpr float kRoundMagic = 12582912.0f;
inline constexpr int32_t kRoundMagicBits = 0x4b400000;
inline constexpr int32_t kFloatExponentBias = 127;
inline constexpr int kFloatMantissaBits = 23;

ENTROSERVE_INLINE int32_t FloatAsInt(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof(i));
  return i;
}
ENTROSERVE_INLINE float IntAsFloat(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof(f));
  return f;
}

// A signed integer with the same order as the float (for non-NaN values):
// negative floats have their magnitude bits flipped; -0.0 orders just below
// +0.0. Its own inverse. Max reductions over keys vectorise as integer
// maxima (GCC vectorises float max reductions only under -ffast-math).
ENTROSERVE_INLINE int32_t OrderedKey(int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }

// `value` where mask is all-ones, +0 where it is 0: a bitwise select (see the
// top of this file).
ENTROSERVE_INLINE float Masked(float value, int32_t mask) {
  return IntAsFloat(FloatAsInt(value) & mask);
}

// All-ones when cond, else 0.
ENTROSERVE_INLINE int32_t MaskIf(bool cond) { return -static_cast<int32_t>(cond); }

// 2^r for r in [-1/2, 1/2] (the polynomial above).
ENTROSERVE_INLINE float Exp2Reduced(float r) {
  float p = kExp2C6;
  p = p * r + kExp2C5;
  p = p * r + kExp2C4;
  p = p * r + kExp2C3;
  p = p * r + kExp2C2;
  p = p * r + kExp2C1;
  p = p * r + 1.0f;
  return p;
}

// 2^n for t = n + kRoundMagic (n integral, -126 < n < 128), through the
// exponent field. Unsigned arithmetic: n + 127 < 0 for values a mask clears.
ENTROSERVE_INLINE float Pow2FromRounded(float t) {
  // Wrapping (unsigned) throughout: for a t out of range (-inf, or far below
  // kExp2Lowest, whose result the caller masks) the signed difference would
  // overflow, which is undefined behaviour (found by the sample_request fuzzer).
  const uint32_t ni =
      static_cast<uint32_t>(FloatAsInt(t)) - static_cast<uint32_t>(kRoundMagicBits);
  return IntAsFloat(static_cast<int32_t>((ni + static_cast<uint32_t>(kFloatExponentBias))
                                         << kFloatMantissaBits));
}

// All-ones when y >= kExp2Lowest, else 0 (also for -inf and NaN).
ENTROSERVE_INLINE int32_t Exp2KeepMask(float y) { return MaskIf(y >= kExp2Lowest); }

// 2^y for kExp2Lowest <= y <= kExp2Highest; garbage (possibly NaN) below, to
// be cleared with Masked(.., Exp2KeepMask(y)). 2^0 is exactly 1.
ENTROSERVE_INLINE float Exp2Unmasked(float y) {
  const float t = y + kRoundMagic;
  const float n = t - kRoundMagic;
  const float r = y - n;  // exact, in [-1/2, 1/2]
  return Exp2Reduced(r) * Pow2FromRounded(t);
}

// All-ones when x >= kExpLowest, else 0 (also for -inf and NaN).
ENTROSERVE_INLINE int32_t ExpKeepMask(float x) { return MaskIf(x >= kExpLowest); }

// e^x = 2^(x log2 e) for kExpLowest <= x <= kExpHighest, ~1e-7 relative
// error; garbage below, to be cleared with Masked(.., ExpKeepMask(x)).
// e^0 is exactly 1.
ENTROSERVE_INLINE float ExpUnmasked(float x) {
  const float t = x * kLog2e + kRoundMagic;
  const float n = t - kRoundMagic;  // round(x log2 e)
  float r = x - n * kLn2Hi;         // x - n ln 2, in nats
  r = r - n * kLn2Lo;
  return Exp2Reduced(r * kLog2e) * Pow2FromRounded(t);
}

// e^x for x <= kExpHighest, 0 below kExpLowest (and for -inf and NaN).
ENTROSERVE_INLINE float ExpOrZero(float x) { return Masked(ExpUnmasked(x), ExpKeepMask(x)); }

// The kLanes partial sums of a block added in lane order.
ENTROSERVE_INLINE double SumLanes(const float* lanes) {
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

}  // namespace fast_math
}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_FAST_MATH_H_
