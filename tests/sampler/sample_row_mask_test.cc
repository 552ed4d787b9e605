// Rows with an allowed-token set (Row::allowed_tokens) sampled end to end by
// SampleRow: every sampler draws only allowed tokens, draws follow the
// distribution of the allowed tokens (chi-square against a distribution
// computed here from the formulas), and special tokens the set does not
// allow are not inserted.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "sampler/core/configs.h"
#include "sampler/core/token_mask.h"
#include "sampler/registry.h"
#include "sampler/sample_row.h"

namespace entroserve {
namespace {

// 64 logits whose largest values sit on tokens the tests do not allow.
std::vector<float> Logits() {
  std::vector<float> z(64);
  for (int i = 0; i < 64; ++i) z[i] = static_cast<float>((i * 37) % 64) / 8.0f;
  return z;
}

Row MaskedRow(const SamplerConfig& config, const std::vector<float>& logits,
              const std::vector<uint64_t>& mask, uint64_t seed) {
  Row row;
  row.config = config;
  row.logits = logits;
  row.allowed_tokens = mask;
  row.seed = seed;
  return row;
}

TEST(SampleRowMaskTest, EverySamplerDrawsOnlyAllowedTokens) {
  const std::vector<float> logits = Logits();
  const std::vector<int32_t> allowed = {1, 2, 9, 30, 31, 50};
  const std::vector<uint64_t> mask = MaskFromIds(allowed, 64);
  for (const SamplerDescription& sampler : ListSamplers()) {
    for (uint64_t seed = 0; seed < 200; ++seed) {
      const RowResult result = SampleRow(MaskedRow(sampler.defaults, logits, mask, seed), "");
      ASSERT_TRUE(result.status.ok()) << sampler.name << ": " << result.status;
      ASSERT_TRUE(std::binary_search(allowed.begin(), allowed.end(), result.output.token))
          << sampler.name << " drew " << result.output.token << " with seed " << seed;
    }
  }
}

// chain with top_k 3 and temperature 0.7 after the mask: the three most
// probable allowed tokens, in proportion exp(z / 0.7).
TEST(SampleRowMaskTest, ChainDrawsFollowTheAllowedDistribution) {
  const std::vector<float> logits = Logits();
  const std::vector<int32_t> allowed = {3, 8, 20, 33, 47, 60};
  ChainConfig config;
  config.stages = {"top_k", "temperature", "dist"};
  config.top_k = 3;
  config.temperature = 0.7f;
  std::vector<int32_t> best = allowed;
  std::sort(best.begin(), best.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  best.resize(3);
  double norm = 0.0;
  for (int32_t id : best) norm += std::exp(logits[id] / 0.7);

  const int draws = 20000;
  std::vector<int> counts(64, 0);
  const std::vector<uint64_t> mask = MaskFromIds(allowed, 64);
  for (int seed = 0; seed < draws; ++seed) {
    const RowResult result = SampleRow(MaskedRow(config, logits, mask, seed), "");
    ASSERT_TRUE(result.status.ok()) << result.status;
    ++counts[result.output.token];
  }
  double chi_square = 0.0;
  int seen = 0;
  for (int32_t id : best) {
    const double expected = draws * std::exp(logits[id] / 0.7) / norm;
    chi_square += (counts[id] - expected) * (counts[id] - expected) / expected;
    seen += counts[id];
  }
  EXPECT_EQ(seen, draws);  // nothing outside the three
  // 2 degrees of freedom: P(chi2 > 18.4) = 1e-4.
  EXPECT_LT(chi_square, 18.4);
}

// Uniform logits: entropy 6 bits, varentropy 0, entropix's clarify mode,
// which inserts the pause token unless the set forbids it.
TEST(SampleRowMaskTest, EntropixInsertsNoTokenTheSetForbids) {
  const std::vector<float> logits(64, 0.0f);
  Row row = MaskedRow(EntropixConfig(), logits, {}, 1);
  row.special_tokens.pause = 63;
  RowResult result = SampleRow(row, "");
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_TRUE(result.output.inserted);
  EXPECT_EQ(result.output.token, 63);

  const std::vector<uint64_t> mask = MaskFromIds({4, 5}, 64);
  row.allowed_tokens = mask;
  result = SampleRow(row, "");
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_FALSE(result.output.inserted);
  EXPECT_TRUE(result.output.token == 4 || result.output.token == 5) << result.output.token;
}

}  // namespace
}  // namespace entroserve
