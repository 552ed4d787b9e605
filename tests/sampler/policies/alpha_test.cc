#include "sampler/policies/alpha.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/core/rng.h"
#include "sampler/core/signals.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------
// alpha and its window.

TEST(ComputeAlphaTest, ExactValueInBits) {
  Signals s;
  s.entropy = 3.0f;
  s.varentropy = 2.0f;
  s.has_attention = true;
  s.attn_entropy = 2.0f;
  s.attn_varentropy = 1.5f;
  // V = 1024 (log2 10), L = 16 (log2 4):
  // 0.4*3/10 + 0.2*2/100 + 0.3*2/4 + 0.1*1.5/16 = 0.12 + 0.004 + 0.15 + 0.009375.
  EXPECT_NEAR(ComputeAlpha(AlphaConfig{}, s, 1024, 16), 0.283375, 1e-7);
  // Without attention, or with a single key (log2 1 = 0), only the logit terms.
  EXPECT_NEAR(ComputeAlpha(AlphaConfig{}, s, 1024, 1), 0.124, 1e-7);
  s.has_attention = false;
  EXPECT_NEAR(ComputeAlpha(AlphaConfig{}, s, 1024, 16), 0.124, 1e-7);
}

TEST(ComputeAlphaTest, UsesTheConfiguredWeights) {
  AlphaConfig config;
  config.entropy_weight = 1.0f;
  config.varentropy_weight = 0.0f;
  config.attn_entropy_weight = 0.0f;
  config.attn_varentropy_weight = 2.0f;
  Signals s;
  s.entropy = 4.0f;
  s.varentropy = 100.0f;
  s.has_attention = true;
  s.attn_entropy = 7.0f;
  s.attn_varentropy = 8.0f;
  // 1*4/8 + 2*8/(3*3) with V = 256, L = 8.
  EXPECT_NEAR(ComputeAlpha(config, s, 256, 8), 0.5 + 16.0 / 9.0, 1e-6);
  // A single-token vocabulary has no logit terms.
  EXPECT_NEAR(ComputeAlpha(config, s, 1, 8), 16.0 / 9.0, 1e-6);
}

TEST(PushAlphaTest, KeepsTheLastWindowValuesAndReturnsTheirMean) {
  AlphaConfig config;
  config.window = 3;
  std::vector<float> window;
  EXPECT_FLOAT_EQ(PushAlpha(config, 1.0f, &window), 1.0f);
  EXPECT_FLOAT_EQ(PushAlpha(config, 2.0f, &window), 1.5f);
  EXPECT_FLOAT_EQ(PushAlpha(config, 3.0f, &window), 2.0f);
  EXPECT_FLOAT_EQ(PushAlpha(config, 7.0f, &window), 4.0f);
  EXPECT_EQ(window, (std::vector<float>{2.0f, 3.0f, 7.0f}));
  config.window = 1;  // a smaller window trims what the state brought
  EXPECT_FLOAT_EQ(PushAlpha(config, 5.0f, &window), 5.0f);
  EXPECT_EQ(window, std::vector<float>{5.0f});
}

// ---------------------------------------------------------------------------
// Pool and filter.

TEST(AlphaPoolTest, PenalisedTokensAreTheDistinctRecentOnesAndFreeTokensTheBestOthers) {
  AlphaConfig config;
  config.max_top_k = 3;
  config.repetition_window = 4;
  const std::vector<float> z = {5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f, -1.0f, kNegInf};
  // Only the last 4 count; 99 is outside the vocabulary, 7 is masked.
  const std::vector<int32_t> history = {3, 1, 99, 1, 7};
  const AlphaPool pool = BuildAlphaPool(config, z, history);
  EXPECT_EQ(pool.vocab_size, 8);
  ASSERT_EQ(pool.penalised_tokens.size(), 1u);
  EXPECT_EQ(pool.penalised_tokens[0].id, 1);
  ASSERT_EQ(pool.free_tokens.size(), 3u);
  EXPECT_EQ(pool.free_tokens[0].id, 0);
  EXPECT_EQ(pool.free_tokens[1].id, 2);
  EXPECT_EQ(pool.free_tokens[2].id, 3);  // 3 fell out of the window: free again
}

