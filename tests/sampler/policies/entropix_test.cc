#include "sampler/policies/entropix.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/core/rng.h"
#include "sampler/core/signals.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float Above(float x) { return std::nextafter(x, std::numeric_limits<float>::infinity()); }
float Below(float x) { return std::nextafter(x, -std::numeric_limits<float>::infinity()); }

// Attention signals with every term non-zero, so that each formula's
// attention coefficient shows in the expected values.
Signals WithAttention(float entropy, float varentropy) {
  Signals s;
  s.entropy = entropy;
  s.varentropy = varentropy;
  s.has_attention = true;
  s.attn_entropy = 2.5f;
  s.attn_varentropy = 1.2f;
  s.attn_entropy_spread = 0.7f;
  s.agreement = 0.3f;
  s.interaction_strength = 1.7f;
  return s;
}

// ---------------------------------------------------------------------------
// The expected decision of every mode, written out from docs/SAMPLERS.md "entropix" with
// the config's fields (float arithmetic, as the policy).

EntropixDecision Base(const EntropixConfig& c) {
  EntropixDecision d;
  d.temperature = c.temperature;
  d.top_k = c.top_k;
  d.top_p = c.top_p;
  d.min_p = c.min_p;
  d.samples = 1;
  return d;
}

float AttnVarentropy(const EntropixConfig& c, const Signals& s) {
  if (!s.has_attention) return 0.0f;
  return c.attn_varentropy_is_spread ? s.attn_entropy_spread : s.attn_varentropy;
}

EntropixDecision ExpectFlowing(const EntropixConfig& c, const Signals&) {
  EntropixDecision d = Base(c);
  d.mode = Mode::kFlowing;
  d.argmax = true;
  return d;
}

EntropixDecision ExpectClarifySampled(const EntropixConfig& c, const Signals& s) {
  EntropixDecision d = Base(c);
  d.mode = Mode::kClarify;
  const float attn_ent = s.has_attention ? s.attn_entropy : 0.0f;
  d.temperature = std::min(
      c.clarify_max_temperature,
      c.temperature * (c.clarify_attn_entropy_offset + c.clarify_attn_entropy_coef * attn_ent));
  return d;
}

EntropixDecision ExpectExplore(const EntropixConfig& c, const Signals& s) {
  EntropixDecision d = Base(c);
  d.mode = Mode::kExplore;
  const float strength = s.has_attention ? s.interaction_strength : 0.0f;
  const float agreement = s.has_attention ? s.agreement : 0.0f;
  d.temperature =
      std::min(c.explore_max_temperature,
               c.temperature * (c.explore_strength_offset + c.explore_strength_coef * strength));
  d.top_k =
      std::max(c.explore_min_top_k,
               static_cast<int32_t>(static_cast<float>(c.top_k) *
                                    (1.0f + c.explore_top_k_agreement_coef * (1.0f - agreement))));
  return d;
}

EntropixDecision ExpectResample(const EntropixConfig& c, const Signals& s) {
  EntropixDecision d = Base(c);
  d.mode = Mode::kResample;
  const float attn_ent = s.has_attention ? s.attn_entropy : 0.0f;
  d.temperature =
      std::max(c.resample_min_temperature,
               c.temperature * (c.resample_attn_varentropy_offset +
                                c.resample_attn_varentropy_coef * AttnVarentropy(c, s)));
  d.top_p = std::max(c.resample_min_top_p, c.top_p - c.resample_top_p_attn_entropy_coef * attn_ent);
  return d;
}

EntropixDecision ExpectAdaptive(const EntropixConfig& c, const Signals& s) {
  EntropixDecision d = Base(c);
  d.mode = Mode::kAdaptive;
  const float attn_ent = s.has_attention ? s.attn_entropy : 0.0f;
  const float attn_vent = AttnVarentropy(c, s);
  const float agreement = s.has_attention ? s.agreement : 0.0f;
  const float strength = s.has_attention ? s.interaction_strength : 0.0f;
  const float logit_u = s.entropy + s.varentropy;
  d.temperature = c.temperature * (1.0f + c.adaptive_logit_uncertainty_coef * logit_u +
                                   c.adaptive_attn_uncertainty_coef * (attn_ent + attn_vent) -
                                   c.adaptive_agreement_coef * agreement);
  d.top_p =
      std::clamp(c.top_p * (1.0f + c.adaptive_top_p_attn_varentropy_coef * attn_vent), 0.1f, 1.0f);
  const float k = std::nearbyint(static_cast<float>(c.top_k) *
                                 (1.0f + c.adaptive_top_k_strength_coef * strength -
                                  c.adaptive_top_k_agreement_coef * agreement));
  d.top_k = static_cast<int32_t>(std::clamp(k, 1.0f, static_cast<float>(c.adaptive_max_top_k)));
  d.min_p = std::clamp(c.min_p * (1.0f - c.adaptive_min_p_uncertainty_coef * logit_u), 0.01f, 0.5f);
  d.samples = c.adaptive_samples;
  return d;
}

void ExpectDecision(const EntropixDecision& got, const EntropixDecision& want,
                    const std::string& label) {
  EXPECT_EQ(got.mode, want.mode) << label << ": got " << ModeName(got.mode);
  EXPECT_EQ(got.argmax, want.argmax) << label;
  EXPECT_EQ(got.insert_token, want.insert_token) << label;
  if (want.argmax || want.insert_token.has_value()) return;
  EXPECT_FLOAT_EQ(got.temperature, want.temperature) << label;
  EXPECT_EQ(got.top_k, want.top_k) << label;
  EXPECT_FLOAT_EQ(got.top_p, want.top_p) << label;
  EXPECT_FLOAT_EQ(got.min_p, want.min_p) << label;
  EXPECT_EQ(got.samples, want.samples) << label;
}

