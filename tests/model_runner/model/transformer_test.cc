// The transformer against an independent reference: a plain, float64,
// whole-sequence implementation written here from the Hugging Face modelling
// code (explicit repeat_interleave of key heads, explicit rotate_half pairs,
// rotary frequencies in double), run on the very weights the tiny
// checkpoints hold. Plus loading, errors, the KV cache and batching.
#include "model_runner/model/transformer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model_runner/checkpoint/model_config.h"
#include "model_runner/checkpoint/safetensors.h"
#include "sampler/core/row.h"
#include "tests/model_runner/test_util/tiny_checkpoint.h"

namespace entroserve {
namespace {

using test_util::TempDir;
using test_util::WeightMap;
using ::testing::HasSubstr;

// Float32 model against the float64 reference, and incremental against full
// recompute: tiny models keep float32 rounding well below this.
constexpr float kTolerance = 1e-4f;

// --- the reference -----------------------------------------------------------

std::vector<double> ReferenceInvFreq(const ModelConfig& c) {
  std::vector<double> inv_freq;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    double f = 1.0 / std::pow(c.rope_theta, 2.0 * i / c.head_dim);
    if (c.rope_scaling) {
      const Llama3RopeScaling& s = *c.rope_scaling;
      const double low_freq_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
      const double high_freq_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_freq_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv_freq.push_back(f);
  }
  return inv_freq;
}

at::Tensor Double(const WeightMap& w, const std::string& name) {
  const test_util::TensorValues& t = w.at(name);
  return at::from_blob(const_cast<float*>(t.values.data()), t.shape, at::kFloat).to(at::kDouble);
}

struct ReferenceOutput {
  at::Tensor logits;               // [T, vocab]
  std::vector<at::Tensor> scores;  // per layer [heads, T, T], before masking
};

ReferenceOutput ReferenceForward(const ModelConfig& c, const WeightMap& w,
                                 const std::vector<int32_t>& tokens) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t H = c.num_attention_heads;
  const int64_t KVH = c.num_key_value_heads;
  const int64_t Dh = c.head_dim;
  const int64_t half = Dh / 2;
  auto rms = [&](const at::Tensor& x, const at::Tensor& weight) {
    return x * at::rsqrt(x.pow(2).mean(-1, true) + c.rms_norm_eps) * weight;
  };
  auto linear = [&](const at::Tensor& x, const std::string& name) {
    at::Tensor y = at::matmul(x, Double(w, name + ".weight").t());
    if (w.count(name + ".bias")) y = y + Double(w, name + ".bias");
    return y;
  };
  std::vector<int64_t> ids(tokens.begin(), tokens.end());
  at::Tensor x = Double(w, "model.embed_tokens.weight")
                     .index_select(0, at::tensor(ids, at::TensorOptions().dtype(at::kLong)));
  at::Tensor inv_freq = at::tensor(ReferenceInvFreq(c), at::TensorOptions().dtype(at::kDouble));
  at::Tensor angle = at::arange(T, at::TensorOptions().dtype(at::kDouble)).unsqueeze(1) *
                     inv_freq.unsqueeze(0);                                   // [T, half]
  at::Tensor cos = angle.cos().unsqueeze(1), sin = angle.sin().unsqueeze(1);  // [T, 1, half]
  // Pairs (i, i + half) rotated by the angle of frequency i: HF's rotate_half.
  auto rope = [&](const at::Tensor& t) {
    at::Tensor a = t.narrow(-1, 0, half), b = t.narrow(-1, half, half);
    return at::cat({a * cos - b * sin, b * cos + a * sin}, -1);
  };
  at::Tensor causal = at::ones({T, T}, at::kBool).triu(1);  // key j > query i
  if (c.sliding_window) {
    causal = at::logical_or(causal, at::ones({T, T}, at::kBool).tril(-*c.sliding_window));
  }
  ReferenceOutput out;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    at::Tensor h = rms(x, Double(w, p + "input_layernorm.weight"));
    at::Tensor q = rope(linear(h, p + "self_attn.q_proj").view({T, H, Dh}));
    at::Tensor k = rope(linear(h, p + "self_attn.k_proj").view({T, KVH, Dh}));
    at::Tensor v = linear(h, p + "self_attn.v_proj").view({T, KVH, Dh});
    k = k.repeat_interleave(H / KVH, 1);  // transformers' repeat_kv
    v = v.repeat_interleave(H / KVH, 1);
    at::Tensor s = at::einsum("ihd,jhd->hij", {q, k}) / std::sqrt(static_cast<double>(Dh));
    out.scores.push_back(s);
    at::Tensor a = at::softmax(s.masked_fill(causal, -INFINITY), -1);
    at::Tensor o = at::einsum("hij,jhd->ihd", {a, v}).reshape({T, H * Dh});
    x = x + linear(o, p + "self_attn.o_proj");
    h = rms(x, Double(w, p + "post_attention_layernorm.weight"));
    x = x + linear(at::silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj"),
                   p + "mlp.down_proj");
  }
  x = rms(x, Double(w, "model.norm.weight"));
  out.logits = at::matmul(
      x, Double(w, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").t());
  return out;
}

std::vector<float> Floats(const at::Tensor& t) {
  at::Tensor f = t.to(at::kFloat).contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float diff = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  return diff;
}

// --- fixtures ------------------------------------------------------------------

std::vector<int32_t> Tokens(const ModelConfig& c, int n, int salt = 0) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) {
    tokens.push_back(static_cast<int32_t>((7 * i + 3 + 13 * salt) % c.vocab_size));
  }
  return tokens;
}

ModelOptions Options(ComputeDType dtype = ComputeDType::kFloat32) {
  ModelOptions options;
  options.dtype = dtype;
  options.threads = 1;
  return options;
}