TEST(AlphaPoolTest, PoolIsSmallForALargeVocabulary) {
  std::mt19937 gen(4);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> z(152064);
  for (float& v : z) v = normal(gen);
  std::vector<int32_t> history;
  for (int i = 0; i < 300; ++i) history.push_back((i * 7919) % 152064);
  const AlphaConfig config;
  const AlphaPool pool = BuildAlphaPool(config, z, history);
  EXPECT_EQ(pool.free_tokens.size(), static_cast<size_t>(config.max_top_k));
  EXPECT_LE(pool.penalised_tokens.size(), static_cast<size_t>(config.repetition_window));
  // The free tokens are the best unpenalised ones.
  float worst_free = pool.free_tokens.back().logit;
  int better_unpenalised = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    const bool penalised = std::find(history.end() - config.repetition_window, history.end(),
                                     static_cast<int32_t>(i)) != history.end();
    better_unpenalised += !penalised && z[i] > worst_free;
  }
  EXPECT_EQ(better_unpenalised, config.max_top_k - 1);
}

TEST(AlphaPoolTest, HugeMaxTopKIsBoundedByTheVocabulary) {
  AlphaConfig config;
  config.max_top_k = std::numeric_limits<int32_t>::max() - 1000;
  ASSERT_TRUE(config.Validate().ok());
  const std::vector<float> z = {1.0f, 3.0f, 2.0f};
  const AlphaPool pool = BuildAlphaPool(config, z, std::vector<int32_t>{2});
  EXPECT_EQ(pool.free_tokens.size(), 2u);
  EXPECT_EQ(pool.penalised_tokens.size(), 1u);
  const AlphaSearchResult r = SearchAlphaParameters(config, pool, 0.3);
  EXPECT_LE(r.objective, r.initial_objective);
}

TEST(PenalizeLogitTest, DividesPositiveAndMultipliesNegativeLogits) {
  EXPECT_FLOAT_EQ(PenalizeLogit(3.0f, 1.5f), 2.0f);
  EXPECT_FLOAT_EQ(PenalizeLogit(-3.0f, 1.5f), -4.5f);
  EXPECT_FLOAT_EQ(PenalizeLogit(0.0f, 1.5f), 0.0f);
}

AlphaParameters Params(float temperature, int32_t top_k, float top_p, float penalty,
                       int32_t candidate_size) {
  AlphaParameters p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.repetition_penalty = penalty;
  p.candidate_size = candidate_size;
  return p;
}

TEST(FilterAlphaTest, HandComputedDistribution) {
  // z = [2, 1, 0, -1], T = 1, top_k = 3: softmax over the top 3 is
  // [1, e^-1, e^-2] / (1 + e^-1 + e^-2) = [0.665, 0.245, 0.090]; top_p = 0.8:
  // the mass before the third is 0.910 > 0.8, so two remain: [1, e^-1]/(1 + e^-1).
  const std::vector<float> z = {2.0f, 1.0f, 0.0f, -1.0f};
  const AlphaPool pool = BuildAlphaPool(AlphaConfig{}, z, {});
  const AlphaFiltered f = FilterAlpha(pool, Params(1.0f, 3, 0.8f, 1.0f, 5));
  ASSERT_EQ(f.items.size(), 2u);
  const double p0 = 1.0 / (1.0 + std::exp(-1.0));
  EXPECT_EQ(f.items[0].id, 0);
  EXPECT_EQ(f.items[1].id, 1);
  EXPECT_NEAR(f.items[0].p, p0, 1e-7);
  EXPECT_NEAR(f.items[1].p, 1.0 - p0, 1e-7);
  const double h = -(p0 * std::log2(p0) + (1 - p0) * std::log2(1 - p0));
  EXPECT_NEAR(f.entropy_bits, h, 1e-12);
  EXPECT_NEAR(f.normalized_entropy, h / 2.0, 1e-12);  // log2 4 = 2
  // candidate_size 1 leaves the top token alone: entropy 0.
  const AlphaFiltered one = FilterAlpha(pool, Params(1.0f, 3, 0.8f, 1.0f, 1));
  ASSERT_EQ(one.items.size(), 1u);
  EXPECT_EQ(one.entropy_bits, 0.0);
  // Objective = (normalised entropy - target)^2.
  EXPECT_NEAR(AlphaObjective(pool, Params(1.0f, 3, 0.8f, 1.0f, 5), 0.1),
              (h / 2 - 0.1) * (h / 2 - 0.1), 1e-12);
}