struct PolicyCase {
  std::string label;
  float entropy;
  float varentropy;
  EntropixDecision (*expect)(const EntropixConfig&, const Signals&);
};

// Both sides of every threshold with the default config (low_entropy 0.1,
// low_varentropy 0.1, medium_entropy 3, high_entropy 5, high_varentropy 5).
std::vector<PolicyCase> ThresholdCases(const EntropixConfig& c) {
  return {
      // low_entropy (flowing needs H < 0.1).
      {"H just below low_entropy", Below(c.low_entropy), 0.05f, ExpectFlowing},
      {"H at low_entropy", c.low_entropy, 0.05f, ExpectAdaptive},
      // low_varentropy (flowing and clarify need V < 0.1).
      {"V just below low_varentropy, low H", 0.05f, Below(c.low_varentropy), ExpectFlowing},
      {"V at low_varentropy, low H", 0.05f, c.low_varentropy, ExpectAdaptive},
      {"V just below low_varentropy, high H", 4.0f, Below(c.low_varentropy), ExpectClarifySampled},
      {"V at low_varentropy, high H", 4.0f, c.low_varentropy, ExpectAdaptive},
      // medium_entropy (clarify needs H > 3).
      {"H just above medium_entropy", Above(c.medium_entropy), 0.05f, ExpectClarifySampled},
      {"H at medium_entropy", c.medium_entropy, 0.05f, ExpectAdaptive},
      // high_entropy: explore needs H < 5, resample H > 5; H == 5 is neither.
      {"H just below high_entropy, high V", Below(c.high_entropy), 6.0f, ExpectExplore},
      {"H at high_entropy, high V", c.high_entropy, 6.0f, ExpectAdaptive},
      {"H just above high_entropy, high V", Above(c.high_entropy), 6.0f, ExpectResample},
      // high_varentropy: explore and resample need V > 5.
      {"V just above high_varentropy, low H", 2.0f, Above(c.high_varentropy), ExpectExplore},
      {"V at high_varentropy, low H", 2.0f, c.high_varentropy, ExpectAdaptive},
      {"V just above high_varentropy, high H", 6.0f, Above(c.high_varentropy), ExpectResample},
      {"V at high_varentropy, high H", 6.0f, c.high_varentropy, ExpectAdaptive},
      // First match wins: H > 5 with V < 0.1 is clarify, not resample's H.
      {"high H low V is clarify", 6.0f, 0.05f, ExpectClarifySampled},
      // Middle ground.
      {"middle", 2.0f, 3.0f, ExpectAdaptive},
      {"high H, middle V", 6.0f, 3.0f, ExpectAdaptive},
  };
}

TEST(DecideEntropixTest, BothSidesOfEveryThresholdWithAttention) {
  const EntropixConfig config;
  for (const PolicyCase& c : ThresholdCases(config)) {
    const Signals s = WithAttention(c.entropy, c.varentropy);
    // last_inserted = true so that clarify samples (insertion is tested below).
    ExpectDecision(DecideEntropix(config, s, /*last_inserted=*/true, SpecialTokens{}),
                   c.expect(config, s), c.label);
  }
}

TEST(DecideEntropixTest, BothSidesOfEveryThresholdWithoutAttention) {
  const EntropixConfig config;
  for (const PolicyCase& c : ThresholdCases(config)) {
    Signals s = WithAttention(c.entropy, c.varentropy);
    s.has_attention = false;  // the attention fields must then be ignored
    ExpectDecision(DecideEntropix(config, s, true, SpecialTokens{}), c.expect(config, s),
                   c.label + " (no attention)");
  }
}

TEST(DecideEntropixTest, NonDefaultThresholdsAndCoefficients) {
  EntropixConfig config;
  config.low_entropy = 0.5f;
  config.low_varentropy = 0.25f;
  config.medium_entropy = 2.0f;
  config.high_entropy = 4.0f;
  config.high_varentropy = 3.0f;
  config.temperature = 0.8f;
  config.top_k = 40;
  config.top_p = 0.7f;
  config.min_p = 0.05f;
  config.clarify_attn_entropy_offset = 1.1f;
  config.explore_strength_coef = 0.4f;
  config.explore_top_k_agreement_coef = 0.25f;
  config.resample_attn_varentropy_coef = 0.9f;
  config.resample_top_p_attn_entropy_coef = 0.05f;
  config.adaptive_logit_uncertainty_coef = 0.1f;
  config.adaptive_max_top_k = 45;
  config.adaptive_samples = 3;
  config.attn_varentropy_is_spread = true;
  for (const PolicyCase& c : ThresholdCases(config)) {
    const Signals s = WithAttention(c.entropy, c.varentropy);
    ExpectDecision(DecideEntropix(config, s, true, SpecialTokens{}), c.expect(config, s),
                   c.label + " (custom config)");
  }
}

