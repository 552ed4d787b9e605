#include "sampler/core/signals.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr long double kLn2L = 0.693147180559945309417232121458176568L;

// Entropy (bits), varentropy (bits^2) and logsumexp of softmax(z), in long
// double, straight from the definitions (two passes: H, then the variance
// around it).
struct Reference {
  long double entropy = 0;
  long double varentropy = 0;
  long double log_normalizer = 0;
};

Reference ReferenceSignals(const std::vector<float>& z) {
  long double m = -std::numeric_limits<long double>::infinity();
  for (float v : z) m = std::max<long double>(m, v);
  long double sum = 0;
  for (float v : z) {
    if (v != kNegInf) sum += std::exp(static_cast<long double>(v) - m);
  }
  Reference ref;
  ref.log_normalizer = m + std::log(sum);
  for (float v : z) {
    if (v == kNegInf) continue;
    const long double log_p = v - ref.log_normalizer;
    ref.entropy -= std::exp(log_p) * log_p / kLn2L;
  }
  for (float v : z) {
    if (v == kNegInf) continue;
    const long double log_p = v - ref.log_normalizer;
    const long double dev = log_p / kLn2L + ref.entropy;
    ref.varentropy += std::exp(log_p) * dev * dev;
  }
  return ref;
}

Signals LogitSignals(const std::vector<float>& z, LogitSummary* summary = nullptr) {
  Signals s;
  ComputeLogitSignals(z, &s, summary);
  return s;
}

std::vector<float> RandomLogits(int64_t n, float sigma, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> z(static_cast<size_t>(n));
  for (float& v : z) v = normal(gen);
  return z;
}

// --- Logits: closed forms -------------------------------------------------

TEST(LogitSignalsTest, UniformHasEntropyLog2VAndZeroVarentropy) {
  // Lengths around the 16-lane groups and the 1024-element blocks.
  for (int64_t n : {1, 2, 7, 15, 16, 17, 1000, 1023, 1024, 1025, 32000, 128256, 151936}) {
    for (float value : {0.0f, 3.75f, -120.5f}) {
      SCOPED_TRACE(testing::Message() << "V=" << n << " value=" << value);
      const std::vector<float> z(static_cast<size_t>(n), value);
      LogitSummary summary;
      const Signals s = LogitSignals(z, &summary);
      EXPECT_NEAR(s.entropy, std::log2(static_cast<double>(n)), 1e-5);
      // Every d is exactly 0, so sum e d and sum e d^2 are exactly 0.
      EXPECT_EQ(s.varentropy, 0.0f);
      EXPECT_EQ(summary.argmax, 0);
      EXPECT_EQ(summary.max_logit, value);
      EXPECT_EQ(summary.finite, n);
      EXPECT_NEAR(summary.log_normalizer, value + std::log(static_cast<double>(n)), 1e-9);
    }
  }
}

TEST(LogitSignalsTest, SingleTokenHasZeroEntropy) {
  const Signals s = LogitSignals({2.5f});
  EXPECT_EQ(s.entropy, 0.0f);
  EXPECT_EQ(s.varentropy, 0.0f);
}

TEST(LogitSignalsTest, OneFiniteLogitAmongMaskedIsExactlyDeterministic) {
  for (int64_t n : {2, 17, 5000, 151936}) {
    std::vector<float> z(static_cast<size_t>(n), kNegInf);
    const int64_t hot = n * 2 / 3;
    z[static_cast<size_t>(hot)] = -7.25f;
    LogitSummary summary;
    const Signals s = LogitSignals(z, &summary);
    EXPECT_EQ(s.entropy, 0.0f) << n;
    EXPECT_EQ(s.varentropy, 0.0f) << n;
    EXPECT_EQ(summary.argmax, hot);
    EXPECT_EQ(summary.max_logit, -7.25f);
    EXPECT_EQ(summary.finite, 1);
    EXPECT_EQ(summary.log_normalizer, -7.25);
  }
}

