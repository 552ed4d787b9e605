// Tests of sampler/stages/: each stage on 4- or 5-token distributions with
// the exact probabilities (or logits) the math gives, in the style of
// llama.cpp's tests/test-sampling.cpp (several cases are its own), plus the
// chain, the draw's distribution and the config validation messages.
#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sampler/core/candidates.h"
#include "sampler/core/configs.h"
#include "sampler/core/rng.h"
#include "sampler/core/stage.h"
#include "sampler/core/types.h"
#include "sampler/stages/candidate_ops.h"
#include "sampler/stages/chain.h"
#include "sampler/stages/penalty_stages.h"
#include "sampler/stages/samplers.h"
#include "sampler/stages/selection_stages.h"
#include "sampler/stages/temperature_stages.h"
#include "sampler/stages/truncation_stages.h"

namespace entroserve {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;

// The tolerance of llama.cpp's test-sampling.cpp.
constexpr float kTolerance = 1e-5f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr uint64_t kSeed = 1234;

CandidateSet FromProbs(const std::vector<float>& probs) {
  std::vector<float> logits;
  for (float p : probs) logits.push_back(p > 0 ? std::log(p) : kNegInf);
  return CandidateSet::FromLogits(logits);
}

// softmax over the current candidates, by token id; 0 for removed tokens.
std::vector<float> ProbsById(CandidateSet set) {
  set.Normalize();
  std::vector<float> out(set.vocab_size(), 0.0f);
  for (const Candidate& c : set.items()) out[c.id] = c.p;
  return out;
}

// Logits by token id; -inf for removed tokens.
std::vector<float> LogitsById(const CandidateSet& set) {
  std::vector<float> out(set.vocab_size(), kNegInf);
  for (const Candidate& c : set.items()) out[c.id] = c.logit;
  return out;
}

std::vector<int32_t> SortedIds(const CandidateSet& set) {
  std::vector<int32_t> ids;
  for (const Candidate& c : set.items()) ids.push_back(c.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// What a stage sees of a step: a history, the draws of (kSeed, step) and the
// parameters it records.
struct Step {
  explicit Step(int64_t step = 0) : rng(kSeed, step) {}
  StepContext Context() {
    StepContext ctx;
    ctx.state = &state;
    ctx.rng = &rng;
    ctx.params = &params;
    return ctx;
  }
  SamplerState state;
  CounterRng rng;
  SamplingParams params;
};

// Applies `stage` to `probs` and returns the renormalised probabilities by id.
std::vector<float> ApplyToProbs(const Stage& stage, const std::vector<float>& probs,
                                Step* step = nullptr) {
  Step local;
  Step& s = step != nullptr ? *step : local;
  CandidateSet set = FromProbs(probs);
  StepContext ctx = s.Context();
  const absl::Status status = stage.Apply(set, ctx);
  EXPECT_TRUE(status.ok()) << status;
  return ProbsById(set);
}

// Replays `history` through a chain's Accept (which pushes each token onto the
// state, as in generation), then applies the chain to `logits`.
CandidateSet ReplayAndApply(std::unique_ptr<Stage> stage, const std::vector<int32_t>& history,
                            const std::vector<float>& logits, Step& step) {
  SamplerChain chain;
  chain.Add(std::move(stage));
  const CandidateSet none;
  for (int32_t token : history) chain.Accept(token, none, step.state);
  EXPECT_EQ(step.state.recent_tokens, history);
  CandidateSet set = CandidateSet::FromLogits(logits);
  StepContext ctx = step.Context();
  const absl::Status status = chain.Apply(set, ctx);
  EXPECT_TRUE(status.ok()) << status;
  return set;
}

CandidateSet ReplayAndApplyProbs(std::unique_ptr<Stage> stage, const std::vector<int32_t>& history,
                                 const std::vector<float>& probs) {
  std::vector<float> logits;
  for (float p : probs) logits.push_back(std::log(p));
  Step step;
  return ReplayAndApply(std::move(stage), history, logits, step);
}

const std::vector<float> kProbs = {0.1f, 0.2f, 0.3f, 0.4f};

// ---------------------------------------------------------------------------
// top-k

TEST(TopKStageTest, KeepsTheKMostProbable) {
  EXPECT_THAT(ApplyToProbs(TopKStage(1), kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 1.0f}));
  EXPECT_THAT(ApplyToProbs(TopKStage(3), kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 2.0f / 9, 3.0f / 9, 4.0f / 9}));
  EXPECT_THAT(ApplyToProbs(TopKStage(4), kProbs), Pointwise(FloatNear(kTolerance), kProbs));
  EXPECT_THAT(ApplyToProbs(TopKStage(0), kProbs), Pointwise(FloatNear(kTolerance), kProbs));
}

TEST(TopKStageTest, LeavesSurvivorsSortedWithTiesToTheLowerId) {
  CandidateSet set = FromProbs({0.25f, 0.25f, 0.25f, 0.25f});
  Step step;
  StepContext ctx = step.Context();
  ASSERT_TRUE(TopKStage(2).Apply(set, ctx).ok());
  ASSERT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.sorted());
  EXPECT_EQ(set.items()[0].id, 0);
  EXPECT_EQ(set.items()[1].id, 1);
  EXPECT_EQ(step.params.top_k, 2);
}

TEST(TopKStageTest, DoesNotSortASetItDoesNotShrink) {
  CandidateSet set = FromProbs(kProbs);
  StepContext ctx;
  ASSERT_TRUE(TopKStage(4).Apply(set, ctx).ok());
  ASSERT_TRUE(TopKStage(0).Apply(set, ctx).ok());
  EXPECT_FALSE(set.sorted());
  EXPECT_EQ(set.size(), 4u);
}

// ---------------------------------------------------------------------------
// top-p

TEST(TopPStageTest, KeepsTheSmallestPrefixReachingTopP) {
  EXPECT_THAT(ApplyToProbs(TopPStage(0.01f), kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 1.0f}));
  EXPECT_THAT(ApplyToProbs(TopPStage(0.7f), kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 3.0f / 7, 4.0f / 7}));
  EXPECT_THAT(ApplyToProbs(TopPStage(0.8f), kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 2.0f / 9, 3.0f / 9, 4.0f / 9}));
  EXPECT_THAT(ApplyToProbs(TopPStage(1.0f), kProbs), Pointwise(FloatNear(kTolerance), kProbs));
}

TEST(TopPStageTest, SortedAndUnsortedSetsGiveTheSameTokens) {
  for (float top_p : {0.05f, 0.3f, 0.5f, 0.65f, 0.95f}) {
    CandidateSet unsorted = FromProbs(kProbs);
    CandidateSet sorted = FromProbs(kProbs);
    sorted.Sort();
    StepContext ctx;
    ASSERT_TRUE(TopPStage(top_p).Apply(unsorted, ctx).ok());
    ASSERT_TRUE(TopPStage(top_p).Apply(sorted, ctx).ok());
    EXPECT_EQ(SortedIds(unsorted), SortedIds(sorted)) << "top_p " << top_p;
  }
}

