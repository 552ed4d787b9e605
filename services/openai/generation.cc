#include "services/openai/generation.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "runner/v1/runner.pb.h"
#include "sampler/core/row.h"
#include "services/runnerd/runner_convert.h"
#include "services/wire/sampler_convert.h"

namespace entroserve::openai {
namespace {

namespace pb = ::google::protobuf;
namespace sv1 = ::sampler::v1;

// The OpenAI sampling fields a request gave, by the name a sampler config
// field would have; values as doubles (ints exact).
std::vector<std::pair<std::string, double>> GivenScalars(const SamplingFields& s) {
  std::vector<std::pair<std::string, double>> out;
  auto add = [&out](const char* name, const auto& value) {
    if (value) out.emplace_back(name, static_cast<double>(*value));
  };
  add("temperature", s.temperature);
  add("top_p", s.top_p);
  add("top_k", s.top_k);
  add("min_p", s.min_p);
  add("presence_penalty", s.presence_penalty);
  add("frequency_penalty", s.frequency_penalty);
  add("repetition_penalty", s.repetition_penalty);
  return out;
}

// Sets `name` = `value` on `config` (a sampler's config message).
MaybeError SetScalar(const std::string& sampler, const std::string& name, double value,
                     pb::Message* config) {
  const pb::FieldDescriptor* field = config->GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->is_repeated()) {
    return BadField(name, absl::StrCat(name, " is not a parameter of sampler ", sampler,
                                       "; set that sampler's parameters in sampler_spec"));
  }
  const pb::Reflection* reflection = config->GetReflection();
  if (reflection->HasField(*config, field)) {
    return BadField(name, absl::StrCat(name,
                                       " is given both at the top level and in "
                                       "sampler_spec"));
  }
  if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
    reflection->SetFloat(config, field, static_cast<float>(value));
  } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32) {
    reflection->SetInt32(config, field, static_cast<int32_t>(value));
  } else {
    return BadField(name, absl::StrCat(name, " does not fit sampler ", sampler, "'s ", name));
  }
  return std::nullopt;
}

MaybeError SetLogitBias(const std::string& sampler, const std::map<int32_t, float>& bias,
                        sv1::SamplerSpec* spec) {
  if (!spec->has_chain()) {
    return BadField("logit_bias", absl::StrCat("logit_bias is not a parameter of sampler ", sampler,
                                               "; only chain takes it"));
  }
  auto* map = spec->mutable_chain()->mutable_logit_bias();
  if (!map->empty()) {
    return BadField("logit_bias", "logit_bias is given both at the top level and in sampler_spec");
  }
  for (const auto& [token, value] : bias) (*map)[token] = value;
  return std::nullopt;
}

// The spec's config message for the sampler it names (created when only
// the name is set); null for an unknown name.
pb::Message* ConfigMessage(sv1::SamplerSpec* spec) {
  const pb::Descriptor* descriptor = spec->GetDescriptor();
  const pb::FieldDescriptor* field = nullptr;
  if (spec->config_case() != sv1::SamplerSpec::CONFIG_NOT_SET) {
    field = descriptor->FindFieldByNumber(spec->config_case());
  } else {
    field = descriptor->FindFieldByName(spec->name());
    if (field == nullptr || field->containing_oneof() == nullptr) return nullptr;
  }
  return spec->GetReflection()->MutableMessage(spec, field);
}

// The field the first word of a conversion message names: an OpenAI field
// the request set at the top level, else `fallback`.
std::string ParamOf(const absl::Status& status, const SamplingFields& given,
                    const std::string& fallback) {
  std::string path(status.message().substr(0, status.message().find_first_of(" :")));
  path = path.substr(0, path.find('['));
  const std::string last = path.substr(path.rfind('.') + 1);
  for (const auto& [name, value] : GivenScalars(given)) {
    if (name == last) return name;
  }
  if (last == "logit_bias" && given.logit_bias) return last;
  return fallback;
}

// The spec before OpenAI's fields are applied; `field` is its name in errors.
MaybeError BaseSpec(const OpenAIRequest& request, sv1::SamplerSpec* spec, std::string* field) {
  if (request.sampler_spec) {
    *field = "sampler_spec";
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const pb::util::Status parsed =
        pb::util::JsonStringToMessage(Dump(*request.sampler_spec), spec, options);
    if (!parsed.ok()) {
      return BadField("sampler_spec", absl::StrCat("sampler_spec is not a sampler.v1.SamplerSpec: ",
                                                   parsed.message().as_string()));
    }
  } else if (request.sampler) {
    *field = "sampler";
    spec->set_name(*request.sampler);
  } else {
    *field = "sampler";
    spec->mutable_chain();
  }
  if (spec->config_case() == sv1::SamplerSpec::CONFIG_NOT_SET && !spec->name().empty()) {
    if (absl::StatusOr<SamplerConfig> known = DefaultConfig(spec->name()); !known.ok()) {
      return BadField(*field, absl::StrCat(*field, ": ", known.status().message()));
    }
  }
  return std::nullopt;
}

