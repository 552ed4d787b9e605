#include "services/openai/request.h"

#include <cmath>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace entroserve::openai {
namespace {

using nlohmann::json;

const char* TypeName(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

ApiError WrongType(const std::string& field, const char* expected, const json& v) {
  return BadField(field, absl::StrCat(field, " must be ", expected, ", got ", TypeName(v)));
}

MaybeError GetBool(const json& v, const std::string& field, bool* out) {
  if (!v.is_boolean()) return WrongType(field, "a boolean", v);
  *out = v.get<bool>();
  return std::nullopt;
}

MaybeError GetString(const json& v, const std::string& field, std::string* out) {
  if (!v.is_string()) return WrongType(field, "a string", v);
  *out = v.get<std::string>();
  return std::nullopt;
}

// An integer in [lo, hi] (a number with a fractional part is refused).
MaybeError GetInt(const json& v, const std::string& field, int64_t lo, int64_t hi, int64_t* out) {
  if (!v.is_number_integer()) {
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && d >= lo && d <= hi) {
        *out = static_cast<int64_t>(d);
        return std::nullopt;
      }
    }
    return WrongType(field, "an integer", v);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return BadField(
        field, absl::StrCat(field, " must be in [", lo, ", ", hi, "], got ", v.get<uint64_t>()));
  }
  const int64_t value = v.get<int64_t>();
  if (value < lo || value > hi) {
    return BadField(field, absl::StrCat(field, " must be in [", lo, ", ", hi, "], got ", value));
  }
  *out = value;
  return std::nullopt;
}

MaybeError GetInt32(const json& v, const std::string& field, int64_t lo, int64_t hi, int32_t* out) {
  int64_t value = 0;
  if (MaybeError e = GetInt(v, field, lo, hi, &value)) return e;
  *out = static_cast<int32_t>(value);
  return std::nullopt;
}

// A number in the range written as `range` ("[0, 2]"), checked by `ok`.
MaybeError GetFloat(const json& v, const std::string& field, const char* range,
                    const std::function<bool(double)>& ok, std::optional<float>* out) {
  if (!v.is_number()) return WrongType(field, "a number", v);
  const double value = v.get<double>();
  if (!std::isfinite(value) || !ok(value)) {
    return BadField(field, absl::StrCat(field, " must be ", range, ", got ", v.dump()));
  }
  *out = static_cast<float>(value);
  return std::nullopt;
}

MaybeError GetSeed(const json& v, std::optional<uint64_t>* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    if (v.get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(v.get<int64_t>());
      return std::nullopt;
    }
    return BadField("seed", absl::StrCat("seed must be >= 0, got ", v.get<int64_t>()));
  }
  return WrongType("seed", "an integer", v);
}

// A string or an array of at most `max` strings, none empty (stop,
// dry_sequence_breakers).
MaybeError GetStrings(const json& v, const std::string& name, size_t max,
                      std::vector<std::string>* out) {
  if (v.is_string()) {
    if (v.get<std::string>().empty()) return BadField(name, name + " is an empty string");
    out->push_back(v.get<std::string>());
    return std::nullopt;
  }
  if (!v.is_array()) return WrongType(name, "a string or an array of strings", v);
  if (v.size() > max) {
    return BadField(
        name, absl::StrCat(name, " has ", v.size(), " strings; at most ", max, " are accepted"));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string field = absl::StrCat(name, "[", i, "]");
    std::string s;
    if (MaybeError e = GetString(v[i], field, &s)) return e;
    if (s.empty()) return BadField(field, absl::StrCat(field, " is an empty string"));
    out->push_back(std::move(s));
  }
  return std::nullopt;
}

MaybeError GetTokenIds(const json& v, const std::string& field, std::vector<int32_t>* out) {
  if (!v.is_array()) return WrongType(field, "an array of token ids", v);
  for (size_t i = 0; i < v.size(); ++i) {
    int32_t id = 0;
    if (MaybeError e = GetInt32(v[i], absl::StrCat(field, "[", i, "]"), 0,
                                std::numeric_limits<int32_t>::max(), &id)) {
      return e;
    }
    out->push_back(id);
  }
  return std::nullopt;
}

MaybeError GetLogitBias(const json& v, std::optional<std::map<int32_t, float>>* out) {
  if (!v.is_object()) return WrongType("logit_bias", "an object of token id: bias", v);
  std::map<int32_t, float> bias;
  for (const auto& [key, value] : v.items()) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(key, &id) || id < 0) {
      return BadField("logit_bias", absl::StrCat("logit_bias key \"", key,
                                                 "\" is not a token id (an integer >= 0)"));
    }
    std::optional<float> b;
    if (MaybeError e = GetFloat(
            value, absl::StrCat("logit_bias[\"", key, "\"]"), "in [-100, 100]",
            [](double x) { return x >= -100 && x <= 100; }, &b)) {
      e->param = "logit_bias";
      return e;
    }
    bias[id] = *b;
  }
  *out = std::move(bias);
  return std::nullopt;
}