TEST(TopPStageTest, RecordsTopP) {
  Step step;
  ApplyToProbs(TopPStage(0.9f), kProbs, &step);
  EXPECT_EQ(step.params.top_p, 0.9f);
}

// ---------------------------------------------------------------------------
// min-p (llama.cpp's cases)

TEST(MinPStageTest, KeepsTokensWithAtLeastMinPTimesTheMaximum) {
  const struct {
    float min_p;
    std::vector<float> expected;
  } cases[] = {
      {0.00f, {0.1f, 0.2f, 0.3f, 0.4f}},
      {0.24f, {0.1f, 0.2f, 0.3f, 0.4f}},
      {0.26f, {0.0f, 0.2f / 0.9f, 0.3f / 0.9f, 0.4f / 0.9f}},
      {0.49f, {0.0f, 0.2f / 0.9f, 0.3f / 0.9f, 0.4f / 0.9f}},
      {0.51f, {0.0f, 0.0f, 0.3f / 0.7f, 0.4f / 0.7f}},
      {0.74f, {0.0f, 0.0f, 0.3f / 0.7f, 0.4f / 0.7f}},
      {0.76f, {0.0f, 0.0f, 0.0f, 1.0f}},
      {1.00f, {0.0f, 0.0f, 0.0f, 1.0f}},
  };
  for (const auto& c : cases) {
    Step step;
    EXPECT_THAT(ApplyToProbs(MinPStage(c.min_p), kProbs, &step),
                Pointwise(FloatNear(kTolerance), c.expected))
        << "min_p " << c.min_p;
    EXPECT_EQ(step.params.min_p, c.min_p);
  }
}

TEST(MinPStageTest, KeepsASortedSetSorted) {
  CandidateSet set = FromProbs(kProbs);
  set.Sort();
  StepContext ctx;
  ASSERT_TRUE(MinPStage(0.6f).Apply(set, ctx).ok());
  EXPECT_TRUE(set.sorted());
  EXPECT_EQ(SortedIds(set), (std::vector<int32_t>{2, 3}));
}

// ---------------------------------------------------------------------------
// typical (llama.cpp's cases, renormalised)

TEST(TypicalStageTest, KeepsTheMostTypicalTokensUpToTheMass) {
  EXPECT_THAT(ApplyToProbs(TypicalStage(0.5f), {0.97f, 0.01f, 0.01f, 0.01f}),
              Pointwise(FloatNear(kTolerance), {1.0f, 0.0f, 0.0f, 0.0f}));
  // H = 1.3322 nats; |-ln 0.2 - H| = 0.277 < |-ln 0.4 - H| = 0.416: the three
  // 0.2 tokens come first and reach 0.6 >= 0.5.
  EXPECT_THAT(ApplyToProbs(TypicalStage(0.5f), {0.4f, 0.2f, 0.2f, 0.2f}),
              Pointwise(FloatNear(kTolerance), {0.0f, 1.0f / 3, 1.0f / 3, 1.0f / 3}));
  EXPECT_THAT(ApplyToProbs(TypicalStage(1.0f), kProbs), Pointwise(FloatNear(kTolerance), kProbs));
}

TEST(TypicalStageTest, BreaksTiesByLowerIdAndRecordsTypicalP) {
  Step step;
  // The same three 0.2 tokens, but 0.3 >= 0.25 needs only two of them: ids 1, 2.
  EXPECT_THAT(ApplyToProbs(TypicalStage(0.3f), {0.4f, 0.2f, 0.2f, 0.2f}, &step),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.5f, 0.5f, 0.0f}));
  EXPECT_EQ(step.params.typical_p, 0.3f);
}

TEST(TypicalStageTest, ReordersWithoutInvalidatingProbabilitiesUnlessItRemoves) {
  // Uniform: every token is equally typical and 0.9 needs all four, so none
  // is removed: p stays valid, the order by logit does not.
  CandidateSet all = FromProbs({0.25f, 0.25f, 0.25f, 0.25f});
  all.Sort();
  StepContext ctx;
  ASSERT_TRUE(TypicalStage(0.9f).Apply(all, ctx).ok());
  EXPECT_EQ(all.size(), 4u);
  EXPECT_FALSE(all.sorted());
  EXPECT_TRUE(all.normalized());
  for (const Candidate& c : all.items()) EXPECT_NEAR(c.p, 0.25f, 1e-7f);

  CandidateSet some = FromProbs({0.4f, 0.2f, 0.2f, 0.2f});
  some.Sort();
  ASSERT_TRUE(TypicalStage(0.5f).Apply(some, ctx).ok());
  EXPECT_EQ(some.size(), 3u);
  EXPECT_FALSE(some.sorted());
  EXPECT_FALSE(some.normalized());  // p no longer sums to 1 over the survivors
}

// ---------------------------------------------------------------------------
// Large vocabularies: the O(n) selections against a full sort.

std::vector<float> RandomLogits(int n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(n);
  for (float& z : logits) z = normal(gen);
  return logits;
}

