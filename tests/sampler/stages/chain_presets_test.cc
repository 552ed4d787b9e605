// The samplers that became presets of the chain (mirostat_v2, dynatemp,
// top_n_sigma, xtc, dry) give the tokens they gave before the chain took a
// stage list: each expected digest below was recorded with the fixed-order
// implementation (commit 947200b) and must not change for the same seeds.
// The default order's digest was recorded again when top-p took the
// histogram selection, and again when its buckets became fixed-width ones
// below the largest logit (CandidateSet::KeepTopMass): each keeps the same
// tokens in another order, and a draw walks them in their order, so a seed
// can draw another token of the same distribution.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/registry.h"

namespace entroserve {
namespace {

// splitmix64: a portable stream of logits (no std:: distribution, whose
// output differs between standard libraries).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Logits of step `step`: a few strong tokens over a flat tail, so that every
// filter removes something.
std::vector<float> StepLogits(int vocab, int64_t step) {
  std::vector<float> z(vocab);
  for (int i = 0; i < vocab; ++i) {
    const uint64_t h = Mix(static_cast<uint64_t>(step) * 1000003u + static_cast<uint64_t>(i));
    z[i] = static_cast<float>(static_cast<double>(h >> 11) / 9007199254740992.0 * 6.0 - 3.0);
    if (i % 17 == 0) z[i] += 4.0f;
  }
  return z;
}

// Runs `config` for `steps` steps of one sequence (state carried) for each of
// 8 seeds; returns a digest of the tokens: sum of token * (index + 1).
int64_t Digest(const SamplerConfig& config, int steps) {
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(config);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  if (!sampler.ok()) return -1;
  int64_t digest = 0;
  int64_t index = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SamplerState state;
    for (int64_t step = 0; step < steps; ++step) {
      const std::vector<float> logits = StepLogits(512, step + static_cast<int64_t>(seed) * 97);
      Row row;
      row.config = config;
      row.logits = logits;
      row.seed = seed;
      row.step = step;
      absl::StatusOr<RowOutput> out = (*sampler)->Sample(row, state);
      EXPECT_TRUE(out.ok()) << out.status();
      if (!out.ok()) return -1;
      digest += static_cast<int64_t>(out->token) * ++index;
    }
  }
  return digest;
}

TEST(ChainPresetsTest, DefaultOrderGivesTheTokensOfTheFixedOrder) {
  ChainConfig config;
  config.temperature = 0.8f;
  config.top_k = 60;
  config.top_p = 0.9f;
  config.min_p = 0.02f;
  config.typical_p = 0.95f;
  config.repetition_penalty = 1.3f;
  config.frequency_penalty = 0.2f;
  config.presence_penalty = 0.1f;
  config.no_repeat_ngram_size = 2;
  config.logit_bias = {{0, 2.0f}, {5, -1.0f}};
  EXPECT_EQ(Digest(config, 40), 11931405);
}

TEST(ChainPresetsTest, MirostatV2GivesItsFormerTokens) {
  MirostatV2Config config;
  config.tau = 4.0f;
  config.temperature = 0.9f;
  EXPECT_EQ(Digest(config, 40), 12513557);
}

TEST(ChainPresetsTest, DynaTempGivesItsFormerTokens) {
  EXPECT_EQ(Digest(DynaTempConfig(), 40), 12617367);
}

TEST(ChainPresetsTest, TopNSigmaGivesItsFormerTokens) {
  TopNSigmaConfig config;
  config.n = 1.5f;
  config.temperature = 1.2f;
  EXPECT_EQ(Digest(config, 40), 12622194);
}

TEST(ChainPresetsTest, XtcGivesItsFormerTokens) {
  XtcConfig config;
  config.threshold = 0.05f;
  config.probability = 0.7f;
  EXPECT_EQ(Digest(config, 40), 12693151);
}

TEST(ChainPresetsTest, DryGivesItsFormerTokens) {
  DryConfig config;
  config.sequence_breaker_ids = {3, 34};
  config.allowed_length = 1;
  EXPECT_EQ(Digest(config, 40), 12579994);
}

}  // namespace
}  // namespace entroserve
