// Typed configurations of every sampler, with the defaults of REFERENCE.md.
// Each mirrors its sampler.v1 proto message field for field; every tunable
// number is a named field here, never a literal in the sampler code.
//
// Validate() checks ranges and names the field and value in its error
// ("entropix.temperature must be > 0, got -1"; "chain.temperature must be
// >= 0.001, got 0.0001" below kMinTemperature).
#ifndef ENTROSERVE_SAMPLER_CORE_CONFIGS_H_
#define ENTROSERVE_SAMPLER_CORE_CONFIGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace entroserve {

// The smallest temperature any config accepts (every *temperature field, and
// the lower ends of the temperature ranges). Samplers multiply logits by
// 1 / T: at T = 1e-3 a logit gap of ~0.09 already makes exp underflow, so the
// draw is the argmax that T -> 0 tends to, while 1 / T and the tempered
// logits stay finite. Smaller positive values are rejected rather than
// clamped, so that a request never silently runs with another temperature.
// (A choice of this library, not from a paper; vLLM likewise treats
// temperatures below its _SAMPLING_EPS = 1e-5 as greedy.)
inline constexpr float kMinTemperature = 1e-3f;

// INVALID_ARGUMENT naming `field` when value < kMinTemperature
// ("chain.temperature must be >= 0.001, got 0.0001"), else OK. Validate()
// runs it after the field's "> 0" and "finite" checks.
inline absl::Status CheckMinTemperature(absl::string_view field, float value) {
  if (!(value < kMinTemperature)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be >= ", kMinTemperature, ", got ", value));
}

struct GreedyConfig {
  static constexpr char kName[] = "greedy";  // the registry name
  absl::Status Validate() const { return absl::OkStatus(); }
};

// Stage order: logit_bias -> penalties -> no_repeat_ngram -> top_k ->
// typical_p -> top_p -> min_p -> temperature -> draw.
struct ChainConfig {
  static constexpr char kName[] = "chain";  // the registry name
  float temperature = 1.0f;
  int32_t top_k = 0;  // 0 disables
  float top_p = 1.0f;
  float min_p = 0.0f;
  float typical_p = 1.0f;
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;
  int32_t no_repeat_ngram_size = 0;
  std::map<int32_t, float> logit_bias;
  absl::Status Validate() const;
};

// entropix e55e9a3 (REFERENCE §2). Names follow the proto message.
struct EntropixConfig {
  static constexpr char kName[] = "entropix";  // the registry name
  float temperature = 0.666f;
  float top_p = 0.90f;
  int32_t top_k = 27;
  float min_p = 0.03f;
  float low_entropy = 0.1f;
  float low_varentropy = 0.1f;
  float medium_entropy = 3.0f;
  float high_entropy = 5.0f;
  float high_varentropy = 5.0f;
  float clarify_attn_entropy_offset = 1.3f;
  float clarify_attn_entropy_coef = 0.2f;
  float clarify_max_temperature = 1.5f;
  float explore_strength_offset = 1.2f;
  float explore_strength_coef = 0.3f;
  float explore_max_temperature = 1.5f;
  float explore_top_k_agreement_coef = 0.5f;
  int32_t explore_min_top_k = 5;
  float resample_min_temperature = 2.0f;
  float resample_attn_varentropy_offset = 2.0f;
  float resample_attn_varentropy_coef = 0.5f;
  float resample_min_top_p = 0.5f;
  float resample_top_p_attn_entropy_coef = 0.2f;
  float adaptive_logit_uncertainty_coef = 0.3f;
  float adaptive_attn_uncertainty_coef = 0.2f;
  float adaptive_agreement_coef = 0.2f;
  float adaptive_top_p_attn_varentropy_coef = 0.1f;
  float adaptive_top_k_strength_coef = 0.3f;
  float adaptive_top_k_agreement_coef = 0.2f;
  int32_t adaptive_max_top_k = 100;
  float adaptive_min_p_uncertainty_coef = 0.5f;
  int32_t adaptive_samples = 5;
  bool attn_varentropy_is_spread = false;
  absl::Status Validate() const;
};

// AlphaSampler (REFERENCE §3).
struct AlphaConfig {
  static constexpr char kName[] = "alpha";  // the registry name
  float base_temperature = 0.2f;
  float base_top_p = 0.80f;
  int32_t base_top_k = 10;
  float base_repetition_penalty = 1.1f;
  int32_t base_candidate_size = 20;
  int32_t window = 5;
  int32_t max_iterations = 10;
  float tolerance = 0.01f;
  float learning_rate = 0.1f;
  float min_temperature = 0.1f;
  float max_temperature = 1.0f;
  int32_t min_top_k = 5;
  int32_t max_top_k = 200;
  float min_top_p = 0.1f;
  float max_top_p = 1.0f;
  float min_repetition_penalty = 1.1f;
  float max_repetition_penalty = 1.5f;
  int32_t min_candidate_size = 1;
  int32_t max_candidate_size = 100;
  int32_t repetition_window = 128;
  float entropy_weight = 0.4f;
  float varentropy_weight = 0.2f;
  float attn_entropy_weight = 0.3f;
  float attn_varentropy_weight = 0.1f;
  absl::Status Validate() const;
};

struct MirostatV2Config {
  static constexpr char kName[] = "mirostat_v2";  // the registry name
  float tau = 5.0f;
  float eta = 0.1f;
  float temperature = 1.0f;
  absl::Status Validate() const;
};

struct DynaTempConfig {
  static constexpr char kName[] = "dynatemp";  // the registry name
  float min_temperature = 0.5f;
  float max_temperature = 1.5f;
  float exponent = 1.0f;
  absl::Status Validate() const;
};

struct TopNSigmaConfig {
  static constexpr char kName[] = "top_n_sigma";  // the registry name
  float n = 1.0f;
  float temperature = 1.0f;
  absl::Status Validate() const;
};

struct XtcConfig {
  static constexpr char kName[] = "xtc";  // the registry name
  float threshold = 0.1f;
  float probability = 0.5f;
  int32_t min_keep = 1;
  float temperature = 1.0f;
  absl::Status Validate() const;
};

struct DryConfig {
  static constexpr char kName[] = "dry";  // the registry name
  float multiplier = 0.8f;
  float base = 1.75f;
  int32_t allowed_length = 2;
  int32_t penalty_last_n = 256;
  std::vector<int32_t> sequence_breaker_ids;
  float temperature = 1.0f;
  absl::Status Validate() const;
};

using SamplerConfig =
    std::variant<GreedyConfig, ChainConfig, EntropixConfig, AlphaConfig, MirostatV2Config,
                 DynaTempConfig, TopNSigmaConfig, XtcConfig, DryConfig>;

// The registry name of the sampler `config` selects ("entropix").
inline std::string SamplerName(const SamplerConfig& config) {
  return std::visit([](const auto& c) -> std::string { return c.kName; }, config);
}

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_CONFIGS_H_