// The ids of the smallest prefix, in `before` order, whose mass is >= mass.
template <typename Before>
std::vector<int32_t> ReferencePrefix(CandidateSet set, double mass, Before before) {
  set.Normalize();
  std::vector<Candidate> items = set.items();
  std::sort(items.begin(), items.end(), before);
  std::vector<int32_t> ids;
  double cum = 0;
  for (const Candidate& c : items) {
    ids.push_back(c.id);
    cum += c.p;
    if (cum >= mass) break;
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(LargeVocabularyTest, TopPMatchesAFullSort) {
  constexpr int kVocab = 1 << 17;  // llama.cpp's benchmark size
  for (float scale : {1.0f, 4.0f}) {
    const std::vector<float> logits = RandomLogits(kVocab, 7, scale);
    for (float top_p : {0.1f, 0.5f, 0.9f, 0.99f}) {
      CandidateSet set = CandidateSet::FromLogits(logits);
      StepContext ctx;
      ASSERT_TRUE(TopPStage(top_p).Apply(set, ctx).ok());
      EXPECT_EQ(SortedIds(set),
                ReferencePrefix(CandidateSet::FromLogits(logits), top_p, ByLogitDescending()))
          << "scale " << scale << " top_p " << top_p;
    }
  }
}

TEST(LargeVocabularyTest, TypicalMatchesAFullSort) {
  constexpr int kVocab = 1 << 17;
  const std::vector<float> logits = RandomLogits(kVocab, 11, 3.0f);
  for (float mass : {0.2f, 0.9f}) {
    CandidateSet set = CandidateSet::FromLogits(logits);
    StepContext ctx;
    ASSERT_TRUE(TypicalStage(mass).Apply(set, ctx).ok());
    // Reference: |-ln p - H| computed from p directly.
    CandidateSet ref = CandidateSet::FromLogits(logits);
    ref.Normalize();
    double entropy = 0;
    for (const Candidate& c : ref.items()) entropy -= c.p * std::log(static_cast<double>(c.p));
    const auto more_typical = [entropy](const Candidate& a, const Candidate& b) {
      const double da = std::fabs(-std::log(static_cast<double>(a.p)) - entropy);
      const double db = std::fabs(-std::log(static_cast<double>(b.p)) - entropy);
      return da < db || (da == db && a.id < b.id);
    };
    const std::vector<int32_t> expected = ReferencePrefix(ref, mass, more_typical);
    // Scores computed from rounded p may order a handful of near-ties
    // differently; the kept sets must agree up to those.
    const std::vector<int32_t> got = SortedIds(set);
    std::vector<int32_t> common;
    std::set_intersection(got.begin(), got.end(), expected.begin(), expected.end(),
                          std::back_inserter(common));
    EXPECT_GE(common.size() + 2, std::max(got.size(), expected.size())) << "mass " << mass;
  }
}

TEST(LargeVocabularyTest, MinPAndTopKMatchAFullSort) {
  constexpr int kVocab = 1 << 17;
  const std::vector<float> logits = RandomLogits(kVocab, 13, 2.0f);
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  StepContext ctx;
  for (int32_t k : {1, 40, 10000}) {  // heap selection, then nth_element
    CandidateSet set = CandidateSet::FromLogits(logits);
    ASSERT_TRUE(TopKStage(k).Apply(set, ctx).ok());
    ASSERT_EQ(set.size(), static_cast<size_t>(k));
    EXPECT_TRUE(set.sorted());
    for (size_t i = 0; i < set.size(); ++i) ASSERT_EQ(set.items()[i].logit, sorted[i]) << k;
  }

  CandidateSet min_p_set = CandidateSet::FromLogits(logits);
  ASSERT_TRUE(MinPStage(0.05f).Apply(min_p_set, ctx).ok());
  const float threshold = sorted[0] + std::log(0.05f);
  EXPECT_EQ(min_p_set.size(),
            static_cast<size_t>(std::count_if(logits.begin(), logits.end(),
                                              [threshold](float z) { return z >= threshold; })));
}

// ---------------------------------------------------------------------------
// temperature, dynatemp

TEST(TemperatureStageTest, DividesLogitsByTheTemperature) {
  Step step;
  // p_i^(1/T) / sum_j p_j^(1/T)
  EXPECT_THAT(ApplyToProbs(TemperatureStage(2.0f), kProbs, &step),
              Pointwise(FloatNear(kTolerance), {0.162700f, 0.230093f, 0.281805f, 0.325401f}));
  EXPECT_EQ(step.params.temperature, 2.0f);
  EXPECT_THAT(ApplyToProbs(TemperatureStage(0.5f), kProbs),
              Pointwise(FloatNear(kTolerance), {1.0f / 30, 4.0f / 30, 9.0f / 30, 16.0f / 30}));
  EXPECT_THAT(ApplyToProbs(TemperatureStage(1.0f), kProbs),
              Pointwise(FloatNear(kTolerance), kProbs));
}

TEST(DynaTempStageTest, MapsNormalisedEntropyToTemperature) {
  // H({0.1, 0.2, 0.3, 0.4}) = 1.846439 bits; log2 4 = 2; ratio 0.923220.
  Step step;
  EXPECT_THAT(ApplyToProbs(DynaTempStage(0.5f, 1.5f, 1.0f), kProbs, &step),
              Pointwise(FloatNear(kTolerance), {0.134408f, 0.218745f, 0.290847f, 0.356001f}));
  EXPECT_NEAR(*step.params.temperature, 1.4232197f, 1e-6);
  Step squared;
  EXPECT_THAT(ApplyToProbs(DynaTempStage(0.5f, 1.5f, 2.0f), kProbs, &squared),
              Pointwise(FloatNear(kTolerance), {0.129698f, 0.216537f, 0.292244f, 0.361521f}));
  EXPECT_NEAR(*squared.params.temperature, 1.3523346f, 1e-6);
}

TEST(DynaTempStageTest, UniformGivesMaxAndSingleTokenGivesMinTemperature) {
  Step uniform;
  ApplyToProbs(DynaTempStage(0.5f, 1.5f, 1.0f), {0.25f, 0.25f, 0.25f, 0.25f}, &uniform);
  EXPECT_NEAR(*uniform.params.temperature, 1.5f, 1e-6);
  Step single;
  ApplyToProbs(DynaTempStage(0.5f, 1.5f, 1.0f), {1.0f}, &single);
  EXPECT_EQ(*single.params.temperature, 0.5f);
}

// ---------------------------------------------------------------------------
// top-n-sigma (llama.cpp's cases)

TEST(TopNSigmaStageTest, KeepsLogitsWithinNSigmaOfTheMaximum) {
  Step step;
  // ln p: mean -1.508, sigma 0.5206: max - sigma = -1.437 keeps ln 0.3, ln 0.4.
  EXPECT_THAT(ApplyToProbs(TopNSigmaStage(1.0f), kProbs, &step),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.428571f, 0.571429f}));
  EXPECT_EQ(step.params.top_n_sigma, 1.0f);
  EXPECT_THAT(ApplyToProbs(TopNSigmaStage(3.0f), kProbs), Pointwise(FloatNear(kTolerance), kProbs));
}

TEST(TopNSigmaStageTest, IsInvariantUnderTemperature) {
  for (float t : {0.25f, 3.0f}) {
    CandidateSet set = FromProbs(kProbs);
    set.ApplyTemperature(t);
    StepContext ctx;
    ASSERT_TRUE(TopNSigmaStage(1.0f).Apply(set, ctx).ok());
    EXPECT_EQ(SortedIds(set), (std::vector<int32_t>{2, 3})) << "temperature " << t;
  }
}

// ---------------------------------------------------------------------------
// XTC (llama.cpp's cases, renormalised)

TEST(XtcStageTest, WithProbabilityOneRemovesAllTopChoicesButTheLeastLikely) {
  const std::vector<float> probs = {0.4f, 0.3f, 0.2f, 0.1f};
  EXPECT_THAT(ApplyToProbs(XtcStage(0.09f, 1.0f, 1), probs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 1.0f}));
  EXPECT_THAT(ApplyToProbs(XtcStage(0.19f, 1.0f, 1), probs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 2.0f / 3, 1.0f / 3}));
  EXPECT_THAT(ApplyToProbs(XtcStage(0.29f, 1.0f, 1), probs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.5f, 1.0f / 3, 1.0f / 6}));
  // Only one token reaches 0.39: nothing to exclude.
  EXPECT_THAT(ApplyToProbs(XtcStage(0.39f, 1.0f, 1), probs),
              Pointwise(FloatNear(kTolerance), probs));
}

