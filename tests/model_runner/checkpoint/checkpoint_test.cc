// Safetensors reading and writing, config.json parsing and checkpoint
// folders (single file and sharded). No libtorch in this file.
#include "model_runner/checkpoint/checkpoint.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model_runner/checkpoint/model_config.h"
#include "model_runner/checkpoint/safetensors.h"
#include "tests/model_runner/test_util/tiny_checkpoint.h"

namespace entroserve {
namespace {

using test_util::ReadFile;
using test_util::TempDir;
using test_util::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

uint16_t Bits16(const std::string& bytes, size_t i = 0) {
  return static_cast<uint16_t>(static_cast<uint8_t>(bytes[2 * i]) |
                               (static_cast<uint8_t>(bytes[2 * i + 1]) << 8));
}

// --- float encodings ---------------------------------------------------------

TEST(EncodeFloatsTest, BFloat16BitPatternsRoundToNearestEven) {
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kBF16, {1.0f})), 0x3F80);
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kBF16, {-2.0f})), 0xC000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kBF16, {1.0f + 0x1p-8f})), 0x3F80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (up).
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kBF16, {1.0f + 3 * 0x1p-8f})), 0x3F82);
}

TEST(EncodeFloatsTest, HalfBitPatternsIncludingSubnormalsAndOverflow) {
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {1.0f})), 0x3C00);
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {65504.0f})), 0x7BFF);
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {65520.0f})), 0x7C00);  // to inf
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {0x1p-24f})), 0x0001);  // subnormal
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {0x1p-25f})), 0x0000);  // tie to 0
  EXPECT_EQ(Bits16(EncodeFloats(SafetensorsDType::kF16, {-0x1p-14f})), 0x8400);
}

TEST(EncodeFloatsTest, DecodeInvertsEncodeForRepresentableValues) {
  const std::vector<float> values = {0.0f, 1.0f, -0.5f, 3.25f, 0x1p-24f, 65504.0f};
  for (SafetensorsDType dtype : {SafetensorsDType::kF32, SafetensorsDType::kF16}) {
    EXPECT_EQ(*DecodeFloats(dtype, EncodeFloats(dtype, values)), values);
  }
  const std::vector<float> bf16_values = {0.0f, 1.0f, -0.5f, 3.25f, 0x1p-100f, -0x1.5p90f};
  EXPECT_EQ(
      *DecodeFloats(SafetensorsDType::kBF16, EncodeFloats(SafetensorsDType::kBF16, bf16_values)),
      bf16_values);
}

// --- safetensors files --------------------------------------------------------

std::string WriteSample(const TempDir& dir, SafetensorsDType dtype = SafetensorsDType::kF32) {
  const std::string path = dir.path() + "/sample.safetensors";
  const std::string a = EncodeFloats(dtype, {1, 2, 3, 4, 5, 6});
  const std::string b = EncodeFloats(dtype, {-1, 0.5});
  std::vector<SafetensorsTensorData> tensors = {{"a", dtype, {2, 3}, a}, {"b", dtype, {2}, b}};
  EXPECT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  return path;
}

TEST(SafetensorsTest, WrittenFileReadsBackWithDtypeShapeAndValues) {
  TempDir dir;
  for (SafetensorsDType dtype :
       {SafetensorsDType::kF32, SafetensorsDType::kF16, SafetensorsDType::kBF16}) {
    const std::string path = WriteSample(dir, dtype);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_EQ((*file)->tensors().size(), 2u);
    const SafetensorsTensorInfo* a = (*file)->Find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dtype, dtype);
    EXPECT_THAT(a->shape, ElementsAre(2, 3));
    EXPECT_EQ(a->numel(), 6);
    absl::string_view bytes(reinterpret_cast<const char*>((*file)->Data(*a)), a->end - a->begin);
    EXPECT_THAT(*DecodeFloats(dtype, bytes), ElementsAre(1, 2, 3, 4, 5, 6));
    EXPECT_EQ((*file)->metadata().at("format"), "pt");
    EXPECT_EQ((*file)->Find("c"), nullptr);
    // The header is padded so that the data starts 64-byte aligned.
    EXPECT_EQ(a->begin % 64, 0u);
  }
}

TEST(SafetensorsTest, MissingFileIsNotFoundNamingIt) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open("/nonexistent/x.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr("/nonexistent/x.safetensors"));
}

