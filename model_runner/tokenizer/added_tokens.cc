#include "model_runner/tokenizer/added_tokens.h"

#include <utility>

#include "model_runner/tokenizer/ascii.h"

namespace entroserve::tokenizer {
namespace {

// A byte of a word for single_word: ASCII letters, digits and '_', and any
// byte of a non-ASCII character.
bool IsWordByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c >= 0x80;
}

}  // namespace

void AddedTokens::Add(AddedToken token) {
  if (trie_.empty()) trie_.emplace_back();
  int32_t node = 0;
  for (unsigned char c : token.content) {
    auto it = trie_[node].next.find(c);
    if (it != trie_[node].next.end()) {
      node = it->second;
      continue;
    }
    trie_.emplace_back();
    const int32_t child = static_cast<int32_t>(trie_.size() - 1);
    trie_[node].next[c] = child;
    node = child;
  }
  trie_[node].token = static_cast<int32_t>(tokens_.size());
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
  tokens_.push_back(std::move(token));
}

int AddedTokens::LongestAt(std::string_view text, size_t begin, bool parse_special,
                           size_t* end) const {
  int32_t node = 0;
  int best = -1;
  for (size_t j = begin; j < text.size(); ++j) {
    auto it = trie_[node].next.find(static_cast<unsigned char>(text[j]));
    if (it == trie_[node].next.end()) break;
    node = it->second;
    const int32_t index = trie_[node].token;
    if (index < 0) continue;
    const AddedToken& token = tokens_[index];
    if (token.special && !parse_special) continue;
    if (token.single_word) {
      const bool left_ok = begin == 0 || !IsWordByte(text[begin - 1]);
      const bool right_ok = j + 1 == text.size() || !IsWordByte(text[j + 1]);
      if (!left_ok || !right_ok) continue;
    }
    best = index;
    *end = j + 1;
  }
  return best;
}

std::vector<AddedMatch> AddedTokens::Find(std::string_view text, bool parse_special) const {
  std::vector<AddedMatch> matches;
  if (trie_.empty()) return matches;
  size_t previous_end = 0;
  for (size_t i = 0; i < text.size();) {
    size_t end = 0;
    const int best = first_byte_[static_cast<unsigned char>(text[i])]
                         ? LongestAt(text, i, parse_special, &end)
                         : -1;
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& token = tokens_[best];
    size_t begin = i;
    if (token.lstrip) {
      while (begin > previous_end && IsAsciiSpace(text[begin - 1])) --begin;
    }
    if (token.rstrip) {
      while (end < text.size() && IsAsciiSpace(text[end])) ++end;
    }
    matches.push_back({begin, end, best});
    previous_end = end;
    i = end;
  }
  return matches;
}

}  // namespace entroserve::tokenizer
