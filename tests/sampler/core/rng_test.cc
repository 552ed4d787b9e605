#include "sampler/core/rng.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <set>

#include "gtest/gtest.h"

namespace entroserve {
namespace {

// Known-answer vectors of Random123 (examples/kat_vectors, "philox4x32 10").
TEST(Philox4x32Test, MatchesRandom123KnownAnswersForZeros) {
  const std::array<uint32_t, 4> out = Philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(out, (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
}

TEST(Philox4x32Test, MatchesRandom123KnownAnswersForAllOnes) {
  const std::array<uint32_t, 4> out =
      Philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(out, (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
}

TEST(Philox4x32Test, MatchesRandom123KnownAnswersForPiDigits) {
  const std::array<uint32_t, 4> out =
      Philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(out, (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(CounterRngTest, UniformIsInUnitIntervalWithMeanOneHalf) {
  double sum = 0.0;
  constexpr int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = CounterRng(123, i / 16).Uniform(static_cast<uint32_t>(i % 16));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Standard error of the mean: sqrt(1/12 / 1e5) ~ 9.1e-4; 5 sigma.
  EXPECT_NEAR(sum / kDraws, 0.5, 5 * 9.2e-4);
}

TEST(CounterRngTest, SameSeedStepAndDrawGiveTheSameNumber) {
  EXPECT_EQ(CounterRng(42, 7).Uniform(3), CounterRng(42, 7).Uniform(3));
  EXPECT_EQ(CounterRng(42, 7).Exponential(3), CounterRng(42, 7).Exponential(3));
  const CounterRng rng(0xdeadbeefcafef00dull, 1ll << 40);
  EXPECT_EQ(rng.Uniform(0), rng.Uniform(0));
}

TEST(CounterRngTest, DifferentSeedStepOrDrawDiffer) {
  const double base = CounterRng(42, 7).Uniform(3);
  EXPECT_NE(CounterRng(43, 7).Uniform(3), base);
  EXPECT_NE(CounterRng(42, 8).Uniform(3), base);
  EXPECT_NE(CounterRng(42, 7).Uniform(4), base);
  // The high halves of the 64-bit seed and step matter too.
  EXPECT_NE(CounterRng(42 + (1ull << 32), 7).Uniform(3), base);
  EXPECT_NE(CounterRng(42, 7 + (1ll << 32)).Uniform(3), base);
  // And no collisions over a grid of (seed, step, draw).
  std::set<double> seen;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    for (int64_t step = 0; step < 32; ++step) {
      for (uint32_t draw = 0; draw < 8; ++draw) {
        seen.insert(CounterRng(seed, step).Uniform(draw));
      }
    }
  }
  EXPECT_EQ(seen.size(), 8u * 32u * 8u);
}

TEST(CounterRngTest, ExponentialIsMinusLogOneMinusUniform) {
  const CounterRng rng(5, 9);
  for (uint32_t draw = 0; draw < 100; ++draw) {
    const double e = rng.Exponential(draw);
    EXPECT_GE(e, 0.0);
    EXPECT_TRUE(std::isfinite(e));
    EXPECT_DOUBLE_EQ(e, -std::log1p(-rng.Uniform(draw)));
  }
}

}  // namespace
}  // namespace entroserve
