// End-to-end tests of the samplers of sampler/stages/samplers.h: greedy and
// the chain samplers, their determinism in (seed, step), the state they
// return and the outputs they report.
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/core/types.h"
#include "sampler/stages/samplers.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

double LogSumExp(const std::vector<float>& z) {
  double max = -std::numeric_limits<double>::infinity();
  for (float v : z) max = std::max(max, static_cast<double>(v));
  double sum = 0;
  for (float v : z) sum += std::exp(v - max);
  return max + std::log(sum);
}

Row MakeRow(const std::vector<float>& logits, uint64_t seed, int64_t step) {
  Row row;
  row.logits = logits;
  row.seed = seed;
  row.step = step;
  return row;
}

RowOutput SampleOk(const Sampler& sampler, const Row& row, SamplerState& state) {
  absl::StatusOr<RowOutput> out = sampler.Sample(row, state);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : RowOutput();
}

std::vector<float> Uniform(int n) { return std::vector<float>(n, 0.0f); }

TEST(GreedySamplerTest, PicksTheLowestIdOfTheMaximumAndPushesIt) {
  const auto sampler = MakeGreedySampler(GreedyConfig());
  EXPECT_EQ(sampler->Name(), "greedy");
  EXPECT_FALSE(sampler->NeedsState());
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f, kNegInf};
  SamplerState state;
  const RowOutput out = SampleOk(*sampler, MakeRow(logits, 1, 7), state);
  EXPECT_EQ(out.token, 1);
  EXPECT_EQ(out.mode, Mode::kGreedy);
  EXPECT_FALSE(out.inserted);
  EXPECT_NEAR(out.logprob, 3.0 - LogSumExp({1.0f, 3.0f, 3.0f, 2.0f}), 1e-5);
  EXPECT_EQ(state.recent_tokens, std::vector<int32_t>{1});
  EXPECT_EQ(state.sampler, "greedy");
  EXPECT_EQ(state.next_step, 8);
}

TEST(ChainSamplerTest, SameSeedAndStepGiveTheSameTokenAndStepsDiffer) {
  ChainConfig config;
  config.temperature = 1.0f;
  const auto sampler = MakeChainSampler(config);
  EXPECT_EQ(sampler->Name(), "chain");
  const std::vector<float> logits = Uniform(64);
  std::set<int32_t> tokens;
  for (int64_t step = 0; step < 32; ++step) {
    SamplerState a, b;
    const RowOutput first = SampleOk(*sampler, MakeRow(logits, 42, step), a);
    const RowOutput again = SampleOk(*sampler, MakeRow(logits, 42, step), b);
    EXPECT_EQ(first.token, again.token) << "step " << step;
    EXPECT_EQ(a.recent_tokens, b.recent_tokens);
    tokens.insert(first.token);
  }
  // 32 draws from 64 equally likely tokens: all equal has probability 64^-31.
  EXPECT_GT(tokens.size(), 10u);
}

TEST(ChainSamplerTest, DifferentSeedsGiveDifferentSequences) {
  const auto sampler = MakeChainSampler(ChainConfig());
  const std::vector<float> logits = Uniform(1000);
  int same = 0;
  for (int64_t step = 0; step < 20; ++step) {
    SamplerState a, b;
    same += SampleOk(*sampler, MakeRow(logits, 1, step), a).token ==
            SampleOk(*sampler, MakeRow(logits, 2, step), b).token;
  }
  EXPECT_LT(same, 3);
}