MaybeError ApplyOpenAIFields(const OpenAIRequest& request, sv1::SamplerSpec* spec) {
  const SamplingFields& s = request.sampling;
  const bool plain_chain = !request.sampler && !request.sampler_spec;
  pb::Message* config = ConfigMessage(spec);
  const std::string sampler = spec->has_chain() ? "chain" : spec->name();
  for (auto [name, value] : GivenScalars(s)) {
    if (config == nullptr) {
      return BadField(name, absl::StrCat(name, " needs a sampler: set sampler_spec.name"));
    }
    if (name == "top_k" && value < 0) {
      if (!spec->has_chain()) return BadField("top_k", "top_k must be >= 0 for this sampler");
      value = 0;  // vLLM's -1: off
    }
    if (plain_chain && name == "temperature" && value == 0) {
      // Greedy, with the bias and penalties still applied first.
      if (MaybeError e = SetScalar(sampler, "top_k", 1, config)) return e;
      continue;
    }
    if (plain_chain && name == "top_k" && s.temperature && *s.temperature == 0) continue;
    if (MaybeError e = SetScalar(sampler, name, value, config)) return e;
  }
  if (s.logit_bias) return SetLogitBias(sampler, *s.logit_bias, spec);
  return std::nullopt;
}

}  // namespace

MaybeError BuildSamplerConfig(const OpenAIRequest& request, int64_t vocab_size,
                              SamplerConfig* out) {
  sv1::SamplerSpec spec;
  std::string field;
  if (MaybeError e = BaseSpec(request, &spec, &field)) return e;
  if (MaybeError e = ApplyOpenAIFields(request, &spec)) return e;
  absl::StatusOr<SamplerConfig> config = SpecFieldToConfig(spec, field);
  if (!config.ok()) {
    return BadField(ParamOf(config.status(), request.sampling, field),
                    std::string(config.status().message()));
  }
  if (absl::Status s = CheckConfigTokens(*config, vocab_size, field); !s.ok()) {
    return BadField(ParamOf(s, request.sampling, field), std::string(s.message()));
  }
  *out = *std::move(config);
  return std::nullopt;
}

namespace {

MaybeError PromptOf(const OpenAIRequest& request, const ServedModel& model,
                    std::vector<int32_t>* prompt) {
  if (request.endpoint == Endpoint::kChat) {
    runner::v1::ChatMessages chat;
    for (const ChatMessageIn& m : request.messages) {
      runner::v1::ChatMessage* message = chat.add_messages();
      message->set_role(m.role);
      message->set_content(m.content);
    }
    absl::StatusOr<std::vector<int32_t>> ids = ChatToTokens(chat, model, "messages");
    if (!ids.ok()) return FromStatus(ids.status(), "messages");
    *prompt = *std::move(ids);
  } else if (request.prompt_ids) {
    if (absl::Status s = CheckTokenIds(*request.prompt_ids, model.vocab_size(), "prompt");
        !s.ok()) {
      return BadField("prompt", std::string(s.message()));
    }
    *prompt = *request.prompt_ids;
  } else {
    *prompt = model.tokenizer().EncodeWithSpecialTokens(*request.prompt_text, true);
  }
  if (prompt->empty()) {
    return BadField(request.endpoint == Endpoint::kChat ? "messages" : "prompt",
                    "the prompt is empty and the tokenizer adds no BOS: it has no tokens");
  }
  return std::nullopt;
}

}  // namespace

MaybeError BuildGeneration(const OpenAIRequest& request, const ServedModel& model,
                           uint64_t seed_if_absent, GenerationRequest* out) {
  if (MaybeError e = PromptOf(request, model, &out->prompt)) return e;
  const int64_t room = model.context_length() - static_cast<int64_t>(out->prompt.size());
  if (request.max_tokens) {
    out->max_new_tokens = *request.max_tokens;
  } else {
    const int32_t wanted =
        request.endpoint == Endpoint::kChat ? kDefaultMaxNewTokens : kCompletionsDefaultMaxTokens;
    out->max_new_tokens =
        static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(wanted, room)));
    out->max_new_tokens_is_context = room < wanted;
  }
  out->stop = request.stop;
  if (absl::Status s = CheckTokenIds(request.stop_token_ids, model.vocab_size(), "stop_token_ids");
      !s.ok()) {
    return BadField("stop_token_ids", std::string(s.message()));
  }
  out->stop_token_ids = request.stop_token_ids;
  out->ignore_eos = request.ignore_eos;
  if (MaybeError e = BuildSamplerConfig(request, model.vocab_size(), &out->sampler)) return e;
  if (absl::Status s = AddSamplerExtras(request.allowed_token_ids, request.dry_sequence_breakers,
                                        model, out);
      !s.ok()) {
    const char* field = absl::StartsWith(s.message(), "allowed_token_ids") ? "allowed_token_ids"
                                                                           : "dry_sequence_breakers";
    return BadField(field, std::string(s.message()));
  }
  out->seed = request.seed.value_or(seed_if_absent);
  out->n = request.n;
  out->top_logprobs = request.logprobs ? request.top_logprobs : 0;
  return std::nullopt;
}

ApiError SubmitError(const absl::Status& status, const OpenAIRequest& request) {
  const std::string prompt = request.endpoint == Endpoint::kChat ? "messages" : "prompt";
  std::string message(status.message());
  std::optional<std::string> param;
  if (absl::StrContains(message, "max_new_tokens")) {
    message = absl::StrReplaceAll(message, {{"max_new_tokens", request.max_tokens_field}});
    param = request.max_tokens_field;
  } else if (absl::StartsWith(message, "n ")) {
    param = "n";
  } else if (absl::StartsWith(message, "stop")) {
    param = "stop";
  } else {
    param = prompt;
  }
  return FromStatus(absl::Status(status.code(), message), param);
}

}  // namespace entroserve::openai