std::unique_ptr<Model> LoadOk(const std::string& dir, const ModelOptions& options = Options()) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// A checkpoint of one family, written in F32, with its weights at hand.
struct TinyCheckpoint {
  TinyCheckpoint(const ModelConfig& c, uint64_t seed = 11,
                 SafetensorsDType dtype = SafetensorsDType::kF32)
      : config(c), weights(test_util::RandomWeights(c, seed)) {
    EXPECT_TRUE(test_util::WriteCheckpoint(dir.path(), config, weights, dtype).ok());
  }
  TempDir dir;
  ModelConfig config;
  WeightMap weights;
};

// Runs `tokens` as one prefill on a fresh cache; logits and attention of the
// last token.
SequenceOutput Prefill(const Model& model, const std::vector<int32_t>& tokens,
                       std::vector<int> layers = {-1}) {
  SequenceCache cache;
  absl::StatusOr<StepOutput> out = model.Forward({SequenceInput{&cache, tokens, layers}});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->sequences[0] : SequenceOutput{};
}

class FamilyTest : public ::testing::TestWithParam<ModelConfig (*)()> {};

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest,
                         ::testing::Values(&test_util::TinyLlamaConfig, &test_util::TinyQwen2Config,
                                           &test_util::TinyMistralConfig),
                         [](const auto& info) {
                           return std::string(ModelFamilyName(info.param().family));
                         });

// --- against the reference ----------------------------------------------------------

TEST_P(FamilyTest, LogitsAndAttentionOfEveryLayerMatchTheReference) {
  TinyCheckpoint ckpt(GetParam()());
  const ModelConfig& c = ckpt.config;
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path());
  ASSERT_NE(model, nullptr);
  const std::vector<int32_t> tokens = Tokens(c, 11);
  ReferenceOutput ref = ReferenceForward(c, ckpt.weights, tokens);

  // Prefill all but the last two tokens, then decode them one at a time:
  // each step's outputs match the reference at that position.
  SequenceCache cache;
  const std::vector<int> layers = {0, -1};
  for (size_t end : {tokens.size() - 2, tokens.size() - 1, tokens.size()}) {
    const size_t begin = cache.length();
    absl::Span<const int32_t> chunk(tokens.data() + begin, end - begin);
    absl::StatusOr<StepOutput> out = model->Forward({SequenceInput{&cache, chunk, layers}});
    ASSERT_TRUE(out.ok()) << out.status();
    const int64_t pos = static_cast<int64_t>(end) - 1;
    const SequenceOutput& seq = out->sequences[0];
    EXPECT_LT(MaxAbsDiff(seq.logits, Floats(ref.logits[pos])), kTolerance) << "position " << pos;
    ASSERT_EQ(seq.attention.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const AttentionScores& a = seq.attention[i];
      EXPECT_EQ(a.layer, i == 0 ? 0 : c.num_hidden_layers - 1);
      EXPECT_EQ(a.heads, c.num_attention_heads);
      // Exactly the keys that exist (position + 1), or the sliding window.
      const int64_t first =
          c.sliding_window ? std::max<int64_t>(0, pos + 1 - *c.sliding_window) : 0;
      EXPECT_EQ(a.first_key, first);
      EXPECT_EQ(a.keys, pos + 1 - first);
      ASSERT_EQ(a.scores.size(), static_cast<size_t>(a.heads * a.keys));
      at::Tensor expected = ref.scores[a.layer].select(1, pos).narrow(1, first, a.keys);
      EXPECT_LT(MaxAbsDiff(a.scores, Floats(expected)), kTolerance)
          << "layer " << a.layer << " position " << pos;
    }
  }
  EXPECT_EQ(cache.length(), static_cast<int64_t>(tokens.size()));
}

TEST_P(FamilyTest, IncrementalDecodeEqualsFullRecompute) {
  TinyCheckpoint ckpt(GetParam()());
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path());
  ASSERT_NE(model, nullptr);
  // 70 tokens: past the first cache allocation (64 positions), so the cache
  // grows and keeps what it held.
  const std::vector<int32_t> tokens = Tokens(ckpt.config, 70, 1);
  SequenceCache cache;
  size_t done = 0;
  // Chunks of 1, 5, 3, then single tokens.
  std::vector<size_t> chunks = {1, 5, 3};
  while (done < tokens.size()) {
    size_t n = chunks.empty() ? 1 : chunks.front();
    if (!chunks.empty()) chunks.erase(chunks.begin());
    absl::Span<const int32_t> chunk(tokens.data() + done, n);
    absl::StatusOr<StepOutput> step = model->Forward({SequenceInput{&cache, chunk}});
    ASSERT_TRUE(step.ok()) << step.status();
    done += n;
    if (done % 7 == 0 || done > 60) {
      SequenceOutput full =
          Prefill(*model, std::vector<int32_t>(tokens.begin(), tokens.begin() + done));
      EXPECT_LT(MaxAbsDiff(step->sequences[0].logits, full.logits), kTolerance) << done;
      EXPECT_LT(MaxAbsDiff(step->sequences[0].attention[0].scores, full.attention[0].scores),
                kTolerance)
          << done;
    }
  }
  EXPECT_EQ(cache.length(), 70);
  EXPECT_GE(cache.capacity(), 70);
}

