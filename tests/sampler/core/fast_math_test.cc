// sampler/core/fast_math.h: the exp and exp2 kernels against the C library, their
// exact points and masks, and the float bit helpers.
#include "sampler/core/fast_math.h"

#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace entroserve {
namespace fast_math {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Relative error of `got` against the long double reference.
double RelativeError(float got, long double want) {
  return static_cast<double>(std::fabs((static_cast<long double>(got) - want) / want));
}

TEST(FastMathTest, ExpRelativeErrorIsBelow2e7OverItsWholeRange) {
  // The two-part reduction keeps the error flat in |x|: without it, the
  // rounding of x log2(e) alone would cost ~6e-8 |x| (5e-6 at x = -86).
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> x_dist(kExpLowest, kExpHighest);
  double worst = 0.0;
  for (int i = 0; i < 200000; ++i) {
    const float x = x_dist(gen);
    worst = std::max(worst, RelativeError(ExpOrZero(x), std::exp(static_cast<long double>(x))));
  }
  EXPECT_LT(worst, 2e-7);
}

TEST(FastMathTest, Exp2RelativeErrorIsBelow2e7OnItsRange) {
  std::mt19937 gen(8);
  std::uniform_real_distribution<float> y_dist(kExp2Lowest, 0.0f);
  double worst = 0.0;
  for (int i = 0; i < 200000; ++i) {
    const float y = y_dist(gen);
    const float got = Masked(Exp2Unmasked(y), Exp2KeepMask(y));
    worst = std::max(worst, RelativeError(got, std::exp2(static_cast<long double>(y))));
  }
  EXPECT_LT(worst, 2e-7);
}

TEST(FastMathTest, ExactAtZeroAndAtIntegerPowersOfTwo) {
  EXPECT_EQ(ExpOrZero(0.0f), 1.0f);
  EXPECT_EQ(ExpOrZero(-0.0f), 1.0f);
  for (int n = -125; n <= 127; ++n) {
    EXPECT_EQ(Exp2Unmasked(static_cast<float>(n)), std::ldexp(1.0f, n)) << "n=" << n;
  }
}

TEST(FastMathTest, BelowTheRangeMinusInfAndNanGiveZero) {
  EXPECT_EQ(ExpOrZero(-kInf), 0.0f);
  EXPECT_EQ(ExpOrZero(std::nanf("")), 0.0f);
  EXPECT_EQ(ExpOrZero(-1000.0f), 0.0f);
  EXPECT_EQ(ExpOrZero(std::nextafter(kExpLowest, -kInf)), 0.0f);
  // At the bound the result is still a normal float.
  EXPECT_GE(ExpOrZero(kExpLowest), std::numeric_limits<float>::min());
  EXPECT_EQ(Masked(Exp2Unmasked(-125.5f), Exp2KeepMask(-125.5f)), 0.0f);
  EXPECT_EQ(Masked(Exp2Unmasked(-kInf), Exp2KeepMask(-kInf)), 0.0f);
}

TEST(FastMathTest, OrderedKeyOrdersLikeTheFloats) {
  const float values[] = {-kInf, -3.4e38f, -1.0f, -1e-40f, -0.0f,
                          0.0f,  1e-40f,   2.0f,  3.4e38f, kInf};
  for (size_t i = 0; i + 1 < std::size(values); ++i) {
    EXPECT_LT(OrderedKey(FloatAsInt(values[i])), OrderedKey(FloatAsInt(values[i + 1])))
        << values[i] << " < " << values[i + 1];
  }
  for (const float v : values) {
    EXPECT_EQ(FloatAsInt(IntAsFloat(OrderedKey(OrderedKey(FloatAsInt(v))))), FloatAsInt(v));
  }
}

TEST(FastMathTest, MaskedSelectsBitwise) {
  EXPECT_EQ(Masked(2.5f, MaskIf(true)), 2.5f);
  EXPECT_EQ(FloatAsInt(Masked(kInf, MaskIf(false))), 0);  // +0.0, never NaN
}

}  // namespace
}  // namespace fast_math
}  // namespace entroserve
