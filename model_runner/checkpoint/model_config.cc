#include "model_runner/checkpoint/model_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sampler/base/status_macros.h"

namespace entroserve {
namespace {

using nlohmann::json;

// Reads the fields of one config.json object, each error naming the source
// file and the field.
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& source) : object_(object), source_(source) {}

  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", field, " ", what));
  }

  bool Has(const std::string& field) const {
    auto it = object_.find(field);
    return it != object_.end() && !it->is_null();
  }

  // A required (no default) or optional integer.
  absl::StatusOr<int64_t> Int(const std::string& field, std::optional<int64_t> fallback) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) {
      if (fallback) return *fallback;
      return Error(field, "is missing");
    }
    if (it->is_number_integer()) return it->get<int64_t>();
    if (it->is_number_float()) {
      double v = it->get<double>();
      if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15) {
        return static_cast<int64_t>(v);
      }
    }
    return Error(field, absl::StrCat("must be an integer, got ", it->dump()));
  }

  absl::StatusOr<int64_t> PositiveInt(const std::string& field,
                                      std::optional<int64_t> fallback) const {
    absl::StatusOr<int64_t> v = Int(field, fallback);
    if (v.ok() && *v <= 0) return Error(field, absl::StrCat("must be > 0, got ", *v));
    return v;
  }

  absl::StatusOr<double> PositiveDouble(const json& object, const std::string& field,
                                        std::optional<double> fallback) const {
    auto it = object.find(field);
    if (it == object.end() || it->is_null()) {
      if (fallback) return *fallback;
      return Error(field, "is missing");
    }
    if (!it->is_number()) return Error(field, absl::StrCat("must be a number, got ", it->dump()));
    double v = it->get<double>();
    if (!(v > 0) || !std::isfinite(v)) return Error(field, absl::StrCat("must be > 0, got ", v));
    return v;
  }

  absl::StatusOr<double> PositiveDouble(const std::string& field,
                                        std::optional<double> fallback) const {
    return PositiveDouble(object_, field, fallback);
  }

  absl::StatusOr<bool> Bool(const std::string& field, bool fallback) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return fallback;
    if (!it->is_boolean())
      return Error(field, absl::StrCat("must be true or false, got ", it->dump()));
    return it->get<bool>();
  }

  absl::StatusOr<std::string> String(const std::string& field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return std::string();
    if (!it->is_string()) return Error(field, absl::StrCat("must be a string, got ", it->dump()));
    return it->get<std::string>();
  }

  const json& object() const { return object_; }

 private:
  const json& object_;
  const std::string& source_;
};

// Defaults of transformers' config classes that differ between families.
struct FamilyDefaults {
  int64_t max_position_embeddings;
  std::optional<int64_t> num_key_value_heads;  // none: num_attention_heads
  std::optional<int64_t> sliding_window;       // mistral only
};

FamilyDefaults DefaultsOf(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return {2048, std::nullopt, std::nullopt};
    case ModelFamily::kQwen2:
      return {32768, std::nullopt, std::nullopt};
    case ModelFamily::kMistral:
      return {4096 * 32, 8, 4096};
  }
  return {2048, std::nullopt, std::nullopt};
}

// rope_scaling (transformers <= 4.x) or rope_parameters (5.x): none for
// absent/null/"default", Llama3RopeScaling for "llama3", an error otherwise.
absl::Status ParseRopeScaling(const FieldReader& reader, const json& scaling,
                              const std::string& field, ModelConfig* config) {
  if (scaling.is_null()) return absl::OkStatus();
  if (!scaling.is_object()) return reader.Error(field, "must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto it = scaling.find(key);
    if (it != scaling.end() && it->is_string()) {
      type = it->get<std::string>();
      break;
    }
  }
  if (type.empty() || type == "default") return absl::OkStatus();
  if (type != "llama3") {
    return reader.Error(field, absl::StrCat("type \"", type, "\" is not supported (llama3)"));
  }
  Llama3RopeScaling s;
  const std::string prefix = field + ".";
  auto number = [&](const char* key) -> absl::StatusOr<double> {
    return reader.PositiveDouble(scaling, key, std::nullopt);
  };
  absl::StatusOr<double> v;
  if (!(v = number("factor")).ok()) return reader.Error(prefix + "factor", "must be a number > 0");
  s.factor = *v;
  if (!(v = number("low_freq_factor")).ok()) {
    return reader.Error(prefix + "low_freq_factor", "must be a number > 0");
  }
  s.low_freq_factor = *v;
  if (!(v = number("high_freq_factor")).ok()) {
    return reader.Error(prefix + "high_freq_factor", "must be a number > 0");
  }
  s.high_freq_factor = *v;
  if (!(v = number("original_max_position_embeddings")).ok() || *v != std::floor(*v)) {
    return reader.Error(prefix + "original_max_position_embeddings", "must be an integer > 0");
  }
  s.original_max_position_embeddings = static_cast<int64_t>(*v);
  if (!(s.high_freq_factor > s.low_freq_factor)) {
    return reader.Error(prefix + "high_freq_factor",
                        absl::StrCat("must exceed low_freq_factor (", s.low_freq_factor, "), got ",
                                     s.high_freq_factor));
  }
  config->rope_scaling = s;
  return absl::OkStatus();
}