TEST(SafetensorsTest, FileShorterThanTheLengthFieldIsDataLoss) {
  TempDir dir;
  const std::string path = dir.path() + "/short.safetensors";
  WriteFile(path, "abc");
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("too short"));
}

TEST(SafetensorsTest, HeaderLengthBeyondTheFileIsDataLoss) {
  TempDir dir;
  const std::string path = WriteSample(dir);
  std::string bytes = ReadFile(path);
  bytes[0] = '\xff';
  bytes[1] = '\xff';  // 65535 + ...: far beyond the file
  WriteFile(path, bytes);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("beyond the file size"));
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

TEST(SafetensorsTest, HeaderThatIsNotJsonIsDataLoss) {
  TempDir dir;
  const std::string path = WriteSample(dir);
  std::string bytes = ReadFile(path);
  bytes[8] = '[';
  bytes[9] = '}';  // the JSON now opens with "[}"
  WriteFile(path, bytes);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("not valid JSON"));
}

TEST(SafetensorsTest, TruncatedFileNamesTheTensorPastTheEnd) {
  TempDir dir;
  const std::string path = WriteSample(dir);
  std::string bytes = ReadFile(path);
  WriteFile(path, bytes.substr(0, bytes.size() - 3));  // "b" comes last
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("tensor \"b\""));
  EXPECT_THAT(file.status().message(), HasSubstr("truncated"));
}

TEST(SafetensorsTest, HeaderWhoseOffsetsDisagreeWithTheShapeIsDataLoss) {
  std::map<std::string, std::string> metadata;
  absl::StatusOr<std::vector<SafetensorsTensorInfo>> tensors = ParseSafetensorsHeader(
      R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 1000, "f", &metadata);
  EXPECT_EQ(tensors.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(tensors.status().message(),
            "f: tensor \"w\": data_offsets [0, 20] hold 20 bytes but shape [2, 3] of F32 "
            "needs 24");
}

TEST(SafetensorsTest, HeaderErrorsNameTheProblem) {
  struct Case {
    const char* header;
    const char* message;
  } cases[] = {
      {R"({"w": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}})", "unknown dtype"},
      {R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "non-negative"},
      {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "end before"},
      {R"({"w": {"dtype": "F32", "shape": [1]}})", "data_offsets"},
      {R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 4]}})",
       "too large"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"__metadata__": {"a": 1}})", "not a string"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<SafetensorsTensorInfo>> tensors =
        ParseSafetensorsHeader(c.header, 1000, "f", nullptr);
    EXPECT_EQ(tensors.status().code(), absl::StatusCode::kDataLoss) << c.header;
    EXPECT_THAT(tensors.status().message(), HasSubstr(c.message)) << c.header;
  }
}

TEST(SafetensorsTest, WriterRejectsBytesThatDoNotMatchTheShape) {
  TempDir dir;
  const std::string bytes(12, '\0');
  std::vector<SafetensorsTensorData> tensors = {{"w", SafetensorsDType::kF32, {2, 2}, bytes}};
  EXPECT_EQ(WriteSafetensors(dir.path() + "/w.safetensors", tensors).code(),
            absl::StatusCode::kInvalidArgument);
}

// --- config.json ---------------------------------------------------------------

// Llama-3.2-1B's config.json, as published.
constexpr char kLlama32Config[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Qwen2.5-0.5B-Instruct's config.json, as published.
constexpr char kQwen25Config[] = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

TEST(ModelConfigTest, ParsesLlama32) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(kLlama32Config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kLlama);
  EXPECT_EQ(c->hidden_size, 2048);
  EXPECT_EQ(c->intermediate_size, 8192);
  EXPECT_EQ(c->num_hidden_layers, 16);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->num_key_value_groups(), 4);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 32.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling->low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_EQ(c->bos_token_id, 128000);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST(ModelConfigTest, ParsesQwen25WithQkvBiasAlwaysOn) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(kQwen25Config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kQwen2);
  EXPECT_EQ(c->head_dim, 64);  // 896 / 14
  EXPECT_EQ(c->num_key_value_groups(), 7);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_FALSE(c->sliding_window.has_value());  // use_sliding_window is false
  EXPECT_TRUE(c->tie_word_embeddings);
}