// p = (q, 1-q). Surprisal is -log2 q with probability q and -log2(1-q) with
// probability 1-q, so H = -q log2 q - (1-q) log2(1-q) and
// V = q (log2 q + H)^2 + (1-q) (log2(1-q) + H)^2. With a = log2 q,
// b = log2(1-q): a + H = (1-q)(a-b) and b + H = -q(a-b), hence
// V = q(1-q)^2 (a-b)^2 + (1-q) q^2 (a-b)^2 = q(1-q) (log2(q/(1-q)))^2.
TEST(LogitSignalsTest, TwoPointDistributionMatchesBinaryEntropyClosedForm) {
  for (double q_wanted : {0.5, 0.3, 0.1, 0.01, 1e-4, 0.999}) {
    SCOPED_TRACE(q_wanted);
    const std::vector<float> z = {static_cast<float>(std::log(q_wanted)),
                                  static_cast<float>(std::log1p(-q_wanted))};
    // The q the float logits really encode.
    const double q = 1.0 / (1.0 + std::exp(static_cast<double>(z[1]) - z[0]));
    const double h = -q * std::log2(q) - (1 - q) * std::log2(1 - q);
    const double l = std::log2(q / (1 - q));
    const double v = q * (1 - q) * l * l;
    const Signals s = LogitSignals(z);
    EXPECT_NEAR(s.entropy, h, 2e-7 * std::max(1.0, h));
    EXPECT_NEAR(s.varentropy, v, 2e-6 * std::max(1.0, v));
  }
}

TEST(LogitSignalsTest, EqualPairHasExactlyOneBitAndZeroVarentropy) {
  const Signals s = LogitSignals({4.0f, 4.0f});
  EXPECT_EQ(s.entropy, 1.0f);
  EXPECT_EQ(s.varentropy, 0.0f);
}

// Dyadic p = (1/2, 1/4, 1/8, 1/8): surprisals 1, 2, 3, 3 bits, H = 1.75,
// V = 1/2 (0.75)^2 + 1/4 (0.25)^2 + 1/4 (1.25)^2 = 0.6875.
TEST(LogitSignalsTest, DyadicDistributionHasKnownEntropyAndVarentropy) {
  const float ln2 = static_cast<float>(std::log(2.0));
  const Signals s = LogitSignals({2 * ln2, ln2, 0.0f, 0.0f});
  EXPECT_NEAR(s.entropy, 1.75, 1e-6);
  EXPECT_NEAR(s.varentropy, 0.6875, 1e-6);
}

// --- Logits: invariances and accuracy --------------------------------------

TEST(LogitSignalsTest, MaskedTokensEqualDroppedTokens) {
  std::vector<float> z = RandomLogits(5000, 2.5f, 7);
  std::vector<float> kept;
  for (size_t i = 0; i < z.size(); ++i) {
    if (i % 7 == 3) {
      z[i] = kNegInf;
    } else {
      kept.push_back(z[i]);
    }
  }
  LogitSummary masked_summary, kept_summary;
  const Signals masked = LogitSignals(z, &masked_summary);
  const Signals dropped = LogitSignals(kept, &kept_summary);
  EXPECT_FALSE(std::isnan(masked.entropy));
  EXPECT_NEAR(masked.entropy, dropped.entropy, 1e-6 * dropped.entropy);
  EXPECT_NEAR(masked.varentropy, dropped.varentropy, 1e-5 * dropped.varentropy);
  EXPECT_NEAR(masked_summary.log_normalizer, kept_summary.log_normalizer, 1e-6);
  EXPECT_EQ(masked_summary.finite, static_cast<int32_t>(kept.size()));
  EXPECT_EQ(masked_summary.max_logit, kept_summary.max_logit);
}

TEST(LogitSignalsTest, MaskedTokensNextToTheMaximumContributeNothing) {
  // -inf on either side of the maximum and in the 16-lane tail.
  std::vector<float> z = {kNegInf, 1.0f, kNegInf, 0.0f, kNegInf};
  const Signals s = LogitSignals(z);
  const Signals t = LogitSignals({1.0f, 0.0f});
  EXPECT_EQ(s.entropy, t.entropy);
  EXPECT_EQ(s.varentropy, t.varentropy);
}