TEST(FilterAlphaTest, PenaltyMultipliesNegativeLogits) {
  // Token 1 (logit -1) is penalised by 2: its logit becomes -2, so with T = 1
  // the two remaining tokens have weights [1, e^-2] (not [1, e^-0.5]).
  const std::vector<float> z = {0.0f, -1.0f};
  AlphaConfig config;
  const AlphaPool pool = BuildAlphaPool(config, z, std::vector<int32_t>{1});
  const AlphaFiltered f = FilterAlpha(pool, Params(1.0f, 2, 1.0f, 2.0f, 2));
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[1].id, 1);
  EXPECT_FLOAT_EQ(f.items[1].logit, -2.0f);
  EXPECT_NEAR(f.items[1].p, std::exp(-2.0) / (1 + std::exp(-2.0)), 1e-7);
}

TEST(FilterAlphaTest, PenaltyDividesPositiveLogitsAndReorders) {
  // Token 0 (logit 3) penalised by 2 falls to 1.5, below token 1 (2.0).
  const std::vector<float> z = {3.0f, 2.0f, 1.0f};
  const AlphaPool pool = BuildAlphaPool(AlphaConfig{}, z, std::vector<int32_t>{0});
  const AlphaFiltered f = FilterAlpha(pool, Params(1.0f, 2, 1.0f, 2.0f, 3));
  ASSERT_EQ(f.items.size(), 2u);
  EXPECT_EQ(f.items[0].id, 1);
  EXPECT_EQ(f.items[1].id, 0);
  EXPECT_FLOAT_EQ(f.items[1].logit, 1.5f);
}

// ---------------------------------------------------------------------------
// The search.

// Logits falling slowly from 5: at T = 0.2 the top tokens decay as e^(-0.1 i),
// so top_k = 10 and top_p = 0.8 both bind at the base values.
std::vector<float> Ramp(int n) {
  std::vector<float> z(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) z[static_cast<size_t>(i)] = 5.0f - 0.02f * static_cast<float>(i);
  return z;
}

void ExpectWithinBounds(const AlphaConfig& c, const AlphaParameters& p) {
  EXPECT_GE(p.temperature, c.min_temperature);
  EXPECT_LE(p.temperature, c.max_temperature);
  EXPECT_GE(p.top_k, c.min_top_k);
  EXPECT_LE(p.top_k, c.max_top_k);
  EXPECT_GE(p.top_p, c.min_top_p);
  EXPECT_LE(p.top_p, c.max_top_p);
  EXPECT_GE(p.repetition_penalty, c.min_repetition_penalty);
  EXPECT_LE(p.repetition_penalty, c.max_repetition_penalty);
  EXPECT_GE(p.candidate_size, c.min_candidate_size);
  EXPECT_LE(p.candidate_size, c.max_candidate_size);
}

TEST(SearchAlphaParametersTest, MovesAllFiveParametersWhenTheTargetNeedsIt) {
  // A dominant token that is also the last one generated, then a ramp. The
  // target (0.9 of log2 V) is more than any filtered distribution reaches, so
  // every parameter must move towards more entropy: hotter, wider top_k,
  // top_p and candidate pool, and a stronger penalty on the dominant token.
  std::vector<float> z = Ramp(1024);
  z[0] = 9.0f;
  AlphaConfig config;
  config.tolerance = 0.0f;
  const AlphaPool pool = BuildAlphaPool(config, z, std::vector<int32_t>{0});
  const AlphaParameters base = BaseAlphaParameters(config);
  const AlphaSearchResult r = SearchAlphaParameters(config, pool, 0.9);
  ExpectWithinBounds(config, r.params);
  EXPECT_GT(r.params.temperature, base.temperature);
  EXPECT_GT(r.params.top_k, base.top_k);
  EXPECT_GT(r.params.top_p, base.top_p);
  EXPECT_GT(r.params.repetition_penalty, base.repetition_penalty);
  EXPECT_GT(r.params.candidate_size, base.candidate_size);
  EXPECT_LT(r.objective, r.initial_objective);
  EXPECT_DOUBLE_EQ(r.initial_objective, AlphaObjective(pool, base, 0.9));
  EXPECT_DOUBLE_EQ(r.objective, AlphaObjective(pool, r.params, 0.9));
  // The maximum entropy within the bounds: everything at its upper bound.
  EXPECT_FLOAT_EQ(r.params.temperature, config.max_temperature);
  EXPECT_FLOAT_EQ(r.params.top_p, config.max_top_p);
  EXPECT_FLOAT_EQ(r.params.repetition_penalty, config.max_repetition_penalty);
  EXPECT_EQ(r.params.candidate_size, config.max_candidate_size);
  EXPECT_GE(r.params.top_k, config.max_candidate_size);
}