absl::Status ParseTokenIds(const FieldReader& reader, ModelConfig* config) {
  const json& object = reader.object();
  auto bos = object.find("bos_token_id");
  if (bos != object.end() && !bos->is_null()) {
    if (!bos->is_number_integer()) return reader.Error("bos_token_id", "must be an integer");
    config->bos_token_id = bos->get<int64_t>();
  }
  auto eos = object.find("eos_token_id");
  if (eos != object.end() && !eos->is_null()) {
    if (eos->is_number_integer()) {
      config->eos_token_ids.push_back(eos->get<int64_t>());
    } else if (eos->is_array()) {
      for (const json& id : *eos) {
        if (!id.is_number_integer()) {
          return reader.Error("eos_token_id", "must be an integer or a list of integers");
        }
        config->eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      return reader.Error("eos_token_id", "must be an integer or a list of integers");
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ModelFamilyName(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return "llama";
    case ModelFamily::kQwen2:
      return "qwen2";
    case ModelFamily::kMistral:
      return "mistral";
  }
  return "unknown";
}

namespace {

// model_type picks the family, which sets the defaults of other fields.
absl::Status ParseFamily(const FieldReader& reader, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->model_type, reader.String("model_type"));
  if (c->model_type == "llama") {
    c->family = ModelFamily::kLlama;
  } else if (c->model_type == "qwen2") {
    c->family = ModelFamily::kQwen2;
  } else if (c->model_type == "mistral") {
    c->family = ModelFamily::kMistral;
  } else if (c->model_type.empty()) {
    return reader.Error("model_type", "is missing (llama, qwen2, mistral)");
  } else {
    return reader.Error("model_type", absl::StrCat("\"", c->model_type,
                                                   "\" is not supported (llama, qwen2, mistral)"));
  }
  return absl::OkStatus();
}

// The tensor shapes: sizes, heads and the per-head dimension.
absl::Status ParseShape(const FieldReader& reader, const FamilyDefaults& defaults, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->vocab_size, reader.PositiveInt("vocab_size", std::nullopt));
  ASSIGN_OR_RETURN(c->hidden_size, reader.PositiveInt("hidden_size", std::nullopt));
  ASSIGN_OR_RETURN(c->intermediate_size, reader.PositiveInt("intermediate_size", std::nullopt));
  ASSIGN_OR_RETURN(c->num_hidden_layers, reader.PositiveInt("num_hidden_layers", std::nullopt));
  ASSIGN_OR_RETURN(c->num_attention_heads, reader.PositiveInt("num_attention_heads", std::nullopt));
  ASSIGN_OR_RETURN(c->num_key_value_heads,
                   reader.PositiveInt("num_key_value_heads", defaults.num_key_value_heads
                                                                 ? defaults.num_key_value_heads
                                                                 : c->num_attention_heads));
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return reader.Error("num_key_value_heads", absl::StrCat("(", c->num_key_value_heads,
                                                            ") must divide num_attention_heads (",
                                                            c->num_attention_heads, ")"));
  }
  if (reader.Has("head_dim")) {
    ASSIGN_OR_RETURN(c->head_dim, reader.PositiveInt("head_dim", std::nullopt));
  } else {
    if (c->hidden_size % c->num_attention_heads != 0) {
      return reader.Error(
          "hidden_size",
          absl::StrCat("(", c->hidden_size, ") must be a multiple of ", "num_attention_heads (",
                       c->num_attention_heads, ") when head_dim is absent"));
    }
    c->head_dim = c->hidden_size / c->num_attention_heads;
  }
  if (c->head_dim % 2 != 0) {
    return reader.Error("head_dim",
                        absl::StrCat("must be even for rotary embeddings, got ", c->head_dim));
  }
  return absl::OkStatus();
}

// Rotary embeddings: transformers 5 writes rope_parameters {rope_type,
// rope_theta, ...}; earlier versions rope_theta and rope_scaling.
absl::Status ParseRope(const FieldReader& reader, const json& object, ModelConfig* c) {
  auto parameters = object.find("rope_parameters");
  if (parameters != object.end() && parameters->is_object()) {
    ASSIGN_OR_RETURN(c->rope_theta, reader.PositiveDouble(*parameters, "rope_theta", 10000.0));
    return ParseRopeScaling(reader, *parameters, "rope_parameters", c);
  }
  ASSIGN_OR_RETURN(c->rope_theta, reader.PositiveDouble("rope_theta", 10000.0));
  auto scaling = object.find("rope_scaling");
  if (scaling == object.end()) return absl::OkStatus();
  return ParseRopeScaling(reader, *scaling, "rope_scaling", c);
}

// What differs by family: biases and sliding windows.
absl::Status ParseFamilyOptions(const FieldReader& reader, const json& object,
                                const FamilyDefaults& defaults, ModelConfig* c) {
  switch (c->family) {
    case ModelFamily::kLlama: {
      bool attention_bias;
      ASSIGN_OR_RETURN(attention_bias, reader.Bool("attention_bias", false));
      c->qkv_bias = c->o_bias = attention_bias;
      ASSIGN_OR_RETURN(c->mlp_bias, reader.Bool("mlp_bias", false));
      break;
    }
    case ModelFamily::kQwen2: {
      c->qkv_bias = true;  // Qwen2Attention: q/k/v_proj bias=True, o_proj bias=False
      bool use_sliding_window;
      ASSIGN_OR_RETURN(use_sliding_window, reader.Bool("use_sliding_window", false));
      if (use_sliding_window) {
        return reader.Error("use_sliding_window", "true is not supported");
      }
      break;
    }
    case ModelFamily::kMistral: {
      if (!object.contains("sliding_window")) {
        c->sliding_window = defaults.sliding_window;
      } else if (!object["sliding_window"].is_null()) {
        int64_t window;
        ASSIGN_OR_RETURN(window, reader.PositiveInt("sliding_window", std::nullopt));
        c->sliding_window = window;
      }
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             const std::string& source) {
  json object = json::parse(json_text.begin(), json_text.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!object.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  FieldReader reader(object, source);
  ModelConfig c;
  RETURN_IF_ERROR(ParseFamily(reader, &c));
  const FamilyDefaults defaults = DefaultsOf(c.family);
  RETURN_IF_ERROR(ParseShape(reader, defaults, &c));
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   reader.PositiveInt("max_position_embeddings", defaults.max_position_embeddings));
  ASSIGN_OR_RETURN(c.rms_norm_eps, reader.PositiveDouble("rms_norm_eps", 1e-6));
  std::string hidden_act;
  ASSIGN_OR_RETURN(hidden_act, reader.String("hidden_act"));
  if (!hidden_act.empty() && hidden_act != "silu") {
    return reader.Error("hidden_act", absl::StrCat("\"", hidden_act, "\" is not supported (silu)"));
  }
  RETURN_IF_ERROR(ParseRope(reader, object, &c));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, reader.Bool("tie_word_embeddings", false));
  RETURN_IF_ERROR(ParseFamilyOptions(reader, object, defaults, &c));
  RETURN_IF_ERROR(ParseTokenIds(reader, &c));
  ASSIGN_OR_RETURN(c.torch_dtype, reader.String("torch_dtype"));
  if (c.torch_dtype.empty()) {
    ASSIGN_OR_RETURN(c.torch_dtype, reader.String("dtype"));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (missing?)"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseModelConfig(text.str(), path);
}

std::string ModelConfigToJson(const ModelConfig& c) {
  nlohmann::ordered_json j;
  j["model_type"] = c.model_type.empty() ? ModelFamilyName(c.family) : c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling->factor},
        {"low_freq_factor", c.rope_scaling->low_freq_factor},
        {"high_freq_factor", c.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  switch (c.family) {
    case ModelFamily::kLlama:
      j["attention_bias"] = c.qkv_bias;
      j["mlp_bias"] = c.mlp_bias;
      break;
    case ModelFamily::kQwen2:
      j["use_sliding_window"] = false;
      break;
    case ModelFamily::kMistral:
      if (c.sliding_window) {
        j["sliding_window"] = *c.sliding_window;
      } else {
        j["sliding_window"] = nullptr;
      }
      break;
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else if (!c.eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_ids;
  }
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  return j.dump(2);
}

#undef ASSIGN_OR_RETURN

}  // namespace entroserve
