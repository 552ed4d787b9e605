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
  long double max = 0;
  long double log_sum = 0;  // ln sum exp(z - max)

  // ln p of a token of logit `v`, shifted first (exact for huge logits).
  long double LogP(float v) const { return (static_cast<long double>(v) - max) - log_sum; }
};

Reference ReferenceSignals(const std::vector<float>& z) {
  Reference ref;
  ref.max = -std::numeric_limits<long double>::infinity();
  for (float v : z) ref.max = std::max<long double>(ref.max, v);
  long double sum = 0;
  for (float v : z) {
    if (v != kNegInf) sum += std::exp(static_cast<long double>(v) - ref.max);
  }
  ref.log_sum = std::log(sum);
  ref.log_normalizer = ref.max + ref.log_sum;
  for (float v : z) {
    if (v == kNegInf) continue;
    const long double log_p = ref.LogP(v);
    ref.entropy -= std::exp(log_p) * log_p / kLn2L;
  }
  for (float v : z) {
    if (v == kNegInf) continue;
    const long double log_p = ref.LogP(v);
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

// --- Precision (signals.h): 1e-5 relative or 1e-6 absolute, always finite ---

// |got - want| within signals.h's promise.
::testing::AssertionResult WithinPromise(double got, long double want) {
  const long double error = std::fabs(static_cast<long double>(got) - want);
  if (std::isfinite(got) && (error <= 1e-5L * std::fabs(want) || error <= 1e-6L)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got " << got << ", want " << static_cast<double>(want) << ", relative error "
         << static_cast<double>(error / std::fabs(want));
}

// Every logit signal, the normaliser and the log p of every token of `z`.
void ExpectLogitsWithinPromise(const std::vector<float>& z) {
  const Reference ref = ReferenceSignals(z);
  LogitSummary summary;
  const Signals s = LogitSignals(z, &summary);
  EXPECT_TRUE(WithinPromise(s.entropy, ref.entropy)) << "entropy";
  EXPECT_TRUE(WithinPromise(s.varentropy, ref.varentropy)) << "varentropy";
  EXPECT_TRUE(WithinPromise(summary.log_sum, ref.log_sum)) << "log_sum";
  int bad = 0;
  for (size_t i = 0; i < z.size() && bad < 3; ++i) {
    if (z[i] == kNegInf) continue;
    const long double want =
        std::max<long double>(ref.LogP(z[i]), -std::numeric_limits<float>::max());
    const bool ok = WithinPromise(TokenLogProbFloat(summary, z[i]), want);
    EXPECT_TRUE(ok) << "log p of token " << i;
    bad += !ok;
  }
}

TEST(SignalsPrecisionTest, APeakedRowWhereverThePeakSits) {
  // V = 1000, one logit 15.5 and the rest 0: p(top) = 1 - 1.8e-4. Summed in
  // float lanes with the top's e = 1, H was ~1e-3 and log p(top) 2-6% off.
  for (int at : {0, 1, 15, 16, 17, 500, 999}) {
    SCOPED_TRACE(at);
    std::vector<float> z(1000, 0.0f);
    z[static_cast<size_t>(at)] = 15.5f;
    ExpectLogitsWithinPromise(z);
  }
  for (float peak : {5.0f, 10.0f, 20.0f, 30.0f, 60.0f, 85.0f}) {
    SCOPED_TRACE(peak);
    std::vector<float> z = RandomLogits(151936, 1.0f, 9);
    z[77777] = peak;
    ExpectLogitsWithinPromise(z);
  }
}

TEST(SignalsPrecisionTest, LogitsTiedAtHugeValues) {
  // Two logits tied at 1e30: log p = -ln 2 each, not 0.
  std::vector<float> z = {1e30f, 0.0f, 1e30f, -1e30f};
  LogitSummary summary;
  const Signals s = LogitSignals(z, &summary);
  EXPECT_EQ(s.entropy, 1.0f);
  EXPECT_NEAR(TokenLogProb(summary, 1e30f), -std::log(2.0), 1e-15);
  ExpectLogitsWithinPromise(z);
  const float big = std::numeric_limits<float>::max();
  ExpectLogitsWithinPromise({big, -big, big * 0.999999f, 0.0f, big});
  ExpectLogitsWithinPromise({-big, -big * 0.9999999f, -big});
  ExpectLogitsWithinPromise({1e-38f, -1e-38f, 1e-45f, 0.0f});
  ExpectLogitsWithinPromise({3.0f, kNegInf, 3.0f - 1e-6f, kNegInf});
}

TEST(SignalsPrecisionTest, RandomRowsOfEveryScale) {
  for (float sigma : {1e-6f, 1e-3f, 0.1f, 1.0f, 10.0f, 100.0f, 1e4f}) {
    SCOPED_TRACE(sigma);
    ExpectLogitsWithinPromise(RandomLogits(32000, sigma, 5));
    std::vector<float> z = RandomLogits(4097, sigma, 6);
    for (float& v : z) v += 1e6f;  // a large common offset
    ExpectLogitsWithinPromise(z);
  }
}

// The attention signals of scores [heads, keys] in long double.
Signals ReferenceAttention(const std::vector<float>& scores, int heads, int keys) {
  std::vector<long double> entropy(static_cast<size_t>(heads));
  std::vector<long double> probs(scores.size());
  long double varentropy = 0, abs_sum = 0;
  for (int h = 0; h < heads; ++h) {
    const std::vector<float> row(scores.begin() + h * keys, scores.begin() + (h + 1) * keys);
    const Reference ref = ReferenceSignals(row);
    entropy[static_cast<size_t>(h)] = ref.entropy;
    varentropy += ref.varentropy;
    for (int k = 0; k < keys; ++k) {
      probs[static_cast<size_t>(h * keys + k)] = std::exp(ref.LogP(row[static_cast<size_t>(k)]));
      abs_sum += std::fabs(static_cast<long double>(row[static_cast<size_t>(k)]));
    }
  }
  long double mean = 0, spread = 0, agreement = 0;
  for (long double e : entropy) mean += e / heads;
  for (long double e : entropy) spread += (e - mean) * (e - mean) / heads;
  for (int k = 0; k < keys; ++k) {
    long double key_mean = 0;
    for (int h = 0; h < heads; ++h) key_mean += probs[static_cast<size_t>(h * keys + k)] / heads;
    for (int h = 0; h < heads; ++h) {
      agreement += std::fabs(probs[static_cast<size_t>(h * keys + k)] - key_mean);
    }
  }
  const long double cells = static_cast<long double>(heads) * keys;
  Signals out;
  out.attn_entropy = static_cast<float>(mean);
  out.attn_varentropy = static_cast<float>(varentropy / heads);
  out.attn_entropy_spread = static_cast<float>(spread);
  out.agreement = static_cast<float>(agreement / cells);
  out.interaction_strength = static_cast<float>(abs_sum / cells);
  return out;
}

void ExpectAttentionWithinPromise(const std::vector<float>& scores, int heads, int keys) {
  const Signals want = ReferenceAttention(scores, heads, keys);
  Signals s;
  ComputeAttentionSignals(scores, heads, keys, &s);
  ASSERT_TRUE(s.has_attention);
  EXPECT_TRUE(WithinPromise(s.attn_entropy, want.attn_entropy)) << "attn_entropy";
  EXPECT_TRUE(WithinPromise(s.attn_varentropy, want.attn_varentropy)) << "attn_varentropy";
  EXPECT_TRUE(WithinPromise(s.attn_entropy_spread, want.attn_entropy_spread)) << "spread";
  EXPECT_TRUE(WithinPromise(s.agreement, want.agreement)) << "agreement";
  EXPECT_TRUE(WithinPromise(s.interaction_strength, want.interaction_strength))
      << "interaction_strength";
}

TEST(SignalsPrecisionTest, AttentionScoresNearTheFloatMaximum) {
  // Finite scores whose float sum overflows: interaction_strength was +inf.
  const float big = std::numeric_limits<float>::max();
  ExpectAttentionWithinPromise({big, big, -big, big * 0.5f, big, -big, 0.0f, big}, 2, 4);
  std::vector<float> scores = RandomLogits(4 * 2048, 1.0f, 8);
  for (float& v : scores) v *= 3e37f;
  ExpectAttentionWithinPromise(scores, 4, 2048);
}

TEST(SignalsPrecisionTest, PeakedAndRandomAttention) {
  std::vector<float> scores(8 * 1000, 0.0f);
  for (int h = 0; h < 8; ++h) scores[static_cast<size_t>(h * 1000 + h * 37)] = 15.5f + h;
  ExpectAttentionWithinPromise(scores, 8, 1000);
  for (float sigma : {1e-3f, 1.0f, 30.0f}) {
    SCOPED_TRACE(sigma);
    ExpectAttentionWithinPromise(RandomLogits(32 * 4096, sigma, 11), 32, 4096);
  }
}

}  // namespace
}  // namespace entroserve
