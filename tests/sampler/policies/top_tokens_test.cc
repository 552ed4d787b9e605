#include "sampler/policies/top_tokens.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The definition: every unmasked token >= min_logit, fully sorted (logit
// descending, id ascending), the first k.
std::vector<Candidate> NaiveTop(const std::vector<float>& z, int32_t k, float min_logit,
                                int64_t* at_least) {
  std::vector<Candidate> all;
  for (size_t i = 0; i < z.size(); ++i) {
    if (z[i] >= min_logit && z[i] > kNegInf) all.push_back({static_cast<int32_t>(i), z[i], 0});
  }
  *at_least = static_cast<int64_t>(all.size());
  std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
  return all;
}

void ExpectSameTop(const std::vector<float>& z, int32_t k, float min_logit) {
  int64_t expected_at_least = 0;
  const std::vector<Candidate> expected = NaiveTop(z, k, min_logit, &expected_at_least);
  const TopTokens top = SelectTopTokens(z, k, min_logit);
  ASSERT_EQ(top.at_least, expected_at_least) << "n=" << z.size() << " k=" << k;
  ASSERT_EQ(top.items.size(), expected.size()) << "n=" << z.size() << " k=" << k;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(top.items[i].id, expected[i].id) << "rank " << i;
    EXPECT_EQ(top.items[i].logit, expected[i].logit) << "rank " << i;
  }
}

std::vector<float> RandomRow(int64_t n, uint32_t seed, bool quantised, double masked_fraction) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<float> z(static_cast<size_t>(n));
  for (float& v : z) {
    v = normal(gen);
    if (quantised) v = std::round(v);  // many ties
    if (unit(gen) < masked_fraction) v = kNegInf;
  }
  return z;
}

TEST(SelectTopTokensTest, MatchesFullSortOnRandomRows) {
  const int64_t sizes[] = {1, 5, 63, 64, 65, 1000, 4097, 152064};
  const int32_t ks[] = {1, 3, 27, 100, 328};
  uint32_t seed = 1;
  for (const int64_t n : sizes) {
    for (const bool quantised : {false, true}) {
      const std::vector<float> z = RandomRow(n, seed++, quantised, 0.05);
      for (const int32_t k : ks) {
        ExpectSameTop(z, k, kNegInf);
        ExpectSameTop(z, k, 2.0f);    // a min_p-like threshold
        ExpectSameTop(z, k, 100.0f);  // nothing survives
      }
    }
  }
}

TEST(SelectTopTokensTest, AllEqualLogitsKeepLowestIds) {
  const std::vector<float> z(10000, 1.5f);
  const TopTokens top = SelectTopTokens(z, 5, kNegInf);
  ASSERT_EQ(top.items.size(), 5u);
  EXPECT_EQ(top.at_least, 10000);
  for (int32_t i = 0; i < 5; ++i) EXPECT_EQ(top.items[i].id, i);
}

TEST(SelectTopTokensTest, MaskedTokensNeverSelected) {
  std::vector<float> z(300, kNegInf);
  z[7] = -1e30f;
  z[250] = 0.0f;
  const TopTokens top = SelectTopTokens(z, 10, kNegInf);
  ASSERT_EQ(top.items.size(), 2u);
  EXPECT_EQ(top.at_least, 2);
  EXPECT_EQ(top.items[0].id, 250);
  EXPECT_EQ(top.items[1].id, 7);
}

TEST(SelectTopTokensTest, SignedZeroThresholdCountsBothZeros) {
  const std::vector<float> z = {-0.0f, 0.0f, -1.0f, 1.0f};
  ExpectSameTop(z, 4, 0.0f);
  ExpectSameTop(z, 4, -0.0f);
}

TEST(SelectTopTokensTest, NonPositiveKSelectsNothing) {
  const std::vector<float> z = {1.0f, 2.0f};
  EXPECT_TRUE(SelectTopTokens(z, 0, kNegInf).items.empty());
  EXPECT_TRUE(SelectTopTokens({}, 3, kNegInf).items.empty());
}