TEST(DecideEntropixTest, ExactValuesOfTheDefaultFormulas) {
  const EntropixConfig config;
  // explore: T = min(1.5, 0.666 (1.2 + 0.3 * 1.7)) = 1.13886,
  // top_k = max(5, int(27 (1 + 0.5 * 0.7))) = int(36.45) = 36.
  EntropixDecision d = DecideEntropix(config, WithAttention(2.0f, 6.0f), false, {});
  EXPECT_EQ(d.mode, Mode::kExplore);
  EXPECT_NEAR(d.temperature, 0.666 * (1.2 + 0.3 * 1.7), 1e-6);
  EXPECT_EQ(d.top_k, 36);
  // resample: T = max(2, 0.666 (2 + 0.5 * 1.2)) = 2 (the floor binds),
  // top_p = max(0.5, 0.9 - 0.2 * 2.5) = 0.5.
  d = DecideEntropix(config, WithAttention(6.0f, 6.0f), false, {});
  EXPECT_EQ(d.mode, Mode::kResample);
  EXPECT_FLOAT_EQ(d.temperature, 2.0f);
  EXPECT_FLOAT_EQ(d.top_p, 0.5f);
  // adaptive, H = 2, V = 3: T = 0.666 (1 + 0.3*5 + 0.2*3.7 - 0.2*0.3) = 2.11788,
  // top_p = clip(0.9 * 1.12) = 1.0, top_k = round(27 * 1.45) = round(39.15) = 39,
  // min_p = clip(0.03 * (1 - 2.5), 0.01, 0.5) = 0.01, 5 samples.
  d = DecideEntropix(config, WithAttention(2.0f, 3.0f), false, {});
  EXPECT_EQ(d.mode, Mode::kAdaptive);
  EXPECT_NEAR(d.temperature, 0.666 * (1 + 0.3 * 5 + 0.2 * 3.7 - 0.2 * 0.3), 1e-5);
  EXPECT_FLOAT_EQ(d.top_p, 1.0f);
  EXPECT_EQ(d.top_k, 39);
  EXPECT_FLOAT_EQ(d.min_p, 0.01f);
  EXPECT_EQ(d.samples, 5);
  // clarify cap: 0.666 (1.3 + 0.2 * 10) = 2.1978 > 1.5.
  Signals s = WithAttention(4.0f, 0.0f);
  s.attn_entropy = 10.0f;
  d = DecideEntropix(config, s, true, {});
  EXPECT_EQ(d.mode, Mode::kClarify);
  EXPECT_FLOAT_EQ(d.temperature, 1.5f);
}

TEST(DecideEntropixTest, AdaptiveTopKRoundsHalfToEvenAsTorch) {
  // Factors exact in binary, so that top_k * factor is exactly x.5.
  EntropixConfig config;
  config.adaptive_top_k_strength_coef = 0.5f;
  config.adaptive_top_k_agreement_coef = 0.0f;
  Signals s = WithAttention(2.0f, 3.0f);
  s.interaction_strength = 1.0f;  // factor 1.5
  config.top_k = 3;               // 4.5 -> 4 (std::round would give 5)
  EXPECT_EQ(DecideEntropix(config, s, false, {}).top_k, 4);
  config.top_k = 5;  // 7.5 -> 8
  EXPECT_EQ(DecideEntropix(config, s, false, {}).top_k, 8);
  config.adaptive_top_k_strength_coef = 0.0f;
  config.adaptive_top_k_agreement_coef = 1.0f;
  s.agreement = 0.5f;  // factor 0.5
  config.top_k = 13;   // 6.5 -> 6 (std::round would give 7)
  EXPECT_EQ(DecideEntropix(config, s, false, {}).top_k, 6);
}

TEST(DecideEntropixTest, AttnVarentropyIsSpreadSelectsTheQuantity) {
  EntropixConfig config;
  config.resample_min_temperature = 0.1f;  // let the formula show
  const Signals s = WithAttention(6.0f, 6.0f);
  const float per_head = DecideEntropix(config, s, false, {}).temperature;
  EXPECT_FLOAT_EQ(per_head, 0.666f * (2.0f + 0.5f * 1.2f));
  config.attn_varentropy_is_spread = true;
  EXPECT_FLOAT_EQ(DecideEntropix(config, s, false, {}).temperature, 0.666f * (2.0f + 0.5f * 0.7f));
}

TEST(DecideEntropixTest, AdaptiveTemperatureHasAPositiveFloor) {
  EntropixConfig config;
  config.adaptive_agreement_coef = 50.0f;
  Signals s = WithAttention(2.0f, 3.0f);
  s.agreement = 1.0f;
  EXPECT_GT(DecideEntropix(config, s, false, {}).temperature, 0.0f);
}

TEST(DecideEntropixTest, EveryModeTemperatureHasTheMinimumTemperatureFloor) {
  // Valid configs whose clarify and explore formulas give T far below 1e-3.
  EntropixConfig config;
  config.temperature = kMinTemperature;
  config.clarify_attn_entropy_offset = 1e-6f;
  config.clarify_attn_entropy_coef = 0.0f;
  config.explore_strength_offset = 1e-6f;
  config.explore_strength_coef = 0.0f;
  ASSERT_TRUE(config.Validate().ok());
  const EntropixDecision clarify = DecideEntropix(config, WithAttention(4.0f, 0.0f), true, {});
  EXPECT_EQ(clarify.mode, Mode::kClarify);
  EXPECT_EQ(clarify.temperature, kMinTemperature);
  const EntropixDecision explore = DecideEntropix(config, WithAttention(2.0f, 6.0f), false, {});
  EXPECT_EQ(explore.mode, Mode::kExplore);
  EXPECT_EQ(explore.temperature, kMinTemperature);
  config.adaptive_agreement_coef = 50.0f;
  Signals s = WithAttention(2.0f, 3.0f);
  s.agreement = 1.0f;
  const EntropixDecision adaptive = DecideEntropix(config, s, false, {});
  EXPECT_EQ(adaptive.mode, Mode::kAdaptive);
  EXPECT_EQ(adaptive.temperature, kMinTemperature);
}