TEST(ChainSamplerTest, ReportsParametersSignalsAndUnfilteredLogprob) {
  ChainConfig config;
  config.temperature = 0.5f;
  config.top_k = 2;
  config.top_p = 0.9f;
  config.min_p = 0.1f;
  const auto sampler = MakeChainSampler(config);
  EXPECT_FALSE(sampler->NeedsState());
  const std::vector<float> logits = {0.0f, 0.0f, 0.0f, 0.0f};
  SamplerState state;
  const RowOutput out = SampleOk(*sampler, MakeRow(logits, 5, 0), state);
  EXPECT_EQ(out.mode, Mode::kSample);
  // Uniform over 4 tokens: 2 bits, no varentropy.
  EXPECT_NEAR(out.signals.entropy, 2.0f, 1e-5);
  EXPECT_NEAR(out.signals.varentropy, 0.0f, 1e-5);
  // log(1/4) under the unfiltered logits, though top_k left 2 candidates.
  EXPECT_NEAR(out.logprob, std::log(0.25), 1e-5);
  EXPECT_EQ(out.params.temperature, 0.5f);
  EXPECT_EQ(out.params.top_k, 2);
  EXPECT_EQ(out.params.top_p, 0.9f);
  EXPECT_EQ(out.params.min_p, 0.1f);
  EXPECT_EQ(out.params.typical_p, 1.0f);
  EXPECT_EQ(out.params.candidates, 2);
  EXPECT_TRUE(out.token == 0 || out.token == 1);  // ties go to the lower ids
  EXPECT_EQ(state.recent_tokens, std::vector<int32_t>{out.token});
  EXPECT_EQ(state.next_step, 1);
}

TEST(ChainSamplerTest, PenalisesTheHistoryAndPushesEachTokenOnce) {
  ChainConfig config;
  config.repetition_penalty = 1e6f;
  config.temperature = 0.05f;
  const auto sampler = MakeChainSampler(config);
  EXPECT_TRUE(sampler->NeedsState());
  const std::vector<float> logits = {5.0f, 4.0f, 0.0f};
  SamplerState state;
  state.recent_tokens = {0};
  const RowOutput out = SampleOk(*sampler, MakeRow(logits, 9, 3), state);
  EXPECT_EQ(out.token, 1);  // token 0's 5 became 5e-6
  EXPECT_EQ(state.recent_tokens, (std::vector<int32_t>{0, 1}));
}

TEST(ChainSamplerTest, NoRepeatNGramNeedsStateAndBans) {
  ChainConfig config;
  config.no_repeat_ngram_size = 2;
  config.temperature = 0.05f;
  const auto sampler = MakeChainSampler(config);
  EXPECT_TRUE(sampler->NeedsState());
  SamplerState state;
  state.recent_tokens = {0, 1, 0};  // "0 1" seen; ends in 0 -> 1 banned
  const RowOutput out = SampleOk(*sampler, MakeRow({0.0f, 3.0f, 2.0f}, 1, 0), state);
  EXPECT_EQ(out.token, 2);
}

TEST(ChainSamplerTest, BanningEveryTokenIsAnErrorForTheRow) {
  ChainConfig config;
  config.logit_bias = {{0, kNegInf}, {1, kNegInf}};
  const auto sampler = MakeChainSampler(config);
  SamplerState state;
  const absl::StatusOr<RowOutput> out = sampler->Sample(MakeRow({1.0f, 2.0f}, 1, 0), state);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(state.recent_tokens.empty());
}

TEST(ChainSamplerTest, HandlesALargeVocabulary) {
  constexpr int kVocab = 152064;  // Qwen2.5
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& z : logits) z = normal(gen);
  ChainConfig config;
  config.top_k = 40;
  config.top_p = 0.9f;
  config.min_p = 0.02f;
  config.temperature = 0.8f;
  config.repetition_penalty = 1.1f;
  const auto sampler = MakeChainSampler(config);
  SamplerState state;
  for (int64_t step = 0; step < 4; ++step) {
    const RowOutput out = SampleOk(*sampler, MakeRow(logits, 11, step), state);
    ASSERT_GE(out.token, 0);
    ASSERT_LT(out.token, kVocab);
    EXPECT_LE(*out.params.candidates, 40);
  }
  EXPECT_EQ(state.recent_tokens.size(), 4u);

  ChainConfig nucleus;  // top_p alone on the whole vocabulary
  nucleus.top_p = 0.95f;
  const RowOutput out = SampleOk(*MakeChainSampler(nucleus), MakeRow(logits, 11, 0), state);
  EXPECT_GT(*out.params.candidates, 40);
}

