#include "services/wire/sampler_convert.h"

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sampler/core/tensor.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// The scalar fields of each config, one list per sampler, used in both
// directions so that proto -> config and config -> proto cannot disagree.
// Repeated and map fields (chain.logit_bias, dry.sequence_breaker_ids) are
// copied by hand.
// clang-format off
#define ENTROSERVE_CHAIN_FIELDS(X)                                            \
  X(temperature) X(top_k) X(top_p) X(min_p) X(typical_p) X(repetition_penalty) \
  X(frequency_penalty) X(presence_penalty) X(penalty_last_n)                   \
  X(no_repeat_ngram_size)
#define ENTROSERVE_ENTROPIX_FIELDS(X)                                          \
  X(temperature) X(top_p) X(top_k) X(min_p) X(low_entropy) X(low_varentropy)   \
  X(medium_entropy) X(high_entropy) X(high_varentropy)                         \
  X(clarify_attn_entropy_offset) X(clarify_attn_entropy_coef)                  \
  X(clarify_max_temperature) X(explore_strength_offset)                        \
  X(explore_strength_coef) X(explore_max_temperature)                          \
  X(explore_top_k_agreement_coef) X(explore_min_top_k)                         \
  X(resample_min_temperature) X(resample_attn_varentropy_offset)               \
  X(resample_attn_varentropy_coef) X(resample_min_top_p)                       \
  X(resample_top_p_attn_entropy_coef) X(adaptive_logit_uncertainty_coef)       \
  X(adaptive_attn_uncertainty_coef) X(adaptive_agreement_coef)                 \
  X(adaptive_top_p_attn_varentropy_coef) X(adaptive_top_k_strength_coef)       \
  X(adaptive_top_k_agreement_coef) X(adaptive_max_top_k)                       \
  X(adaptive_min_p_uncertainty_coef) X(adaptive_samples)                       \
  X(attn_varentropy_is_spread)
#define ENTROSERVE_ALPHA_FIELDS(X)                                             \
  X(base_temperature) X(base_top_p) X(base_top_k) X(base_repetition_penalty)   \
  X(base_candidate_size) X(window) X(max_iterations) X(tolerance)              \
  X(learning_rate) X(min_temperature) X(max_temperature) X(min_top_k)          \
  X(max_top_k) X(min_top_p) X(max_top_p) X(min_repetition_penalty)             \
  X(max_repetition_penalty) X(min_candidate_size) X(max_candidate_size)        \
  X(repetition_window) X(entropy_weight) X(varentropy_weight)                  \
  X(attn_entropy_weight) X(attn_varentropy_weight)
#define ENTROSERVE_MIROSTAT_V2_FIELDS(X) X(tau) X(eta) X(temperature)
#define ENTROSERVE_DYNATEMP_FIELDS(X) \
  X(min_temperature) X(max_temperature) X(exponent)
#define ENTROSERVE_TOP_N_SIGMA_FIELDS(X) X(n) X(temperature)
#define ENTROSERVE_XTC_FIELDS(X) \
  X(threshold) X(probability) X(min_keep) X(temperature)
#define ENTROSERVE_DRY_FIELDS(X) \
  X(multiplier) X(base) X(allowed_length) X(penalty_last_n) X(temperature)
// SamplingParams, RowOutput -> proto.
#define ENTROSERVE_PARAMS_FIELDS(X)                                            \
  X(temperature) X(top_k) X(top_p) X(min_p) X(typical_p) X(repetition_penalty) \
  X(frequency_penalty) X(presence_penalty) X(candidate_size) X(samples)        \
  X(mirostat_mu) X(top_n_sigma) X(xtc_threshold) X(xtc_probability)           \
  X(dry_multiplier) X(alpha) X(smoothed_alpha) X(candidates)
// clang-format on

