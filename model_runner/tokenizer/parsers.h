// The parts of a tokenizer and one parser per section of tokenizer.json:
// "model", "added_tokens", "normalizer", "pre_tokenizer", "decoder" and
// "post_processor". Each checks the types of what it reads and names the
// file and the field in its errors ("t.json: pre_tokenizer.pretokenizers[1]:
// ..."): INVALID_ARGUMENT for what is malformed, UNIMPLEMENTED for a type
// the tokenizer does not support. Tokenizer::FromJson runs them in the order
// of this file.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_PARSERS_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_PARSERS_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model_runner/tokenizer/added_tokens.h"
#include "model_runner/tokenizer/bpe.h"
#include "model_runner/tokenizer/decoder.h"
#include "model_runner/tokenizer/json_fields.h"
#include "model_runner/tokenizer/normalizer.h"
#include "model_runner/tokenizer/post_processor.h"
#include "model_runner/tokenizer/pre_tokenizer.h"
#include "model_runner/tokenizer/vocabulary.h"

namespace entroserve::tokenizer {

// Everything a tokenizer.json describes, ready to encode and decode.
struct TokenizerParts {
  Vocabulary vocabulary;
  AddedTokens added_tokens;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  TokenDecoder decoder;
  PostProcessor post_processor;
};

// parse_model.cc: the "model" object, checked to be a BPE model without
// continuing_subword_prefix / end_of_word_suffix, whose vocabulary maps
// tokens to 32-bit ids.
absl::StatusOr<const Json*> CheckModelSection(const Json& json, absl::string_view source);

// parse_added_tokens.cc: the "added_tokens" list (absent or null: none).
absl::StatusOr<std::vector<AddedToken>> ParseAddedTokensSection(const Json& json,
                                                                absl::string_view source);

// parse_model.cc: fills `vocabulary` with the model's vocabulary (sized for
// the ids of `added` too) and `model` with its merges and options. `model`
// is what CheckModelSection returned.
absl::Status ParseModelSection(const Json& model, absl::string_view source,
                               const std::vector<AddedToken>& added, Vocabulary* vocabulary,
                               BpeModel* bpe);

// parse_normalizer.cc
absl::Status ParseNormalizerSection(const Json& json, absl::string_view source,
                                    Normalizer* normalizer);

// parse_pre_tokenizer.cc
absl::Status ParsePreTokenizerSection(const Json& json, absl::string_view source,
                                      PreTokenizer* pre_tokenizer);

// parse_decoder.cc: builds the bytes of every id of `vocabulary`. Without a
// decoder, a byte-level vocabulary (`byte_level`) still decodes through
// GPT-2's alphabet.
absl::Status ParseDecoderSection(const Json& json, absl::string_view source, bool byte_level,
                                 const Vocabulary& vocabulary, TokenDecoder* decoder);

// parse_post_processor.cc: special tokens it names must be in `vocabulary`.
absl::Status ParsePostProcessorSection(const Json& json, absl::string_view source,
                                       const Vocabulary& vocabulary, PostProcessor* post_processor);

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_PARSERS_H_