TEST(TemperedMassTest, MatchesLongDoubleSum) {
  for (const int64_t n : {int64_t{1}, int64_t{17}, int64_t{1024}, int64_t{152064}}) {
    const std::vector<float> z = RandomRow(n, static_cast<uint32_t>(n), false, 0.01);
    float max_logit = kNegInf;
    for (float v : z) max_logit = std::max(max_logit, v);
    if (max_logit == kNegInf) continue;
    for (const float temperature : {0.3f, 1.0f, 2.5f}) {
      for (const float min_logit : {kNegInf, max_logit - 4.0f}) {
        long double expected = 0;
        for (float v : z) {
          if (v >= min_logit && v > kNegInf) {
            expected += std::exp((static_cast<long double>(v) - max_logit) / temperature);
          }
        }
        const double mass = TemperedMass(z, max_logit, 1.0f / temperature, min_logit);
        EXPECT_NEAR(mass, static_cast<double>(expected), 2e-6 * static_cast<double>(expected))
            << "n=" << n << " T=" << temperature;
      }
    }
  }
}

TEST(TemperedMassTest, WeightIsExactAtMaximumAndZeroWhenMasked) {
  EXPECT_EQ(TemperedWeight(3.0f, 3.0f, 0.7f), 1.0f);
  EXPECT_EQ(TemperedWeight(kNegInf, 3.0f, 0.7f), 0.0f);
  EXPECT_EQ(TemperedWeight(-200.0f, 3.0f, 1.0f), 0.0f);  // below e^-86.6
  EXPECT_NEAR(TemperedWeight(1.0f, 3.0f, 0.5f), std::exp(-1.0f), 2e-7 * std::exp(-1.0f));
}

TEST(TemperedMassTest, WeightIsAccurateFarBelowTheMaximum) {
  // The exp reduces by n ln 2 in two parts: its error does not grow with the
  // distance from the maximum (exp2(x log2 e) would reach ~4e-6 at -86).
  for (const float x : {-1.0f, -10.0f, -40.0f, -80.0f, -86.5f}) {
    const double want = std::exp(static_cast<double>(x));
    EXPECT_NEAR(TemperedWeight(x, 0.0f, 1.0f), want, 2e-7 * want) << x;
  }
}

TEST(TemperedMassTest, AgreesBitwiseWithSummedWeights) {
  // A row shorter than one lane group sums in lane 0.. order: the same sum as
  // adding TemperedWeight in index order, lane by lane.
  const std::vector<float> z = {0.5f, -1.25f, 2.0f, kNegInf, 1.0f};
  double expected = 0.0;
  for (float v : z) expected += TemperedWeight(v, 2.0f, 1.3f);
  EXPECT_EQ(TemperedMass(z, 2.0f, 1.3f, kNegInf), expected);
}

TEST(TemperedMassTest, VectorKernelEqualsScalarLaneEmulationBitwise) {
  // The kernel's contract: 16 float lanes per 1024-token chunk, the tail into
  // lanes 0.. in order, lanes added into double per chunk. Emulated here one
  // token at a time; whichever clone (AVX-512, AVX2, baseline) ran must agree
  // to the last bit, or a token could depend on the replica's CPU.
  constexpr int kLanes = 16;
  constexpr int64_t kChunk = 1024;
  for (const int64_t n : {int64_t{1000}, int64_t{4100}, int64_t{152064}}) {
    const std::vector<float> z = RandomRow(n, 77 + static_cast<uint32_t>(n), false, 0.02);
    float max_logit = kNegInf;
    for (float v : z) max_logit = std::max(max_logit, v);
    const float inv_temperature = 1.0f / 1.7f;
    const float min_logit = max_logit - 9.0f;
    double expected = 0.0;
    for (int64_t begin = 0; begin < n; begin += kChunk) {
      const int64_t len = std::min(kChunk, n - begin);
      float acc[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= len; i += kLanes) {
        for (int j = 0; j < kLanes; ++j) {
          const float v = z[static_cast<size_t>(begin + i + j)];
          acc[j] += v >= min_logit ? TemperedWeight(v, max_logit, inv_temperature) : 0.0f;
        }
      }
      for (int j = 0; i < len; ++i, ++j) {
        const float v = z[static_cast<size_t>(begin + i)];
        acc[j] += v >= min_logit ? TemperedWeight(v, max_logit, inv_temperature) : 0.0f;
      }
      double chunk = 0.0;
      for (int j = 0; j < kLanes; ++j) chunk += acc[j];
      expected += chunk;
    }
    EXPECT_EQ(TemperedMass(z, max_logit, inv_temperature, min_logit), expected) << "n=" << n;
  }
}

}  // namespace
}  // namespace entroserve
