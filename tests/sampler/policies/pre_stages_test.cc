// entropix and alpha behind their pre-stages (logit bias, penalties, DRY):
// the policy's output equals the policy run without pre-stages on logits
// staged by hand, so its signals, draw and logprob are those of the staged
// distribution.
#include <cmath>
#include <limits>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/registry.h"

namespace entroserve {
namespace {

std::vector<float> Logits() {
  std::vector<float> z(50);
  for (int i = 0; i < 50; ++i) z[i] = 3.0f * std::sin(i * 0.9f) + (i == 7 ? 4.0f : 0.0f);
  return z;
}

RowOutput Sample(const SamplerConfig& config, const std::vector<float>& logits,
                 SamplerState& state) {
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(config);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  Row row;
  row.config = config;
  row.logits = logits;
  row.seed = 5;
  row.step = 3;
  absl::StatusOr<RowOutput> out = (*sampler)->Sample(row, state);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : RowOutput();
}

void ExpectSameOutput(const RowOutput& a, const RowOutput& b) {
  EXPECT_EQ(a.token, b.token);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.signals.entropy, b.signals.entropy);
  EXPECT_EQ(a.signals.varentropy, b.signals.varentropy);
  EXPECT_EQ(a.logprob, b.logprob);
}

// Bias -inf on the best token and +1.5 on another; a frequency penalty of 0.5
// and a presence penalty of 0.25 on the three tokens of the history.
template <typename Config>
void ExpectPreStagesActOnTheLogits(Config config) {
  const std::vector<float> logits = Logits();
  const std::vector<int32_t> history = {3, 9, 9};
  std::vector<float> staged = logits;
  staged[7] = -std::numeric_limits<float>::infinity();
  staged[12] += 1.5f;
  staged[3] -= 0.5f + 0.25f;
  staged[9] -= 2 * 0.5f + 0.25f;
  SamplerState plain_state;
  plain_state.recent_tokens = history;
  const RowOutput plain = Sample(config, staged, plain_state);

  config.logit_bias = {{7, -INFINITY}, {12, 1.5f}};
  config.frequency_penalty = 0.5f;
  config.presence_penalty = 0.25f;
  SamplerState state;
  state.recent_tokens = history;
  const RowOutput out = Sample(config, logits, state);
  ExpectSameOutput(out, plain);
  EXPECT_NE(out.token, 7);
  EXPECT_EQ(out.params.frequency_penalty, 0.5f);
  EXPECT_EQ(state.recent_tokens, plain_state.recent_tokens);
  EXPECT_TRUE((*CreateSampler(config))->NeedsState());
}

TEST(PreStagesTest, EntropixSamplesTheStagedDistribution) {
  EntropixConfig config;
  ExpectPreStagesActOnTheLogits(config);
}

TEST(PreStagesTest, AlphaSamplesTheStagedDistribution) {
  ExpectPreStagesActOnTheLogits(AlphaConfig());
}

TEST(PreStagesTest, DryPenalisesTheTokenThatWouldExtendARepeat) {
  // History 1 2 3 1 2: token 3 would repeat "1 2 3" (n = 2 >= allowed 2):
  // penalty 0.8 * 1.75^0.
  const std::vector<float> logits = Logits();
  std::vector<float> staged = logits;
  staged[3] -= 0.8f;
  EntropixConfig config;
  SamplerState plain_state;
  plain_state.recent_tokens = {1, 2, 3, 1, 2};
  const RowOutput plain = Sample(config, staged, plain_state);
  config.dry_multiplier = 0.8f;
  SamplerState state;
  state.recent_tokens = {1, 2, 3, 1, 2};
  ExpectSameOutput(Sample(config, logits, state), plain);
}

TEST(PreStagesTest, PreStagesThatLeaveNoTokenAreAnError) {
  EntropixConfig config;
  for (int i = 0; i < 3; ++i) config.logit_bias[i] = -INFINITY;
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  Row row;
  row.config = config;
  row.logits = logits;
  SamplerState state;
  const absl::StatusOr<RowOutput> out = (*CreateSampler(config))->Sample(row, state);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.status().message(),
            "the pre-stages (logit_bias, penalties, dry) left no token to sample");
}

}  // namespace
}  // namespace entroserve