TEST(XtcStageTest, WithProbabilityZeroChangesNothingButConsumesItsDraw) {
  const std::vector<float> probs = {0.4f, 0.3f, 0.2f, 0.1f};
  Step step;
  CandidateSet set = FromProbs(probs);
  StepContext ctx = step.Context();
  ASSERT_TRUE(XtcStage(0.09f, 0.0f, 1).Apply(set, ctx).ok());
  EXPECT_THAT(ProbsById(set), Pointwise(FloatNear(kTolerance), probs));
  EXPECT_EQ(ctx.next_draw, 1u);
  EXPECT_EQ(step.params.xtc_threshold, 0.09f);
  EXPECT_EQ(step.params.xtc_probability, 0.0f);
}

TEST(XtcStageTest, KeepsAtLeastMinKeepCandidates) {
  // Excluding would leave 1 < 2 candidates.
  EXPECT_THAT(ApplyToProbs(XtcStage(0.09f, 1.0f, 2), {0.4f, 0.3f, 0.2f, 0.1f}),
              Pointwise(FloatNear(kTolerance), {0.4f, 0.3f, 0.2f, 0.1f}));
}

// ---------------------------------------------------------------------------
// penalties: history replayed through Accept(), then Apply()

TEST(PenaltiesStageTest, DividesPositiveAndMultipliesNegativeLogitsExactly) {
  Step step;
  const CandidateSet set =
      ReplayAndApply(std::make_unique<PenaltiesStage>(2.0f, 0.5f, 0.25f, 64), {0, 1, 1, 4, 9},
                     {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f}, step);
  EXPECT_THAT(LogitsById(set), ElementsAre(2.0f / 2 - 0.5f - 0.25f,       // seen once
                                           -1.0f * 2 - 2 * 0.5f - 0.25f,  // seen twice
                                           0.5f, 3.0f,                    // not seen
                                           -2.0f * 2 - 0.5f - 0.25f,      // seen once
                                           1.0f));
  EXPECT_EQ(step.params.repetition_penalty, 2.0f);
  EXPECT_EQ(step.params.frequency_penalty, 0.5f);
  EXPECT_EQ(step.params.presence_penalty, 0.25f);
}

TEST(PenaltiesStageTest, MatchesLlamaCppCases) {
  const std::vector<float> uniform = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
  const auto penalties = [](float repeat, float frequency, float presence) {
    return std::make_unique<PenaltiesStage>(repeat, frequency, presence, 5);
  };
  EXPECT_THAT(ProbsById(ReplayAndApplyProbs(penalties(50, 0, 0), {0}, uniform)),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.25f, 0.25f, 0.25f, 0.25f}));
  EXPECT_THAT(ProbsById(ReplayAndApplyProbs(penalties(50, 0, 0), {0, 1, 2}, uniform)),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 0.5f, 0.5f}));
  EXPECT_THAT(ProbsById(ReplayAndApplyProbs(penalties(50, 0, 0), {0, 1, 2, 0, 0}, uniform)),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 0.5f, 0.5f}));
  EXPECT_THAT(
      ProbsById(ReplayAndApplyProbs(penalties(1, 5, 5), {0}, uniform)),
      Pointwise(FloatNear(kTolerance), {0.000011f, 0.249997f, 0.249997f, 0.249997f, 0.249997f}));
  EXPECT_THAT(
      ProbsById(ReplayAndApplyProbs(penalties(1, 5, 5), {0, 1, 2}, uniform)),
      Pointwise(FloatNear(kTolerance), {0.000023f, 0.000023f, 0.000023f, 0.499966f, 0.499966f}));
  EXPECT_THAT(
      ProbsById(ReplayAndApplyProbs(penalties(1, 5, 5), {0, 1, 2, 0, 0}, uniform)),
      Pointwise(FloatNear(kTolerance), {0.000000f, 0.000023f, 0.000023f, 0.499977f, 0.499977f}));
}

TEST(PenaltiesStageTest, CountsOnlyTheLastNTokens) {
  Step step;
  const CandidateSet set = ReplayAndApply(std::make_unique<PenaltiesStage>(1.0f, 1.0f, 0.0f, 2),
                                          {0, 0, 0, 1}, {0.0f, 0.0f, 0.0f}, step);
  EXPECT_THAT(LogitsById(set), ElementsAre(-1.0f, -1.0f, 0.0f));
}

TEST(PenaltiesStageTest, FindsTokensInAReorderedSet) {
  Step step;
  step.state.recent_tokens = {3, 0};
  CandidateSet set = CandidateSet::FromLogits({1.0f, 2.0f, 3.0f, 4.0f, -5.0f});
  StepContext ctx = step.Context();
  ASSERT_TRUE(TopKStage(4).Apply(set, ctx).ok());  // sorted: 3, 2, 1, 0
  ASSERT_TRUE(PenaltiesStage(2.0f, 0.0f, 0.0f, 64).Apply(set, ctx).ok());
  EXPECT_THAT(LogitsById(set), ElementsAre(0.5f, 2.0f, 3.0f, 2.0f, kNegInf));
  EXPECT_FALSE(set.sorted());
}

// ---------------------------------------------------------------------------
// logit bias

TEST(LogitBiasStageTest, AddsBiasesAndRemovesMinusInfinity) {
  const std::map<int32_t, float> bias = {{1, 1.5f}, {3, kNegInf}, {7, 2.0f}};  // 7: not in vocab
  for (bool reorder : {false, true}) {
    CandidateSet set = CandidateSet::FromLogits({0.0f, 0.0f, 0.0f, 0.0f});
    // Reversed, the set no longer has FromLogits' id layout: the lookup by id
    // takes its general path.
    if (reorder) std::reverse(set.items().begin(), set.items().end());
    StepContext ctx;
    ASSERT_TRUE(LogitBiasStage(bias).Apply(set, ctx).ok());
    EXPECT_THAT(LogitsById(set), ElementsAre(0.0f, 1.5f, 0.0f, kNegInf)) << reorder;
    EXPECT_EQ(set.size(), 3u);
  }
}

// ---------------------------------------------------------------------------
// no-repeat n-gram (Hugging Face semantics)

std::vector<float> NoRepeat(int32_t n, const std::vector<int32_t>& history) {
  Step step;
  step.state.recent_tokens = history;
  return ApplyToProbs(NoRepeatNGramStage(n), {0.2f, 0.2f, 0.2f, 0.2f, 0.2f}, &step);
}

TEST(NoRepeatNGramStageTest, BansTokensThatWouldRepeatAnNGram) {
  // Bigram "1 2" exists; the history ends in 1, so 2 is banned.
  EXPECT_THAT(NoRepeat(2, {1, 2, 3, 1}),
              Pointwise(FloatNear(kTolerance), {0.25f, 0.25f, 0.0f, 0.25f, 0.25f}));
  // Trigram "1 2 3" exists; the history ends in "1 2", so 3 is banned.
  EXPECT_THAT(NoRepeat(3, {1, 2, 3, 1, 2}),
              Pointwise(FloatNear(kTolerance), {0.25f, 0.25f, 0.25f, 0.0f, 0.25f}));
  // Unigrams: every token of the history.
  EXPECT_THAT(NoRepeat(1, {0, 2}),
              Pointwise(FloatNear(kTolerance), {0.0f, 1.0f / 3, 0.0f, 1.0f / 3, 1.0f / 3}));
  // Two earlier "4 x" bigrams ban both followers.
  EXPECT_THAT(NoRepeat(2, {4, 0, 4, 1, 4}),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 1.0f / 3, 1.0f / 3, 1.0f / 3}));
}

