#include "model_runner/engine/served_model.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace entroserve {
namespace {

// The tokens entropix's clarify mode inserts (sampler.v1.SpecialTokens).
constexpr char kClarifyingQuestionText[] = "?";
constexpr char kPauseText[] = "...";

void AddUnique(int64_t id, std::vector<int32_t>* ids) {
  const auto id32 = static_cast<int32_t>(id);
  if (std::find(ids->begin(), ids->end(), id32) == ids->end()) ids->push_back(id32);
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ParseGenerationEosIds(const std::string& json_text,
                                                           const std::string& source) {
  nlohmann::json json = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  std::vector<int32_t> ids;
  auto it = json.find("eos_token_id");
  if (it == json.end() || it->is_null()) return ids;
  auto add = [&](const nlohmann::json& value) -> absl::Status {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": eos_token_id must be a token id or a list of them, got ", value.dump()));
    }
    AddUnique(value.get<int64_t>(), &ids);
    return absl::OkStatus();
  };
  if (it->is_array()) {
    for (const nlohmann::json& value : *it) {
      if (absl::Status s = add(value); !s.ok()) return s;
    }
  } else if (absl::Status s = add(*it); !s.ok()) {
    return s;
  }
  return ids;
}

std::optional<int32_t> SingleTokenId(const Tokenizer& tokenizer, const std::string& text) {
  if (std::optional<int32_t> id = tokenizer.TokenToId(text)) return id;
  std::vector<int32_t> ids = tokenizer.Encode(text, /*parse_special=*/false);
  if (ids.size() == 1) return ids[0];
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<ServedModel>> ServedModel::Load(const std::string& dir,
                                                               const ModelOptions& options) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model folder \"", dir, "\" does not exist"));
  }
  if (!std::filesystem::exists(std::filesystem::path(dir) / "config.json", error)) {
    return absl::NotFoundError(
        absl::StrCat("model folder \"", dir, "\" has no config.json: not a checkpoint folder"));
  }
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromFile(dir + "/tokenizer.json");
  if (!tokenizer.ok()) return tokenizer.status();
  const std::string tokenizer_config = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(tokenizer_config, error)) {
    if (absl::Status s = tokenizer->LoadConfig(tokenizer_config); !s.ok()) return s;
  }
  std::vector<int32_t> generation_eos;
  const std::string generation_config = dir + "/generation_config.json";
  if (std::filesystem::exists(generation_config, error)) {
    std::ifstream in(generation_config);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::vector<int32_t>> ids = ParseGenerationEosIds(text.str(), generation_config);
    if (!ids.ok()) return ids.status();
    generation_eos = *std::move(ids);
  }
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(dir, options);
  if (!model.ok()) return model.status();
  return std::make_unique<ServedModel>(dir, *std::move(model), *std::move(tokenizer),
                                       std::move(generation_eos));
}

ServedModel::ServedModel(std::string path, std::unique_ptr<Model> model, Tokenizer tokenizer,
                         std::vector<int32_t> generation_eos_ids)
    : path_(std::move(path)), model_(std::move(model)), tokenizer_(std::move(tokenizer)) {
  absl::StatusOr<ChatTemplate> chat = ChatTemplate::FromConfig(tokenizer_.config());
  if (chat.ok()) {
    chat_template_ = *std::move(chat);
  } else {
    chat_template_error_ = std::string(chat.status().message());
  }
  const int64_t vocab = vocab_size();
  for (int64_t id : model_->config().eos_token_ids) {
    if (id >= 0 && id < vocab) AddUnique(id, &eos_token_ids_);
  }
  for (int32_t id : generation_eos_ids) {
    if (id >= 0 && id < vocab) AddUnique(id, &eos_token_ids_);
  }
  if (std::optional<int32_t> id = tokenizer_.eos_id(); id && *id < vocab) {
    AddUnique(*id, &eos_token_ids_);
  }
  auto in_vocab = [vocab](std::optional<int32_t> id) -> std::optional<int32_t> {
    if (id && *id >= 0 && *id < vocab) return id;
    return std::nullopt;
  };
  special_tokens_.clarifying_question =
      in_vocab(SingleTokenId(tokenizer_, kClarifyingQuestionText));
  special_tokens_.pause = in_vocab(SingleTokenId(tokenizer_, kPauseText));
  if (!eos_token_ids_.empty()) special_tokens_.eos = eos_token_ids_.front();
}

int32_t ServedModel::vocab_size() const {
  return static_cast<int32_t>(model_->config().vocab_size);
}

int64_t ServedModel::context_length() const { return model_->max_sequence_length(); }

}  // namespace entroserve
