#include "sampler/core/candidates.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/core/rng.h"

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

TEST(CandidateSetTest, CandidateDefaultsToNoToken) {
  const Candidate c;
  EXPECT_EQ(c.id, -1);
  EXPECT_EQ(c.logit, 0.0f);
  EXPECT_EQ(c.p, 0.0f);
}

// The definition of FromLogitsAtLeast, one token at a time.
std::vector<Candidate> NaiveFromLogits(const std::vector<float>& z, float min_logit) {
  std::vector<Candidate> out;
  for (size_t i = 0; i < z.size(); ++i) {
    if (z[i] >= min_logit && z[i] > kNegInf) out.push_back({static_cast<int32_t>(i), z[i], 0.0f});
  }
  return out;
}

TEST(CandidateSetTest, FromLogitsMatchesTheDefinitionOnLargeRows) {
  // No mask (the plain copy), scattered masks and masked runs (the
  // compaction), and thresholds that keep all, some or none.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const double masked_fraction : {0.0, 0.02, 0.5}) {
    std::vector<float> z(152064);
    for (float& v : z) v = normal(gen);
    for (float& v : z) {
      if (std::uniform_real_distribution<double>(0.0, 1.0)(gen) < masked_fraction) v = kNegInf;
    }
    std::fill(z.end() - 300, z.end(), kNegInf);  // padding of the vocabulary
    for (const float min_logit : {kNegInf, 2.0f, 100.0f}) {
      const CandidateSet set = CandidateSet::FromLogitsAtLeast(z, min_logit);
      const std::vector<Candidate> want = NaiveFromLogits(z, min_logit);
      EXPECT_EQ(set.vocab_size(), 152064);
      ASSERT_EQ(set.size(), want.size()) << masked_fraction << " " << min_logit;
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(set.items()[i].id, want[i].id) << i;
        ASSERT_EQ(set.items()[i].logit, want[i].logit) << i;
        ASSERT_EQ(set.items()[i].p, 0.0f) << i;
      }
    }
  }
}

TEST(CandidateSetTest, FromItemsKeepsItemsOrderAndVocabularySize) {
  const CandidateSet set =
      CandidateSet::FromItems({{7, 1.0f, 0.0f}, {2, 3.0f, 0.0f}, {9, 2.0f, 0.0f}}, 10);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{7, 2, 9}));
  EXPECT_EQ(set.vocab_size(), 10);
  EXPECT_FALSE(set.sorted());
  EXPECT_FALSE(set.normalized());
  EXPECT_EQ(set.selected(), -1);
}

TEST(CandidateSetTest, MarkReorderedKeepsProbabilitiesValid) {
  CandidateSet set = CandidateSet::FromLogits({0.0f, 1.0f, 2.0f});
  set.Sort();
  set.Normalize();
  std::swap(set.items()[0], set.items()[2]);
  set.MarkReordered();
  EXPECT_FALSE(set.sorted());
  EXPECT_TRUE(set.normalized());
  set.Sort();
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{2, 1, 0}));
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

// Every id of `z` sorted by the set's order, the first k.
std::vector<int32_t> NaiveTop(const std::vector<float>& z, size_t k) {
  std::vector<Candidate> all = NaiveFromLogits(z, kNegInf);
  std::sort(all.begin(), all.end(), ByLogitDescending());
  all.resize(std::min(k, all.size()));
  std::vector<int32_t> ids;
  for (const Candidate& c : all) ids.push_back(c.id);
  return ids;
}

TEST(CandidateSetTest, KeepTopMatchesAFullSortForSmallAndLargeK) {
  // Small k takes the bounded heap (k <= n / 16), large k nth_element; rows
  // with many ties (rounded logits) and rows in ascending order (every item
  // replaces the heap's top) included.
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const int kind : {0, 1, 2}) {
    std::vector<float> z(20000);
    for (float& v : z) v = normal(gen);
    if (kind == 1) {
      for (float& v : z) v = std::round(v);
    }
    if (kind == 2) std::sort(z.begin(), z.end());
    for (const int32_t k : {1, 27, 40, 1250, 1251, 5000}) {
      CandidateSet set = CandidateSet::FromLogits(z);
      set.KeepTop(k);
      EXPECT_EQ(Ids(set), NaiveTop(z, static_cast<size_t>(k))) << "kind=" << kind << " k=" << k;
      EXPECT_TRUE(set.sorted());
      EXPECT_FALSE(set.normalized());
    }
  }
}

TEST(CandidateSetTest, KeepTopOfASortedSetKeepsItsPrefix) {
  CandidateSet set = CandidateSet::FromLogits({1.0f, 4.0f, 3.0f, 2.0f});
  set.Sort();
  set.KeepTop(2);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1, 2}));
}

TEST(CandidateSetTest, KeepTopWithKAtLeastSizeSortsEverything) {
  CandidateSet set = CandidateSet::FromLogits({0.0f, 2.0f, 1.0f});
  set.KeepTop(10);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1, 2, 0}));
}