// The text of a chat message's content: a string, or an array of
// {"type": "text", "text": ...} parts (joined); null is "".
MaybeError GetContent(const json& v, const std::string& field, std::string* out) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return GetString(v, field, out);
  if (!v.is_array()) return WrongType(field, "a string or an array of text parts", v);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string part = absl::StrCat(field, "[", i, "]");
    if (!v[i].is_object()) return WrongType(part, "an object", v[i]);
    const auto type = v[i].find("type");
    if (type == v[i].end() || *type != "text") {
      return BadField(part, absl::StrCat(part, ": only parts of type \"text\" are supported"));
    }
    for (const auto& [key, value] : v[i].items()) {
      if (key != "type" && key != "text") {
        return BadField(absl::StrCat(part, ".", key),
                        absl::StrCat("unknown field ", part, ".", key));
      }
    }
    std::string text;
    if (MaybeError e = GetString(v[i].value("text", json()), part + ".text", &text)) return e;
    out->append(text);
  }
  return std::nullopt;
}

MaybeError GetMessage(const json& v, const std::string& field, ChatMessageIn* out) {
  if (!v.is_object()) return WrongType(field, "an object", v);
  bool has_role = false;
  for (const auto& [key, value] : v.items()) {
    const std::string path = absl::StrCat(field, ".", key);
    if (key == "role") {
      if (MaybeError e = GetString(value, path, &out->role)) return e;
      has_role = true;
    } else if (key == "content") {
      if (MaybeError e = GetContent(value, path, &out->content)) return e;
    } else if (key == "name") {
      std::string ignored;
      if (MaybeError e = GetString(value, path, &ignored)) return e;
    } else {
      return BadField(path, absl::StrCat("unknown field ", path));
    }
  }
  if (!has_role) return BadField(field + ".role", absl::StrCat(field, ".role is required"));
  if (out->role == "developer") out->role = "system";
  if (out->role != "system" && out->role != "user" && out->role != "assistant") {
    return BadField(field + ".role",
                    absl::StrCat(field, ".role is \"", out->role,
                                 "\"; system, developer, user and assistant are supported"));
  }
  return std::nullopt;
}

MaybeError GetMessages(const json& v, std::vector<ChatMessageIn>* out) {
  if (!v.is_array()) return WrongType("messages", "an array", v);
  if (v.empty()) return BadField("messages", "messages is empty");
  for (size_t i = 0; i < v.size(); ++i) {
    ChatMessageIn message;
    if (MaybeError e = GetMessage(v[i], absl::StrCat("messages[", i, "]"), &message)) return e;
    out->push_back(std::move(message));
  }
  return std::nullopt;
}

// prompt: a string, token ids, or a list of one of either.
MaybeError GetPrompt(const json& v, OpenAIRequest* out) {
  if (v.is_string()) {
    out->prompt_text = v.get<std::string>();
    return std::nullopt;
  }
  if (!v.is_array()) return WrongType("prompt", "a string or an array of token ids", v);
  if (!v.empty() && (v[0].is_string() || v[0].is_array())) {
    if (v.size() != 1) {
      return BadField("prompt", absl::StrCat("prompt has ", v.size(),
                                             " prompts; this server takes one per request"));
    }
    return GetPrompt(v[0], out);
  }
  std::vector<int32_t> ids;
  if (MaybeError e = GetTokenIds(v, "prompt", &ids)) return e;
  if (ids.empty()) return BadField("prompt", "prompt is an empty list of token ids");
  out->prompt_ids = std::move(ids);
  return std::nullopt;
}

MaybeError GetStreamOptions(const json& v, OpenAIRequest* out) {
  if (!v.is_object()) return WrongType("stream_options", "an object", v);
  for (const auto& [key, value] : v.items()) {
    const std::string path = absl::StrCat("stream_options.", key);
    if (key == "include_usage") {
      if (value.is_null()) continue;
      if (MaybeError e = GetBool(value, path, &out->include_usage)) return e;
    } else {
      return BadField(path, absl::StrCat("unknown field ", path));
    }
  }
  return std::nullopt;
}