// With and without ModelOptions.group_decode_attention (the decoding
// sequences' attention computed together; on by default on CUDA only), and
// with decode graphs over the static KV cache and fused projections (on by
// default on CUDA; on the CPU the recorded step is run again).
TEST_P(FamilyTest, BatchOfDifferentLengthsEqualsEachSequenceAlone) {
  for (const int mode : {0, 1, 2}) {
    const bool grouped = mode >= 1;
    SCOPED_TRACE(mode == 2 ? "decode graphs"
                 : grouped ? "decode attention grouped"
                           : "each sequence alone");
    TinyCheckpoint ckpt(GetParam()());
    ModelOptions options = Options();
    options.group_decode_attention = grouped;
    options.decode_graphs = mode == 2;
    options.fuse_projections = mode == 2;
    std::unique_ptr<Model> model = LoadOk(ckpt.dir.path(), options);
    ASSERT_NE(model, nullptr);
    const std::vector<std::vector<int32_t>> prompts = {
        Tokens(ckpt.config, 9, 1), Tokens(ckpt.config, 1, 2), Tokens(ckpt.config, 4, 3),
        Tokens(ckpt.config, 13, 4)};
    const size_t B = prompts.size();
    std::vector<SequenceCache> batch_caches(B), alone_caches(B);
    std::vector<std::vector<int32_t>> next(B);
    // Step 0: all prefills in one batch. Steps 1-3: one token each, except
    // that sequence 2 sends three at a time (a chunked prefill beside decodes).
    for (int step = 0; step < 4; ++step) {
      std::vector<std::vector<int32_t>> inputs_tokens(B);
      for (size_t b = 0; b < B; ++b) {
        if (step == 0) {
          inputs_tokens[b] = prompts[b];
        } else if (b == 2) {
          inputs_tokens[b] = Tokens(ckpt.config, 3, 10 + step);
        } else {
          inputs_tokens[b] = next[b];
        }
      }
      // Every layer's attention for sequence 1, the last layer's for the others.
      auto layers = [&](size_t b) {
        return b == 1 ? std::vector<int>{0, 1} : std::vector<int>{-1};
      };
      std::vector<SequenceInput> inputs;
      for (size_t b = 0; b < B; ++b)
        inputs.push_back({&batch_caches[b], inputs_tokens[b], layers(b)});
      absl::StatusOr<StepOutput> batched = model->Forward(inputs);
      ASSERT_TRUE(batched.ok()) << batched.status();
      for (size_t b = 0; b < B; ++b) {
        absl::StatusOr<StepOutput> alone =
            model->Forward({SequenceInput{&alone_caches[b], inputs_tokens[b], layers(b)}});
        ASSERT_TRUE(alone.ok()) << alone.status();
        const SequenceOutput& x = batched->sequences[b];
        const SequenceOutput& y = alone->sequences[0];
        EXPECT_LT(MaxAbsDiff(x.logits, y.logits), 1e-5f) << "step " << step << " seq " << b;
        ASSERT_EQ(x.attention.size(), layers(b).size());
        for (size_t a = 0; a < x.attention.size(); ++a) {
          EXPECT_EQ(x.attention[a].layer, y.attention[a].layer);
          EXPECT_EQ(x.attention[a].keys, y.attention[a].keys);
          EXPECT_EQ(x.attention[a].first_key, y.attention[a].first_key);
          EXPECT_LT(MaxAbsDiff(x.attention[a].scores, y.attention[a].scores), 1e-5f);
        }
        EXPECT_EQ(batch_caches[b].length(), alone_caches[b].length());
        next[b] = {static_cast<int32_t>(std::max_element(x.logits.begin(), x.logits.end()) -
                                        x.logits.begin())};
      }
    }
  }
}

// Decode graphs (run again on the CPU) and fused projections over a static
// cache of `rows` rows of `positions` positions.
ModelOptions GraphOptions(int64_t rows, int64_t positions) {
  ModelOptions options = Options();
  options.decode_graphs = true;
  options.fuse_projections = true;
  options.static_cache_rows = rows;
  options.static_cache_positions = positions;
  return options;
}

// Decode graphs against the eager pass, step by step, through what changes
// their path: more sequences than rows (the third runs eagerly beside the
// graph), a sequence that outgrows its row (it leaves the static cache and
// goes on eagerly), batches that change bucket, and rows given back and
// taken again by new caches.
TEST_P(FamilyTest, DecodeGraphsGiveTheEagerPassesOutputs) {
  TinyCheckpoint ckpt(GetParam()());
  ModelOptions eager_options = Options();
  eager_options.decode_graphs = false;
  std::unique_ptr<Model> eager = LoadOk(ckpt.dir.path(), eager_options);
  std::unique_ptr<Model> graphed = LoadOk(ckpt.dir.path(), GraphOptions(2, 24));
  ASSERT_TRUE(eager && graphed);
  for (int round = 0; round < 2; ++round) {
    const std::vector<std::vector<int32_t>> prompts = {
        Tokens(ckpt.config, 9, 1 + round), Tokens(ckpt.config, 1, 2), Tokens(ckpt.config, 4, 3)};
    const size_t B = prompts.size();
    std::vector<SequenceCache> a(B), b(B);
    std::vector<std::vector<int32_t>> fed = prompts;
    for (int step = 0; step < 20; ++step) {
      // Sequence 1 sits out odd steps: the batch changes size.
      std::vector<SequenceInput> in_a, in_b;
      std::vector<size_t> which;
      for (size_t i = 0; i < B; ++i) {
        if (i == 1 && step % 2 == 1) continue;
        in_a.push_back({&a[i], fed[i], {-1, 0}});
        in_b.push_back({&b[i], fed[i], {-1, 0}});
        which.push_back(i);
      }
      absl::StatusOr<StepOutput> x = eager->Forward(in_a);
      absl::StatusOr<StepOutput> y = graphed->Forward(in_b);
      ASSERT_TRUE(x.ok() && y.ok()) << x.status() << y.status();
      for (size_t k = 0; k < which.size(); ++k) {
        const SequenceOutput& u = x->sequences[k];
        const SequenceOutput& v = y->sequences[k];
        EXPECT_LT(MaxAbsDiff(u.logits, v.logits), 1e-5f) << "step " << step << " seq " << which[k];
        ASSERT_EQ(u.attention.size(), v.attention.size());
        for (size_t l = 0; l < u.attention.size(); ++l) {
          EXPECT_EQ(u.attention[l].layer, v.attention[l].layer);
          EXPECT_EQ(u.attention[l].keys, v.attention[l].keys);
          EXPECT_EQ(u.attention[l].first_key, v.attention[l].first_key);
          EXPECT_LT(MaxAbsDiff(u.attention[l].scores, v.attention[l].scores), 1e-5f);
        }
        fed[which[k]] = {static_cast<int32_t>(std::max_element(u.logits.begin(), u.logits.end()) -
                                              u.logits.begin())};
      }
    }
    EXPECT_GT(b[0].length(), 24);  // outgrew its row
    EXPECT_GE(b[0].capacity(), b[0].length());
  }
}