// A config whose bounds pin every coordinate to `base` except `free_name`.
AlphaConfig PinnedExcept(const AlphaParameters& base, const std::string& free_name) {
  AlphaConfig c;
  c.tolerance = 0.0f;
  c.base_temperature = base.temperature;
  c.base_top_k = base.top_k;
  c.base_top_p = base.top_p;
  c.base_repetition_penalty = base.repetition_penalty;
  c.base_candidate_size = base.candidate_size;
  if (free_name != "temperature") c.min_temperature = c.max_temperature = base.temperature;
  if (free_name != "top_k") c.min_top_k = c.max_top_k = base.top_k;
  if (free_name != "top_p") c.min_top_p = c.max_top_p = base.top_p;
  if (free_name != "repetition_penalty") {
    c.min_repetition_penalty = c.max_repetition_penalty = base.repetition_penalty;
  }
  if (free_name != "candidate_size")
    c.min_candidate_size = c.max_candidate_size = base.candidate_size;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
  return c;
}

TEST(SearchAlphaParametersTest, EachParameterAloneIsSearched) {
  const AlphaParameters defaults = BaseAlphaParameters(AlphaConfig{});
  const std::vector<float> ramp = Ramp(1024);
  // Hotter spreads the top tokens.
  {
    const AlphaConfig c = PinnedExcept(defaults, "temperature");
    const AlphaSearchResult r = SearchAlphaParameters(c, BuildAlphaPool(c, ramp, {}), 0.9);
    EXPECT_GT(r.params.temperature, defaults.temperature);
    EXPECT_LT(r.objective, r.initial_objective);
  }
  // A wider top_k lowers the renormalised head, so top_p keeps more tokens.
  {
    const AlphaConfig c = PinnedExcept(defaults, "top_k");
    const AlphaSearchResult r = SearchAlphaParameters(c, BuildAlphaPool(c, ramp, {}), 0.9);
    EXPECT_GT(r.params.top_k, defaults.top_k);
    EXPECT_LT(r.objective, r.initial_objective);
  }
  // A larger top_p keeps all of the top 10.
  {
    const AlphaConfig c = PinnedExcept(defaults, "top_p");
    const AlphaSearchResult r = SearchAlphaParameters(c, BuildAlphaPool(c, ramp, {}), 0.9);
    EXPECT_GT(r.params.top_p, defaults.top_p);
    EXPECT_LT(r.objective, r.initial_objective);
  }
  // A zero target: one candidate (entropy 0) is the optimum.
  {
    const AlphaConfig c = PinnedExcept(defaults, "candidate_size");
    const AlphaSearchResult r = SearchAlphaParameters(c, BuildAlphaPool(c, ramp, {}), 0.0);
    EXPECT_EQ(r.params.candidate_size, 1);
    EXPECT_EQ(r.objective, 0.0);
    EXPECT_GT(r.initial_objective, 0.0);
  }
  // A penalised dominant token: a stronger penalty spreads the mass.
  {
    AlphaParameters base = defaults;
    base.temperature = 1.0f;
    const AlphaConfig c = PinnedExcept(base, "repetition_penalty");
    std::vector<float> z = Ramp(1024);
    for (float& v : z) v -= 3.0f;  // 2.0 and below
    z[0] = 8.0f;
    const AlphaPool pool = BuildAlphaPool(c, z, std::vector<int32_t>{0});
    const AlphaSearchResult r = SearchAlphaParameters(c, pool, 0.9);
    EXPECT_GT(r.params.repetition_penalty, base.repetition_penalty);
    EXPECT_LT(r.objective, r.initial_objective);
    // A target below the base entropy asks for the weakest penalty: the
    // base (the lower bound) stays.
    const AlphaSearchResult low = SearchAlphaParameters(c, pool, 0.0);
    EXPECT_FLOAT_EQ(low.params.repetition_penalty, base.repetition_penalty);
  }
}