MaybeError GetSpec(const json& v, OpenAIRequest* out) {
  if (!v.is_object()) return WrongType("sampler_spec", "an object (a sampler.v1.SamplerSpec)", v);
  out->sampler_spec = v;
  return std::nullopt;
}

using FieldParser = std::function<MaybeError(const json&, OpenAIRequest*)>;
using FieldTable = std::map<std::string, FieldParser>;

ApiError Unsupported(const std::string& field) {
  return BadField(field, absl::StrCat(field, " is not supported by this server"));
}

// The fields both endpoints take.
void AddCommonFields(FieldTable* t) {
  (*t)["model"] = [](const json& v, OpenAIRequest* r) { return GetString(v, "model", &r->model); };
  (*t)["max_tokens"] = [](const json& v, OpenAIRequest* r) -> MaybeError {
    if (r->max_tokens_field == "max_completion_tokens") return std::nullopt;
    r->max_tokens.emplace();
    return GetInt32(v, "max_tokens", 1, std::numeric_limits<int32_t>::max(), &*r->max_tokens);
  };
  (*t)["temperature"] = [](const json& v, OpenAIRequest* r) {
    return GetFloat(
        v, "temperature", "in [0, 2]", [](double x) { return x >= 0 && x <= 2; },
        &r->sampling.temperature);
  };
  (*t)["top_p"] = [](const json& v, OpenAIRequest* r) {
    return GetFloat(
        v, "top_p", "in (0, 1]", [](double x) { return x > 0 && x <= 1; }, &r->sampling.top_p);
  };
  (*t)["top_k"] = [](const json& v, OpenAIRequest* r) {
    r->sampling.top_k.emplace();
    return GetInt32(v, "top_k", -1, std::numeric_limits<int32_t>::max(), &*r->sampling.top_k);
  };
  (*t)["min_p"] = [](const json& v, OpenAIRequest* r) {
    return GetFloat(
        v, "min_p", "in [0, 1)", [](double x) { return x >= 0 && x < 1; }, &r->sampling.min_p);
  };
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    (*t)[name] = [name](const json& v, OpenAIRequest* r) {
      auto& field = std::string(name) == "presence_penalty" ? r->sampling.presence_penalty
                                                            : r->sampling.frequency_penalty;
      return GetFloat(
          v, name, "in [-2, 2]", [](double x) { return x >= -2 && x <= 2; }, &field);
    };
  }
  (*t)["repetition_penalty"] = [](const json& v, OpenAIRequest* r) {
    return GetFloat(
        v, "repetition_penalty", "> 0", [](double x) { return x > 0; },
        &r->sampling.repetition_penalty);
  };
  (*t)["logit_bias"] = [](const json& v, OpenAIRequest* r) {
    return GetLogitBias(v, &r->sampling.logit_bias);
  };
  (*t)["seed"] = [](const json& v, OpenAIRequest* r) { return GetSeed(v, &r->seed); };
  (*t)["stop"] = [](const json& v, OpenAIRequest* r) {
    return GetStrings(v, "stop", kMaxStopStrings, &r->stop);
  };
  (*t)["allowed_token_ids"] = [](const json& v, OpenAIRequest* r) {
    return GetTokenIds(v, "allowed_token_ids", &r->allowed_token_ids);
  };
  (*t)["dry_sequence_breakers"] = [](const json& v, OpenAIRequest* r) {
    // Counted and sized where they become tokens (SequenceBreakersOf).
    return GetStrings(v, "dry_sequence_breakers", std::numeric_limits<size_t>::max(),
                      &r->dry_sequence_breakers);
  };
  (*t)["stop_token_ids"] = [](const json& v, OpenAIRequest* r) {
    return GetTokenIds(v, "stop_token_ids", &r->stop_token_ids);
  };
  (*t)["ignore_eos"] = [](const json& v, OpenAIRequest* r) {
    return GetBool(v, "ignore_eos", &r->ignore_eos);
  };
  (*t)["n"] = [](const json& v, OpenAIRequest* r) {
    return GetInt32(v, "n", 1, kMaxChoices, &r->n);
  };
  (*t)["stream"] = [](const json& v, OpenAIRequest* r) { return GetBool(v, "stream", &r->stream); };
  (*t)["stream_options"] = GetStreamOptions;
  (*t)["user"] = [](const json& v, OpenAIRequest*) {
    std::string ignored;
    return GetString(v, "user", &ignored);
  };
  (*t)["sampler"] = [](const json& v, OpenAIRequest* r) {
    r->sampler.emplace();
    return GetString(v, "sampler", &*r->sampler);
  };
  (*t)["sampler_spec"] = GetSpec;
  (*t)["sampler_details"] = [](const json& v, OpenAIRequest* r) {
    return GetBool(v, "sampler_details", &r->sampler_details);
  };
}

