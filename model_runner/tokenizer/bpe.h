// The BPE model (tokenizer.json's "model" of type BPE): a piece becomes one
// symbol per byte (byte-level vocabularies) or per character, then adjacent
// symbols merge by merge rank, lowest first and leftmost among equals, as
// Hugging Face's Word::merge_all does. With ignore_merges (Llama 3) a piece
// that is itself a vocabulary token maps to it directly. A character missing
// from the vocabulary becomes its <0xNN> byte tokens with byte_fallback,
// else the unk token (once per run with fuse_unk), else nothing.
//
// Thread-safety: Encode may be called from any number of threads; results
// for repeated pieces are cached behind a mutex.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_BPE_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_BPE_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "model_runner/tokenizer/vocabulary.h"

namespace entroserve::tokenizer {

struct BpeOptions {
  bool byte_level = false;  // symbols are bytes in GPT-2's alphabet
  bool ignore_merges = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  int32_t unk_id = -1;
};

class BpeModel {
 public:
  BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  BpeOptions& options() { return options_; }

  // The merge of `left` and `right` into `merged`, at `rank`; the first
  // (lowest-rank) merge of a pair is the one kept.
  void AddMerge(int32_t left, int32_t right, int32_t rank, int32_t merged);
  void ReserveMerges(size_t count) { merges_.reserve(count); }

  // Looks up the <0xNN> and byte-level character tokens of every byte in
  // the model's vocabulary.
  void FindByteTokens(const Vocabulary& vocabulary);

  // Appends the ids of `piece` to `ids`.
  void Encode(std::string_view piece, const Vocabulary& vocabulary,
              std::vector<int32_t>* ids) const;

 private:
  struct Symbol;
  class Cache;

  // The merge of (left, right): (rank, merged id), nullptr when none.
  const std::pair<int32_t, int32_t>* FindMerge(int32_t left, int32_t right) const;
  void PushByteLevelSymbols(std::string_view piece, std::vector<Symbol>* symbols) const;
  void PushCharacterSymbols(std::string_view piece, const Vocabulary& vocabulary,
                            std::vector<Symbol>* symbols) const;
  void PushUnknown(std::vector<Symbol>* symbols) const;
  void MergeSymbols(std::vector<Symbol>* symbols) const;
  void Merge(std::string_view piece, const Vocabulary& vocabulary, std::vector<int32_t>* ids) const;

  BpeOptions options_;
  // (left id << 32 | right id) -> (rank, merged id).
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  // Per byte value: the id of "<0xNN>" and of the byte-level character for
  // that byte, -1 when absent.
  int32_t byte_fallback_ids_[256];
  int32_t byte_char_ids_[256];
  std::unique_ptr<Cache> cache_;
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_BPE_H_
