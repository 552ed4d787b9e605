// Greedy decoding through a real runnerd equals the model library's own
// argmax loop (Model::Forward and argmax, here in the test). A binary of its
// own: it links libtorch, which the other process tests do not need (loading
// it costs every test process a second).
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model_runner/model/transformer.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/core/tensor.h"
#include "tests/services/test_util/runnerd_test_util.h"

namespace entroserve {
namespace {

// Greedy over BF16-rounded logits (the sampler's dtype by default): argmax
// of the rounded values, lowest id on ties (rounding is monotone, so this
// is the float32 argmax except where rounding makes a tie).
std::vector<int32_t> ArgmaxLoop(const std::vector<int32_t>& prompt, int steps, bool bf16) {
  ModelOptions options;
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(kTinyModel, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  SequenceCache cache;
  std::vector<int32_t> out;
  std::vector<int32_t> feed = prompt;
  for (int step = 0; step < steps; ++step) {
    absl::StatusOr<StepOutput> result = (*model)->Forward({SequenceInput{&cache, feed}});
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return out;
    const std::vector<float>& logits = result->sequences[0].logits;
    int32_t best = 0;
    float best_value = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < logits.size(); ++i) {
      const float v = bf16 ? BFloat16ToFloat(FloatToBFloat16(logits[i])) : logits[i];
      if (v > best_value) {
        best_value = v;
        best = static_cast<int32_t>(i);
      }
    }
    out.push_back(best);
    feed = {best};
  }
  return out;
}

TEST(RunnerdGreedyTest, GreedyEqualsTheModelsOwnArgmaxLoop) {
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromFile(absl::StrCat(kTinyModel, "/tokenizer.json"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ASSERT_TRUE(tokenizer->LoadConfig(absl::StrCat(kTinyModel, "/tokenizer_config.json")).ok());
  const std::vector<int32_t> prompt = tokenizer->EncodeWithSpecialTokens(kPrompt);
  constexpr int kSteps = 24;
  for (const bool bf16 : {true, false}) {
    std::unique_ptr<ServerProcess> server =
        StartRunnerd({bf16 ? "--sampler_dtype=bfloat16" : "--sampler_dtype=float32"});
    ASSERT_NE(server, nullptr);
    auto stub = RunnerStub(*server);
    Generation g = Generate(stub.get(), WithSampler(TextRequest(kPrompt, kSteps, 1), "greedy"));
    ASSERT_TRUE(g.status.ok()) << Describe(g.status);
    EXPECT_EQ(g.ids(), ArgmaxLoop(prompt, kSteps, bf16)) << (bf16 ? "bfloat16" : "float32");
    for (const auto& token : g.tokens) EXPECT_EQ(token.mode(), ::sampler::v1::MODE_GREEDY);
  }
}

}  // namespace
}  // namespace entroserve