TEST(MirostatV2SamplerTest, CarriesMuInTheState) {
  MirostatV2Config config;
  config.tau = 3.0f;
  config.eta = 0.1f;
  const auto sampler = MakeMirostatV2Sampler(config);
  EXPECT_EQ(sampler->Name(), "mirostat_v2");
  EXPECT_TRUE(sampler->NeedsState());
  const std::vector<float> logits = Uniform(8);  // surprise 3 bits each
  SamplerState state;
  const RowOutput first = SampleOk(*sampler, MakeRow(logits, 1, 0), state);
  EXPECT_EQ(first.params.mirostat_mu, 6.0f);  // 2 * tau
  EXPECT_EQ(first.params.temperature, 1.0f);
  // Uniform over 8: surprise = tau, so mu does not move.
  ASSERT_TRUE(state.mirostat_mu.has_value());
  EXPECT_NEAR(*state.mirostat_mu, 6.0f, 1e-5);
  state.mirostat_mu = 2.0f;  // now every token (3 bits) exceeds mu
  const RowOutput second = SampleOk(*sampler, MakeRow(logits, 1, 1), state);
  EXPECT_EQ(second.params.mirostat_mu, 2.0f);
  EXPECT_EQ(second.token, 0);  // only the most probable (lowest id) is kept
  EXPECT_NEAR(*state.mirostat_mu, 2.0f + 0.1f * 3.0f, 1e-5);
  EXPECT_EQ(state.recent_tokens.size(), 2u);
}

TEST(OtherSamplersTest, HaveTheirNamesStateNeedsAndParameters) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f};
  {
    const auto sampler = MakeDynaTempSampler(DynaTempConfig());
    EXPECT_EQ(sampler->Name(), "dynatemp");
    EXPECT_FALSE(sampler->NeedsState());
    SamplerState state;
    const RowOutput out = SampleOk(*sampler, MakeRow(logits, 1, 0), state);
    EXPECT_GT(*out.params.temperature, 0.5f);
    EXPECT_LT(*out.params.temperature, 1.5f);
  }
  {
    const auto sampler = MakeTopNSigmaSampler(TopNSigmaConfig());
    EXPECT_EQ(sampler->Name(), "top_n_sigma");
    EXPECT_FALSE(sampler->NeedsState());
    SamplerState state;
    const RowOutput out = SampleOk(*sampler, MakeRow(logits, 1, 0), state);
    EXPECT_EQ(out.params.top_n_sigma, 1.0f);
    // mean 2.5, sigma 1.118: keeps z >= 2.88, token 3 only.
    EXPECT_EQ(out.token, 3);
  }
  {
    XtcConfig config;
    config.probability = 1.0f;
    config.threshold = 0.1f;
    const auto sampler = MakeXtcSampler(config);
    EXPECT_EQ(sampler->Name(), "xtc");
    EXPECT_FALSE(sampler->NeedsState());
    SamplerState state;
    // p = {0.032, 0.087, 0.237, 0.644}: 2 and 3 reach 0.1; 3 is removed.
    const RowOutput out = SampleOk(*sampler, MakeRow(logits, 1, 0), state);
    EXPECT_NE(out.token, 3);
    EXPECT_EQ(out.params.xtc_probability, 1.0f);
  }
  {
    DryConfig config;
    const auto sampler = MakeDrySampler(config);
    EXPECT_EQ(sampler->Name(), "dry");
    EXPECT_TRUE(sampler->NeedsState());
    config.multiplier = 0;
    EXPECT_FALSE(MakeDrySampler(config)->NeedsState());
    SamplerState state;
    const RowOutput out = SampleOk(*sampler, MakeRow(logits, 1, 0), state);
    EXPECT_EQ(out.params.dry_multiplier, 0.8f);
  }
}

}  // namespace
}  // namespace entroserve
