// Added tokens (tokenizer.json's "added_tokens": special tokens such as
// "<|eot_id|>" and any others a model added to its vocabulary), found in the
// raw text before normalization, leftmost then longest, honouring
// lstrip / rstrip / single_word as Hugging Face's AddedVocabulary does.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_ADDED_TOKENS_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_ADDED_TOKENS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace entroserve::tokenizer {

struct AddedToken {
  std::string content;  // never empty
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;       // takes the whitespace before it
  bool rstrip = false;       // takes the whitespace after it
  bool single_word = false;  // only where no word character touches it
};

// An added token found in a text: the bytes [begin, end) it covers
// (whitespace it strips included) and its index in AddedTokens.
struct AddedMatch {
  size_t begin;
  size_t end;
  int index;
};

class AddedTokens {
 public:
  void Add(AddedToken token);

  const AddedToken& operator[](int index) const { return tokens_[index]; }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

  // The added tokens in `text`, in order, not overlapping. Without
  // `parse_special`, special tokens are not looked for.
  std::vector<AddedMatch> Find(std::string_view text, bool parse_special) const;

 private:
  // The index of the longest token allowed at text[begin] (its end in *end),
  // -1 when none.
  int LongestAt(std::string_view text, size_t begin, bool parse_special, size_t* end) const;

  std::vector<AddedToken> tokens_;
  // A trie over the contents, for leftmost-longest matching.
  struct TrieNode {
    absl::flat_hash_map<unsigned char, int32_t> next;
    int32_t token = -1;  // index into tokens_
  };
  std::vector<TrieNode> trie_;
  bool first_byte_[256] = {};
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_ADDED_TOKENS_H_