// SequenceInput::bf16_logits: a BF16 model's decode-graph steps hand the
// logits over as the bfloat16 bits they were computed in, which widen to
// exactly the float32 logits of the same step without the flag; steps that
// do not run as a graph (the prompt's) give float32 logits still.
TEST_P(FamilyTest, Bf16LogitsOfDecodeGraphsWidenToTheFloatLogits) {
  TinyCheckpoint ckpt(GetParam()());
  ModelOptions options = GraphOptions(4, 32);  // a row for each of the four caches
  options.dtype = ComputeDType::kBFloat16;
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path(), options);
  ASSERT_NE(model, nullptr);
  std::vector<SequenceCache> wide(2), narrow(2);
  std::vector<std::vector<int32_t>> fed = {Tokens(ckpt.config, 6, 1), Tokens(ckpt.config, 3, 2)};
  for (int step = 0; step < 5; ++step) {
    std::vector<SequenceInput> in_wide, in_narrow;
    for (size_t i = 0; i < 2; ++i) {
      in_wide.push_back({&wide[i], fed[i], {-1}});
      in_narrow.push_back({&narrow[i], fed[i], {-1}, /*bf16_logits=*/true});
    }
    absl::StatusOr<StepOutput> x = model->Forward(in_wide);
    absl::StatusOr<StepOutput> y = model->Forward(in_narrow);
    ASSERT_TRUE(x.ok() && y.ok()) << x.status() << y.status();
    for (size_t i = 0; i < 2; ++i) {
      const SequenceOutput& u = x->sequences[i];
      const SequenceOutput& v = y->sequences[i];
      EXPECT_TRUE(u.logits_bf16.empty());
      if (step == 0) {  // the prompt: an eager step
        EXPECT_TRUE(v.logits_bf16.empty());
        EXPECT_EQ(v.logits, u.logits);
      } else {
        EXPECT_TRUE(v.logits.empty()) << "step " << step;
        std::vector<float> widened;
        WidenLogits(v.logits_bf16, &widened);
        EXPECT_EQ(widened, u.logits) << "step " << step << " seq " << i;
      }
      ASSERT_EQ(u.attention.size(), 1u);
      ASSERT_EQ(v.attention.size(), 1u);
      EXPECT_EQ(u.attention[0].scores, v.attention[0].scores);
      fed[i] = {static_cast<int32_t>(std::max_element(u.logits.begin(), u.logits.end()) -
                                     u.logits.begin())};
    }
    model->Recycle(*std::move(y));  // the next step fills the recycled vectors
  }
}

// Model::Launch: two launches of the same graph bucket in flight at once
// (the engine's two cohorts) use two recorded instances; waiting in either
// order gives Forward()'s outputs; a PendingForward waits once; recycled
// logit vectors are filled again.
TEST_P(FamilyTest, LaunchesInFlightGiveForwardsOutputs) {
  TinyCheckpoint ckpt(GetParam()());
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path(), GraphOptions(4, 32));
  std::unique_ptr<Model> reference = LoadOk(ckpt.dir.path(), GraphOptions(4, 32));
  ASSERT_TRUE(model && reference);
  std::vector<SequenceCache> a(4), b(4);
  std::vector<std::vector<int32_t>> fed = {Tokens(ckpt.config, 5, 1), Tokens(ckpt.config, 3, 2),
                                           Tokens(ckpt.config, 4, 3), Tokens(ckpt.config, 2, 4)};
  for (int step = 0; step < 6; ++step) {
    // Cohorts {0, 1} and {2, 3}: both launched before either is read.
    std::vector<SequenceInput> first, second, all;
    for (size_t i = 0; i < 4; ++i) {
      (i < 2 ? first : second).push_back({&a[i], fed[i], {-1}});
      all.push_back({&b[i], fed[i], {-1}});
    }
    absl::StatusOr<PendingForward> p = model->Launch(first);
    absl::StatusOr<PendingForward> q = model->Launch(second);
    ASSERT_TRUE(p.ok() && q.ok()) << p.status() << q.status();
    EXPECT_EQ(a[0].length(), b[0].length() + static_cast<int64_t>(fed[0].size()));
    absl::StatusOr<StepOutput> x, y;  // the first cohort's, the second's
    if (step % 2) {
      y = q->Wait();
      x = p->Wait();
    } else {
      x = p->Wait();
      y = q->Wait();
    }
    EXPECT_EQ(p->Wait().status().code(), absl::StatusCode::kFailedPrecondition);
    absl::StatusOr<StepOutput> want = reference->Forward(all);
    ASSERT_TRUE(x.ok() && y.ok() && want.ok()) << x.status() << y.status() << want.status();
    for (size_t i = 0; i < 4; ++i) {
      const SequenceOutput& got = i < 2 ? x->sequences[i] : y->sequences[i - 2];
      const SequenceOutput& ref = want->sequences[i];
      EXPECT_LT(MaxAbsDiff(got.logits, ref.logits), 1e-5f) << "step " << step << " seq " << i;
      ASSERT_EQ(got.attention.size(), 1u);
      EXPECT_LT(MaxAbsDiff(got.attention[0].scores, ref.attention[0].scores), 1e-5f);
      fed[i] = {static_cast<int32_t>(std::max_element(ref.logits.begin(), ref.logits.end()) -
                                     ref.logits.begin())};
    }
    model->Recycle(std::move(*x));
    model->Recycle(std::move(*y));
  }
  // A launch dropped without Wait leaves the model usable.
  std::vector<SequenceInput> one = {{&a[0], fed[0], {}}};
  {
    absl::StatusOr<PendingForward> dropped = model->Launch(one);
    ASSERT_TRUE(dropped.ok());
  }
  std::vector<SequenceInput> next = {{&a[1], fed[1], {}}};
  EXPECT_TRUE(model->Forward(next).ok());
}