TEST(SearchAlphaParametersTest, ReachesAnAttainableTargetWithinBounds) {
  // A steep ramp (e^(-0.5 i / T)): the temperature alone sweeps the filtered
  // entropy from ~0.05 to ~2.5 bits (0.004 to 0.2 of log2 4096 = 12 bits).
  std::vector<float> z(4096);
  for (int i = 0; i < 4096; ++i) z[static_cast<size_t>(i)] = 5.0f - 0.5f * static_cast<float>(i);
  AlphaConfig config;
  config.tolerance = 1e-6f;
  const AlphaPool pool = BuildAlphaPool(config, z, std::vector<int32_t>{0, 1, 2});
  for (const double target : {0.05, 0.1, 0.15, 0.2}) {
    const AlphaSearchResult r = SearchAlphaParameters(config, pool, target);
    ExpectWithinBounds(config, r.params);
    EXPECT_LT(r.objective, config.tolerance) << "target " << target;
    EXPECT_LT(r.objective, r.initial_objective);
    EXPECT_LE(r.sweeps, config.max_iterations);
    EXPECT_NEAR(FilterAlpha(pool, r.params).normalized_entropy, target, 1e-3);
  }
}

TEST(SearchAlphaParametersTest, StopsAtToleranceAndHonoursMaxIterations) {
  const std::vector<float> z = Ramp(1024);
  AlphaConfig config;
  config.tolerance = 1.0f;  // any objective (<= 1) is good enough: no search
  const AlphaPool pool = BuildAlphaPool(config, z, {});
  AlphaSearchResult r = SearchAlphaParameters(config, pool, 0.9);
  EXPECT_EQ(r.sweeps, 0);
  EXPECT_EQ(r.evaluations, 1);
  EXPECT_EQ(r.params.top_k, BaseAlphaParameters(config).top_k);
  config.tolerance = 0.0f;
  config.max_iterations = 0;
  r = SearchAlphaParameters(config, pool, 0.9);
  EXPECT_EQ(r.sweeps, 0);
  config.max_iterations = 1;
  r = SearchAlphaParameters(config, pool, 0.9);
  EXPECT_EQ(r.sweeps, 1);
  EXPECT_LT(r.objective, r.initial_objective);
}

TEST(SearchAlphaParametersTest, IsDeterministic) {
  std::mt19937 gen(8);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> z(30000);
  for (float& v : z) v = normal(gen);
  AlphaConfig config;
  config.tolerance = 0.0f;
  const std::vector<int32_t> history = {5, 17, 17, 2999};
  const AlphaSearchResult a =
      SearchAlphaParameters(config, BuildAlphaPool(config, z, history), 0.2);
  const AlphaSearchResult b =
      SearchAlphaParameters(config, BuildAlphaPool(config, z, history), 0.2);
  EXPECT_EQ(a.params.temperature, b.params.temperature);
  EXPECT_EQ(a.params.top_k, b.params.top_k);
  EXPECT_EQ(a.params.top_p, b.params.top_p);
  EXPECT_EQ(a.params.repetition_penalty, b.params.repetition_penalty);
  EXPECT_EQ(a.params.candidate_size, b.params.candidate_size);
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.evaluations, b.evaluations);
}

TEST(BaseAlphaParametersTest, ClampsBaseValuesIntoBounds) {
  AlphaConfig config;
  config.base_temperature = 5.0f;
  config.base_top_k = 1;
  config.base_top_p = 0.05f;
  config.base_repetition_penalty = 1.0f;  // the original's base, below the 1.1 floor
  config.base_candidate_size = 1000;
  const AlphaParameters p = BaseAlphaParameters(config);
  EXPECT_FLOAT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_k, 5);
  EXPECT_FLOAT_EQ(p.top_p, 0.1f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.1f);
  EXPECT_EQ(p.candidate_size, 100);
}