TEST(LogitSignalsTest, ShiftingAllLogitsChangesNothing) {
  // Multiples of 1/1024 in [-16, 16]: adding 64 is exact in float, so the
  // shifted row has bit-identical d = z - max and identical signals.
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> step(-16 * 1024, 16 * 1024);
  std::vector<float> z(40000), shifted(40000);
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = static_cast<float>(step(gen)) / 1024.0f;
    shifted[i] = z[i] + 64.0f;
  }
  LogitSummary a, b;
  const Signals s = LogitSignals(z, &a);
  const Signals t = LogitSignals(shifted, &b);
  EXPECT_EQ(s.entropy, t.entropy);
  EXPECT_EQ(s.varentropy, t.varentropy);
  EXPECT_EQ(a.argmax, b.argmax);
  EXPECT_NEAR(b.log_normalizer - a.log_normalizer, 64.0, 1e-9);
}

TEST(LogitSignalsTest, LargeVocabularyMatchesLongDoubleReference) {
  // 151936 tokens (Qwen2): Gaussian logits plus a few strong candidates and
  // masked tokens, at several temperatures of peakedness.
  for (float sigma : {0.5f, 2.0f, 4.0f, 8.0f}) {
    SCOPED_TRACE(sigma);
    std::vector<float> z = RandomLogits(151936, sigma, 42);
    z[100] += 6 * sigma;
    z[151000] += 5 * sigma;
    for (size_t i = 17; i < z.size(); i += 997) z[i] = kNegInf;
    const Reference ref = ReferenceSignals(z);
    LogitSummary summary;
    const Signals s = LogitSignals(z, &summary);
    EXPECT_NEAR(s.entropy, static_cast<double>(ref.entropy), 2e-6 * ref.entropy);
    EXPECT_NEAR(s.varentropy, static_cast<double>(ref.varentropy), 1e-5 * ref.varentropy + 1e-6);
    EXPECT_NEAR(summary.log_normalizer, static_cast<double>(ref.log_normalizer), 1e-6);
  }
}

TEST(LogitSignalsTest, NarrowPlateauVarentropyDoesNotCancel) {
  // Nearly all mass on a plateau of width 2e-3 just below the maximum:
  // Var(d) ~ 2e-5 while E[d^2] ~ 1, so the naive E[d^2] - E[d]^2 keeps ~2
  // digits (measured: 5% off at offset -1); the centred pass keeps ~6.
  for (float offset : {-1.0f, -2.0f, -3.0f, -7.0f}) {
    SCOPED_TRACE(offset);
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> jitter(-0.001f, 0.001f);
    std::vector<float> z(151936);
    for (float& v : z) v = offset + jitter(gen);
    z[5] = 0.0f;
    const Reference ref = ReferenceSignals(z);
    const Signals s = LogitSignals(z);
    EXPECT_NEAR(s.entropy, static_cast<double>(ref.entropy), 1e-6 * ref.entropy);
    EXPECT_NEAR(s.varentropy, static_cast<double>(ref.varentropy), 1e-5 * ref.varentropy);
  }
}

TEST(LogitSignalsTest, SummaryHoldsLowestArgmaxMaxAndLogNormalizer) {
  const std::vector<float> z = {1.0f, 3.0f, 3.0f, kNegInf, 2.0f};
  LogitSummary summary;
  LogitSignals(z, &summary);
  EXPECT_EQ(summary.argmax, 1);
  EXPECT_EQ(summary.max_logit, 3.0f);
  EXPECT_EQ(summary.finite, 4);
  const double lse = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(summary.log_normalizer, lse, 1e-6);
}

TEST(LogitSignalsTest, ArgmaxIsTheLowestIndexAcrossBlocks) {
  std::vector<float> z = RandomLogits(10000, 1.0f, 5);
  z[9000] = 50.0f;
  z[2047] = 50.0f;  // last element of the second 1024-block
  z[4096] = 50.0f;
  LogitSummary summary;
  LogitSignals(z, &summary);
  EXPECT_EQ(summary.argmax, 2047);
  EXPECT_EQ(summary.max_logit, 50.0f);
  EXPECT_EQ(summary.finite, 10000);
}

TEST(LogitSignalsTest, ArgmaxTreatsNegativeZeroAsEqualToZero) {
  LogitSummary summary;
  LogitSignals({-1.0f, -0.0f, 0.0f}, &summary);
  EXPECT_EQ(summary.argmax, 1);
  EXPECT_EQ(summary.max_logit, 0.0f);
}