TEST_P(FamilyTest, ShardedCheckpointLoadsIdentically) {
  const ModelConfig c = GetParam()();
  const WeightMap weights = test_util::RandomWeights(c, 5);
  TempDir dir;
  ASSERT_TRUE(test_util::WriteCheckpoint(dir.Sub("one"), c, weights, SafetensorsDType::kF32).ok());
  ASSERT_TRUE(
      test_util::WriteCheckpoint(dir.Sub("three"), c, weights, SafetensorsDType::kF32, 3).ok());
  std::unique_ptr<Model> one = LoadOk(dir.path() + "/one");
  std::unique_ptr<Model> three = LoadOk(dir.path() + "/three");
  ASSERT_TRUE(one && three);
  const std::vector<int32_t> tokens = Tokens(c, 6);
  EXPECT_EQ(Prefill(*one, tokens).logits, Prefill(*three, tokens).logits);
}

// --- attention capture ------------------------------------------------------------

TEST(AttentionTest, QueryHeadsOfAGroupReadTheSameKeyHead) {
  // Llama: 4 query heads, 2 key heads. Give heads 0-1 the same query
  // projection and heads 2-3 another: with repeat_kv (head h reads key head
  // h / 2) rows 0 and 1 are equal, rows 2 and 3 equal, and 0 and 2 differ.
  ModelConfig c = test_util::TinyLlamaConfig();
  WeightMap weights = test_util::RandomWeights(c, 3);
  const int64_t row = c.head_dim * c.hidden_size;  // one head's block of q_proj
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::vector<float>& q =
        weights["model.layers." + std::to_string(l) + ".self_attn.q_proj.weight"].values;
    std::copy(q.begin(), q.begin() + row, q.begin() + row);                    // head 1 = head 0
    std::copy(q.begin() + 2 * row, q.begin() + 3 * row, q.begin() + 3 * row);  // 3 = 2
  }
  TempDir dir;
  ASSERT_TRUE(test_util::WriteCheckpoint(dir.path(), c, weights, SafetensorsDType::kF32).ok());
  std::unique_ptr<Model> model = LoadOk(dir.path());
  ASSERT_NE(model, nullptr);
  SequenceOutput out = Prefill(*model, Tokens(c, 7), {0, 1});
  for (const AttentionScores& a : out.attention) {
    auto head = [&](int h) {
      return std::vector<float>(a.scores.begin() + h * a.keys, a.scores.begin() + (h + 1) * a.keys);
    };
    EXPECT_EQ(a.keys, 7);
    EXPECT_LT(MaxAbsDiff(head(0), head(1)), 1e-6f);
    EXPECT_LT(MaxAbsDiff(head(2), head(3)), 1e-6f);
    EXPECT_GT(MaxAbsDiff(head(0), head(2)), 1e-3f);
  }
}

TEST(AttentionTest, ScoresAreFiniteAndSoftmaxOverExactlyTheKeysThatExist) {
  TinyCheckpoint ckpt(test_util::TinyQwen2Config());
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path());
  ASSERT_NE(model, nullptr);
  SequenceCache cache;
  std::vector<int32_t> tokens = Tokens(ckpt.config, 5);
  for (int step = 0; step < 4; ++step) {
    absl::StatusOr<StepOutput> out = model->Forward({SequenceInput{&cache, tokens}});
    ASSERT_TRUE(out.ok()) << out.status();
    const AttentionScores& a = out->sequences[0].attention[0];
    ASSERT_EQ(a.keys, cache.length());  // position + 1
    for (int64_t h = 0; h < a.heads; ++h) {
      double total = 0, max = -INFINITY;
      for (int64_t k = 0; k < a.keys; ++k) max = std::max<double>(max, a.scores[h * a.keys + k]);
      for (int64_t k = 0; k < a.keys; ++k) {
        ASSERT_TRUE(std::isfinite(a.scores[h * a.keys + k]));
        total += std::exp(a.scores[h * a.keys + k] - max);
      }
      // Every key carries weight: no padding slot sits among them.
      for (int64_t k = 0; k < a.keys; ++k) {
        EXPECT_GT(std::exp(a.scores[h * a.keys + k] - max) / total, 1e-6);
      }
    }
    tokens = {static_cast<int32_t>(step + 1)};
  }
}

TEST(AttentionTest, NoLayersMeansNoCapture) {
  TinyCheckpoint ckpt(test_util::TinyLlamaConfig());
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path());
  ASSERT_NE(model, nullptr);
  EXPECT_TRUE(Prefill(*model, Tokens(ckpt.config, 3), {}).attention.empty());
}

// --- rotary frequencies -------------------------------------------------------------

TEST(RopeTest, Llama3ScalingMatchesHandComputedFrequencies) {
  // Llama 3.2: head_dim 64, theta 500000, factor 32, low 1, high 4, 8192.
  ModelConfig c;
  c.head_dim = 64;
  c.rope_theta = 500000.0;
  c.rope_scaling = Llama3RopeScaling{32.0, 1.0, 4.0, 8192};
  const std::vector<float> inv_freq = RopeInverseFrequencies(c);
  const std::vector<double> expected = ReferenceInvFreq(c);
  ASSERT_EQ(inv_freq.size(), 32u);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    EXPECT_NEAR(inv_freq[i], expected[i], 2e-6 * expected[i]) << i;
  }
  // By hand: i = 0 has wavelength 2*pi, far below 8192 / 4: kept at 1.
  EXPECT_EQ(inv_freq[0], 1.0f);
  // i = 31: 500000^(-62/64), wavelength 2.08e6 > 8192: divided by 32.
  EXPECT_NEAR(inv_freq[31], std::pow(500000.0, -62.0 / 64) / 32, 1e-6 * inv_freq[31]);
  // i = 17: f = 500000^(-34/64) = 9.3847e-4, wavelength 6695.1 lies between
  // 2048 and 8192: smooth = (8192 / 6695.1 - 1) / 3 = 0.074527, so
  // f * ((1 - 0.074527) / 32 + 0.074527) = 9.7083e-5.
  EXPECT_NEAR(inv_freq[17], 9.7083e-5, 0.0001e-5);
  // Without scaling: the plain 1 / theta^(2i/d).
  c.rope_scaling.reset();
  EXPECT_NEAR(RopeInverseFrequencies(c)[17], std::pow(500000.0, -34.0 / 64), 1e-9);
}