// ---------------------------------------------------------------------------
// Validation.

TEST(AlphaConfigTest, DefaultsAreValid) { EXPECT_TRUE(AlphaConfig{}.Validate().ok()); }

TEST(AlphaConfigTest, ErrorsNameFieldAndValue) {
  struct Bad {
    void (*apply)(AlphaConfig&);
    std::string message;
  };
  const Bad cases[] = {
      {[](AlphaConfig& c) { c.window = 0; }, "alpha.window must be >= 1, got 0"},
      {[](AlphaConfig& c) { c.min_temperature = 0.0f; },
       "alpha.min_temperature must be > 0, got 0"},
      {[](AlphaConfig& c) { c.min_temperature = 1e-4f; },
       "alpha.min_temperature must be >= 0.001, got 0.0001"},
      {[](AlphaConfig& c) { c.max_top_k = 4; },
       "alpha.max_top_k must be >= alpha.min_top_k (5), got 4"},
      {[](AlphaConfig& c) { c.max_top_p = 1.5f; }, "alpha.max_top_p must be <= 1, got 1.5"},
      {[](AlphaConfig& c) { c.max_repetition_penalty = 1.0f; },
       "alpha.max_repetition_penalty must be >= alpha.min_repetition_penalty (1.1), got 1"},
      {[](AlphaConfig& c) { c.min_candidate_size = 0; },
       "alpha.min_candidate_size must be >= 1, got 0"},
      {[](AlphaConfig& c) { c.base_temperature = std::nanf(""); },
       "alpha.base_temperature must be finite, got nan"},
      {[](AlphaConfig& c) { c.learning_rate = 0.0f; },
       "alpha.learning_rate must be in [0.001, 1], got 0"},
      {[](AlphaConfig& c) { c.learning_rate = 2.0f; },
       "alpha.learning_rate must be in [0.001, 1], got 2"},
      {[](AlphaConfig& c) { c.tolerance = -1.0f; }, "alpha.tolerance must be >= 0, got -1"},
      {[](AlphaConfig& c) { c.max_iterations = -1; }, "alpha.max_iterations must be >= 0, got -1"},
      {[](AlphaConfig& c) { c.entropy_weight = -0.1f; },
       "alpha.entropy_weight must be >= 0, got -0.1"},
  };
  for (const Bad& bad : cases) {
    AlphaConfig c;
    bad.apply(c);
    EXPECT_EQ(c.Validate().message(), bad.message);
    EXPECT_EQ(c.Validate().code(), absl::StatusCode::kInvalidArgument);
  }
}

// ---------------------------------------------------------------------------
// The sampler.

Row MakeRow(const std::vector<float>& logits, uint64_t seed, int64_t step) {
  Row row;
  row.logits = logits;
  row.seed = seed;
  row.step = step;
  return row;
}

TEST(AlphaSamplerTest, SmoothsAlphaOverTheWindowCarriedInTheState) {
  AlphaConfig config;
  config.window = 3;
  const auto sampler = MakeAlphaSampler(config);
  std::mt19937 gen(2);
  SamplerState state;
  std::vector<float> raw;
  for (int64_t step = 0; step < 6; ++step) {
    std::normal_distribution<float> normal(0.0f, 0.5f + static_cast<float>(step));
    std::vector<float> z(2048);
    for (float& v : z) v = normal(gen);
    std::vector<float> attention(4 * 64);
    for (float& v : attention) v = normal(gen);
    Row row = MakeRow(z, 1, step);
    row.attention = attention;
    row.heads = 4;
    row.keys = 64;
    const absl::StatusOr<RowOutput> out = sampler->Sample(row, state);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_TRUE(out->params.alpha.has_value());
    // The raw alpha is the formula on this row's signals.
    EXPECT_FLOAT_EQ(*out->params.alpha, ComputeAlpha(config, out->signals, 2048, 64));
    raw.push_back(*out->params.alpha);
    const size_t n = std::min<size_t>(raw.size(), 3);
    const std::vector<float> last(raw.end() - static_cast<std::ptrdiff_t>(n), raw.end());
    EXPECT_EQ(state.alpha_window, last);
    double mean = 0;
    for (float a : last) mean += a;
    EXPECT_FLOAT_EQ(*out->params.smoothed_alpha, static_cast<float>(mean / n));
  }
  EXPECT_EQ(state.recent_tokens.size(), 6u);
}