TEST(LogitSignalsTest, ArgmaxOfNegativeLogits) {
  LogitSummary summary;
  LogitSignals({-5.0f, -3.5f, -4.0f, kNegInf, -3.5f}, &summary);
  EXPECT_EQ(summary.argmax, 1);
  EXPECT_EQ(summary.max_logit, -3.5f);
  EXPECT_EQ(summary.finite, 4);
}

TEST(LogitSignalsTest, SummaryMayBeNull) {
  Signals s;
  ComputeLogitSignals(std::vector<float>{0.0f, 0.0f}, &s, nullptr);
  EXPECT_EQ(s.entropy, 1.0f);
}

TEST(LogitSignalsTest, InputOutsideTheContractDoesNotCrash) {
  LogitSummary summary;
  Signals s = LogitSignals({}, &summary);
  EXPECT_EQ(s.entropy, 0.0f);
  EXPECT_EQ(summary.argmax, -1);
  s = LogitSignals({kNegInf, kNegInf}, &summary);
  EXPECT_EQ(s.entropy, 0.0f);
  EXPECT_EQ(s.varentropy, 0.0f);
  EXPECT_EQ(summary.finite, 0);
  EXPECT_EQ(summary.log_normalizer, -std::numeric_limits<double>::infinity());
}

TEST(LogitSignalsTest, ExtremeButFiniteLogitsStayFinite) {
  const float big = std::numeric_limits<float>::max();
  LogitSummary summary;
  const Signals s = LogitSignals({big, -big, 0.0f, big}, &summary);
  // Two tokens at the maximum, the others at p = 0: exactly one bit.
  EXPECT_EQ(s.entropy, 1.0f);
  EXPECT_EQ(s.varentropy, 0.0f);
  EXPECT_EQ(summary.argmax, 0);
}

TEST(LogitSignalsTest, SameRowGivesBitIdenticalSignalsOnEveryThread) {
  const std::vector<float> z = RandomLogits(128256, 3.0f, 9);
  const std::vector<float> att = RandomLogits(8 * 1000, 2.0f, 10);
  const Signals want = ComputeSignals(z, att, 8, 1000);
  std::vector<Signals> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) got[t] = ComputeSignals(z, att, 8, 1000);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const Signals& s : got) {
    EXPECT_EQ(s.entropy, want.entropy);
    EXPECT_EQ(s.varentropy, want.varentropy);
    EXPECT_EQ(s.attn_entropy, want.attn_entropy);
    EXPECT_EQ(s.agreement, want.agreement);
  }
}

// --- Attention --------------------------------------------------------------

TEST(AttentionSignalsTest, UniformScoresGiveLog2KeysAndFullAgreement) {
  for (int32_t keys : {1, 3, 16, 300, 4096}) {
    SCOPED_TRACE(keys);
    const int32_t heads = 4;
    const std::vector<float> scores(static_cast<size_t>(heads * keys), 0.5f);
    Signals s;
    ComputeAttentionSignals(scores, heads, keys, &s);
    EXPECT_TRUE(s.has_attention);
    EXPECT_NEAR(s.attn_entropy, std::log2(static_cast<double>(keys)), 1e-5);
    EXPECT_EQ(s.attn_varentropy, 0.0f);
    EXPECT_EQ(s.attn_entropy_spread, 0.0f);
    EXPECT_EQ(s.agreement, 0.0f);
    EXPECT_EQ(s.interaction_strength, 0.5f);
  }
}