// --- loading ---------------------------------------------------------------------

TEST(LoadTest, ReportsShapesAndDtypesAndMapsMatchingWeights) {
  TinyCheckpoint ckpt(test_util::TinyLlamaConfig());
  ModelOptions mapped = Options();
  mapped.map_weights = true;
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path(), mapped);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->dtype(), ComputeDType::kFloat32);
  EXPECT_EQ(model->device(), "cpu");
  EXPECT_EQ(model->threads(), 1);
  EXPECT_EQ(model->max_sequence_length(), 128);
  ASSERT_EQ(model->weights().size(), ckpt.weights.size());
  int64_t params = 0;
  for (const WeightInfo& w : model->weights()) {
    ASSERT_TRUE(ckpt.weights.count(w.name)) << w.name;
    EXPECT_EQ(w.shape, ckpt.weights.at(w.name).shape) << w.name;
    EXPECT_EQ(w.stored_dtype, "F32");
    EXPECT_TRUE(w.mapped) << w.name;  // F32 into F32 on CPU: used in place
    params += static_cast<int64_t>(ckpt.weights.at(w.name).values.size());
  }
  EXPECT_EQ(model->parameter_count(), params);
  // By default every weight is copied; the outputs are the same.
  std::unique_ptr<Model> copied = LoadOk(ckpt.dir.path());
  ASSERT_NE(copied, nullptr);
  for (const WeightInfo& w : copied->weights()) EXPECT_FALSE(w.mapped) << w.name;
  const std::vector<int32_t> tokens = Tokens(ckpt.config, 5);
  EXPECT_EQ(Prefill(*model, tokens).logits, Prefill(*copied, tokens).logits);
}

TEST(LoadTest, EveryStoredDtypeLoadsTheValuesItHolds) {
  // A checkpoint stored in F16 or BF16 gives exactly the logits of an F32
  // checkpoint holding the same (rounded) values.
  const ModelConfig c = test_util::TinyLlamaConfig();
  const WeightMap weights = test_util::RandomWeights(c, 21);
  const std::vector<int32_t> tokens = Tokens(c, 8);
  for (SafetensorsDType dtype : {SafetensorsDType::kF16, SafetensorsDType::kBF16}) {
    const WeightMap rounded = test_util::RoundWeights(weights, dtype);
    TempDir dir;
    ASSERT_TRUE(test_util::WriteCheckpoint(dir.Sub("stored"), c, weights, dtype).ok());
    ASSERT_TRUE(
        test_util::WriteCheckpoint(dir.Sub("f32"), c, rounded, SafetensorsDType::kF32).ok());
    std::unique_ptr<Model> stored = LoadOk(dir.path() + "/stored");
    std::unique_ptr<Model> f32 = LoadOk(dir.path() + "/f32");
    ASSERT_TRUE(stored && f32);
    for (const WeightInfo& w : stored->weights()) {
      EXPECT_EQ(w.stored_dtype, SafetensorsDTypeName(dtype));
      EXPECT_FALSE(w.mapped);  // converted to float32
    }
    EXPECT_EQ(Prefill(*stored, tokens).logits, Prefill(*f32, tokens).logits)
        << SafetensorsDTypeName(dtype);
  }
}

TEST(LoadTest, BFloat16ComputeMapsBFloat16WeightsAndStaysCloseToFloat32) {
  const ModelConfig c = test_util::TinyQwen2Config();
  TinyCheckpoint ckpt(c, 4, SafetensorsDType::kBF16);
  ModelOptions options = Options(ComputeDType::kBFloat16);
  options.map_weights = true;
  std::unique_ptr<Model> bf16 = LoadOk(ckpt.dir.path(), options);
  std::unique_ptr<Model> f32 = LoadOk(ckpt.dir.path());
  ASSERT_TRUE(bf16 && f32);
  EXPECT_EQ(bf16->dtype(), ComputeDType::kBFloat16);
  // The first tensor of the file starts 64-byte aligned and is used in
  // place; tensors after Qwen2's 16-byte k/v biases are not aligned and are
  // copied.
  int mapped = 0;
  for (const WeightInfo& w : bf16->weights()) mapped += w.mapped;
  EXPECT_TRUE(bf16->weights().front().mapped);  // model.embed_tokens.weight
  EXPECT_GT(mapped, 1);
  EXPECT_LT(mapped, static_cast<int>(bf16->weights().size()));
  const std::vector<int32_t> tokens = Tokens(c, 10);
  SequenceOutput a = Prefill(*bf16, tokens), b = Prefill(*f32, tokens);
  // bfloat16 keeps 8 bits of mantissa: a few percent of the logits' scale.
  float scale = 0;
  for (float v : b.logits) scale = std::max(scale, std::abs(v));
  EXPECT_LT(MaxAbsDiff(a.logits, b.logits), 0.1f * scale);
  EXPECT_GT(MaxAbsDiff(a.logits, b.logits), 0.0f);  // it did compute in bfloat16
}

TEST(LoadTest, Float16ComputeOnCpuIsRejected) {
  TinyCheckpoint ckpt(test_util::TinyLlamaConfig());
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Load(ckpt.dir.path(), Options(ComputeDType::kFloat16));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("float16 needs a CUDA device"));
}

