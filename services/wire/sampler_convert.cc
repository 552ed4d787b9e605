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

// Largest dimension of a wire tensor: token ids, heads and keys are int32.
constexpr int64_t kMaxDimension = std::numeric_limits<int32_t>::max();
// Largest step: next_step = step + 1 must not overflow.
constexpr int64_t kMaxStep = std::numeric_limits<int64_t>::max() - 1;

// clang-format off
// SamplingParams, RowOutput -> proto.
#define ENTROSERVE_PARAMS_FIELDS(X)                                            \
  X(temperature) X(top_k) X(top_p) X(min_p) X(typical_p) X(repetition_penalty) \
  X(frequency_penalty) X(presence_penalty) X(candidate_size) X(samples)        \
  X(mirostat_mu) X(top_n_sigma) X(xtc_threshold) X(xtc_probability)           \
  X(dry_multiplier) X(alpha) X(smoothed_alpha) X(candidates)
// clang-format on

std::string ShapeString(const v1::Tensor& tensor) {
  return absl::StrCat("[", absl::StrJoin(tensor.shape(), ", "), "]");
}

// The dtype of `tensor`, which must be one this server decodes.
absl::StatusOr<DType> TensorDType(const v1::Tensor& tensor, const std::string& field) {
  const int dtype = tensor.dtype();
  if (dtype == v1::DTYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ".dtype is DTYPE_UNSPECIFIED; set DTYPE_FLOAT32, "
                     "DTYPE_FLOAT16 or DTYPE_BFLOAT16"));
  }
  if (!v1::DType_IsValid(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".dtype is ", dtype,
                     ", not a known dtype; set DTYPE_FLOAT32, DTYPE_FLOAT16 or "
                     "DTYPE_BFLOAT16"));
  }
  return static_cast<DType>(dtype);
}

// Every dimension in [0, kMaxDimension].
absl::Status CheckDimensions(const v1::Tensor& tensor, const std::string& field) {
  for (int i = 0; i < tensor.shape_size(); ++i) {
    const int64_t dim = tensor.shape(i);
    if (dim < 0 || dim > kMaxDimension) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".shape[", i, "] is ", dim, "; dimensions must be in [0, ", kMaxDimension, "]"));
    }
  }
  return absl::OkStatus();
}

// Decodes a tensor of `numel` elements (at most 2^62, so that the byte count
// fits in a uint64) after checking the data size; its bytes are `data` or,
// with `shared_memory` set, read through `shm`.
absl::Status DecodeChecked(const v1::Tensor& tensor, DType dtype, uint64_t numel,
                           const std::string& field, std::vector<float>* out,
                           SharedMemoryReader* shm) {
  const uint64_t want = numel * static_cast<uint64_t>(ElementSize(dtype));
  if (tensor.has_shared_memory()) {
    const std::string ref = absl::StrCat(field, ".shared_memory");
    if (!tensor.data().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " has both data (", tensor.data().size(), " bytes) and shared_memory; send one"));
    }
    if (shm == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          ref, ": this server reads no shared memory from this client (samplerd "
               "--shared_memory=false, or a client not on samplerd's host); send the bytes in "
               "data"));
    }
    // Reused per thread: a row's bytes are decoded right after they are read.
    thread_local std::string bytes;
    if (absl::Status s =
            shm->Read(tensor.shared_memory().region(), tensor.shared_memory().offset(), want, ref,
                      &bytes);
        !s.ok()) {
      return s;
    }
    absl::Status decoded = DecodeTensor(dtype, bytes, static_cast<int64_t>(numel), field, out);
    if (bytes.capacity() > (16u << 20)) std::string().swap(bytes);  // not kept per worker
    return decoded;
  }
  if (tensor.data().size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".data has ", tensor.data().size(),
                                                   " bytes, but shape ", ShapeString(tensor),
                                                   " of ", DTypeName(dtype), " needs ", want));
  }
  return DecodeTensor(dtype, tensor.data(), static_cast<int64_t>(numel), field, out);
}