// ---------------------------------------------------------------------------
// Clarify: insertion, the last_inserted guard, and no ids (bug: HF returned None).

TEST(DecideEntropixTest, ClarifyInsertsClarifyingQuestionToken) {
  const EntropixConfig config;
  SpecialTokens special;
  special.clarifying_question = 30;
  special.pause = 31;
  const EntropixDecision d = DecideEntropix(config, WithAttention(4.0f, 0.0f), false, special);
  EXPECT_EQ(d.mode, Mode::kClarify);
  EXPECT_EQ(d.insert_token, 30);
  EXPECT_FALSE(d.argmax);
}

TEST(DecideEntropixTest, ClarifyFallsBackToPauseToken) {
  SpecialTokens special;
  special.pause = 31;
  const EntropixDecision d =
      DecideEntropix(EntropixConfig{}, WithAttention(4.0f, 0.0f), false, special);
  EXPECT_EQ(d.insert_token, 31);
}

TEST(DecideEntropixTest, ClarifySamplesRightAfterAnInsertedToken) {
  const EntropixConfig config;
  SpecialTokens special;
  special.clarifying_question = 30;
  const Signals s = WithAttention(4.0f, 0.0f);
  const EntropixDecision d = DecideEntropix(config, s, /*last_inserted=*/true, special);
  EXPECT_FALSE(d.insert_token.has_value());
  ExpectDecision(d, ExpectClarifySampled(config, s), "guard");
}

TEST(DecideEntropixTest, ClarifyWithoutTokenIdsSamples) {
  const EntropixConfig config;
  const Signals s = WithAttention(4.0f, 0.0f);
  const EntropixDecision d = DecideEntropix(config, s, /*last_inserted=*/false, SpecialTokens{});
  EXPECT_FALSE(d.insert_token.has_value());
  EXPECT_FALSE(d.argmax);
  ExpectDecision(d, ExpectClarifySampled(config, s), "no ids");
}

// ---------------------------------------------------------------------------
// Validation.

TEST(EntropixConfigTest, DefaultsAreValid) { EXPECT_TRUE(EntropixConfig{}.Validate().ok()); }

TEST(EntropixConfigTest, ErrorsNameFieldAndValue) {
  EntropixConfig config;
  config.temperature = -1.0f;
  EXPECT_EQ(config.Validate().message(), "entropix.temperature must be > 0, got -1");
  EXPECT_EQ(config.Validate().code(), absl::StatusCode::kInvalidArgument);

  struct Bad {
    void (*apply)(EntropixConfig&);
    std::string message;
  };
  const Bad cases[] = {
      {[](EntropixConfig& c) { c.top_p = 0.0f; }, "entropix.top_p must be in (0, 1], got 0"},
      {[](EntropixConfig& c) { c.top_p = 1.5f; }, "entropix.top_p must be in (0, 1], got 1.5"},
      {[](EntropixConfig& c) { c.top_k = 0; }, "entropix.top_k must be >= 1, got 0"},
      {[](EntropixConfig& c) { c.min_p = 1.0f; }, "entropix.min_p must be in [0, 1), got 1"},
      {[](EntropixConfig& c) { c.low_entropy = -0.5f; },
       "entropix.low_entropy must be >= 0, got -0.5"},
      {[](EntropixConfig& c) { c.high_varentropy = std::numeric_limits<float>::infinity(); },
       "entropix.high_varentropy must be finite, got inf"},
      {[](EntropixConfig& c) { c.clarify_max_temperature = 0.0f; },
       "entropix.clarify_max_temperature must be > 0, got 0"},
      {[](EntropixConfig& c) { c.explore_min_top_k = 0; },
       "entropix.explore_min_top_k must be >= 1, got 0"},
      {[](EntropixConfig& c) { c.resample_min_top_p = 2.0f; },
       "entropix.resample_min_top_p must be in (0, 1], got 2"},
      {[](EntropixConfig& c) { c.adaptive_agreement_coef = -1.0f; },
       "entropix.adaptive_agreement_coef must be >= 0, got -1"},
      {[](EntropixConfig& c) { c.adaptive_max_top_k = 0; },
       "entropix.adaptive_max_top_k must be >= 1, got 0"},
      {[](EntropixConfig& c) { c.adaptive_samples = 0; },
       "entropix.adaptive_samples must be in [1, 1024], got 0"},
      {[](EntropixConfig& c) { c.temperature = std::nanf(""); },
       "entropix.temperature must be > 0, got nan"},
      // Below kMinTemperature (1 / T must stay finite).
      {[](EntropixConfig& c) { c.temperature = 1e-4f; },
       "entropix.temperature must be >= 0.001, got 0.0001"},
      {[](EntropixConfig& c) { c.clarify_max_temperature = 5e-4f; },
       "entropix.clarify_max_temperature must be >= 0.001, got 0.0005"},
      {[](EntropixConfig& c) { c.explore_max_temperature = 1e-10f; },
       "entropix.explore_max_temperature must be >= 0.001, got 1e-10"},
      {[](EntropixConfig& c) { c.resample_min_temperature = 9.99e-4f; },
       "entropix.resample_min_temperature must be >= 0.001, got 0.000999"},
  };
  for (const Bad& bad : cases) {
    EntropixConfig c;
    bad.apply(c);
    EXPECT_EQ(c.Validate().message(), bad.message);
  }
}

