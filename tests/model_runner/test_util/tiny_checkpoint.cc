#include "tests/model_runner/test_util/tiny_checkpoint.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace entroserve::test_util {

ModelConfig TinyLlamaConfig() {
  ModelConfig c;
  c.family = ModelFamily::kLlama;
  c.model_type = "llama";
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 128;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  // head_dim 16 gives wavelengths 6.3, 20, 63, 199, 628, ...: below 64 kept,
  // 199 smoothed, above 256 divided by 8.
  c.rope_scaling = Llama3RopeScaling{8.0, 1.0, 4.0, 256};
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2, 3};
  c.torch_dtype = "float32";
  return c;
}

ModelConfig TinyQwen2Config() {
  ModelConfig c;
  c.family = ModelFamily::kQwen2;
  c.model_type = "qwen2";
  c.vocab_size = 89;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.max_position_embeddings = 256;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.tie_word_embeddings = true;
  c.qkv_bias = true;
  c.eos_token_ids = {5};
  return c;
}

ModelConfig TinyMistralConfig() {
  ModelConfig c;
  c.family = ModelFamily::kMistral;
  c.model_type = "mistral";
  c.vocab_size = 64;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 128;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.sliding_window = 5;
  return c;
}

WeightMap RandomWeights(const ModelConfig& c, uint64_t seed, float stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  WeightMap weights;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    TensorValues t;
    t.shape = std::move(shape);
    t.values.resize(static_cast<size_t>(n));
    for (float& v : t.values) v = norm ? 1.0f + 0.1f * normal(rng) : stddev * normal(rng);
    weights[name] = std::move(t);
  };
  const int64_t D = c.hidden_size;
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  add("model.embed_tokens.weight", {c.vocab_size, D}, false);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    add(p + "input_layernorm.weight", {D}, true);
    auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
      add(p + name + ".weight", {out, in}, false);
      if (bias) add(p + name + ".bias", {out}, false);
    };
    linear("self_attn.q_proj", q_out, D, c.qkv_bias);
    linear("self_attn.k_proj", kv_out, D, c.qkv_bias);
    linear("self_attn.v_proj", kv_out, D, c.qkv_bias);
    linear("self_attn.o_proj", D, q_out, c.o_bias);
    add(p + "post_attention_layernorm.weight", {D}, true);
    linear("mlp.gate_proj", c.intermediate_size, D, c.mlp_bias);
    linear("mlp.up_proj", c.intermediate_size, D, c.mlp_bias);
    linear("mlp.down_proj", D, c.intermediate_size, c.mlp_bias);
  }
  add("model.norm.weight", {D}, true);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, D}, false);
  return weights;
}

WeightMap RoundWeights(const WeightMap& weights, SafetensorsDType dtype) {
  WeightMap rounded = weights;
  for (auto& [name, t] : rounded) {
    t.values = *DecodeFloats(dtype, EncodeFloats(dtype, t.values));
  }
  return rounded;
}

absl::Status WriteCheckpoint(const std::string& dir, const ModelConfig& config,
                             const WeightMap& weights, SafetensorsDType dtype, int shards) {
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/config.json", ModelConfigToJson(config));
  std::vector<std::string> bytes;
  std::vector<SafetensorsTensorData> tensors;
  bytes.reserve(weights.size());
  for (const auto& [name, t] : weights) {
    bytes.push_back(EncodeFloats(dtype, t.values));
    tensors.push_back({name, dtype, t.shape, bytes.back()});
  }
  if (shards <= 1) return WriteSafetensors(dir + "/model.safetensors", tensors);
  // Round-robin over the shards, as any split must load the same.
  std::string weight_map;
  for (int s = 0; s < shards; ++s) {
    const std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards);
    std::vector<SafetensorsTensorData> part;
    for (size_t i = static_cast<size_t>(s); i < tensors.size(); i += static_cast<size_t>(shards)) {
      part.push_back(tensors[i]);
      absl::StrAppend(&weight_map, weight_map.empty() ? "" : ",\n", "    \"", tensors[i].name,
                      "\": \"", file, "\"");
    }
    absl::Status status = WriteSafetensors(dir + "/" + file, part);
    if (!status.ok()) return status;
  }
  WriteFile(
      dir + "/model.safetensors.index.json",
      absl::StrCat("{\n  \"metadata\": {},\n  \"weight_map\": {\n", weight_map, "\n  }\n}\n"));
  return absl::OkStatus();
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern = absl::StrCat(base && *base ? base : "/tmp", "/entroserve_model_XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Sub(const std::string& name) const {
  std::string sub = path_ + "/" + name;
  std::filesystem::create_directories(sub);
  return sub;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace entroserve::test_util
