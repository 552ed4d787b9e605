// A Hugging Face `config.json` of the families the model runner serves,
// parsed and checked into a ModelConfig. No libtorch here.
//
// Families: "llama" (Llama 2/3.x, with Llama 3 rope scaling), "qwen2"
// (Qwen2/2.5: q/k/v biases always on), "mistral" (Llama layout, optional
// sliding window). Any other model_type is an INVALID_ARGUMENT naming the
// file, e.g.
//   config.json: model_type "gpt2" is not supported (llama, qwen2, mistral)
// Fields absent from the file take the defaults of transformers' config class
// of that family (LlamaConfig, Qwen2Config, MistralConfig).
#ifndef ENTROSERVE_MODEL_RUNNER_CHECKPOINT_MODEL_CONFIG_H_
#define ENTROSERVE_MODEL_RUNNER_CHECKPOINT_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace entroserve {

enum class ModelFamily { kLlama, kQwen2, kMistral };

// "llama", "qwen2", "mistral".
const char* ModelFamilyName(ModelFamily family);

// rope_scaling {"rope_type" (or "type"): "llama3", ...}: Llama 3.1+'s
// frequency-dependent scaling of the rotary inverse frequencies
// (transformers' _compute_llama3_parameters).
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kLlama;
  std::string model_type = "llama";

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;

  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<Llama3RopeScaling> rope_scaling;  // none: plain RoPE

  bool tie_word_embeddings = false;
  // Biases on q_proj/k_proj/v_proj (qwen2: always; llama: attention_bias).
  bool qkv_bias = false;
  // Bias on o_proj (llama: attention_bias; qwen2 and mistral: never).
  bool o_bias = false;
  // Biases on gate/up/down_proj (llama: mlp_bias).
  bool mlp_bias = false;
  // Mistral's sliding_window: a query at position p attends to keys in
  // (p - sliding_window, p]. None: full causal attention.
  std::optional<int64_t> sliding_window;

  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config.json may give one id or a list
  std::string torch_dtype;             // "bfloat16", ... or empty when absent

  int64_t num_key_value_groups() const { return num_attention_heads / num_key_value_heads; }
};

// Parses config.json text; `source` names the file in errors.
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             const std::string& source = "config.json");

// Reads and parses the file at `path` (NOT_FOUND naming it when missing).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// The config as config.json text that ParseModelConfig reads back to an equal
// config (used by the test fixtures and model_tool).
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_CHECKPOINT_MODEL_CONFIG_H_