// ---------------------------------------------------------------------------
// The pipeline, against a straightforward full-vocabulary reference.

// softmax(z/T) -> min_p (renormalised over survivors) -> top_k -> top_p ->
// renormalise; returns (id, p) in draw order.
std::vector<std::pair<int32_t, double>> ReferenceFilter(const std::vector<float>& z,
                                                        double temperature, int32_t top_k,
                                                        double top_p, double min_p) {
  double max_logit = -INFINITY;
  for (float v : z) max_logit = std::max<double>(max_logit, v);
  std::vector<std::pair<int32_t, double>> items;  // (id, exp((z - max)/T))
  for (size_t i = 0; i < z.size(); ++i) {
    if (z[i] == kNegInf) continue;
    const double w = std::exp((z[i] - max_logit) / temperature);
    if (w >= min_p) items.push_back({static_cast<int32_t>(i), w});  // p/p_max >= min_p
  }
  double survivors = 0;
  for (auto& [id, w] : items) survivors += w;
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    return z[a.first] > z[b.first] || (z[a.first] == z[b.first] && a.first < b.first);
  });
  if (items.size() > static_cast<size_t>(top_k)) items.resize(top_k);
  double cum = 0;
  size_t keep = items.size();
  for (size_t i = 0; i < items.size(); ++i) {
    const double p = items[i].second / survivors;
    if (cum > top_p) {  // cumsum - p > top_p
      keep = i;
      break;
    }
    cum += p;
  }
  items.resize(keep);
  double total = 0;
  for (auto& [id, w] : items) total += w;
  for (auto& [id, w] : items) w /= total;
  return items;
}

void ExpectFilterMatchesReference(const std::vector<float>& z, float temperature, int32_t top_k,
                                  float top_p, float min_p) {
  const float max_logit = *std::max_element(z.begin(), z.end());
  const CandidateSet set = EntropixFilter(z, max_logit, temperature, top_k, top_p, min_p);
  const auto expected = ReferenceFilter(z, temperature, top_k, top_p, min_p);
  ASSERT_EQ(set.size(), expected.size())
      << "T=" << temperature << " k=" << top_k << " top_p=" << top_p << " min_p=" << min_p;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(set.items()[i].id, expected[i].first) << i;
    EXPECT_NEAR(set.items()[i].p, expected[i].second, 1e-6) << i;
  }
}

TEST(EntropixFilterTest, MatchesFullVocabularyReference) {
  std::mt19937 gen(5);
  for (const int n : {4, 300, 50000}) {
    for (const float sigma : {0.5f, 2.0f, 6.0f}) {
      std::normal_distribution<float> normal(0.0f, sigma);
      std::vector<float> z(static_cast<size_t>(n));
      for (float& v : z) v = normal(gen);
      z[static_cast<size_t>(n) / 2] = kNegInf;
      for (const float t : {0.5f, 1.0f, 2.0f}) {
        ExpectFilterMatchesReference(z, t, 27, 0.9f, 0.03f);
        ExpectFilterMatchesReference(z, t, 100, 0.5f, 0.01f);
        ExpectFilterMatchesReference(z, t, 5, 1.0f, 0.0f);
      }
    }
  }
}

TEST(EntropixFilterTest, TheSetKnowsTheVocabularySize) {
  const std::vector<float> z = {0.5f, 2.0f, -1.0f, 1.0f, 0.0f};
  const CandidateSet set = EntropixFilter(z, 2.0f, 1.0f, 3, 1.0f, 0.0f);
  EXPECT_EQ(set.vocab_size(), 5);
  EXPECT_TRUE(set.normalized());
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set.items()[0].id, 1);
}

TEST(EntropixFilterTest, TopPUsesMinPRenormalisedProbabilities) {
  // p = [0.4, 0.3, 0.2, 0.1] at T = 1; min_p = 0.3 drops 0.1 (< 0.12), so the
  // survivors renormalise to [4/9, 3/9, 2/9]. top_p = 0.7: cumsum before the
  // third is 7/9 > 0.7, so it goes. Over the raw probabilities the mass
  // before it would be 0.7, not > 0.7, and it would stay.
  const std::vector<float> z = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  const CandidateSet set = EntropixFilter(z, z[0], 1.0f, 4, 0.7f, 0.3f);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_NEAR(set.items()[0].p, 4.0 / 7.0, 1e-6);
  EXPECT_NEAR(set.items()[1].p, 3.0 / 7.0, 1e-6);
}

TEST(EntropixFilterTest, TopPKeepsTheMostProbableTokensFirst) {
  // entropix flipped the top-k to ascending before the cumsum, which removed
  // the most probable tokens. p = [0.5, 0.3, 0.15, 0.05], top_p = 0.6: keep 0
  // and 1 (mass before 1 is 0.5 <= 0.6, before 2 is 0.8 > 0.6).
  const std::vector<float> z = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  const CandidateSet set = EntropixFilter(z, z[0], 1.0f, 4, 0.6f, 0.0f);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.items()[0].id, 0);
  EXPECT_EQ(set.items()[1].id, 1);
}

// ---------------------------------------------------------------------------
// The sampler.

