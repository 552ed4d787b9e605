// Rows whose logits come as bfloat16 bits (Row::logits_bf16, what runnerd
// hands a BF16 model's decode steps on as) are sampled exactly as the same
// values given as float32: every sampler, over steps that carry the state,
// with and without an allowed-token set; and what is wrong with such a row
// is named.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sampler/base/float16.h"
#include "sampler/core/row.h"
#include "sampler/core/token_mask.h"
#include "sampler/registry.h"
#include "sampler/sample_row.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

constexpr int kVocab = 300;

// Logits that bfloat16 holds exactly, as bits, with one masked token.
std::vector<uint16_t> LogitBits(int step) {
  std::vector<uint16_t> bits(kVocab);
  for (int i = 0; i < kVocab; ++i) {
    bits[i] = FloatToBFloat16(static_cast<float>((i * 37 + step * 11) % 97) / 9.0f - 4.0f);
  }
  bits[5] = 0xff80;  // -inf
  return bits;
}

void ExpectSameResult(const RowResult& a, const RowResult& b, const std::string& what) {
  ASSERT_TRUE(a.status.ok()) << what << ": " << a.status;
  ASSERT_TRUE(b.status.ok()) << what << ": " << b.status;
  EXPECT_EQ(a.output.token, b.output.token) << what;
  EXPECT_EQ(a.output.mode, b.output.mode) << what;
  EXPECT_EQ(a.output.inserted, b.output.inserted) << what;
  EXPECT_EQ(a.output.logprob, b.output.logprob) << what;
  EXPECT_EQ(a.output.signals.entropy, b.output.signals.entropy) << what;
  EXPECT_EQ(a.output.signals.varentropy, b.output.signals.varentropy) << what;
  EXPECT_EQ(a.output.signals.attn_entropy, b.output.signals.attn_entropy) << what;
  ASSERT_EQ(a.output.top_logprobs.size(), b.output.top_logprobs.size()) << what;
  for (size_t i = 0; i < a.output.top_logprobs.size(); ++i) {
    EXPECT_EQ(a.output.top_logprobs[i].token, b.output.top_logprobs[i].token) << what;
    EXPECT_EQ(a.output.top_logprobs[i].logprob, b.output.top_logprobs[i].logprob) << what;
  }
  EXPECT_EQ(a.state.sampler, b.state.sampler) << what;
  EXPECT_EQ(a.state.next_step, b.state.next_step) << what;
  EXPECT_EQ(a.state.recent_tokens, b.state.recent_tokens) << what;
  EXPECT_EQ(a.state.alpha_window, b.state.alpha_window) << what;
  EXPECT_EQ(a.state.mirostat_mu, b.state.mirostat_mu) << what;
}

TEST(SampleRowBf16Test, EverySamplerSamplesBf16LogitsAsTheirFloatValues) {
  const std::vector<float> attention = {0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.5f};
  const std::vector<uint64_t> mask = MaskFromIds({1, 2, 9, 30, 31, 50, 120, 299}, kVocab);
  for (const SamplerDescription& sampler : ListSamplers()) {
    for (bool masked : {false, true}) {
      SamplerState float_state, bits_state;
      for (int step = 0; step < 4; ++step) {
        const std::vector<uint16_t> bits = LogitBits(step);
        std::vector<float> widened;
        WidenLogits(bits, &widened);
        ASSERT_EQ(widened[5], -std::numeric_limits<float>::infinity());
        Row row;
        row.config = sampler.defaults;
        row.step = step;
        row.seed = 17;
        row.attention = attention;
        row.heads = 2;
        row.keys = 3;
        row.top_logprobs = 3;
        if (masked) row.allowed_tokens = mask;
        Row as_float = row;
        as_float.logits = widened;
        as_float.state = float_state;
        Row as_bits = row;
        as_bits.logits_bf16 = bits;
        as_bits.state = bits_state;
        EXPECT_EQ(as_bits.vocab_size(), kVocab);
        const RowResult a = SampleRow(as_float, "rows[0].");
        const RowResult b = SampleRow(as_bits, "rows[0].");
        ExpectSameResult(a, b, absl::StrCat(sampler.name, masked ? " masked" : "", " step ", step));
        float_state = a.state;
        bits_state = b.state;
      }
    }
  }
}

TEST(SampleRowBf16Test, WhatIsWrongWithABf16RowIsNamed) {
  const std::vector<uint16_t> bits = LogitBits(0);
  std::vector<float> widened;
  WidenLogits(bits, &widened);
  Row row;
  row.config = ListSamplers().front().defaults;
  row.logits = widened;
  row.logits_bf16 = bits;
  RowResult both = SampleRow(row, "rows[2].");
  EXPECT_EQ(both.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(both.status.message(),
            "rows[2].logits and rows[2].logits_bf16 are both set; a row carries one of them");

  // ValidateRow reads the bits themselves: a NaN (0x7fc0) at index 4.
  std::vector<uint16_t> nan = bits;
  nan[4] = 0x7fc0;
  row.logits = {};
  row.logits_bf16 = nan;
  const absl::Status invalid = ValidateRow(row, "rows[2].");
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(invalid.message(), HasSubstr("rows[2].logits_bf16[4] is NaN"));
  // SampleRow widens first, and names the logits.
  RowResult sampled = SampleRow(row, "rows[2].");
  EXPECT_EQ(sampled.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sampled.status.message(), HasSubstr("rows[2].logits[4] is NaN"));
}

}  // namespace
}  // namespace entroserve