TEST(ModelConfigTest, MistralDefaultsAndSlidingWindow) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(
      R"({"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
          "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
          "sliding_window": null, "rope_theta": 1000000.0})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 8);  // MistralConfig's default
  EXPECT_EQ(c->max_position_embeddings, 4096 * 32);
  EXPECT_FALSE(c->sliding_window.has_value());
  c = ParseModelConfig(
      R"({"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
          "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
          "num_key_value_heads": 8, "sliding_window": 4096})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 4096);
}

TEST(ModelConfigTest, UnknownModelTypeIsAClearError) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(
      R"({"model_type": "gpt2", "vocab_size": 10, "hidden_size": 8})", "config.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "config.json: model_type \"gpt2\" is not supported (llama, qwen2, mistral)");
}

TEST(ModelConfigTest, NullRopeScalingIsPlainRope) {
  std::string text = kLlama32Config;
  const size_t start = text.find("\"rope_scaling\": {");
  const size_t end = text.find('}', start);
  text.replace(start, end - start + 1, "\"rope_scaling\": null");
  absl::StatusOr<ModelConfig> c = ParseModelConfig(text);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->rope_scaling.has_value());
}

TEST(ModelConfigTest, TransformersFiveRopeParameters) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(
      R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
          "num_hidden_layers": 1, "num_attention_heads": 2,
          "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192},
          "eos_token_id": [7, 8, 9], "dtype": "bfloat16"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 32.0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(7, 8, 9));
  EXPECT_EQ(c->torch_dtype, "bfloat16");
}

TEST(ModelConfigTest, InvalidFieldsNameTheField) {
  const std::string base =
      R"("model_type": "llama", "vocab_size": 10, "intermediate_size": 16,
         "num_hidden_layers": 1, )";
  struct Case {
    std::string fields;
    std::string message;
  } cases[] = {
      {R"("num_attention_heads": 2)", "config.json: hidden_size is missing"},
      {R"("hidden_size": "8", "num_attention_heads": 2)", "hidden_size must be an integer"},
      {R"("hidden_size": 8, "num_attention_heads": 4, "num_key_value_heads": 3)",
       "num_key_value_heads (3) must divide num_attention_heads (4)"},
      {R"("hidden_size": 9, "num_attention_heads": 2)", "must be a multiple of"},
      {R"("hidden_size": 6, "num_attention_heads": 2)", "head_dim must be even"},
      {R"("hidden_size": 8, "num_attention_heads": 2, "hidden_act": "gelu")",
       "hidden_act \"gelu\" is not supported"},
      {R"("hidden_size": 8, "num_attention_heads": 2, "rope_scaling": {"type": "yarn"})",
       "rope_scaling type \"yarn\" is not supported"},
      {R"("hidden_size": 8, "num_attention_heads": 2, "rope_scaling": {"rope_type": "llama3"})",
       "rope_scaling.factor"},
      {R"("hidden_size": 8, "num_attention_heads": 2, "rms_norm_eps": -1)",
       "rms_norm_eps must be > 0"},
      {R"("hidden_size": 0, "num_attention_heads": 2)", "hidden_size must be > 0"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ModelConfig> config = ParseModelConfig("{" + base + c.fields + "}");
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.fields;
    EXPECT_THAT(config.status().message(), HasSubstr(c.message)) << c.fields;
  }
  EXPECT_THAT(ParseModelConfig("{not json").status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseModelConfig(R"({"vocab_size": 1})").status().message(),
              HasSubstr("model_type is missing"));
  EXPECT_THAT(ParseModelConfig(R"({"model_type": "qwen2", "use_sliding_window": true,
      "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
      "num_attention_heads": 2})")
                  .status()
                  .message(),
              HasSubstr("use_sliding_window"));
}

TEST(ModelConfigTest, JsonRoundTripGivesTheSameConfig) {
  for (const ModelConfig& c : {test_util::TinyLlamaConfig(), test_util::TinyQwen2Config(),
                               test_util::TinyMistralConfig()}) {
    absl::StatusOr<ModelConfig> back = ParseModelConfig(ModelConfigToJson(c));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(ModelConfigToJson(*back), ModelConfigToJson(c));
    EXPECT_EQ(back->family, c.family);
    EXPECT_EQ(back->qkv_bias, c.qkv_bias);
    EXPECT_EQ(back->sliding_window, c.sliding_window);
    EXPECT_EQ(back->rope_scaling.has_value(), c.rope_scaling.has_value());
  }
}