TEST(NoRepeatNGramStageTest, BansNothingWithoutACompleteNGramOrMatch) {
  EXPECT_THAT(NoRepeat(3, {1, 2}),
              Pointwise(FloatNear(kTolerance), {0.2f, 0.2f, 0.2f, 0.2f, 0.2f}));
  EXPECT_THAT(NoRepeat(2, {1, 2, 3}),
              Pointwise(FloatNear(kTolerance), {0.2f, 0.2f, 0.2f, 0.2f, 0.2f}));
}

// ---------------------------------------------------------------------------
// DRY (llama.cpp's cases, then exact logits)

std::vector<float> Dry(const std::vector<float>& probs, const std::vector<int32_t>& history,
                       float multiplier, float base, int32_t allowed_length, int32_t last_n,
                       std::vector<int32_t> breakers) {
  return ProbsById(ReplayAndApplyProbs(
      std::make_unique<DryStage>(multiplier, base, allowed_length, last_n, std::move(breakers)),
      history, probs));
}

TEST(DryStageTest, MatchesLlamaCppCases) {
  const std::vector<float> four = {0.25f, 0.25f, 0.25f, 0.25f};
  const std::vector<float> five = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
  EXPECT_THAT(Dry(four, {0, 1}, 1.0f, 1.1f, 2, 4, {}), Pointwise(FloatNear(kTolerance), four));
  EXPECT_THAT(Dry(four, {0, 1, 2, 0, 1}, 1.0f, 1.1f, 2, 5, {}),
              Pointwise(FloatNear(kTolerance), {0.296923f, 0.296923f, 0.109232f, 0.296923f}));
  EXPECT_THAT(Dry(five, {0, 1, 3, 4, 0, 1}, 1.0f, 1.1f, 2, 6, {3}),
              Pointwise(FloatNear(kTolerance), five));
  EXPECT_THAT(
      Dry(five, {0, 1, 2, 0, 1}, 2.0f, 1.1f, 2, 5, {}),
      Pointwise(FloatNear(kTolerance), {0.241818f, 0.241818f, 0.032727f, 0.241818f, 0.241818f}));
  EXPECT_THAT(Dry(five, {0, 1, 2, 3, 4, 0, 1}, 1.0f, 1.1f, 4, 7, {}),
              Pointwise(FloatNear(kTolerance), five));
}

CandidateSet DryLogits(const std::vector<int32_t>& history, int32_t last_n,
                       std::vector<int32_t> breakers, Step& step) {
  return ReplayAndApply(std::make_unique<DryStage>(1.0f, 2.0f, 2, last_n, std::move(breakers)),
                        history, std::vector<float>(8, 0.0f), step);
}