absl::Status OutsideVocabulary(const std::string& field, int64_t id, int64_t vocab_size) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", id, ", outside the vocabulary [0, ", vocab_size, ")"));
}

bool InVocabulary(int64_t id, int64_t vocab_size) { return id >= 0 && id < vocab_size; }

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

absl::Status ValidateConfig(const SamplerConfig& config, const std::string& field) {
  absl::Status valid = std::visit([](const auto& c) { return c.Validate(); }, config);
  if (!valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(field, ".", valid.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckConfigTokens(const SamplerConfig& config, int64_t vocab_size,
                               const std::string& field) {
  if (const auto* chain = std::get_if<ChainConfig>(&config)) {
    // The bias values themselves are checked by ChainConfig::Validate().
    for (const auto& [token, bias] : chain->logit_bias) {
      if (!InVocabulary(token, vocab_size)) {
        return absl::InvalidArgumentError(absl::StrCat(field, ".chain.logit_bias has token ", token,
                                                       ", outside the vocabulary [0, ", vocab_size,
                                                       ")"));
      }
    }
  }
  if (const auto* dry = std::get_if<DryConfig>(&config)) {
    for (size_t i = 0; i < dry->sequence_breaker_ids.size(); ++i) {
      if (!InVocabulary(dry->sequence_breaker_ids[i], vocab_size)) {
        return OutsideVocabulary(absl::StrCat(field, ".dry.sequence_breaker_ids[", i, "]"),
                                 dry->sequence_breaker_ids[i], vocab_size);
      }
    }
  }
  return absl::OkStatus();
}

void ConfigToSpec(const SamplerConfig& config, v1::SamplerSpec* spec) {
  spec->Clear();
  spec->set_name(SamplerName(config));
  ConfigToSpecOneof(config, spec);
}

absl::Status DecodeLogits(const v1::Tensor& tensor, const std::string& field,
                          std::vector<float>* logits, SharedMemoryReader* shm) {
  absl::StatusOr<DType> dtype = TensorDType(tensor, field);
  if (!dtype.ok()) return dtype.status();
  if (tensor.shape_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must have shape [V], got ", ShapeString(tensor)));
  }
  if (absl::Status s = CheckDimensions(tensor, field); !s.ok()) return s;
  if (tensor.shape(0) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty: shape [0], but V must be >= 1"));
  }
  if (absl::Status s = DecodeChecked(tensor, *dtype, tensor.shape(0), field, logits, shm);
      !s.ok()) {
    return s;
  }
  return CheckLogits(*logits, field);
}

absl::Status DecodeAttention(const v1::Tensor& tensor, const std::string& field,
                             std::vector<float>* scores, int32_t* heads, int32_t* keys,
                             SharedMemoryReader* shm) {
  absl::StatusOr<DType> dtype = TensorDType(tensor, field);
  if (!dtype.ok()) return dtype.status();
  if (tensor.shape_size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(field,
                                                   " must have shape [heads, keys], got rank ",
                                                   tensor.shape_size(), " ", ShapeString(tensor)));
  }
  if (absl::Status s = CheckDimensions(tensor, field); !s.ok()) return s;
  if (tensor.shape(0) == 0 || tensor.shape(1) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must have shape [heads, keys] with both >= 1, got ", ShapeString(tensor)));
  }
  const uint64_t numel =
      static_cast<uint64_t>(tensor.shape(0)) * static_cast<uint64_t>(tensor.shape(1));
  if (absl::Status s = DecodeChecked(tensor, *dtype, numel, field, scores, shm); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckAttention(*scores, field); !s.ok()) return s;
  *heads = static_cast<int32_t>(tensor.shape(0));
  *keys = static_cast<int32_t>(tensor.shape(1));
  return absl::OkStatus();
}

absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                           const std::string& field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!InVocabulary(ids[i], vocab_size)) {
      return OutsideVocabulary(absl::StrCat(field, "[", i, "]"), ids[i], vocab_size);
    }
  }
  return absl::OkStatus();
}

