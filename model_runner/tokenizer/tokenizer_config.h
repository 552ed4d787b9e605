// tokenizer_config.json: the special tokens and the chat template a model
// ships beside its tokenizer.json.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_CONFIG_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace entroserve {

// The fields of `tokenizer_config.json` the runner uses. Token fields accept
// either a string or an AddedToken object ({"content": ...}); a missing or
// null token is an empty string.
struct TokenizerConfig {
  std::string bos_token;
  std::string eos_token;
  std::string pad_token;
  std::string unk_token;
  // Absent in many configs (Llama 3 adds BOS through its post-processor);
  // nullopt then, and the tokenizer's post-processor decides.
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  // The Jinja chat template; when the file holds a list of named templates,
  // the one named "default" (else the first).
  std::string chat_template;

  // Errors name `path` (or `source`) and the field: NOT_FOUND for a missing
  // file, INVALID_ARGUMENT for bad JSON or a field of the wrong type.
  static absl::StatusOr<TokenizerConfig> FromFile(const std::string& path);
  static absl::StatusOr<TokenizerConfig> FromJson(std::string_view json,
                                                  std::string_view source = "<memory>");
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_CONFIG_H_