TEST(DryStageTest, PenalisesTheLongestRepeatExactly) {
  // "5 0 1" ends the history and occurred before, followed by 2: n = 3, so
  // token 2 loses 1 * 2^(3 - 2) = 2.
  Step step;
  EXPECT_THAT(LogitsById(DryLogits({5, 0, 1, 2, 5, 0, 1}, 7, {}, step)),
              ElementsAre(0.0f, 0.0f, -2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
  EXPECT_EQ(step.params.dry_multiplier, 1.0f);
}

TEST(DryStageTest, BreakersCapTheRepeatAndLastNBoundsTheSearch) {
  // A breaker (5) two tokens from the end caps n at 2: 2^0 = 1.
  Step capped;
  EXPECT_THAT(LogitsById(DryLogits({5, 0, 1, 2, 5, 0, 1}, 7, {5}, capped)),
              ElementsAre(0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
  // Only the last 4 tokens "2 5 0 1": no earlier repeat.
  Step bounded;
  EXPECT_THAT(LogitsById(DryLogits({5, 0, 1, 2, 5, 0, 1}, 4, {}, bounded)),
              ElementsAre(0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
}

CandidateSet DrySequenceLogits(const std::vector<int32_t>& history, TokenSequences sequences,
                               Step& step) {
  return ReplayAndApply(
      std::make_unique<DryStage>(1.0f, 2.0f, 2, 64, std::vector<int32_t>{}, std::move(sequences)),
      history, std::vector<float>(8, 0.0f), step);
}

TEST(DryStageTest, ASequenceBreaksOnlyWhereItsTokensStandInARow) {
  // History "3 4 0 1 2 3 4 0 1": "3 4 0 1" repeats, followed by 2 (n = 4,
  // penalty 2^2 = 4). The sequence [3, 4] ends 2 tokens from the end: n is
  // capped at 2 (2^0 = 1).
  Step plain;
  EXPECT_THAT(LogitsById(DrySequenceLogits({3, 4, 0, 1, 2, 3, 4, 0, 1}, {}, plain)),
              ElementsAre(0.0f, 0.0f, -4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
  Step capped;
  EXPECT_THAT(LogitsById(DrySequenceLogits({3, 4, 0, 1, 2, 3, 4, 0, 1}, {{3, 4}}, capped)),
              ElementsAre(0.0f, 0.0f, -1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
  // [3, 5] never stands in the history, and 3 alone breaks nothing: n = 4.
  Step apart;
  EXPECT_THAT(LogitsById(DrySequenceLogits({3, 4, 0, 1, 2, 3, 4, 0, 1}, {{3, 5}}, apart)),
              ElementsAre(0.0f, 0.0f, -4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
  // A sequence of one token is a plain breaker: it also spares its token.
  Step single;
  EXPECT_THAT(LogitsById(DrySequenceLogits({3, 4, 0, 1, 2, 3, 4, 0, 1}, {{0}}, single)),
              ElementsAre(0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
}

TEST(DryStageTest, TheLongestSequenceEndingThereCaps) {
  // [4, 0] and [4, 0, 1] both start 3 tokens from the end of
  // "4 0 1 2 4 0 1"; the longer one ends at the last token: no repeat left.
  Step step;
  EXPECT_THAT(LogitsById(DrySequenceLogits({4, 0, 1, 2, 4, 0, 1}, {{4, 0}, {4, 0, 1}}, step)),
              ElementsAre(0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f));
}

TEST(DryStageTest, ClampsTheExponentToAFiniteFloat) {
  // 200 repeats of token 3: n = 199 and 1.75^197 overflows a float.
  Step step;
  const CandidateSet set =
      ReplayAndApply(std::make_unique<DryStage>(1.0f, 1.75f, 2, 256, std::vector<int32_t>{}),
                     std::vector<int32_t>(200, 3), {0.0f, 0.0f, 0.0f, 0.0f}, step);
  const std::vector<float> logits = LogitsById(set);
  EXPECT_TRUE(std::isfinite(logits[3]));
  EXPECT_LT(logits[3], -1e37f);
}

// ---------------------------------------------------------------------------
// mirostat v2

TEST(MirostatV2StageTest, StartsAtTwiceTauAndUpdatesMuFromTheDrawnSurprise) {
  const MirostatV2Stage stage(/*tau=*/2.0f, /*eta=*/0.1f);
  Step step;
  CandidateSet set = FromProbs({0.5f, 0.25f, 0.125f, 0.125f});
  StepContext ctx = step.Context();
  ASSERT_TRUE(stage.Apply(set, ctx).ok());
  EXPECT_EQ(step.params.mirostat_mu, 4.0f);
  EXPECT_EQ(set.size(), 4u);  // surprises 1, 2, 3, 3 bits are all <= 4
  const int32_t token = set.selected();
  ASSERT_GE(token, 0);
  stage.Accept(token, set, step.state);
  const float surprise = -std::log2(std::vector<float>{0.5f, 0.25f, 0.125f, 0.125f}[token]);
  EXPECT_NEAR(*step.state.mirostat_mu, 4.0f - 0.1f * (surprise - 2.0f), 1e-5);
}

TEST(MirostatV2StageTest, TruncatesTokensMoreSurprisingThanMu) {
  const MirostatV2Stage stage(2.0f, 0.1f);
  Step step;
  step.state.mirostat_mu = 2.5f;  // keeps surprises 1 and 2
  CandidateSet set = FromProbs({0.5f, 0.25f, 0.125f, 0.125f});
  StepContext ctx = step.Context();
  ASSERT_TRUE(stage.Apply(set, ctx).ok());
  EXPECT_THAT(ProbsById(set), Pointwise(FloatNear(kTolerance), {2.0f / 3, 1.0f / 3, 0.0f, 0.0f}));
  // Surprise of token 1 under the truncated distribution: log2 3.
  stage.Accept(1, set, step.state);
  EXPECT_NEAR(*step.state.mirostat_mu, 2.5f - 0.1f * (std::log2(3.0f) - 2.0f), 1e-5);
}

TEST(MirostatV2StageTest, KeepsTheMostProbableTokenWhenMuExcludesAll) {
  const MirostatV2Stage stage(2.0f, 0.1f);
  for (float mu : {1.5f, 0.5f}) {
    Step step;
    step.state.mirostat_mu = mu;
    CandidateSet set = FromProbs({0.5f, 0.25f, 0.125f, 0.125f});
    StepContext ctx = step.Context();
    ASSERT_TRUE(stage.Apply(set, ctx).ok());
    EXPECT_EQ(set.size(), 1u);
    EXPECT_EQ(set.selected(), 0);
    stage.Accept(0, set, step.state);
    // p = 1 after truncation: surprise 0, mu + eta * tau.
    EXPECT_FLOAT_EQ(*step.state.mirostat_mu, mu + 0.1f * 2.0f);
  }
}

// ---------------------------------------------------------------------------
// dist

TEST(DistStageTest, DrawsOneCandidateWithOneDraw) {
  Step step;
  CandidateSet set = FromProbs(kProbs);
  StepContext ctx = step.Context();
  ctx.next_draw = 3;
  ASSERT_TRUE(DistStage().Apply(set, ctx).ok());
  EXPECT_GE(set.selected(), 0);
  EXPECT_LT(set.selected(), 4);
  EXPECT_EQ(ctx.next_draw, 4u);
  EXPECT_EQ(step.params.candidates, 4);
}

TEST(DistStageTest, EmptySetIsFailedPrecondition) {
  Step step;
  CandidateSet set = CandidateSet::FromLogits({kNegInf, kNegInf});
  StepContext ctx = step.Context();
  EXPECT_EQ(DistStage().Apply(set, ctx).code(), absl::StatusCode::kFailedPrecondition);
}

// Pearson's chi-square statistic of `counts` against `probs` * total.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs, int total) {
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probs[i] * total;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

TEST(DistStageTest, DrawsMatchTheFilteredDistribution) {
  // top_k 3 of {0.1, 0.2, 0.3, 0.4} -> {2/9, 3/9, 4/9}; each draw uses its own
  // step, so the draws are independent.
  constexpr int kDraws = 30000;
  std::vector<int> counts(4, 0);
  for (int i = 0; i < kDraws; ++i) {
    CandidateSet set = FromProbs(kProbs);
    const CounterRng rng(kSeed, i);
    StepContext ctx;
    ctx.rng = &rng;
    ASSERT_TRUE(TopKStage(3).Apply(set, ctx).ok());
    ASSERT_TRUE(DistStage().Apply(set, ctx).ok());
    ++counts[set.selected()];
  }
  EXPECT_EQ(counts[0], 0);
  // chi-square with 2 degrees of freedom: 13.82 is its 0.999 quantile.
  EXPECT_LT(ChiSquare({counts[1], counts[2], counts[3]}, {2.0 / 9, 3.0 / 9, 4.0 / 9}, kDraws),
            13.82);
}

TEST(DistStageTest, DrawsMatchAWiderDistributionAfterTemperature) {
  // Ten tokens with logits 0..9 at temperature 3: p_i ∝ exp(i / 3).
  constexpr int kTokens = 10;
  constexpr int kDraws = 50000;
  std::vector<float> logits(kTokens);
  std::vector<double> probs(kTokens);
  double sum = 0;
  for (int i = 0; i < kTokens; ++i) {
    logits[i] = static_cast<float>(i);
    probs[i] = std::exp(i / 3.0);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;
  std::vector<int> counts(kTokens, 0);
  for (int i = 0; i < kDraws; ++i) {
    CandidateSet set = CandidateSet::FromLogits(logits);
    const CounterRng rng(99, i);
    StepContext ctx;
    ctx.rng = &rng;
    ASSERT_TRUE(TemperatureStage(3.0f).Apply(set, ctx).ok());
    ASSERT_TRUE(DistStage().Apply(set, ctx).ok());
    ++counts[set.selected()];
  }
  // 9 degrees of freedom: 27.88 is the 0.999 quantile.
  EXPECT_LT(ChiSquare(counts, probs, kDraws), 27.88);
}

// ---------------------------------------------------------------------------
// chain

// Appends "<name>.apply" / "<name>.accept" to a log, to observe the order.
class RecordingStage : public Stage {
 public:
  RecordingStage(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  std::string Name() const override { return name_; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override {
    log_->push_back(name_ + ".apply");
    return name_ == "failing" ? absl::InternalError("failing stage") : absl::OkStatus();
  }
  void Accept(int32_t token, const CandidateSet& set, SamplerState& state) const override {
    log_->push_back(name_ + ".accept saw " + std::to_string(state.recent_tokens.size()));
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

TEST(SamplerChainTest, RunsStagesInOrderAndPushesTheTokenOnceAfterAccept) {
  std::vector<std::string> log;
  auto inner = std::make_unique<SamplerChain>(SamplerChain::History::kLeave);
  inner->Add(std::make_unique<RecordingStage>("b", &log));
  SamplerChain chain;
  chain.Add(std::make_unique<RecordingStage>("a", &log))
      .Add(std::move(inner))
      .Add(std::make_unique<RecordingStage>("c", &log));
  EXPECT_EQ(chain.Describe(), "a -> chain -> c");

  CandidateSet set = FromProbs(kProbs);
  StepContext ctx;
  ASSERT_TRUE(chain.Apply(set, ctx).ok());
  SamplerState state;
  chain.Accept(2, set, state);
  EXPECT_THAT(log, ElementsAre("a.apply", "b.apply", "c.apply", "a.accept saw 0", "b.accept saw 0",
                               "c.accept saw 0"));
  EXPECT_EQ(state.recent_tokens, std::vector<int32_t>{2});
  EXPECT_EQ(chain.timing().applies, 1);
}

TEST(SamplerChainTest, StopsAtTheFirstError) {
  std::vector<std::string> log;
  SamplerChain chain;
  chain.Add(std::make_unique<RecordingStage>("failing", &log))
      .Add(std::make_unique<RecordingStage>("never", &log));
  CandidateSet set = FromProbs(kProbs);
  StepContext ctx;
  EXPECT_EQ(chain.Apply(set, ctx).code(), absl::StatusCode::kInternal);
  EXPECT_THAT(log, ElementsAre("failing.apply"));
}

TEST(SamplerChainTest, SamplersBuildTheDocumentedOrder) {
  ChainConfig all;
  all.logit_bias = {{1, 1.0f}};
  all.no_repeat_ngram_size = 3;
  EXPECT_EQ(BuildChain(all)->Describe(),
            "logit_bias -> penalties -> no_repeat_ngram -> top_k -> typical_p -> top_p -> "
            "min_p -> temperature -> dist");
  EXPECT_EQ(BuildChain(ChainConfig())->Describe(),
            "penalties -> top_k -> typical_p -> top_p -> min_p -> temperature -> dist");
  EXPECT_EQ(BuildChain(MirostatV2Preset(MirostatV2Config()))->Describe(),
            "temperature -> mirostat_v2");
  EXPECT_EQ(BuildChain(DynaTempPreset(DynaTempConfig()))->Describe(), "dynatemp -> dist");
  EXPECT_EQ(BuildChain(TopNSigmaPreset(TopNSigmaConfig()))->Describe(),
            "top_n_sigma -> temperature -> dist");
  EXPECT_EQ(BuildChain(XtcPreset(XtcConfig()))->Describe(), "temperature -> xtc -> dist");
  EXPECT_EQ(BuildChain(DryPreset(DryConfig()))->Describe(), "dry -> temperature -> dist");
}

TEST(SamplerChainTest, OrderMattersTopKBeforeTopP) {
  // top_k 2 then top_p 0.5: {3/7, 4/7} -> 4/7 >= 0.5 keeps token 3 alone.
  // top_p 0.5 then top_k 2: {3/7, 4/7} as top_p keeps tokens 2, 3 first.
  SamplerChain k_then_p;
  k_then_p.Add(std::make_unique<TopKStage>(2)).Add(std::make_unique<TopPStage>(0.5f));
  SamplerChain p_then_k;
  p_then_k.Add(std::make_unique<TopPStage>(0.5f)).Add(std::make_unique<TopKStage>(2));
  EXPECT_THAT(ApplyToProbs(k_then_p, kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 0.0f, 1.0f}));
  EXPECT_THAT(ApplyToProbs(p_then_k, kProbs),
              Pointwise(FloatNear(kTolerance), {0.0f, 0.0f, 3.0f / 7, 4.0f / 7}));
}

TEST(SamplerChainTest, AChainWithEveryStageRecordsItsParameters) {
  ChainConfig config;
  config.temperature = 0.7f;
  config.top_k = 3;
  config.top_p = 0.95f;
  config.min_p = 0.05f;
  config.typical_p = 0.99f;
  config.repetition_penalty = 1.1f;
  const auto chain = BuildChain(config);
  Step step;
  CandidateSet set = FromProbs(kProbs);
  StepContext ctx = step.Context();
  ASSERT_TRUE(chain->Apply(set, ctx).ok());
  EXPECT_EQ(step.params.temperature, 0.7f);
  EXPECT_EQ(step.params.top_k, 3);
  EXPECT_EQ(step.params.top_p, 0.95f);
  EXPECT_EQ(step.params.min_p, 0.05f);
  EXPECT_EQ(step.params.typical_p, 0.99f);
  EXPECT_EQ(step.params.repetition_penalty, 1.1f);
  EXPECT_TRUE(step.params.candidates.has_value());
  EXPECT_GE(set.selected(), 1);
}

// ---------------------------------------------------------------------------
// config validation

std::string Message(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ConfigValidateTest, DefaultsAreValid) {
  EXPECT_TRUE(ChainConfig().Validate().ok());
  EXPECT_TRUE(MirostatV2Config().Validate().ok());
  EXPECT_TRUE(DynaTempConfig().Validate().ok());
  EXPECT_TRUE(TopNSigmaConfig().Validate().ok());
  EXPECT_TRUE(XtcConfig().Validate().ok());
  EXPECT_TRUE(DryConfig().Validate().ok());
}

TEST(ConfigValidateTest, ChainErrorsNameTheFieldAndValue) {
  const auto chain = [](auto&& mutate) {
    ChainConfig c;
    mutate(c);
    return Message(c.Validate());
  };
  EXPECT_EQ(chain([](ChainConfig& c) { c.temperature = -1; }),
            "chain.temperature must be > 0, got -1");
  EXPECT_EQ(chain([](ChainConfig& c) { c.temperature = 0; }),
            "chain.temperature must be > 0, got 0");
  EXPECT_EQ(chain([](ChainConfig& c) { c.temperature = INFINITY; }),
            "chain.temperature must be finite, got inf");
  EXPECT_EQ(chain([](ChainConfig& c) { c.temperature = NAN; }),
            "chain.temperature must be > 0, got nan");
  EXPECT_EQ(chain([](ChainConfig& c) { c.top_k = -1; }), "chain.top_k must be >= 0, got -1");
  EXPECT_EQ(chain([](ChainConfig& c) { c.top_p = 0; }), "chain.top_p must be in (0, 1], got 0");
  EXPECT_EQ(chain([](ChainConfig& c) { c.top_p = 1.5f; }),
            "chain.top_p must be in (0, 1], got 1.5");
  EXPECT_EQ(chain([](ChainConfig& c) { c.min_p = 1; }), "chain.min_p must be in [0, 1), got 1");
  EXPECT_EQ(chain([](ChainConfig& c) { c.min_p = -0.5f; }),
            "chain.min_p must be in [0, 1), got -0.5");
  EXPECT_EQ(chain([](ChainConfig& c) { c.typical_p = 0; }),
            "chain.typical_p must be in (0, 1], got 0");
  EXPECT_EQ(chain([](ChainConfig& c) { c.repetition_penalty = 0; }),
            "chain.repetition_penalty must be > 0, got 0");
  EXPECT_EQ(chain([](ChainConfig& c) { c.frequency_penalty = NAN; }),
            "chain.frequency_penalty must be finite, got nan");
  EXPECT_EQ(chain([](ChainConfig& c) { c.presence_penalty = -INFINITY; }),
            "chain.presence_penalty must be finite, got -inf");
  EXPECT_EQ(chain([](ChainConfig& c) { c.penalty_last_n = 300; }),
            "chain.penalty_last_n must be in [0, 256], got 300");
  EXPECT_EQ(chain([](ChainConfig& c) { c.penalty_last_n = -1; }),
            "chain.penalty_last_n must be in [0, 256], got -1");
  EXPECT_EQ(chain([](ChainConfig& c) { c.no_repeat_ngram_size = -2; }),
            "chain.no_repeat_ngram_size must be in [0, 256], got -2");
  EXPECT_EQ(chain([](ChainConfig& c) {
              c.logit_bias = {{5, NAN}};
            }),
            "chain.logit_bias[5] must not be NaN or +inf, got nan");
  EXPECT_EQ(chain([](ChainConfig& c) {
              c.logit_bias = {{5, INFINITY}};
            }),
            "chain.logit_bias[5] must not be NaN or +inf, got inf");
  EXPECT_EQ(chain([](ChainConfig& c) {
              c.logit_bias = {{-1, 1.0f}};
            }),
            "chain.logit_bias token ids must be >= 0, got -1");
  ChainConfig ban;
  ban.logit_bias = {{5, -INFINITY}};  // -inf bans a token: valid
  EXPECT_TRUE(ban.Validate().ok());
}

TEST(ConfigValidateTest, TemperaturesBelowTheMinimumAreRejected) {
  // 1 / T must stay finite: every temperature field has the floor
  // kMinTemperature = 1e-3, and the floor itself is accepted.
  ChainConfig chain;
  chain.temperature = 1e-4f;
  EXPECT_EQ(Message(chain.Validate()), "chain.temperature must be >= 0.001, got 0.0001");
  chain.temperature = kMinTemperature;
  EXPECT_TRUE(chain.Validate().ok());

  MirostatV2Config mirostat;
  mirostat.temperature = 5e-4f;
  EXPECT_EQ(Message(mirostat.Validate()), "mirostat_v2.temperature must be >= 0.001, got 0.0005");

  DynaTempConfig dynatemp;
  dynatemp.min_temperature = 1e-6f;
  EXPECT_EQ(Message(dynatemp.Validate()), "dynatemp.min_temperature must be >= 0.001, got 1e-06");
  dynatemp.min_temperature = kMinTemperature;
  EXPECT_TRUE(dynatemp.Validate().ok());

  TopNSigmaConfig sigma;
  sigma.temperature = 1e-30f;
  EXPECT_EQ(Message(sigma.Validate()), "top_n_sigma.temperature must be >= 0.001, got 1e-30");
  sigma.temperature = 0;
  EXPECT_EQ(Message(sigma.Validate()), "top_n_sigma.temperature must be > 0, got 0");

  XtcConfig xtc;
  xtc.temperature = 9e-4f;
  EXPECT_EQ(Message(xtc.Validate()), "xtc.temperature must be >= 0.001, got 0.0009");

  DryConfig dry;
  dry.temperature = 1e-4f;
  EXPECT_EQ(Message(dry.Validate()), "dry.temperature must be >= 0.001, got 0.0001");
  dry.temperature = -INFINITY;
  EXPECT_EQ(Message(dry.Validate()), "dry.temperature must be finite, got -inf");
}

TEST(ConfigValidateTest, OtherSamplersErrorsNameTheFieldAndValue) {
  MirostatV2Config mirostat;
  mirostat.tau = 0;
  EXPECT_EQ(Message(mirostat.Validate()), "mirostat_v2.tau must be > 0, got 0");
  mirostat = MirostatV2Config();
  mirostat.eta = -0.1f;
  EXPECT_EQ(Message(mirostat.Validate()), "mirostat_v2.eta must be > 0, got -0.1");
  mirostat = MirostatV2Config();
  mirostat.temperature = 0;
  EXPECT_EQ(Message(mirostat.Validate()), "mirostat_v2.temperature must be > 0, got 0");

  DynaTempConfig dynatemp;
  dynatemp.min_temperature = 0;
  EXPECT_EQ(Message(dynatemp.Validate()), "dynatemp.min_temperature must be > 0, got 0");
  dynatemp = DynaTempConfig();
  dynatemp.max_temperature = 0.2f;
  EXPECT_EQ(Message(dynatemp.Validate()),
            "dynatemp.max_temperature must be >= dynatemp.min_temperature (0.5), got 0.2");
  dynatemp = DynaTempConfig();
  dynatemp.exponent = -1;
  EXPECT_EQ(Message(dynatemp.Validate()), "dynatemp.exponent must be >= 0, got -1");

  TopNSigmaConfig sigma;
  sigma.n = 0;
  EXPECT_EQ(Message(sigma.Validate()), "top_n_sigma.n must be > 0, got 0");

  XtcConfig xtc;
  xtc.threshold = 1.5f;
  EXPECT_EQ(Message(xtc.Validate()), "xtc.threshold must be in [0, 1], got 1.5");
  xtc = XtcConfig();
  xtc.probability = -0.25f;
  EXPECT_EQ(Message(xtc.Validate()), "xtc.probability must be in [0, 1], got -0.25");
  xtc = XtcConfig();
  xtc.min_keep = 0;
  EXPECT_EQ(Message(xtc.Validate()), "xtc.min_keep must be >= 1, got 0");

  DryConfig dry;
  dry.multiplier = -1;
  EXPECT_EQ(Message(dry.Validate()), "dry.multiplier must be >= 0, got -1");
  dry = DryConfig();
  dry.base = 0.5f;
  EXPECT_EQ(Message(dry.Validate()), "dry.base must be >= 1, got 0.5");
  dry = DryConfig();
  dry.allowed_length = 0;
  EXPECT_EQ(Message(dry.Validate()), "dry.allowed_length must be >= 1, got 0");
  dry = DryConfig();
  dry.penalty_last_n = 257;
  EXPECT_EQ(Message(dry.Validate()), "dry.penalty_last_n must be in [0, 256], got 257");
  dry = DryConfig();
  dry.sequence_breaker_ids = {4, -5};
  EXPECT_EQ(Message(dry.Validate()), "dry.sequence_breaker_ids[1] must be >= 0, got -5");
}

}  // namespace
}  // namespace entroserve