// A config whose every step is "adaptive" with the base parameters: no
// threshold can match, every adaptive coefficient is 0, one sample.
EntropixConfig PlainPipelineConfig(float temperature, int32_t top_k, float top_p, float min_p) {
  EntropixConfig c;
  c.low_entropy = 0.0f;
  c.low_varentropy = 0.0f;
  c.medium_entropy = 1e9f;
  c.high_varentropy = 1e9f;
  c.temperature = temperature;
  c.top_k = top_k;
  c.top_p = top_p;
  c.min_p = min_p;
  c.adaptive_logit_uncertainty_coef = 0.0f;
  c.adaptive_attn_uncertainty_coef = 0.0f;
  c.adaptive_agreement_coef = 0.0f;
  c.adaptive_top_p_attn_varentropy_coef = 0.0f;
  c.adaptive_top_k_strength_coef = 0.0f;
  c.adaptive_top_k_agreement_coef = 0.0f;
  c.adaptive_min_p_uncertainty_coef = 0.0f;
  c.adaptive_samples = 1;
  EXPECT_TRUE(c.Validate().ok());
  return c;
}

Row MakeRow(const std::vector<float>& logits, uint64_t seed, int64_t step) {
  Row row;
  row.logits = logits;
  row.seed = seed;
  row.step = step;
  return row;
}

std::vector<float> LogProbs(const std::vector<double>& p) {
  std::vector<float> z;
  for (double v : p) z.push_back(static_cast<float>(std::log(v)));
  return z;
}

RowOutput MustSample(const Sampler& sampler, const Row& row, SamplerState& state) {
  absl::StatusOr<RowOutput> out = sampler.Sample(row, state);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : RowOutput{};
}

double ChiSquare(const std::vector<int>& counts, const std::vector<double>& p) {
  double n = 0;
  for (int c : counts) n += c;
  double chi2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = n * p[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

// Bug (a): entropix's min_p never removed anything.
TEST(EntropixSamplerTest, MinPRemovesTokensThatTopKAndTopPWouldKeep) {
  // p = [0.5, 0.3, 0.19, 0.01], min_p = 0.05: 0.01 < 0.05 * 0.5 goes; top_k = 4
  // and top_p = 1 would keep it.
  const std::vector<float> z = LogProbs({0.5, 0.3, 0.19, 0.01});
  const auto sampler = MakeEntropixSampler(PlainPipelineConfig(1.0f, 4, 1.0f, 0.05f));
  int drawn_rare = 0;
  for (int64_t step = 0; step < 20000; ++step) {
    SamplerState state;
    const RowOutput out = MustSample(*sampler, MakeRow(z, 11, step), state);
    ASSERT_EQ(out.params.candidates, 3);
    drawn_rare += out.token == 3;
  }
  EXPECT_EQ(drawn_rare, 0);  // ~200 expected if min_p were ignored
}

// Bug (b): argmax(p / u) with uniform u is not a sample from p.
TEST(EntropixSamplerTest, DrawsFollowTheFilteredDistributionExactly) {
  const std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  const std::vector<float> z = LogProbs(p);
  const auto sampler = MakeEntropixSampler(PlainPipelineConfig(1.0f, 4, 1.0f, 0.01f));
  constexpr int kDraws = 40000;
  std::vector<int> counts(4, 0);
  std::vector<int> biased(4, 0);  // the torch port's argmax(p / u), same uniforms
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t seed = 1000 + static_cast<uint64_t>(i % 97);
    const int64_t step = i / 97;
    SamplerState state;
    ++counts[static_cast<size_t>(MustSample(*sampler, MakeRow(z, seed, step), state).token)];
    const CounterRng rng(seed, step);
    int best = 0;
    double best_score = -1;
    for (int t = 0; t < 4; ++t) {
      const double score = p[static_cast<size_t>(t)] / rng.Uniform(static_cast<uint32_t>(t));
      if (score > best_score) {
        best_score = score;
        best = t;
      }
    }
    ++biased[static_cast<size_t>(best)];
  }
  // 3 degrees of freedom: 16.27 is the 0.999 quantile.
  constexpr double kChiSquare999 = 16.27;
  EXPECT_LT(ChiSquare(counts, p), kChiSquare999);
  // The same test rejects the biased sampler (it overweights the top token).
  EXPECT_GT(ChiSquare(biased, p), 10 * kChiSquare999);
}

// Bug (c): the JAX key never advanced.
TEST(EntropixSamplerTest, DifferentStepsGiveDifferentDrawsAndTheSameStepRepeats) {
  const std::vector<float> z(8, 0.0f);  // uniform over 8 tokens
  const auto sampler = MakeEntropixSampler(PlainPipelineConfig(1.0f, 8, 1.0f, 0.01f));
  std::set<int32_t> seen;
  std::vector<int32_t> first_run;
  for (int64_t step = 0; step < 64; ++step) {
    SamplerState state;
    const int32_t token = MustSample(*sampler, MakeRow(z, 42, step), state).token;
    seen.insert(token);
    first_run.push_back(token);
  }
  EXPECT_EQ(seen.size(), 8u);  // all 8 tokens within 64 steps (a fixed key gives 1)
  for (int64_t step = 0; step < 64; ++step) {
    SamplerState state;
    EXPECT_EQ(MustSample(*sampler, MakeRow(z, 42, step), state).token, first_run[step]);
  }
  int differs = 0;
  for (int64_t step = 0; step < 64; ++step) {
    SamplerState state;
    differs += MustSample(*sampler, MakeRow(z, 43, step), state).token != first_run[step];
  }
  EXPECT_GT(differs, 32);  // another seed, another sequence (7/8 expected to differ)
}

// Bug (d): the HF port's clarify branch returned None.
TEST(EntropixSamplerTest, ClarifyInsertsThenSamplesAndAlwaysReturnsAToken) {
  const std::vector<float> z(16, 0.5f);  // H = 4 bits, V = 0: clarify
  const auto sampler = MakeEntropixSampler(EntropixConfig{});
  Row row = MakeRow(z, 3, 0);
  row.special_tokens.clarifying_question = 9;
  SamplerState state;
  const RowOutput inserted = MustSample(*sampler, row, state);
  EXPECT_EQ(inserted.mode, Mode::kClarify);
  EXPECT_TRUE(inserted.inserted);
  EXPECT_EQ(inserted.token, 9);
  EXPECT_FLOAT_EQ(inserted.logprob, -std::log(16.0f));
  EXPECT_TRUE(state.last_inserted);
  EXPECT_EQ(state.recent_tokens, std::vector<int32_t>{9});
  EXPECT_FALSE(inserted.params.temperature.has_value());

  row.step = 1;
  const RowOutput sampled = MustSample(*sampler, row, state);
  EXPECT_EQ(sampled.mode, Mode::kClarify);
  EXPECT_FALSE(sampled.inserted);
  EXPECT_GE(sampled.token, 0);
  EXPECT_LT(sampled.token, 16);
  EXPECT_FALSE(state.last_inserted);
  ASSERT_TRUE(sampled.params.temperature.has_value());
  EXPECT_FLOAT_EQ(*sampled.params.temperature, std::min(1.5f, 0.666f * 1.3f));
  EXPECT_EQ(state.recent_tokens.size(), 2u);
}

TEST(EntropixSamplerTest, ClarifyWithoutTokenIdsSamplesEveryStep) {
  const std::vector<float> z(16, 0.5f);
  const auto sampler = MakeEntropixSampler(EntropixConfig{});
  SamplerState state;
  for (int64_t step = 0; step < 50; ++step) {
    const RowOutput out = MustSample(*sampler, MakeRow(z, 8, step), state);
    EXPECT_EQ(out.mode, Mode::kClarify);
    EXPECT_FALSE(out.inserted);
    EXPECT_GE(out.token, 0);
    EXPECT_LT(out.token, 16);
    EXPECT_FALSE(state.last_inserted);
  }
}

TEST(EntropixSamplerTest, InsertedTokenOutsideTheVocabularyIsAnError) {
  const std::vector<float> z(16, 0.5f);
  const auto sampler = MakeEntropixSampler(EntropixConfig{});
  Row row = MakeRow(z, 3, 0);
  row.special_tokens.clarifying_question = 16;
  SamplerState state;
  const absl::StatusOr<RowOutput> out = sampler->Sample(row, state);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("special_tokens.clarifying_question"), std::string::npos);
  EXPECT_TRUE(state.recent_tokens.empty());  // the state is untouched on error
}