namespace {

// The floats of a state: every alpha_window value and mirostat_mu finite.
absl::Status CheckStateFloats(absl::Span<const float> alpha_window,
                              const std::optional<float>& mirostat_mu, const std::string& field) {
  for (size_t i = 0; i < alpha_window.size(); ++i) {
    if (!std::isfinite(alpha_window[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".alpha_window[", i, "] is ", alpha_window[i], "; must be finite"));
    }
  }
  if (mirostat_mu.has_value() && !std::isfinite(*mirostat_mu)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".mirostat_mu is ", *mirostat_mu, "; must be finite"));
  }
  return absl::OkStatus();
}

// A state sent with a row continues that row's sampler at that step.
absl::Status CheckStateContinues(const SamplerState& state, const std::string& sampler_name,
                                 int64_t step, const std::string& field) {
  if (!state.sampler.empty() && state.sampler != sampler_name) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".sampler is \"", state.sampler, "\" but the row's sampler is ",
                     sampler_name, ": a state only continues the sampler that produced it"));
  }
  if (state.next_step != step) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, " is for step ", state.next_step, " but the row is step ", step));
  }
  return absl::OkStatus();
}

absl::Status CheckStep(int64_t step, const std::string& prefix) {
  if (step < 0 || step > kMaxStep) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "step is ", step, "; must be in [0, ", kMaxStep, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckSpecialTokens(const SpecialTokens& special, int64_t vocab_size,
                                const std::string& prefix) {
  const struct {
    const std::optional<int32_t>& id;
    const char* name;
  } special_ids[] = {
      {special.clarifying_question, "clarifying_question"},
      {special.pause, "pause"},
      {special.eos, "eos"},
  };
  for (const auto& token : special_ids) {
    if (token.id.has_value() && !InVocabulary(*token.id, vocab_size)) {
      return OutsideVocabulary(absl::StrCat(prefix, "special_tokens.", token.name), *token.id,
                               vocab_size);
    }
  }
  return absl::OkStatus();
}

// The token ids a row's config and special tokens name.
absl::Status CheckRowTokens(const ParsedRow& parsed, const std::string& prefix) {
  const int64_t vocab_size = static_cast<int64_t>(parsed.logits.size());
  if (absl::Status s = CheckConfigTokens(parsed.config, vocab_size, absl::StrCat(prefix, "spec"));
      !s.ok()) {
    return s;
  }
  return CheckSpecialTokens(parsed.special_tokens, vocab_size, prefix);
}

// The last checks of ParseRow and CheckRow, on decoded values: the state
// continues the row's sampler and step, the appended tokens are token ids;
// then pushes them onto the state.
absl::Status CheckStateAndAppend(absl::Span<const int32_t> appended, const std::string& prefix,
                                 ParsedRow* parsed) {
  const int64_t vocab_size = static_cast<int64_t>(parsed->logits.size());
  parsed->state_sent = !parsed->state.empty();
  if (parsed->state_sent) {
    if (absl::Status s = CheckStateContinues(parsed->state, parsed->sampler_name, parsed->step,
                                             absl::StrCat(prefix, "state"));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckTokenIds(appended, vocab_size, absl::StrCat(prefix, "appended_tokens"));
      !s.ok()) {
    return s;
  }
  for (int32_t token : appended) parsed->state.PushToken(token);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SamplerState> StateFromProto(const v1::SamplerState& proto, int64_t vocab_size,
                                            const std::string& field) {
  if (proto.version() > kSamplerStateVersion) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".version is ", proto.version(),
                                                   "; this server reads versions 0 and ",
                                                   kSamplerStateVersion));
  }
  if (absl::Status s =
          CheckTokenIds(proto.recent_tokens(), vocab_size, absl::StrCat(field, ".recent_tokens"));
      !s.ok()) {
    return s;
  }
  std::optional<float> mirostat_mu;
  if (proto.has_mirostat_mu()) mirostat_mu = proto.mirostat_mu();
  if (absl::Status s = CheckStateFloats(proto.alpha_window(), mirostat_mu, field); !s.ok()) {
    return s;
  }
  SamplerState state;
  state.sampler = proto.sampler();
  state.next_step = proto.next_step();
  // Only the newest kMaxRecentTokens matter; PushToken keeps that bound.
  for (int32_t token : proto.recent_tokens()) state.PushToken(token);
  state.alpha_window.assign(proto.alpha_window().begin(), proto.alpha_window().end());
  state.last_inserted = proto.last_inserted();
  state.mirostat_mu = mirostat_mu;
  return state;
}