// KeepTopMass on p = 0.1, 0.4, 0.2, 0.3 (ids 0..3): the fewest tokens, best
// first, whose mass reaches the target.
std::vector<int32_t> SortedIdsAfterKeepTopMass(bool sort_first, double mass) {
  CandidateSet set =
      CandidateSet::FromLogits({std::log(0.1f), std::log(0.4f), std::log(0.2f), std::log(0.3f)});
  if (sort_first) set.Sort();
  set.KeepTopMass(mass);
  std::vector<int32_t> ids = Ids(set);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(CandidateSetTest, KeepTopMassKeepsTheSmallestPrefixByLogit) {
  for (bool sort_first : {false, true}) {
    EXPECT_EQ(SortedIdsAfterKeepTopMass(sort_first, 0.35), (std::vector<int32_t>{1}));
    EXPECT_EQ(SortedIdsAfterKeepTopMass(sort_first, 0.65), (std::vector<int32_t>{1, 3}));
    EXPECT_EQ(SortedIdsAfterKeepTopMass(sort_first, 0.85), (std::vector<int32_t>{1, 2, 3}));
  }
}

TEST(CandidateSetTest, KeepTopMassKeepsTheOrderOfTheTokensAboveTheBoundary) {
  // Tokens 1, 3, 5 are each more than a bucket (1/64 nat) above token 4,
  // where the mass ends: they stay in id order, the boundary's token last.
  CandidateSet set = CandidateSet::FromLogits({0.0f, 3.0f, 0.0f, 3.5f, 2.0f, 3.2f});
  set.KeepTopMass(0.9);
  EXPECT_EQ(Ids(set), (std::vector<int32_t>{1, 3, 5, 4}));
  EXPECT_FALSE(set.normalized());
}

TEST(CandidateSetTest, KeepTopMassKeepingEverythingLeavesTheSoftmax) {
  CandidateSet set = CandidateSet::FromLogits({0.5f, -1.0f, 2.0f, 1.0f});
  CandidateSet normalized = set;
  normalized.Normalize();
  set.KeepTopMass(0.9999);
  ASSERT_EQ(set.size(), 4u);
  EXPECT_TRUE(set.normalized());
  for (size_t i = 0; i < set.size(); ++i) {
    const Candidate& want = normalized.items()[static_cast<size_t>(set.items()[i].id)];
    EXPECT_EQ(set.items()[i].p, want.p) << "token " << want.id;  // the same bits
  }
}

TEST(CandidateSetTest, KeepTopMassBreaksTiesByLowerId) {
  // 1000 equal logits: one bucket, p = 0.001 each, 250 reach 0.25.
  CandidateSet set = CandidateSet::FromLogits(std::vector<float>(1000, 0.0f));
  set.KeepTopMass(0.25);
  std::vector<int32_t> ids = Ids(set);
  std::sort(ids.begin(), ids.end());
  std::vector<int32_t> want(250);
  for (int32_t i = 0; i < 250; ++i) want[static_cast<size_t>(i)] = i;
  EXPECT_EQ(ids, want);
}

TEST(CandidateSetTest, KeepTopMassNeverKeepsTokensFarBelowTheTop) {
  // Token 2 is 70 nats below the top (the last bucket, p ~ 4e-31).
  CandidateSet set = CandidateSet::FromLogits({1.0f, 0.0f, -69.0f, 0.5f});
  set.KeepTopMass(0.999999);
  std::vector<int32_t> ids = Ids(set);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 3}));
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

TEST(CandidateSetTest, NormalizeIsAccurateOnALargeRow) {
  // Against long double, every p within 1e-6 relative (the exp is ~1e-7, the
  // sum in double) of softmax over the float differences z - max, and exactly
  // 0 more than 86.6 below the maximum. Against the exact differences the
  // float subtraction adds ~6e-8 |z - max| (as std::exp over floats did):
  // within 1e-6 still for every p >= 1e-7.
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> z(151936);
  for (float& v : z) v = normal(gen);
  z[17] = 30.0f;
  z[18] = 30.0f - 90.0f;  // e^-90 relative: below the exp's range
  CandidateSet set = CandidateSet::FromLogits(z);
  set.ApplyTemperature(0.7f);
  std::vector<float> logit(z.size());
  float max_logit = -INFINITY;
  for (const Candidate& c : set.items()) {
    logit[c.id] = c.logit;
    max_logit = std::max(max_logit, c.logit);
  }
  long double sum_rounded = 0;  // over the float differences
  long double sum_exact = 0;
  for (const Candidate& c : set.items()) {
    sum_rounded += std::exp(static_cast<long double>(c.logit - max_logit));
    sum_exact += std::exp(static_cast<long double>(c.logit) - max_logit);
  }
  set.Normalize();
  ASSERT_TRUE(set.normalized());
  double worst_rounded = 0.0;
  double worst_exact = 0.0;
  for (const Candidate& c : set.items()) {
    const float x = logit[c.id] - max_logit;
    if (x < -86.6f) {
      EXPECT_EQ(c.p, 0.0f) << c.id;
      continue;
    }
    const long double rounded = std::exp(static_cast<long double>(x)) / sum_rounded;
    worst_rounded =
        std::max(worst_rounded, static_cast<double>(std::fabs((c.p - rounded) / rounded)));
    const long double exact =
        std::exp(static_cast<long double>(logit[c.id]) - max_logit) / sum_exact;
    if (exact >= 1e-7L) {
      worst_exact = std::max(worst_exact, static_cast<double>(std::fabs((c.p - exact) / exact)));
    }
  }
  EXPECT_LT(worst_rounded, 1e-6);
  EXPECT_LT(worst_exact, 1e-6);
  EXPECT_EQ(set.items()[18].p, 0.0f);
}

TEST(CandidateSetTest, NormalizeGivesTheSameBitsWhateverTheOrderOfASortedSet) {
  // A sorted set takes its maximum from items[0]; the result must not differ
  // from the scan of an unsorted one.
  std::vector<float> z(5000);
  for (size_t i = 0; i < z.size(); ++i) z[i] = std::sin(static_cast<float>(i)) * 7.0f;
  CandidateSet sorted = CandidateSet::FromLogits(z);
  sorted.Sort();
  CandidateSet unsorted = sorted;
  unsorted.MarkReordered();
  sorted.Normalize();
  unsorted.Normalize();
  for (size_t i = 0; i < sorted.size(); ++i) {
    ASSERT_EQ(sorted.items()[i].p, unsorted.items()[i].p) << i;
  }
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