TEST(AlphaSamplerTest, DrawsFromTheFilteredDistributionOfTheChosenParameters) {
  std::mt19937 gen(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> z(5000);
  for (float& v : z) v = normal(gen);
  AlphaConfig config;
  config.tolerance = 1e-6f;
  const auto sampler = MakeAlphaSampler(config);
  for (int64_t step = 0; step < 40; ++step) {
    SamplerState state;
    state.recent_tokens = {1, 2, 3};
    state.alpha_window = {0.3f, 0.5f};
    const SamplerState before = state;
    const absl::StatusOr<RowOutput> out = sampler->Sample(MakeRow(z, 99, step), state);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->mode, Mode::kAlpha);
    EXPECT_FALSE(out->inserted);
    // Redo the step from its pure pieces.
    std::vector<float> window = before.alpha_window;
    const float smoothed = PushAlpha(config, *out->params.alpha, &window);
    EXPECT_EQ(window, state.alpha_window);
    const AlphaPool pool = BuildAlphaPool(config, z, before.recent_tokens);
    const AlphaSearchResult search = SearchAlphaParameters(config, pool, smoothed / 2.0);
    EXPECT_EQ(*out->params.temperature, search.params.temperature);
    EXPECT_EQ(*out->params.top_k, search.params.top_k);
    EXPECT_EQ(*out->params.top_p, search.params.top_p);
    EXPECT_EQ(*out->params.repetition_penalty, search.params.repetition_penalty);
    EXPECT_EQ(*out->params.candidate_size, search.params.candidate_size);
    const AlphaFiltered f = FilterAlpha(pool, search.params);
    EXPECT_EQ(*out->params.candidates, static_cast<int32_t>(f.items.size()));
    const double u = CounterRng(99, step).Uniform(0);
    double cum = 0;
    int32_t want = f.items.back().id;
    for (const Candidate& c : f.items) {
      cum += c.p;
      if (u < cum) {
        want = c.id;
        break;
      }
    }
    EXPECT_EQ(out->token, want);
    // logprob under the unfiltered, unpenalised distribution.
    LogitSummary summary;
    ComputeSignals(z, {}, 0, 0, &summary);
    EXPECT_NEAR(out->logprob, z[static_cast<size_t>(out->token)] - summary.log_normalizer, 1e-5);
    EXPECT_EQ(state.recent_tokens, (std::vector<int32_t>{1, 2, 3, out->token}));
  }
  EXPECT_TRUE(sampler->NeedsState());
  EXPECT_EQ(sampler->Name(), "alpha");
}

TEST(AlphaSamplerTest, SameInputsSameTokenAndStepsDiffer) {
  // Uniform over 64: alpha = 0.4, target 0.2 of 6 bits, about 2.3 tokens' worth.
  std::vector<float> z(64, 0.0f);
  AlphaConfig config;
  config.base_temperature = 1.0f;
  config.base_top_p = 1.0f;
  const auto sampler = MakeAlphaSampler(config);
  std::vector<int32_t> tokens;
  for (int64_t step = 0; step < 32; ++step) {
    SamplerState s1, s2;
    const RowOutput a = *sampler->Sample(MakeRow(z, 5, step), s1);
    const RowOutput b = *sampler->Sample(MakeRow(z, 5, step), s2);
    EXPECT_EQ(a.token, b.token);
    tokens.push_back(a.token);
  }
  std::sort(tokens.begin(), tokens.end());
  EXPECT_GE(std::unique(tokens.begin(), tokens.end()) - tokens.begin(), 2);
}

TEST(AlphaSamplerTest, RejectsMalformedRows) {
  const auto sampler = MakeAlphaSampler(AlphaConfig{});
  SamplerState state;
  EXPECT_FALSE(sampler->Sample(Row{}, state).ok());
  const std::vector<float> masked = {kNegInf, kNegInf};
  EXPECT_FALSE(sampler->Sample(MakeRow(masked, 1, 0), state).ok());
  EXPECT_TRUE(state.alpha_window.empty());
}

}  // namespace
}  // namespace entroserve