void StateToProto(const SamplerState& state, v1::SamplerState* proto) {
  proto->Clear();
  proto->set_version(kSamplerStateVersion);
  proto->set_sampler(state.sampler);
  proto->set_next_step(state.next_step);
  proto->mutable_recent_tokens()->Add(state.recent_tokens.begin(), state.recent_tokens.end());
  proto->mutable_alpha_window()->Add(state.alpha_window.begin(), state.alpha_window.end());
  proto->set_last_inserted(state.last_inserted);
  if (state.mirostat_mu.has_value()) proto->set_mirostat_mu(*state.mirostat_mu);
}

RowInput ParsedRow::input() const {
  RowInput in;
  in.step = step;
  in.seed = seed;
  in.logits = logits;
  in.attention = attention;
  in.heads = heads;
  in.keys = keys;
  in.special_tokens = special_tokens;
  return in;
}

absl::Status ParseRow(const v1::SampleRow& row, const std::string& prefix, uint64_t seed_if_absent,
                      ParsedRow* parsed, SharedMemoryReader* shm) {
  if (absl::Status s = CheckStep(row.step(), prefix); !s.ok()) return s;
  parsed->step = row.step();

  absl::StatusOr<SamplerConfig> config = SpecToConfig(row.spec(), prefix);
  if (!config.ok()) return config.status();
  parsed->config = *std::move(config);
  parsed->sampler_name = SamplerName(parsed->config);

  if (!row.has_logits()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "logits is required"));
  }
  if (absl::Status s =
          DecodeLogits(row.logits(), absl::StrCat(prefix, "logits"), &parsed->logits, shm);
      !s.ok()) {
    return s;
  }
  const int64_t vocab_size = static_cast<int64_t>(parsed->logits.size());

  parsed->attention.clear();
  parsed->heads = 0;
  parsed->keys = 0;
  if (row.has_attention()) {
    if (absl::Status s = DecodeAttention(row.attention(), absl::StrCat(prefix, "attention"),
                                         &parsed->attention, &parsed->heads, &parsed->keys, shm);
        !s.ok()) {
      return s;
    }
  }

  const v1::SpecialTokens& special = row.special_tokens();
  parsed->special_tokens = SpecialTokens();
  if (special.has_clarifying_question()) {
    parsed->special_tokens.clarifying_question = special.clarifying_question();
  }
  if (special.has_pause()) parsed->special_tokens.pause = special.pause();
  if (special.has_eos()) parsed->special_tokens.eos = special.eos();

  if (absl::Status s = CheckRowTokens(*parsed, prefix); !s.ok()) return s;
  absl::StatusOr<SamplerState> state =
      StateFromProto(row.state(), vocab_size, absl::StrCat(prefix, "state"));
  if (!state.ok()) return state.status();
  parsed->state = *std::move(state);
  if (absl::Status s = CheckStateAndAppend(row.appended_tokens(), prefix, parsed); !s.ok()) {
    return s;
  }

  parsed->seed = row.has_seed() ? row.seed() : seed_if_absent;
  return absl::OkStatus();
}