// Head 0: scores (0, 0, 0, 0) -> a = (1/4, 1/4, 1/4, 1/4), H = 2, V = 0.
// Head 1: scores (ln4 - 1, ln2 - 1, -1, -1) -> a = (1/2, 1/4, 1/8, 1/8),
//   H = 1.75, V = 0.6875 (see the dyadic logits test).
// attn_entropy = (2 + 1.75) / 2 = 1.875; attn_varentropy = 0.6875 / 2;
// spread = population variance of (2, 1.75) = 0.125^2 = 0.015625.
// Per-key mean over heads: (3/8, 1/4, 3/16, 3/16); |a - mean| is
// (1/8, 0, 1/16, 1/16) for both heads, sum 1/2 over 8 cells: 1/16.
// interaction strength = (|ln4 - 1| + |ln2 - 1| + 1 + 1) / 8.
TEST(AttentionSignalsTest, TwoHeadsWithKnownDistributions) {
  const double ln2 = std::log(2.0);
  const std::vector<float> scores = {
      0.0f,  0.0f, 0.0f, 0.0f, static_cast<float>(2 * ln2 - 1), static_cast<float>(ln2 - 1),
      -1.0f, -1.0f};
  Signals s;
  ComputeAttentionSignals(scores, 2, 4, &s);
  ASSERT_TRUE(s.has_attention);
  EXPECT_NEAR(s.attn_entropy, 1.875, 1e-6);
  EXPECT_NEAR(s.attn_varentropy, 0.34375, 1e-6);
  EXPECT_NEAR(s.attn_entropy_spread, 0.015625, 1e-6);
  EXPECT_NEAR(s.agreement, 0.0625, 1e-7);
  EXPECT_NEAR(s.interaction_strength, ((2 * ln2 - 1) + (1 - ln2) + 2) / 8, 1e-7);
}

TEST(AttentionSignalsTest, OneHeadHasNoSpreadAndFullAgreement) {
  const std::vector<float> scores = RandomLogits(777, 3.0f, 21);
  Signals s;
  ComputeAttentionSignals(scores, 1, 777, &s);
  EXPECT_EQ(s.attn_entropy_spread, 0.0f);
  EXPECT_EQ(s.agreement, 0.0f);
  // And the per-head entropy is the logits entropy of the same scores.
  Signals logits;
  ComputeLogitSignals(scores, &logits, nullptr);
  EXPECT_NEAR(s.attn_entropy, logits.entropy, 1e-6 * logits.entropy);
  EXPECT_NEAR(s.attn_varentropy, logits.varentropy, 1e-6 * logits.varentropy);
}

TEST(AttentionSignalsTest, DisjointOneHotHeadsDisagreeMaximally) {
  // Head h puts (almost) all mass on key h: a_hk ~ [h == k]. Per-key mean is
  // 1/H; |a - mean| sums to 2 (H - 1) / H per head, so agreement =
  // 2 (H - 1) / (H * keys).
  const int32_t heads = 4, keys = 8;
  std::vector<float> scores(heads * keys, -100.0f);
  for (int32_t h = 0; h < heads; ++h) scores[h * keys + h] = 0.0f;
  Signals s;
  ComputeAttentionSignals(scores, heads, keys, &s);
  EXPECT_NEAR(s.attn_entropy, 0.0, 1e-6);
  EXPECT_NEAR(s.agreement, 2.0 * (heads - 1) / (heads * keys), 1e-7);
  EXPECT_NEAR(s.interaction_strength, 100.0 * (keys - 1) / keys, 1e-4);
}

TEST(AttentionSignalsTest, SizeMismatchLeavesNoAttention) {
  Signals s;
  s.has_attention = true;
  ComputeAttentionSignals(std::vector<float>(10, 0.0f), 3, 4, &s);
  EXPECT_FALSE(s.has_attention);
  ComputeAttentionSignals(std::vector<float>(12, 0.0f), 0, 12, &s);
  EXPECT_FALSE(s.has_attention);
}

TEST(ComputeSignalsTest, CombinesLogitsAndAttention) {
  const std::vector<float> z = {0.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> att(2 * 8, 1.0f);
  LogitSummary summary;
  const Signals s = ComputeSignals(z, att, 2, 8, &summary);
  EXPECT_EQ(s.entropy, 2.0f);
  EXPECT_TRUE(s.has_attention);
  EXPECT_NEAR(s.attn_entropy, 3.0, 1e-6);
  EXPECT_EQ(s.interaction_strength, 1.0f);
  EXPECT_EQ(summary.finite, 4);
}

TEST(ComputeSignalsTest, NoAttentionLeavesAttentionFieldsUnset) {
  const Signals s = ComputeSignals(std::vector<float>{1.0f, 2.0f}, {}, 0, 0);
  EXPECT_FALSE(s.has_attention);
  EXPECT_EQ(s.attn_entropy, 0.0f);
  EXPECT_GT(s.entropy, 0.0f);
}

}  // namespace
}  // namespace entroserve
