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
#include "services/wire/config_reflection.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// clang-format off
// SamplingParams, RowOutput -> proto.
#define ENTROSERVE_PARAMS_FIELDS(X)                                            \
  X(temperature) X(top_k) X(top_p) X(min_p) X(typical_p) X(repetition_penalty) \
  X(frequency_penalty) X(presence_penalty) X(candidate_size) X(samples)        \
  X(mirostat_mu) X(top_n_sigma) X(xtc_threshold) X(xtc_probability)           \
  X(dry_multiplier) X(alpha) X(smoothed_alpha) X(candidates)
// clang-format on

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
    config = ConfigFromSpecOneof(spec);
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
  ConfigToSpecOneof(config, spec);
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
