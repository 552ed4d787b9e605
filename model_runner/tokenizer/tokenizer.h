// A Hugging Face `tokenizer.json` tokenizer: byte-level BPE (GPT-2, Llama 3,
// Qwen2/2.5/3) and BPE with byte fallback, plus the `tokenizer_config.json`
// fields the runner needs (BOS/EOS, chat template). No libtorch here: the
// library uses Abseil, PCRE2, ICU and nlohmann-json.
//
// Encoding follows the Hugging Face `tokenizers` pipeline, one file of this
// folder per stage:
//   1. added tokens (special or not) are matched in the raw text first,
//      leftmost then longest, honouring lstrip/rstrip/single_word
//      (added_tokens.h);
//   2. each stretch of text between them goes through the normalizer
//      (NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace, Strip, Sequence;
//      normalizer.h);
//   3. the pre-tokenizer splits it (Sequence, Split with a regex or a string,
//      ByteLevel with or without the GPT-2 regex, Digits; pre_tokenizer.h);
//      the regexes, written for the Oniguruma engine of the Rust
//      implementation, are rewritten so that \s, \p{L}, \p{N} and the other
//      classes match the same characters there and on PCRE2 (regex_syntax.h),
//      then compiled with PCRE2 in UTF + UCP mode (regex.h);
//   4. ByteLevel maps each piece's bytes to the GPT-2 printable alphabet
//      (byte_level.h);
//   5. BPE merges each piece by merge rank (lowest first), after a direct
//      vocabulary hit when `ignore_merges` is set (Llama 3); characters
//      missing from the vocabulary become <0xNN> tokens when `byte_fallback`
//      is declared, else the unk token, else nothing (bpe.h).
// Decoding maps each token to its bytes (ByteLevel, ByteFallback, Replace,
// Metaspace and Fuse decoders; Strip removes leading characters of the whole
// text; decoder.h) and replaces invalid UTF-8 with U+FFFD, one per maximal
// invalid subsequence, so the result is always valid UTF-8. The ids around a
// sequence come from the post-processor (post_processor.h). parsers.h reads
// each section of tokenizer.json.
//
// Not supported (FromJson fails naming the type): model types other than BPE
// (WordPiece, Unigram, WordLevel), continuing_subword_prefix /
// end_of_word_suffix, and pre-tokenizers or normalizers outside the lists
// above. Added tokens with `normalized: true` are matched in the raw text,
// not the normalized one (the same for every NFC-only vocabulary).
//
// Thread-safety: a Tokenizer is immutable after loading, apart from an
// internal, mutex-guarded cache of BPE results for repeated pieces; Encode and
// Decode may be called from any number of threads at once.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model_runner/tokenizer/tokenizer_config.h"
#include "sampler/base/utf8.h"

namespace entroserve {

// ValidateUtf8, ToValidUtf8 and the other UTF-8 helpers come from
// sampler/base/utf8.h, TokenizerConfig from tokenizer_config.h.

namespace tokenizer {
struct TokenizerParts;
}  // namespace tokenizer

class Tokenizer {
 public:
  // Loads `tokenizer.json`. Errors name the file and what is wrong: a missing
  // `model.type`, an unsupported model type ("Unigram"), a merge whose tokens
  // are not in the vocabulary, a regex PCRE2 rejects, ...
  static absl::StatusOr<Tokenizer> FromFile(const std::string& path);
  static absl::StatusOr<Tokenizer> FromJson(std::string_view json,
                                            std::string_view source = "<memory>");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (any bytes; invalid UTF-8 is tokenized byte by byte).
  // With `parse_special`, special added tokens written in the text ("<|eot_id|>")
  // become their ids; without it they are tokenized as plain text. Non-special
  // added tokens are always matched, as in Hugging Face. Adds no BOS/EOS.
  std::vector<int32_t> Encode(std::string_view text, bool parse_special = true) const;

  // Encode(text, parse_special) with the ids the model expects around a
  // single sequence: BOS when add_bos() (and EOS when add_eos()).
  std::vector<int32_t> EncodeWithSpecialTokens(std::string_view text,
                                               bool parse_special = true) const;

  // The text of `ids`, always valid UTF-8 (invalid bytes become U+FFFD).
  // Ids outside [0, vocab_size()) or without a token are skipped. With
  // `skip_special`, special added tokens are left out.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special = false) const;

  // The id of a token string as it appears in the vocabulary (the byte-level
  // form for BPE pieces: "Ġhello"; the content for added tokens).
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The vocabulary string of `id`, nullopt when there is none.
  std::optional<std::string> IdToToken(int32_t id) const;
  // One more than the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  // True for added tokens marked `special`.
  bool IsSpecial(int32_t id) const;

  // Reads `tokenizer_config.json` for BOS/EOS and the chat template; the
  // tokens it names must be in the vocabulary (else INVALID_ARGUMENT naming
  // the file and field).
  absl::Status LoadConfig(const std::string& path);
  absl::Status ApplyConfig(const TokenizerConfig& config, std::string_view source = "<memory>");
  const TokenizerConfig& config() const { return config_; }

  // BOS/EOS from the config, or else from the post-processor template.
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // Whether EncodeWithSpecialTokens puts BOS first: the config's
  // add_bos_token when given, else whether the post-processor's
  // TemplateProcessing starts with it.
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }

  // Appends the raw bytes of token `id` to `out` (nothing for an unknown id,
  // or a special token when `skip_special`). Decode is the concatenation of
  // these, made valid UTF-8, with a leading Strip decoder applied.
  void AppendTokenBytes(int32_t id, bool skip_special, std::string* out) const;
  // How many leading `strip_char()` characters the decoder removes from the
  // start of the whole text (Strip / Metaspace decoders; 0 for byte-level).
  int strip_leading() const;
  char strip_char() const;

 private:
  Tokenizer();

  // Normalizes, pre-tokenizes and encodes a stretch of text that holds no
  // added token.
  void EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const;

  std::string source_;
  std::unique_ptr<tokenizer::TokenizerParts> parts_;
  TokenizerConfig config_;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  bool add_bos_ = false;
  bool add_eos_ = false;
};

// Turns a stream of token ids into text deltas that never split a UTF-8
// character: the bytes of an incomplete trailing character are held until a
// later token completes them. Invalid sequences become U+FFFD as soon as they
// are known to be invalid. The concatenation of every Add() and the final
// Flush() equals tokenizer.Decode(all ids, skip_special).
//
// Holds a reference to `tokenizer`, which must outlive it. Not thread-safe:
// one decoder per sequence.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false);

  // Text completed by `id`; empty while a character is still incomplete.
  std::string Add(int32_t id);
  // Whatever is held back, with an incomplete trailing character replaced by
  // U+FFFD; the decoder is then reset for a new sequence.
  std::string Flush();
  // Bytes held back because they end in an incomplete character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;
  int stripped_ = 0;  // leading strip characters examined so far
  bool at_start_ = true;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_TOKENIZER_H_
