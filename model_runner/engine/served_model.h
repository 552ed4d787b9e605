// Everything runnerd serves from one checkpoint folder: the transformer, the
// tokenizer with its tokenizer_config.json, the chat template, the EOS ids
// and the special tokens the sampler may insert.
//
// EOS ids are the union, in this order and without repeats, of config.json's
// eos_token_id, generation_config.json's eos_token_id (when the file exists;
// chat models list their end-of-turn token there, e.g. the bundled tiny
// model's <|im_end|>) and the tokenizer's EOS.
//
// Special tokens for the sampler (sampler.v1.SpecialTokens), resolved from
// the vocabulary rather than hard-coded (the Python original hard-coded
// 2564): clarifying_question is the token "?", pause the token "..." (its
// vocabulary entry, or the text's encoding when that is a single token),
// eos the first EOS id. Each is unset when the vocabulary has no such token.
//
// Thread-safety: immutable after Load(); every accessor may be called from
// any thread.
#ifndef ENTROSERVE_MODEL_RUNNER_ENGINE_SERVED_MODEL_H_
#define ENTROSERVE_MODEL_RUNNER_ENGINE_SERVED_MODEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model_runner/model/transformer.h"
#include "model_runner/tokenizer/chat_template.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/core/types.h"

namespace entroserve {

class ServedModel {
 public:
  // Loads the folder `dir`: NOT_FOUND naming it when it is not a folder with
  // a config.json; the errors of Model::Load and Tokenizer::FromFile
  // otherwise. A chat template that is missing or of an unsupported family
  // is not an error: chat requests are then refused (chat_template_error()).
  static absl::StatusOr<std::unique_ptr<ServedModel>> Load(const std::string& dir,
                                                           const ModelOptions& options);

  // From parts already loaded (tests, other front ends).
  ServedModel(std::string path, std::unique_ptr<Model> model, Tokenizer tokenizer,
              std::vector<int32_t> generation_eos_ids);

  const std::string& path() const { return path_; }
  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Null when the model has no usable chat template; then
  // chat_template_error() says why.
  const ChatTemplate* chat_template() const {
    return chat_template_.has_value() ? &*chat_template_ : nullptr;
  }
  const std::string& chat_template_error() const { return chat_template_error_; }
  // Token ids the model accepts: [0, vocab_size()).
  int32_t vocab_size() const;
  // Tokens a sequence may hold, prompt and generated together.
  int64_t context_length() const;
  std::optional<int32_t> bos_token_id() const { return tokenizer_.bos_id(); }
  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }
  const SpecialTokens& special_tokens() const { return special_tokens_; }

 private:
  std::string path_;
  std::unique_ptr<Model> model_;
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_template_;
  std::string chat_template_error_;
  std::vector<int32_t> eos_token_ids_;
  SpecialTokens special_tokens_;
};

// The eos_token_id of a generation_config.json text (one id or a list); an
// empty list when the field is absent or null. `source` names the file in
// errors.
absl::StatusOr<std::vector<int32_t>> ParseGenerationEosIds(const std::string& json_text,
                                                           const std::string& source);

// The id of `text` as one token of `tokenizer`: its vocabulary entry, else
// its encoding when that is a single token; nullopt otherwise.
std::optional<int32_t> SingleTokenId(const Tokenizer& tokenizer, const std::string& text);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_ENGINE_SERVED_MODEL_H_