TEST(ModelConfigTest, MissingFileIsNotFound) {
  EXPECT_EQ(LoadModelConfig("/nonexistent/config.json").status().code(),
            absl::StatusCode::kNotFound);
}

// --- checkpoint folders -------------------------------------------------------

TEST(CheckpointTest, SingleFileAndShardsHoldTheSameTensors) {
  TempDir dir;
  const ModelConfig config = test_util::TinyLlamaConfig();
  const test_util::WeightMap weights = test_util::RandomWeights(config, 7);
  const std::string single = dir.Sub("single");
  const std::string sharded = dir.Sub("sharded");
  ASSERT_TRUE(test_util::WriteCheckpoint(single, config, weights, SafetensorsDType::kBF16).ok());
  ASSERT_TRUE(
      test_util::WriteCheckpoint(sharded, config, weights, SafetensorsDType::kBF16, 3).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> a = Checkpoint::Open(single);
  absl::StatusOr<std::unique_ptr<Checkpoint>> b = Checkpoint::Open(sharded);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE((*a)->sharded());
  EXPECT_TRUE((*b)->sharded());
  EXPECT_EQ((*a)->files().size(), 1u);
  EXPECT_EQ((*b)->files().size(), 3u);
  ASSERT_EQ((*a)->TensorNames(), (*b)->TensorNames());
  EXPECT_EQ((*a)->TensorNames().size(), weights.size());
  for (const std::string& name : (*a)->TensorNames()) {
    CheckpointTensor x = *(*a)->Get(name);
    CheckpointTensor y = *(*b)->Get(name);
    EXPECT_EQ(x.info->shape, y.info->shape);
    EXPECT_EQ(x.info->shape, weights.at(name).shape);
    EXPECT_EQ(x.info->dtype, SafetensorsDType::kBF16);
    const size_t n = x.info->end - x.info->begin;
    ASSERT_EQ(n, y.info->end - y.info->begin);
    EXPECT_EQ(std::memcmp(x.data(), y.data(), n), 0) << name;
  }
}

TEST(CheckpointTest, MissingTensorNamesFileAndTensor) {
  TempDir dir;
  const ModelConfig config = test_util::TinyQwen2Config();
  ASSERT_TRUE(test_util::WriteCheckpoint(dir.path(), config, test_util::RandomWeights(config, 1),
                                         SafetensorsDType::kF32)
                  .ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok());
  absl::StatusOr<CheckpointTensor> t = (*checkpoint)->Get("lm_head.weight");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t.status().message(),
            dir.path() + "/model.safetensors: tensor \"lm_head.weight\" is missing");
}

TEST(CheckpointTest, FolderWithoutWeightsIsNotFound) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(checkpoint.status().message(),
              HasSubstr("no model.safetensors or model.safetensors.index.json"));
}

TEST(CheckpointTest, IndexErrorsNameTheShardAndTensor) {
  TempDir dir;
  const ModelConfig config = test_util::TinyMistralConfig();
  ASSERT_TRUE(test_util::WriteCheckpoint(dir.path(), config, test_util::RandomWeights(config, 1),
                                         SafetensorsDType::kF16, 2)
                  .ok());
  const std::string index_path = dir.path() + "/model.safetensors.index.json";
  const std::string index = ReadFile(index_path);

  // A tensor the index names but its shard lacks.
  std::string extra = index;
  extra.replace(extra.find("\"weight_map\": {") + 15, 0,
                "\n    \"ghost.weight\": \"model-00001-of-00002.safetensors\",");
  WriteFile(index_path, extra);
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(checkpoint.status().message(),
              HasSubstr("model-00001-of-00002.safetensors: tensor \"ghost.weight\" listed in "
                        "model.safetensors.index.json is missing"));

  // A missing shard.
  WriteFile(index_path, index);
  std::remove((dir.path() + "/model-00002-of-00002.safetensors").c_str());
  checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(checkpoint.status().message(),
              HasSubstr("shard \"model-00002-of-00002.safetensors\""));

  // A shard outside the folder.
  WriteFile(index_path, R"({"weight_map": {"a": "../elsewhere.safetensors"}})");
  checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(checkpoint.status().message(), HasSubstr("not a file in the checkpoint folder"));

  WriteFile(index_path, "{\"weight_map\": 3}");
  EXPECT_EQ(Checkpoint::Open(dir.path()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace entroserve