TEST(EntropixSamplerTest, FlowingTakesTheArgmax) {
  std::vector<float> z(1000, -20.0f);
  z[417] = 10.0f;  // H ~ 0, V ~ 0
  const auto sampler = MakeEntropixSampler(EntropixConfig{});
  SamplerState state;
  const RowOutput out = MustSample(*sampler, MakeRow(z, 1, 0), state);
  EXPECT_EQ(out.mode, Mode::kFlowing);
  EXPECT_EQ(out.token, 417);
  EXPECT_EQ(out.params.candidates, 1);
  EXPECT_FALSE(out.inserted);
  EXPECT_NEAR(out.logprob, 0.0f, 1e-6);
  EXPECT_EQ(state.recent_tokens, std::vector<int32_t>{417});
}

// Bug (e): metrics averaged over the batch.
TEST(EntropixSamplerTest, RowsAreIndependentOfEachOther) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> peaked(5000, -30.0f);
  peaked[12] = 5.0f;
  std::vector<float> wide(5000);
  for (float& v : wide) v = normal(gen);
  std::vector<float> attention(4 * 32);
  for (float& v : attention) v = normal(gen);
  const auto sampler = MakeEntropixSampler(EntropixConfig{});

  Row a = MakeRow(peaked, 5, 7);
  Row b = MakeRow(wide, 5, 7);
  b.attention = attention;
  b.heads = 4;
  b.keys = 32;
  SamplerState sa0, sb0, sa1, sb1;
  const RowOutput a_alone = MustSample(*sampler, a, sa0);
  const RowOutput b_alone = MustSample(*sampler, b, sb0);
  // Interleave in the other order, as another batch composition would.
  const RowOutput b_first = MustSample(*sampler, b, sb1);
  const RowOutput a_second = MustSample(*sampler, a, sa1);
  EXPECT_EQ(a_alone.token, a_second.token);
  EXPECT_EQ(a_alone.mode, a_second.mode);
  EXPECT_EQ(a_alone.signals.entropy, a_second.signals.entropy);
  EXPECT_EQ(b_alone.token, b_first.token);
  EXPECT_EQ(b_alone.signals.entropy, b_first.signals.entropy);
  EXPECT_EQ(b_alone.params.temperature, b_first.params.temperature);
  // And each row's signals are its own: the peaked row stays flowing.
  EXPECT_EQ(a_alone.mode, Mode::kFlowing);
  EXPECT_FALSE(a_alone.signals.has_attention);
  EXPECT_TRUE(b_alone.signals.has_attention);
  EXPECT_NE(b_alone.mode, Mode::kFlowing);
}