TEST(LoadTest, TiedAndUntiedEmbeddings) {
  // Qwen2 tied: no lm_head.weight; logits use the embedding.
  const ModelConfig tied = test_util::TinyQwen2Config();
  WeightMap weights = test_util::RandomWeights(tied, 9);
  ASSERT_FALSE(weights.count("lm_head.weight"));
  // Untied, with lm_head.weight a copy of the embedding: the same logits.
  ModelConfig untied = tied;
  untied.tie_word_embeddings = false;
  WeightMap untied_weights = weights;
  untied_weights["lm_head.weight"] = weights.at("model.embed_tokens.weight");
  // Untied with a different head: different logits.
  WeightMap other_weights = untied_weights;
  for (float& v : other_weights["lm_head.weight"].values) v = -v;

  TempDir dir;
  ASSERT_TRUE(
      test_util::WriteCheckpoint(dir.Sub("tied"), tied, weights, SafetensorsDType::kF32).ok());
  ASSERT_TRUE(
      test_util::WriteCheckpoint(dir.Sub("untied"), untied, untied_weights, SafetensorsDType::kF32)
          .ok());
  ASSERT_TRUE(
      test_util::WriteCheckpoint(dir.Sub("other"), untied, other_weights, SafetensorsDType::kF32)
          .ok());
  std::unique_ptr<Model> a = LoadOk(dir.path() + "/tied");
  std::unique_ptr<Model> b = LoadOk(dir.path() + "/untied");
  std::unique_ptr<Model> d = LoadOk(dir.path() + "/other");
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->weights().size() + 1, b->weights().size());
  EXPECT_EQ(a->parameter_count() + tied.vocab_size * tied.hidden_size, b->parameter_count());
  const std::vector<int32_t> tokens = Tokens(tied, 6);
  const std::vector<float> la = Prefill(*a, tokens).logits;
  EXPECT_EQ(la, Prefill(*b, tokens).logits);
  const std::vector<float> ld = Prefill(*d, tokens).logits;
  for (size_t i = 0; i < la.size(); ++i) EXPECT_FLOAT_EQ(ld[i], -la[i]);

  // An untied config whose checkpoint lacks lm_head.weight.
  test_util::WriteFile(dir.path() + "/tied/config.json", ModelConfigToJson(untied));
  absl::StatusOr<std::unique_ptr<Model>> missing = Model::Load(dir.path() + "/tied", Options());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("tensor \"lm_head.weight\" is missing"));
}