FieldTable CompletionFields() {
  FieldTable t;
  AddCommonFields(&t);
  t["prompt"] = GetPrompt;
  t["logprobs"] = [](const json& v, OpenAIRequest* r) -> MaybeError {
    r->logprobs = true;
    return GetInt32(v, "logprobs", 0, 20, &r->top_logprobs);
  };
  t["echo"] = [](const json& v, OpenAIRequest*) -> MaybeError {
    if (v == false) return std::nullopt;
    return Unsupported("echo");
  };
  t["best_of"] = [](const json& v, OpenAIRequest*) -> MaybeError {
    if (v == 1) return std::nullopt;
    return Unsupported("best_of");
  };
  t["suffix"] = [](const json& v, OpenAIRequest*) -> MaybeError {
    if (v == "") return std::nullopt;
    return Unsupported("suffix");
  };
  return t;
}

FieldTable ChatFields() {
  FieldTable t;
  AddCommonFields(&t);
  t["messages"] = [](const json& v, OpenAIRequest* r) { return GetMessages(v, &r->messages); };
  t["max_completion_tokens"] = [](const json& v, OpenAIRequest* r) {
    r->max_tokens_field = "max_completion_tokens";
    r->max_tokens.emplace();
    return GetInt32(v, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max(),
                    &*r->max_tokens);
  };
  t["logprobs"] = [](const json& v, OpenAIRequest* r) {
    return GetBool(v, "logprobs", &r->logprobs);
  };
  t["top_logprobs"] = [](const json& v, OpenAIRequest* r) {
    return GetInt32(v, "top_logprobs", 0, 20, &r->top_logprobs);
  };
  for (const char* name : {"tools", "tool_choice", "functions", "function_call", "response_format",
                           "parallel_tool_calls", "audio", "modalities", "prediction",
                           "reasoning_effort", "web_search_options"}) {
    t[name] = [name](const json&, OpenAIRequest*) -> MaybeError { return Unsupported(name); };
  }
  return t;
}

// Checks across fields, once each is known to be fine on its own.
MaybeError CheckTogether(Endpoint endpoint, const json& body, OpenAIRequest* out) {
  if (!body.contains("model") || body["model"].is_null()) {
    return BadField("model", "model is required");
  }
  if (endpoint == Endpoint::kCompletions && !out->prompt_text && !out->prompt_ids) {
    return BadField("prompt", "prompt is required");
  }
  if (endpoint == Endpoint::kChat && out->messages.empty()) {
    return BadField("messages", "messages is required");
  }
  if (body.contains("stream_options") && !body["stream_options"].is_null() && !out->stream) {
    return BadField("stream_options", "stream_options is only allowed with \"stream\": true");
  }
  if (endpoint == Endpoint::kChat && out->top_logprobs > 0 && !out->logprobs) {
    return BadField("top_logprobs", "top_logprobs needs \"logprobs\": true");
  }
  if (out->sampler && out->sampler_spec) {
    return BadField("sampler_spec", "give sampler or sampler_spec, not both");
  }
  return std::nullopt;
}

}  // namespace

MaybeError ParseRequestJson(Endpoint endpoint, const json& body, OpenAIRequest* out) {
  static const FieldTable* const completion = new FieldTable(CompletionFields());
  static const FieldTable* const chat = new FieldTable(ChatFields());
  const FieldTable& table = endpoint == Endpoint::kChat ? *chat : *completion;
  if (!body.is_object()) return BadField("", "the request body must be a JSON object");
  *out = OpenAIRequest();
  out->endpoint = endpoint;
  // max_completion_tokens wins over max_tokens whatever their order.
  if (endpoint == Endpoint::kChat && body.contains("max_completion_tokens") &&
      !body["max_completion_tokens"].is_null()) {
    out->max_tokens_field = "max_completion_tokens";
  }
  for (const auto& [key, value] : body.items()) {
    const auto it = table.find(key);
    if (it == table.end()) return BadField(key, absl::StrCat("unknown field ", key));
    if (value.is_null()) continue;
    if (MaybeError e = it->second(value, out)) return e;
  }
  return CheckTogether(endpoint, body, out);
}

MaybeError ParseRequest(Endpoint endpoint, const std::string& body, OpenAIRequest* out) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    ApiError error = BadField("", "the request body is not valid JSON");
    error.param.reset();
    return error;
  }
  MaybeError error = ParseRequestJson(endpoint, parsed, out);
  if (error && error->param && error->param->empty()) error->param.reset();
  return error;
}

}  // namespace entroserve::openai