TEST(EntropixSamplerTest, AdaptiveKeepsTheMostProbableOfItsDraws) {
  std::mt19937 gen(17);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> z(2000);
  for (float& v : z) v = normal(gen);
  EntropixConfig config;
  config.low_entropy = 0.0f;  // force adaptive
  config.medium_entropy = 1e9f;
  config.high_varentropy = 1e9f;
  const auto sampler = MakeEntropixSampler(config);
  const float max_logit = *std::max_element(z.begin(), z.end());
  int not_first_draw = 0;
  for (int64_t step = 0; step < 300; ++step) {
    SamplerState state;
    const RowOutput out = MustSample(*sampler, MakeRow(z, 77, step), state);
    ASSERT_EQ(out.mode, Mode::kAdaptive);
    ASSERT_EQ(out.params.samples, 5);
    // Redo the five draws from the parameters the sampler reports.
    const CandidateSet set =
        EntropixFilter(z, max_logit, *out.params.temperature, *out.params.top_k, *out.params.top_p,
                       *out.params.min_p);
    EXPECT_EQ(static_cast<int32_t>(set.size()), *out.params.candidates);
    const CounterRng rng(77, step);
    int32_t best = -1;
    int32_t first = -1;
    for (uint32_t d = 0; d < 5; ++d) {
      const int32_t token = set.items()[DrawIndex(set, rng.Uniform(d))].id;
      if (d == 0) first = token;
      if (best < 0 || z[token] > z[best]) best = token;
    }
    EXPECT_EQ(out.token, best) << "step " << step;
    not_first_draw += best != first;
  }
  EXPECT_GT(not_first_draw, 30);  // the ranking matters, not only draw 0
}

TEST(EntropixSamplerTest, ReportsParametersLogprobAndState) {
  const std::vector<float> z = LogProbs({0.4, 0.3, 0.2, 0.1});
  // T = 0.9: weights relative to the top are 1, 0.726, 0.463, 0.214; min_p =
  // 0.2 keeps all four, top_k = 3 drops the last, and top_p = 0.7 over the
  // four survivors' probabilities (0.416, 0.302, 0.193, ...) drops the third
  // (mass before it 0.718).
  const auto sampler = MakeEntropixSampler(PlainPipelineConfig(0.9f, 3, 0.7f, 0.2f));
  SamplerState state;
  state.recent_tokens = {1, 2};
  const RowOutput out = MustSample(*sampler, MakeRow(z, 9, 4), state);
  EXPECT_EQ(out.mode, Mode::kAdaptive);
  EXPECT_FLOAT_EQ(*out.params.temperature, 0.9f);
  EXPECT_EQ(*out.params.top_k, 3);
  EXPECT_FLOAT_EQ(*out.params.top_p, 0.7f);
  EXPECT_FLOAT_EQ(*out.params.min_p, 0.2f);
  EXPECT_EQ(*out.params.samples, 1);
  EXPECT_EQ(*out.params.candidates, 2);
  EXPECT_NEAR(out.logprob, z[static_cast<size_t>(out.token)], 1e-6);  // log p, p sums to 1
  EXPECT_EQ(state.recent_tokens, (std::vector<int32_t>{1, 2, out.token}));
  EXPECT_FALSE(state.last_inserted);
  EXPECT_TRUE(sampler->NeedsState());
  EXPECT_EQ(sampler->Name(), "entropix");
}

TEST(EntropixSamplerTest, LargeVocabularyMatchesReferenceDraws) {
  // 152k tokens through the sampler against the reference filter + inverse CDF.
  std::mt19937 gen(23);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> z(152064);
  for (float& v : z) v = normal(gen);
  const auto sampler = MakeEntropixSampler(PlainPipelineConfig(1.3f, 40, 0.85f, 0.01f));
  const auto expected = ReferenceFilter(z, 1.3, 40, 0.85, 0.01);
  for (int64_t step = 0; step < 200; ++step) {
    SamplerState state;
    const RowOutput out = MustSample(*sampler, MakeRow(z, 5, step), state);
    ASSERT_EQ(*out.params.candidates, static_cast<int32_t>(expected.size()));
    const double u = CounterRng(5, step).Uniform(0);
    double cum = 0;
    int32_t want = expected.back().first;
    for (const auto& [id, p] : expected) {
      cum += p;
      if (u < cum) {
        want = id;
        break;
      }
    }
    EXPECT_EQ(out.token, want) << "step " << step;
  }
}

TEST(EntropixSamplerTest, RejectsMalformedRows) {
  const auto sampler = MakeEntropixSampler(EntropixConfig{});
  SamplerState state;
  EXPECT_FALSE(sampler->Sample(Row{}, state).ok());
  const std::vector<float> z = {0.0f, 1.0f};
  const std::vector<float> attention = {1.0f, 2.0f, 3.0f};
  Row row = MakeRow(z, 1, 0);
  row.attention = attention;
  row.heads = 2;
  row.keys = 2;
  EXPECT_EQ(sampler->Sample(row, state).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> masked = {kNegInf, kNegInf};
  EXPECT_FALSE(sampler->Sample(MakeRow(masked, 1, 0), state).ok());
}

}  // namespace
}  // namespace entroserve