TEST(LoadTest, ErrorsNameTheFileAndTensor) {
  const ModelConfig c = test_util::TinyLlamaConfig();
  const WeightMap weights = test_util::RandomWeights(c, 2);
  TempDir dir;

  // No config.json.
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(dir.path(), Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(m.status().message(), HasSubstr("config.json"));

  // Unknown model_type.
  const std::string gpt2 = dir.Sub("gpt2");
  ASSERT_TRUE(test_util::WriteCheckpoint(gpt2, c, weights, SafetensorsDType::kF32).ok());
  std::string text = test_util::ReadFile(gpt2 + "/config.json");
  text.replace(text.find("\"llama\""), 7, "\"gpt2\"");
  test_util::WriteFile(gpt2 + "/config.json", text);
  m = Model::Load(gpt2, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("config.json: model_type \"gpt2\" is not supported (llama, qwen2, "
                        "mistral)"));

  // A missing tensor.
  WeightMap fewer = weights;
  fewer.erase("model.layers.1.mlp.up_proj.weight");
  const std::string missing = dir.Sub("missing");
  ASSERT_TRUE(test_util::WriteCheckpoint(missing, c, fewer, SafetensorsDType::kF32).ok());
  m = Model::Load(missing, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m.status().message(), missing +
                                      "/model.safetensors: tensor "
                                      "\"model.layers.1.mlp.up_proj.weight\" is missing");

  // A shape the config does not imply.
  ModelConfig wider = c;
  wider.intermediate_size = 50;
  const std::string shape = dir.Sub("shape");
  ASSERT_TRUE(test_util::WriteCheckpoint(shape, wider, test_util::RandomWeights(wider, 2),
                                         SafetensorsDType::kF32)
                  .ok());
  test_util::WriteFile(shape + "/config.json", ModelConfigToJson(c));
  m = Model::Load(shape, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message(),
            shape +
                "/model.safetensors: tensor \"model.layers.0.mlp.gate_proj.weight\" has "
                "shape [50, 32] but config.json implies [48, 32]");

  // A corrupt header and a truncated file.
  const std::string corrupt = dir.Sub("corrupt");
  ASSERT_TRUE(test_util::WriteCheckpoint(corrupt, c, weights, SafetensorsDType::kF32).ok());
  const std::string file = corrupt + "/model.safetensors";
  const std::string bytes = test_util::ReadFile(file);
  std::string bad_header = bytes;
  bad_header[8] = 'x';
  test_util::WriteFile(file, bad_header);
  m = Model::Load(corrupt, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(), HasSubstr(file + ": safetensors header is not valid JSON"));
  test_util::WriteFile(file, bytes.substr(0, bytes.size() - 100));
  m = Model::Load(corrupt, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(m.status().message(), HasSubstr("truncated"));
  EXPECT_THAT(m.status().message(), HasSubstr(file + ": tensor \""));

  // A dtype models cannot use.
  const std::string ints = dir.Sub("ints");
  ASSERT_TRUE(test_util::WriteCheckpoint(ints, c, weights, SafetensorsDType::kF32).ok());
  std::string with_ints = test_util::ReadFile(ints + "/model.safetensors");
  const std::string needle = "\"model.norm.weight\":{\"dtype\":\"F32\"";
  const size_t at = with_ints.find(needle);
  ASSERT_NE(at, std::string::npos);
  with_ints.replace(at + needle.size() - 4, 3, "I32");
  test_util::WriteFile(ints + "/model.safetensors", with_ints);
  m = Model::Load(ints, Options());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              HasSubstr("tensor \"model.norm.weight\" has dtype I32; supported: F32, F16, BF16"));

  // A device that is not one.
  ModelOptions options = Options();
  options.device = "tpu:7";
  EXPECT_EQ(Model::Load(missing, options).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Forward errors and the cache ---------------------------------------------------

TEST(ForwardTest, BadInputIsInvalidArgumentAndLeavesCachesUnchanged) {
  TinyCheckpoint ckpt(test_util::TinyLlamaConfig());
  ModelOptions options = Options();
  options.max_sequence_length = 10;
  absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(ckpt.dir.path(), options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& model = **loaded;
  EXPECT_EQ(model.max_sequence_length(), 10);
  SequenceCache cache, other;
  const std::vector<int32_t> three = {1, 2, 3};
  ASSERT_TRUE(model.Forward({SequenceInput{&cache, three}}).ok());
  ASSERT_EQ(cache.length(), 3);

  const std::vector<int32_t> out_of_range = {1, 97};
  const std::vector<int32_t> negative = {-1};
  const std::vector<int32_t> empty;
  const std::vector<int32_t> eight(8, 1);
  struct Case {
    std::vector<SequenceInput> inputs;
    std::string message;
  } cases[] = {
      {{}, "no sequences"},
      {{{&cache, out_of_range}}, "sequences[0]: tokens[1] = 97 is outside [0, 97)"},
      {{{&other, three}, {&cache, negative}}, "sequences[1]: tokens[0] = -1"},
      {{{&cache, empty}}, "sequences[0]: no tokens"},
      {{{nullptr, three}}, "sequences[0]: no cache"},
      {{{&cache, three}, {&cache, three}}, "sequences[1]: cache repeats"},
      {{{&cache, three, {2}}}, "attention layer 2 is outside [-2, 2)"},
      {{{&cache, three, {-3}}}, "attention layer -3"},
      {{{&other, three}, {&cache, eight}},
       "sequences[1]: 3 cached + 8 new tokens exceed max_sequence_length 10"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<StepOutput> out = model.Forward(c.inputs);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(out.status().message(), HasSubstr(c.message));
    EXPECT_EQ(cache.length(), 3);
    EXPECT_EQ(other.length(), 0);
  }

  // A cache bound to another model.
  std::unique_ptr<Model> second = LoadOk(ckpt.dir.path());
  ASSERT_NE(second, nullptr);
  EXPECT_THAT(second->Forward({SequenceInput{&cache, three}}).status().message(),
              HasSubstr("cache belongs to another model"));
}

TEST(ForwardTest, TruncateRewindsTheCache) {
  TinyCheckpoint ckpt(test_util::TinyMistralConfig());
  std::unique_ptr<Model> model = LoadOk(ckpt.dir.path());
  ASSERT_NE(model, nullptr);
  SequenceCache cache;
  const std::vector<int32_t> prompt = Tokens(ckpt.config, 6);
  const std::vector<int32_t> a = {4, 5}, b = {9};
  ASSERT_TRUE(model->Forward({SequenceInput{&cache, prompt}}).ok());
  absl::StatusOr<StepOutput> first = model->Forward({SequenceInput{&cache, a}});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(model->Forward({SequenceInput{&cache, b}}).ok());
  EXPECT_EQ(cache.length(), 9);
  ASSERT_TRUE(cache.Truncate(6).ok());
  absl::StatusOr<StepOutput> again = model->Forward({SequenceInput{&cache, a}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sequences[0].logits, first->sequences[0].logits);
  EXPECT_FALSE(cache.Truncate(9).ok());
  const int64_t bytes = cache.allocated_bytes();
  EXPECT_GT(bytes, 0);
  cache.Clear();
  EXPECT_EQ(cache.length(), 0);
  EXPECT_EQ(cache.allocated_bytes(), bytes);  // memory kept for reuse
  SequenceCache moved = std::move(cache);
  EXPECT_EQ(moved.allocated_bytes(), bytes);
}

TEST(ForwardTest, RandomModelsAreDeterministicInTheSeed) {
  const ModelConfig c = test_util::TinyQwen2Config();
  absl::StatusOr<std::unique_ptr<Model>> a = Model::CreateRandom(c, Options(), 1);
  absl::StatusOr<std::unique_ptr<Model>> b = Model::CreateRandom(c, Options(), 1);
  absl::StatusOr<std::unique_ptr<Model>> d = Model::CreateRandom(c, Options(), 2);
  ASSERT_TRUE(a.ok() && b.ok() && d.ok());
  const std::vector<int32_t> tokens = Tokens(c, 5);
  EXPECT_EQ(Prefill(**a, tokens).logits, Prefill(**b, tokens).logits);
  EXPECT_NE(Prefill(**a, tokens).logits, Prefill(**d, tokens).logits);
  EXPECT_EQ((*a)->weights().front().stored_dtype, "random");
  ModelConfig bad = c;
  bad.num_key_value_heads = 3;
  EXPECT_EQ(Model::CreateRandom(bad, Options(), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ForwardTest, SavedModelLoadsBackIdentically) {
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5};
  for (ComputeDType dtype : {ComputeDType::kFloat32, ComputeDType::kBFloat16}) {
    for (const ModelConfig& c : {test_util::TinyLlamaConfig(), test_util::TinyQwen2Config()}) {
      absl::StatusOr<std::unique_ptr<Model>> random = Model::CreateRandom(c, Options(dtype), 8);
      ASSERT_TRUE(random.ok()) << random.status();
      TempDir dir;
      ASSERT_TRUE((*random)->Save(dir.path()).ok());
      std::unique_ptr<Model> loaded = LoadOk(dir.path(), Options(dtype));
      ASSERT_NE(loaded, nullptr);
      EXPECT_EQ(loaded->weights().size(), (*random)->weights().size());
      EXPECT_EQ(loaded->weights().front().stored_dtype,
                dtype == ComputeDType::kFloat32 ? "F32" : "BF16");
      EXPECT_EQ(Prefill(*loaded, tokens).logits, Prefill(**random, tokens).logits);
    }
  }
}

TEST(ComputeDTypeTest, ParsesNames) {
  EXPECT_EQ(*ParseComputeDType("BF16"), ComputeDType::kBFloat16);
  EXPECT_EQ(*ParseComputeDType("float32"), ComputeDType::kFloat32);
  EXPECT_EQ(*ParseComputeDType("fp16"), ComputeDType::kFloat16);
  EXPECT_FALSE(ParseComputeDType("int8").ok());
}

}  // namespace
}  // namespace entroserve