// `p` is the proto message, `c` the config.
#define ENTROSERVE_FROM_PROTO(field) \
  if (p.has_##field()) c.field = p.field();
#define ENTROSERVE_TO_PROTO(field) p->set_##field(c.field);

GreedyConfig FromProto(const v1::GreedyConfig&) { return GreedyConfig(); }
ChainConfig FromProto(const v1::ChainConfig& p) {
  ChainConfig c;
  ENTROSERVE_CHAIN_FIELDS(ENTROSERVE_FROM_PROTO)
  c.logit_bias.insert(p.logit_bias().begin(), p.logit_bias().end());
  return c;
}
EntropixConfig FromProto(const v1::EntropixConfig& p) {
  EntropixConfig c;
  ENTROSERVE_ENTROPIX_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
AlphaConfig FromProto(const v1::AlphaConfig& p) {
  AlphaConfig c;
  ENTROSERVE_ALPHA_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
MirostatV2Config FromProto(const v1::MirostatV2Config& p) {
  MirostatV2Config c;
  ENTROSERVE_MIROSTAT_V2_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
DynaTempConfig FromProto(const v1::DynaTempConfig& p) {
  DynaTempConfig c;
  ENTROSERVE_DYNATEMP_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
TopNSigmaConfig FromProto(const v1::TopNSigmaConfig& p) {
  TopNSigmaConfig c;
  ENTROSERVE_TOP_N_SIGMA_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
XtcConfig FromProto(const v1::XtcConfig& p) {
  XtcConfig c;
  ENTROSERVE_XTC_FIELDS(ENTROSERVE_FROM_PROTO)
  return c;
}
DryConfig FromProto(const v1::DryConfig& p) {
  DryConfig c;
  ENTROSERVE_DRY_FIELDS(ENTROSERVE_FROM_PROTO)
  c.sequence_breaker_ids.assign(p.sequence_breaker_ids().begin(), p.sequence_breaker_ids().end());
  return c;
}

// Sets the oneof member of `spec` that matches the config type.
struct ToProtoVisitor {
  v1::SamplerSpec* spec;
  void operator()(const GreedyConfig&) const { spec->mutable_greedy(); }
  void operator()(const ChainConfig& c) const {
    v1::ChainConfig* p = spec->mutable_chain();
    ENTROSERVE_CHAIN_FIELDS(ENTROSERVE_TO_PROTO)
    p->mutable_logit_bias()->insert(c.logit_bias.begin(), c.logit_bias.end());
  }
  void operator()(const EntropixConfig& c) const {
    v1::EntropixConfig* p = spec->mutable_entropix();
    ENTROSERVE_ENTROPIX_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const AlphaConfig& c) const {
    v1::AlphaConfig* p = spec->mutable_alpha();
    ENTROSERVE_ALPHA_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const MirostatV2Config& c) const {
    v1::MirostatV2Config* p = spec->mutable_mirostat_v2();
    ENTROSERVE_MIROSTAT_V2_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const DynaTempConfig& c) const {
    v1::DynaTempConfig* p = spec->mutable_dynatemp();
    ENTROSERVE_DYNATEMP_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const TopNSigmaConfig& c) const {
    v1::TopNSigmaConfig* p = spec->mutable_top_n_sigma();
    ENTROSERVE_TOP_N_SIGMA_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const XtcConfig& c) const {
    v1::XtcConfig* p = spec->mutable_xtc();
    ENTROSERVE_XTC_FIELDS(ENTROSERVE_TO_PROTO)
  }
  void operator()(const DryConfig& c) const {
    v1::DryConfig* p = spec->mutable_dry();
    ENTROSERVE_DRY_FIELDS(ENTROSERVE_TO_PROTO)
    p->mutable_sequence_breaker_ids()->Add(c.sequence_breaker_ids.begin(),
                                           c.sequence_breaker_ids.end());
  }
};

#undef ENTROSERVE_TO_PROTO
#undef ENTROSERVE_FROM_PROTO

// The config of the spec's oneof; the caller checked that one is set.
SamplerConfig OneofToConfig(const v1::SamplerSpec& spec) {
  switch (spec.config_case()) {
    case v1::SamplerSpec::kGreedy:
      return FromProto(spec.greedy());
    case v1::SamplerSpec::kChain:
      return FromProto(spec.chain());
    case v1::SamplerSpec::kEntropix:
      return FromProto(spec.entropix());
    case v1::SamplerSpec::kAlpha:
      return FromProto(spec.alpha());
    case v1::SamplerSpec::kMirostatV2:
      return FromProto(spec.mirostat_v2());
    case v1::SamplerSpec::kDynatemp:
      return FromProto(spec.dynatemp());
    case v1::SamplerSpec::kTopNSigma:
      return FromProto(spec.top_n_sigma());
    case v1::SamplerSpec::kXtc:
      return FromProto(spec.xtc());
    case v1::SamplerSpec::kDry:
      return FromProto(spec.dry());
    case v1::SamplerSpec::CONFIG_NOT_SET:
      break;
  }
  return GreedyConfig();
}

}  // namespace

absl::StatusOr<SamplerConfig> SpecToConfig(const v1::SamplerSpec& spec, const std::string& prefix) {
  return SpecFieldToConfig(spec, absl::StrCat(prefix, "spec"));
}

absl::StatusOr<SamplerConfig> SpecFieldToConfig(const v1::SamplerSpec& spec,
                                                const std::string& field) {
  SamplerConfig config;
  if (spec.config_case() == v1::SamplerSpec::CONFIG_NOT_SET) {
    if (spec.name().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": sampler name or config is required"));
    }
    absl::StatusOr<SamplerConfig> defaults = DefaultConfig(spec.name());
    if (!defaults.ok()) {
      return absl::Status(defaults.status().code(),
                          absl::StrCat(field, ".name: ", defaults.status().message()));
    }
    config = *std::move(defaults);
  } else {
    config = OneofToConfig(spec);
    const std::string name = SamplerName(config);
    if (!spec.name().empty() && spec.name() != name) {
      // "rows[1].spec.name is "alpha" but spec.config is entropix"
      const size_t dot = field.rfind('.');
      const std::string last = dot == std::string::npos ? field : field.substr(dot + 1);
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name is \"", spec.name(), "\" but ", last, ".config is ", name));
    }
  }
  if (absl::Status valid = ValidateConfig(config, field); !valid.ok()) return valid;
  return config;
}

void ConfigToSpec(const SamplerConfig& config, v1::SamplerSpec* spec) {
  spec->Clear();
  spec->set_name(SamplerName(config));
  std::visit(ToProtoVisitor{spec}, config);
}

void SignalsToProto(const Signals& signals, v1::Signals* proto) {
  proto->Clear();
  proto->set_entropy(signals.entropy);
  proto->set_varentropy(signals.varentropy);
  if (signals.has_attention) {
    proto->set_attn_entropy(signals.attn_entropy);
    proto->set_attn_varentropy(signals.attn_varentropy);
    proto->set_attn_entropy_spread(signals.attn_entropy_spread);
    proto->set_agreement(signals.agreement);
    proto->set_interaction_strength(signals.interaction_strength);
  }
}

Signals SignalsFromProto(const v1::Signals& proto) {
  Signals signals;
  signals.entropy = proto.entropy();
  signals.varentropy = proto.varentropy();
  signals.has_attention = proto.has_attn_entropy();
  signals.attn_entropy = proto.attn_entropy();
  signals.attn_varentropy = proto.attn_varentropy();
  signals.attn_entropy_spread = proto.attn_entropy_spread();
  signals.agreement = proto.agreement();
  signals.interaction_strength = proto.interaction_strength();
  return signals;
}

void ParamsToProto(const SamplingParams& params, v1::SamplingParams* proto) {
  proto->Clear();
#define ENTROSERVE_PARAM_TO_PROTO(field) \
  if (params.field.has_value()) proto->set_##field(*params.field);
  ENTROSERVE_PARAMS_FIELDS(ENTROSERVE_PARAM_TO_PROTO)
#undef ENTROSERVE_PARAM_TO_PROTO
}

SamplingParams ParamsFromProto(const v1::SamplingParams& proto) {
  SamplingParams params;
#define ENTROSERVE_PARAM_FROM_PROTO(field) \
  if (proto.has_##field()) params.field = proto.field();
  ENTROSERVE_PARAMS_FIELDS(ENTROSERVE_PARAM_FROM_PROTO)
#undef ENTROSERVE_PARAM_FROM_PROTO
  return params;
}

void DescriptionToInfo(const SamplerDescription& description, v1::SamplerInfo* info) {
  info->set_name(description.name);
  info->set_description(description.description);
  ConfigToSpec(description.defaults, info->mutable_defaults());
  info->set_uses_attention(description.uses_attention);
  info->set_stateful(description.stateful);
}

}  // namespace entroserve