absl::Status CheckRow(const std::string& prefix, absl::Span<const int32_t> appended,
                      ParsedRow* parsed) {
  if (absl::Status s = CheckStep(parsed->step, prefix); !s.ok()) return s;
  const std::string spec_field = absl::StrCat(prefix, "spec");
  if (absl::Status s = ValidateConfig(parsed->config, spec_field); !s.ok()) return s;
  parsed->sampler_name = SamplerName(parsed->config);
  const std::string logits_field = absl::StrCat(prefix, "logits");
  if (parsed->logits.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(logits_field, " is empty: shape [0], but V must be >= 1"));
  }
  if (absl::Status s = CheckLogits(parsed->logits, logits_field); !s.ok()) return s;
  const int64_t vocab_size = static_cast<int64_t>(parsed->logits.size());
  if (!parsed->attention.empty() || parsed->heads != 0 || parsed->keys != 0) {
    const std::string field = absl::StrCat(prefix, "attention");
    if (parsed->heads < 1 || parsed->keys < 1 ||
        parsed->attention.size() !=
            static_cast<size_t>(parsed->heads) * static_cast<size_t>(parsed->keys)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " must have shape [heads, keys] with both >= 1 and heads * keys values, got [",
          parsed->heads, ", ", parsed->keys, "] with ", parsed->attention.size(), " values"));
    }
    if (absl::Status s = CheckAttention(parsed->attention, field); !s.ok()) return s;
  }
  if (absl::Status s = CheckRowTokens(*parsed, prefix); !s.ok()) return s;
  // The state's own values, as StateFromProto checks them on the wire.
  const std::string state_field = absl::StrCat(prefix, "state");
  if (absl::Status s = CheckTokenIds(parsed->state.recent_tokens, vocab_size,
                                     absl::StrCat(state_field, ".recent_tokens"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckStateFloats(parsed->state.alpha_window, parsed->state.mirostat_mu, state_field);
      !s.ok()) {
    return s;
  }
  return CheckStateAndAppend(appended, prefix, parsed);
}

absl::Status CheckStateSent(const ParsedRow& row, bool needs_state, const std::string& prefix) {
  if (needs_state && row.step > 0 && !row.state_sent) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "state is required at step ", row.step, " for sampler ",
                     row.sampler_name, ": send back the state returned with step ", row.step - 1));
  }
  return absl::OkStatus();
}

void OutputToResult(const RowOutput& output, const ParsedRow& row, const SamplerState& state,
                    v1::SampleResult* result) {
  result->clear_error();
  result->set_token_id(output.token);
  result->set_mode(static_cast<v1::Mode>(static_cast<int>(output.mode)));

  SignalsToProto(output.signals, result->mutable_signals());
  ParamsToProto(output.params, result->mutable_params());

  result->set_inserted(output.inserted);
  result->set_logprob(output.logprob);

  SamplerState next = state;
  next.sampler = row.sampler_name;
  next.next_step = row.step + 1;
  StateToProto(next, result->mutable_state());
  result->set_seed(row.seed);
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

absl::StatusOr<RowOutput> ResultToOutput(const v1::SampleResult& result, int64_t vocab_size,
                                         const std::string& field) {
  if (result.has_error()) {
    return absl::Status(static_cast<absl::StatusCode>(result.error().code()),
                        result.error().message());
  }
  if (!InVocabulary(result.token_id(), vocab_size)) {
    return OutsideVocabulary(absl::StrCat(field, ".token_id"), result.token_id(), vocab_size);
  }
  const int mode = result.mode();
  if (mode < static_cast<int>(Mode::kGreedy) || mode > static_cast<int>(Mode::kAlpha)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".mode is ", mode, ", not a known mode"));
  }
  RowOutput output;
  output.token = result.token_id();
  output.mode = static_cast<Mode>(mode);
  output.signals = SignalsFromProto(result.signals());
  output.params = ParamsFromProto(result.params());
  output.inserted = result.inserted();
  output.logprob = result.logprob();
  return output;
}

void DescriptionToInfo(const SamplerDescription& description, v1::SamplerInfo* info) {
  info->set_name(description.name);
  info->set_description(description.description);
  ConfigToSpec(description.defaults, info->mutable_defaults());
  info->set_uses_attention(description.uses_attention);
  info->set_stateful(description.stateful);
}

}  // namespace entroserve
