#include "sampler/candidates.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/rng.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<int32_t> Ids(const CandidateSet& set) {
  std::vector<int32_t> ids;
  for (const Candidate& c : set.items()) ids.push_back(c.id);
  return ids;
}

// A set with ids 0.. holding the given probabilities, in this order (zeros
// included, as a filter leaves them).
CandidateSet WithProbabilities(const std::vector<float>& p) {
  CandidateSet set = CandidateSet::FromLogits(std::vector<float>(p.size(), 0.0f));
  for (size_t i = 0; i < p.size(); ++i) set.items()[i].p = p[i];
  return set;
}

TEST(CandidateSetTest, FromLogitsSkipsMaskedTokensAndKeepsIds) {
  const std::vector<float> z = {0.5f, kNegInf, -1.0f, kNegInf, 2.0f};
  const CandidateSet set = CandidateSet::FromLogits(z);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(set.vocab_size(), 5);
  EXPECT_EQ(set.items()[1].logit, -1.0f);
  EXPECT_FALSE(set.sorted());
  EXPECT_FALSE(set.normalized());
}

TEST(CandidateSetTest, FromLogitsAtLeastKeepsThoseAtOrAboveTheThreshold) {
  const std::vector<float> z = {0.5f, kNegInf, -1.0f, 1.0f, 2.0f};
  EXPECT_EQ(Ids(CandidateSet::FromLogitsAtLeast(z, 0.5f)), (std::vector<int32_t>{0, 3, 4}));
}

TEST(CandidateSetTest, KeepTopBreaksTiesByLowerId) {
  const std::vector<float> z = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f, 3.0f};
  CandidateSet set = CandidateSet::FromLogits(z);
  set.KeepTop(3);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1, 2, 4}));
  EXPECT_TRUE(set.sorted());
  set.KeepTop(1);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1}));
}

TEST(CandidateSetTest, KeepTopIsIndependentOfInputOrder) {
  // The same multiset of (id, logit) pairs, shuffled: the same survivors.
  CandidateSet a = CandidateSet::FromLogits({2.0f, 5.0f, 5.0f, 1.0f, 5.0f, 4.0f});
  CandidateSet b = a;
  std::swap(b.items()[0], b.items()[4]);
  std::swap(b.items()[1], b.items()[5]);
  a.KeepTop(4);
  b.KeepTop(4);
  EXPECT_EQ(Ids(a), (std::vector<int32_t>{1, 2, 4, 5}));
  EXPECT_EQ(Ids(b), Ids(a));
}

TEST(CandidateSetTest, KeepTopWithKAtLeastSizeSortsEverything) {
  CandidateSet set = CandidateSet::FromLogits({0.0f, 2.0f, 1.0f});
  set.KeepTop(10);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1, 2, 0}));
}

TEST(CandidateSetTest, NormalizeIsExactOnSmallSets) {
  CandidateSet set = CandidateSet::FromLogits({0.0f, 0.0f, 0.0f, 0.0f});
  set.Normalize();
  ASSERT_TRUE(set.normalized());
  for (const Candidate& c : set.items()) EXPECT_EQ(c.p, 0.25f);

  // exp(0) = 1, and the other logit exactly ln 3 up to float rounding.
  set = CandidateSet::FromLogits({static_cast<float>(std::log(3.0)), 0.0f});
  set.Normalize();
  EXPECT_NEAR(set.items()[0].p, 0.75f, 1e-7f);
  EXPECT_NEAR(set.items()[1].p, 0.25f, 1e-7f);

  // Large logits do not overflow: the max is subtracted.
  set = CandidateSet::FromLogits({1000.0f, 1000.0f});
  set.Normalize();
  EXPECT_EQ(set.items()[0].p, 0.5f);
}

TEST(CandidateSetTest, TemperatureDividesLogitsAndKeepsOrder) {
  CandidateSet set = CandidateSet::FromLogits({2.0f, 4.0f, 1.0f});
  set.Sort();
  set.ApplyTemperature(0.5f);
  EXPECT_EQ(set.items()[0].logit, 8.0f);
  EXPECT_EQ(set.items()[1].logit, 4.0f);
  EXPECT_TRUE(set.sorted());
  EXPECT_FALSE(set.normalized());
}

TEST(CandidateSetTest, RemoveZeroProbabilityKeepsOrder) {
  CandidateSet set = WithProbabilities({0.5f, 0.25f, 0.25f});
  set.items()[1].p = 0.0f;
  set.RemoveZeroProbability();
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{0, 2}));
}

// --- DrawIndex ---------------------------------------------------------------

TEST(DrawIndexTest, InverseCdfAtExactBoundaries) {
  // Cumulative 0.25, 0.5, 1.0. The interval of item i is [c_{i-1}, c_i).
  const CandidateSet set = WithProbabilities({0.25f, 0.25f, 0.5f});
  EXPECT_EQ(DrawIndex(set, 0.0), 0);
  EXPECT_EQ(DrawIndex(set, std::nextafter(0.25, 0.0)), 0);
  EXPECT_EQ(DrawIndex(set, 0.25), 1);
  EXPECT_EQ(DrawIndex(set, std::nextafter(0.5, 0.0)), 1);
  EXPECT_EQ(DrawIndex(set, 0.5), 2);
  EXPECT_EQ(DrawIndex(set, std::nextafter(1.0, 0.0)), 2);
}

TEST(DrawIndexTest, NeverPicksZeroProbabilityItems) {
  const CandidateSet set = WithProbabilities({0.0f, 0.5f, 0.0f, 0.5f, 0.0f});
  EXPECT_EQ(DrawIndex(set, 0.0), 1);
  EXPECT_EQ(DrawIndex(set, 0.5), 3);
  EXPECT_EQ(DrawIndex(set, std::nextafter(1.0, 0.0)), 3);
}

TEST(DrawIndexTest, UnnormalizedMassIsScaled) {
  // DrawIndex divides by the total, so p need not sum to 1.
  const CandidateSet set = WithProbabilities({1.0f, 3.0f});
  EXPECT_EQ(DrawIndex(set, 0.2499), 0);
  EXPECT_EQ(DrawIndex(set, 0.25), 1);
}

// Pearson chi-square statistic of `counts` against `probs`.
double ChiSquare(const std::array<int, 6>& counts, const std::array<double, 6>& probs, int total) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probs[i] * total;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// Chi-square critical value at 0.999 for 5 degrees of freedom.
constexpr double kChiSquare5Dof999 = 20.515;

TEST(DrawIndexTest, DrawsFollowTheDistributionChiSquare) {
  const std::array<double, 6> probs = {0.05, 0.10, 0.15, 0.20, 0.25, 0.25};
  std::vector<float> p(probs.begin(), probs.end());
  const CandidateSet set = WithProbabilities(p);
  constexpr int kDraws = 20000;
  constexpr uint64_t kSeed = 20240611;
  std::array<int, 6> counts = {};
  for (int i = 0; i < kDraws; ++i) {
    const int32_t index = DrawIndex(set, CounterRng(kSeed, i).Uniform(0));
    ASSERT_GE(index, 0);
    ASSERT_LT(index, 6);
    ++counts[static_cast<size_t>(index)];
  }
  EXPECT_LT(ChiSquare(counts, probs, kDraws), kChiSquare5Dof999);
  // The same counts against a distribution off by 0.05 on two tokens must be
  // rejected, or this test could not fail.
  const std::array<double, 6> wrong = {0.10, 0.10, 0.15, 0.20, 0.20, 0.25};
  EXPECT_GT(ChiSquare(counts, wrong, kDraws), kChiSquare5Dof999);
}

}  // namespace
}  // namespace entroserve
