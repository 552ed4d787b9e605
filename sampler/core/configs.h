// Typed configurations of every sampler: ONE table per sampler, each row
//
//   FIELD(type, name, default, rule, "help")
//
// in the language of config_schema.h. Everything else about a config follows
// from its table: the struct's members and defaults, Validate() (rule by
// rule, in table order: "entropix.temperature must be > 0, got -1"), the
// sampler.v1 conversion (services/wire/config_reflection.h: field by field,
// by name, into the proto message of the same name; a test checks that every
// proto field has exactly one row of the same type and vice versa), the
// defaults ListSamplers returns, and the config table of README.md
// (ConfigMarkdown below; a test checks that README.md shows exactly that).
// Every tunable number of a sampler is a row here, never a literal in the
// sampler code. The formulas behind each field: docs/SAMPLERS.md.
#ifndef ENTROSERVE_SAMPLER_CORE_CONFIGS_H_
#define ENTROSERVE_SAMPLER_CORE_CONFIGS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sampler/core/config_schema.h"

namespace entroserve {

// Longest history a config may ask a stage to look at, in tokens: the
// history SamplerState keeps (SamplerState::kMaxRecentTokens; configs.cc
// checks that they agree).
inline constexpr int32_t kMaxHistoryTokens = 256;

// Upper bound of entropix.adaptive_samples: each sample is an O(top_k)
// inverse-CDF walk, so this bounds the work one row can ask for (entropix
// uses 5).
inline constexpr int32_t kMaxEntropixSamples = 1024;

// Bounds of alpha's search settings: limits against a request asking for
// unbounded work, not tunables. learning_rate sets the spacing of each line
// search's scan, so its floor bounds a scan at 1 / kMinAlphaLearningRate + 1
// points.
inline constexpr int32_t kMaxAlphaIterations = 1000;
inline constexpr float kMinAlphaLearningRate = 1e-3f;

// clang-format off
#define ENTROSERVE_GREEDY_FIELDS(FIELD)

// The stages that change logits from the request and the history before any
// filter: logit bias, the three penalties and DRY. The chain runs them as
// stages of its list; entropix and alpha run them on the logits before they
// measure their signals (docs/SAMPLERS.md "Pre-stages").
#define ENTROSERVE_PRE_STAGE_FIELDS(FIELD)                                                         \
  FIELD(LogitBias, logit_bias, {}, Any(), "added to the logit of each listed token; -inf bans it") \
  FIELD(float, repetition_penalty, 1.0f, Positive(),                                               \
        "tokens in the window: z / θ if z > 0, else z · θ; 1 disables")                            \
  FIELD(float, frequency_penalty, 0.0f, Finite(), "subtracted once per occurrence in the window")  \
  FIELD(float, presence_penalty, 0.0f, Finite(), "subtracted once if the token is in the window")  \
  FIELD(int32_t, penalty_last_n, 64, Closed(0, kMaxHistoryTokens),                                 \
        "window of the three penalties, tokens")                                                   \
  FIELD(float, dry_multiplier, 0.0f, AtLeast(0),                                                   \
        "DRY: penalty = multiplier · base^(n − allowed_length); 0 disables")                       \
  FIELD(float, dry_base, 1.75f, AtLeast(1), "DRY: growth of the penalty per repeated token")       \
  FIELD(int32_t, dry_allowed_length, 2, AtLeast(1), "DRY: repeats up to this length go unpenalised") \
  FIELD(int32_t, dry_penalty_last_n, 256, Closed(0, kMaxHistoryTokens),                            \
        "DRY: history searched, tokens")                                                           \
  FIELD(TokenIdList, dry_sequence_breaker_ids, {}, AtLeast(0),                                     \
        "DRY: tokens a repeat cannot extend across")                                               \
  FIELD(TokenSequences, dry_sequence_breaker_sequences, {}, AtLeast(0),                            \
        "DRY: token sequences a repeat cannot extend across (breakers of several tokens)")

// The chain: `stages` lists the stages in the order they run (names in
// kChainStages below); empty runs the default order of
// sampler/stages/samplers.h. Every other field is the parameter of one
// stage, read only when that stage runs.
#define ENTROSERVE_CHAIN_FIELDS(FIELD)                                                             \
  FIELD(StageList, stages, {}, Any(), "the stages in the order they run; empty: the default order") \
  FIELD(float, temperature, 1.0f, Temperature(), "softmax temperature (stage temperature)")        \
  FIELD(int32_t, top_k, 0, AtLeast(0), "keep the k most probable tokens; 0 disables")              \
  FIELD(float, top_p, 1.0f, OpenClosed(0, 1),                                                      \
        "nucleus: the smallest most-probable prefix with mass ≥ top_p; 1 disables")                \
  FIELD(float, min_p, 0.0f, ClosedOpen(0, 1), "keep tokens with p ≥ min_p · p_max; 0 disables")    \
  FIELD(float, typical_p, 1.0f, OpenClosed(0, 1), "locally typical sampling mass; 1 disables")     \
  ENTROSERVE_PRE_STAGE_FIELDS(FIELD)                                                               \
  FIELD(int32_t, no_repeat_ngram_size, 0, Closed(0, kMaxHistoryTokens),                            \
        "ban tokens that would repeat an n-gram of this size from the history; 0 disables")        \
  FIELD(float, top_n_sigma, 0.0f, AtLeast(0), "keep logits z ≥ max z − n · σ(z); 0 disables")      \
  FIELD(float, xtc_threshold, 0.1f, Closed(0, 1), "XTC: tokens with p ≥ this are top choices")     \
  FIELD(float, xtc_probability, 0.0f, Closed(0, 1),                                                \
        "XTC: chance per step of removing the top choices; 0 disables")                            \
  FIELD(int32_t, xtc_min_keep, 1, AtLeast(1), "XTC: never leave fewer candidates than this")       \
  FIELD(float, dynatemp_min_temperature, 0.5f, Temperature(),                                      \
        "stage dynatemp: T at normalised entropy 0")                                               \
  FIELD(float, dynatemp_max_temperature, 1.5f, Finite().AtLeastField("dynatemp_min_temperature"),  \
        "stage dynatemp: T at normalised entropy 1")                                               \
  FIELD(float, dynatemp_exponent, 1.0f, AtLeast(0),                                                \
        "stage dynatemp: T = min + (max − min) · (H / log2 N)^exponent")                           \
  FIELD(float, mirostat_tau, 5.0f, Positive(), "selector mirostat_v2: target surprise, bits")      \
  FIELD(float, mirostat_eta, 0.1f, Positive(), "selector mirostat_v2: learning rate of mu")

// entropix (xjdr-alt/entropix e55e9a3). Entropies in bits, varentropies in
// bits²; IS = interaction strength; attn_* are the attention signals.
#define ENTROSERVE_ENTROPIX_FIELDS(FIELD)                                                          \
  FIELD(float, temperature, 0.666f, Temperature(), "base temperature")                             \
  FIELD(float, top_p, 0.90f, OpenClosed(0, 1), "base top-p")                                       \
  FIELD(int32_t, top_k, 27, AtLeast(1), "base top-k")                                              \
  FIELD(float, min_p, 0.03f, ClosedOpen(0, 1), "base min-p")                                       \
  FIELD(float, low_entropy, 0.1f, AtLeast(0), "flowing: H below this, bits")                       \
  FIELD(float, low_varentropy, 0.1f, AtLeast(0), "flowing and clarify: V below this, bits²")       \
  FIELD(float, medium_entropy, 3.0f, AtLeast(0), "clarify: H above this, bits")                    \
  FIELD(float, high_entropy, 5.0f, AtLeast(0), "explore: H below, resample: H above this, bits")   \
  FIELD(float, high_varentropy, 5.0f, AtLeast(0), "explore and resample: V above this, bits²")     \
  FIELD(float, clarify_attn_entropy_offset, 1.3f, Positive(),                                      \
        "clarify: T = temperature · (offset + coef · attn_entropy)")                               \
  FIELD(float, clarify_attn_entropy_coef, 0.2f, AtLeast(0), "clarify: coef of that T")             \
  FIELD(float, clarify_max_temperature, 1.5f, Temperature(), "clarify: cap of that T")             \
  FIELD(float, explore_strength_offset, 1.2f, Positive(),                                          \
        "explore: T = temperature · (offset + coef · IS)")                                         \
  FIELD(float, explore_strength_coef, 0.3f, AtLeast(0), "explore: coef of that T")                 \
  FIELD(float, explore_max_temperature, 1.5f, Temperature(), "explore: cap of that T")             \
  FIELD(float, explore_top_k_agreement_coef, 0.5f, AtLeast(0),                                     \
        "explore: top_k = int(top_k · (1 + coef · (1 − agreement)))")                              \
  FIELD(int32_t, explore_min_top_k, 5, AtLeast(1), "explore: floor of that top_k")                 \
  FIELD(float, resample_min_temperature, 2.0f, Temperature(), "resample: floor of T")              \
  FIELD(float, resample_attn_varentropy_offset, 2.0f, Positive(),                                  \
        "resample: T = temperature · (offset + coef · attn_varentropy)")                           \
  FIELD(float, resample_attn_varentropy_coef, 0.5f, AtLeast(0), "resample: coef of that T")        \
  FIELD(float, resample_min_top_p, 0.5f, OpenClosed(0, 1), "resample: floor of top_p")             \
  FIELD(float, resample_top_p_attn_entropy_coef, 0.2f, AtLeast(0),                                 \
        "resample: top_p = top_p − coef · attn_entropy")                                           \
  FIELD(float, adaptive_logit_uncertainty_coef, 0.3f, AtLeast(0),                                  \
        "adaptive: T grows by this times H + V")                                                   \
  FIELD(float, adaptive_attn_uncertainty_coef, 0.2f, AtLeast(0),                                   \
        "adaptive: T grows by this times attn_entropy + attn_varentropy")                          \
  FIELD(float, adaptive_agreement_coef, 0.2f, AtLeast(0),                                          \
        "adaptive: T shrinks by this times agreement")                                             \
  FIELD(float, adaptive_top_p_attn_varentropy_coef, 0.1f, AtLeast(0),                              \
        "adaptive: top_p = top_p · (1 + coef · attn_varentropy), in [0.1, 1]")                     \
  FIELD(float, adaptive_top_k_strength_coef, 0.3f, AtLeast(0),                                     \
        "adaptive: top_k grows by this times IS")                                                  \
  FIELD(float, adaptive_top_k_agreement_coef, 0.2f, AtLeast(0),                                    \
        "adaptive: top_k shrinks by this times agreement")                                         \
  FIELD(int32_t, adaptive_max_top_k, 100, AtLeast(1), "adaptive: cap of top_k")                    \
  FIELD(float, adaptive_min_p_uncertainty_coef, 0.5f, AtLeast(0),                                  \
        "adaptive: min_p = min_p · (1 − coef · (H + V)), in [0.01, 0.5]")                          \
  FIELD(int32_t, adaptive_samples, 5, Closed(1, kMaxEntropixSamples),                              \
        "adaptive: tokens drawn; the most probable of them is kept")                               \
  FIELD(bool, attn_varentropy_is_spread, false, Any(),                                             \
        "attn_varentropy means the variance of the per-head entropies (entropix's quantity)")      \
  ENTROSERVE_PRE_STAGE_FIELDS(FIELD)

// AlphaSampler (EdwardDali/alpha). Each base value is clamped into its
// [min, max] before the search starts.
#define ENTROSERVE_ALPHA_FIELDS(FIELD)                                                             \
  FIELD(float, base_temperature, 0.2f, Finite(), "search start: temperature")                      \
  FIELD(float, base_top_p, 0.80f, Finite(), "search start: top-p")                                 \
  FIELD(int32_t, base_top_k, 10, Any(), "search start: top-k")                                     \
  FIELD(float, base_repetition_penalty, 1.1f, Finite(), "search start: repetition penalty")        \
  FIELD(int32_t, base_candidate_size, 20, Any(), "search start: candidate size")                   \
  FIELD(int32_t, window, 5, AtLeast(1).AtMost(kMaxHistoryTokens),                                  \
        "moving average of alpha over this many steps")                                            \
  FIELD(int32_t, max_iterations, 10, AtLeast(0).AtMost(kMaxAlphaIterations),                       \
        "coordinate-descent sweeps at most")                                                       \
  FIELD(float, tolerance, 0.01f, AtLeast(0), "stop once the objective is below this")              \
  FIELD(float, learning_rate, 0.1f, Closed(kMinAlphaLearningRate, 1),                              \
        "scan spacing of a line search, as a fraction of the range")                               \
  FIELD(float, min_temperature, 0.1f, Temperature(), "lowest temperature the search may pick")     \
  FIELD(float, max_temperature, 1.0f, Finite().AtLeastField("min_temperature"), "highest temperature") \
  FIELD(int32_t, min_top_k, 5, AtLeast(1), "lowest top-k the search may pick")                     \
  FIELD(int32_t, max_top_k, 200, Any().AtLeastField("min_top_k"), "highest top-k")                 \
  FIELD(float, min_top_p, 0.1f, Positive(), "lowest top-p the search may pick")                    \
  FIELD(float, max_top_p, 1.0f, AtMost(1).AtLeastField("min_top_p"), "highest top-p")              \
  FIELD(float, min_repetition_penalty, 1.1f, Positive(), "lowest repetition penalty")              \
  FIELD(float, max_repetition_penalty, 1.5f, Finite().AtLeastField("min_repetition_penalty"),      \
        "highest repetition penalty")                                                              \
  FIELD(int32_t, min_candidate_size, 1, AtLeast(1),                                                \
        "lowest candidate size (tokens kept after top-k, top-p)")                                  \
  FIELD(int32_t, max_candidate_size, 100, Any().AtLeastField("min_candidate_size"),                \
        "highest candidate size")                                                                  \
  FIELD(int32_t, repetition_window, 128, AtLeast(0), "the penalty's window, tokens")               \
  FIELD(float, entropy_weight, 0.4f, AtLeast(0), "weight of H / log2 V in alpha")                  \
  FIELD(float, varentropy_weight, 0.2f, AtLeast(0), "weight of V / (log2 V)² in alpha")            \
  FIELD(float, attn_entropy_weight, 0.3f, AtLeast(0),                                              \
        "weight of attn_entropy / log2 L in alpha (L: attention keys)")                            \
  FIELD(float, attn_varentropy_weight, 0.1f, AtLeast(0),                                           \
        "weight of attn_varentropy / (log2 L)² in alpha")                                          \
  ENTROSERVE_PRE_STAGE_FIELDS(FIELD)

// Mirostat 2.0 (arXiv:2007.14966).
#define ENTROSERVE_MIROSTAT_V2_FIELDS(FIELD)                                                       \
  FIELD(float, tau, 5.0f, Positive(), "target surprise, bits")                                     \
  FIELD(float, eta, 0.1f, Positive(), "learning rate of mu")                                       \
  FIELD(float, temperature, 1.0f, Temperature(), "applied before the truncation")

// DynaTemp (arXiv:2403.14541 as llama.cpp implements it).
#define ENTROSERVE_DYNATEMP_FIELDS(FIELD)                                                          \
  FIELD(float, min_temperature, 0.5f, Temperature(), "T at normalised entropy 0")                  \
  FIELD(float, max_temperature, 1.5f, Finite().AtLeastField("min_temperature"),                    \
        "T at normalised entropy 1")                                                               \
  FIELD(float, exponent, 1.0f, AtLeast(0), "T = min + (max − min) · (H / log2 N)^exponent")

// Top-n-sigma (arXiv:2411.07641).
#define ENTROSERVE_TOP_N_SIGMA_FIELDS(FIELD)                                                       \
  FIELD(float, n, 1.0f, Positive(), "keep logits z ≥ max z − n · σ(z)")                            \
  FIELD(float, temperature, 1.0f, Temperature(), "applied after the cut")

// XTC, Exclude Top Choices.
#define ENTROSERVE_XTC_FIELDS(FIELD)                                                               \
  FIELD(float, threshold, 0.1f, Closed(0, 1), "tokens with p ≥ this are top choices")              \
  FIELD(float, probability, 0.5f, Closed(0, 1), "chance per step of removing them")                \
  FIELD(int32_t, min_keep, 1, AtLeast(1), "never leave fewer candidates than this")                \
  FIELD(float, temperature, 1.0f, Temperature(), "applied before XTC")

// DRY, "don't repeat yourself".
#define ENTROSERVE_DRY_FIELDS(FIELD)                                                               \
  FIELD(float, multiplier, 0.8f, AtLeast(0),                                                       \
        "penalty = multiplier · base^(n − allowed_length); 0 disables")                            \
  FIELD(float, base, 1.75f, AtLeast(1), "growth of the penalty per repeated token")                \
  FIELD(int32_t, allowed_length, 2, AtLeast(1), "repeats up to this length go unpenalised")        \
  FIELD(int32_t, penalty_last_n, 256, Closed(0, kMaxHistoryTokens), "history searched, tokens")    \
  FIELD(TokenIdList, sequence_breaker_ids, {}, AtLeast(0), "tokens a repeat cannot extend across") \
  FIELD(TokenSequences, sequence_breaker_sequences, {}, AtLeast(0),                                \
        "token sequences a repeat cannot extend across (breakers of several tokens)")              \
  FIELD(float, temperature, 1.0f, Temperature(), "applied after DRY")
// clang-format on

struct GreedyConfig {
  ENTROSERVE_CONFIG_BODY("greedy", ENTROSERVE_GREEDY_FIELDS)
};
struct ChainConfig {
  ENTROSERVE_CONFIG_BODY("chain", ENTROSERVE_CHAIN_FIELDS)
};
struct EntropixConfig {
  ENTROSERVE_CONFIG_BODY("entropix", ENTROSERVE_ENTROPIX_FIELDS)
};
struct AlphaConfig {
  ENTROSERVE_CONFIG_BODY("alpha", ENTROSERVE_ALPHA_FIELDS)
};
struct MirostatV2Config {
  ENTROSERVE_CONFIG_BODY("mirostat_v2", ENTROSERVE_MIROSTAT_V2_FIELDS)
};
struct DynaTempConfig {
  ENTROSERVE_CONFIG_BODY("dynatemp", ENTROSERVE_DYNATEMP_FIELDS)
};
struct TopNSigmaConfig {
  ENTROSERVE_CONFIG_BODY("top_n_sigma", ENTROSERVE_TOP_N_SIGMA_FIELDS)
};
struct XtcConfig {
  ENTROSERVE_CONFIG_BODY("xtc", ENTROSERVE_XTC_FIELDS)
};
struct DryConfig {
  ENTROSERVE_CONFIG_BODY("dry", ENTROSERVE_DRY_FIELDS)
};

// Every sampler's config, in the order ListSamplers returns them.
using SamplerConfig =
    std::variant<GreedyConfig, ChainConfig, EntropixConfig, AlphaConfig, MirostatV2Config,
                 DynaTempConfig, TopNSigmaConfig, XtcConfig, DryConfig>;

// The stages a chain's `stages` may name, in the default order (the
// selectors last). Each runs at most once: its parameters are the config's
// fields.
inline constexpr const char* kChainStages[] = {
    "logit_bias", "penalties", "no_repeat_ngram", "dry", "top_n_sigma", "top_k",
    "typical_p",  "top_p",     "min_p",           "xtc", "temperature", "dynatemp",
    "dist",       "greedy",    "mirostat_v2"};
// The stages that choose the token: exactly one, last.
inline constexpr const char* kChainSelectors[] = {"dist", "greedy", "mirostat_v2"};

// The checks of ChainConfig::stages, each error naming the stage by index and
// name ("chain.stages[2] (\"dist\") ..."): every name in kChainStages, none
// twice, at most one of temperature and dynatemp, exactly one selector and
// it last.
absl::Status CheckStageList(const FieldPath& path, const StageList& stages);

// The registry name of the sampler `config` selects ("entropix").
inline std::string SamplerName(const SamplerConfig& config) {
  return std::visit([](const auto& c) -> std::string { return c.kName; }, config);
}

namespace configs_internal {
template <typename F, size_t... I>
void ForEachSamplerConfig(F& f, std::index_sequence<I...>) {
  (f(std::variant_alternative_t<I, SamplerConfig>()), ...);
}
}  // namespace configs_internal

// Calls f(Config()) for every alternative of SamplerConfig, in order.
template <typename F>
void ForEachSamplerConfig(F&& f) {
  configs_internal::ForEachSamplerConfig(
      f, std::make_index_sequence<std::variant_size_v<SamplerConfig>>());
}

// README.md's config table: for each sampler, its fields with their
// defaults, ranges and help ("samplerctl samplers --markdown").
std::string ConfigMarkdown();
// The table of the one sampler `name` (INVALID_ARGUMENT for another name).
absl::StatusOr<std::string> ConfigMarkdown(absl::string_view name);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_CONFIGS_H_
