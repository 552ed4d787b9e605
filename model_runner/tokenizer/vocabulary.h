// The ids of a tokenizer: the model's vocabulary and the added tokens, both
// ways, with what each id is.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_VOCABULARY_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_VOCABULARY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace entroserve::tokenizer {

// Flags of an id.
inline constexpr uint8_t kIdKnown = 1;    // has a token
inline constexpr uint8_t kIdSpecial = 2;  // an added token marked special
inline constexpr uint8_t kIdAdded = 4;    // an added token

struct Vocabulary {
  // Token -> id: the model's vocabulary, then the added tokens (an added
  // token's content replaces a model token of the same text).
  absl::flat_hash_map<std::string, int32_t> ids;
  std::vector<std::string> tokens;  // id -> token, "" where there is none
  std::vector<uint8_t> flags;       // id -> kId* flags

  // One more than the largest id.
  int32_t size() const { return static_cast<int32_t>(tokens.size()); }

  // Whether `id` is in range and has every bit of `flag`.
  bool Has(int32_t id, uint8_t flag) const {
    return id >= 0 && id < size() && (flags[id] & flag) == flag;
  }

  std::optional<int32_t> Find(std::string_view token) const {
    auto it = ids.find(absl::string_view(token.data(), token.size()));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }

  // The id of `token` when it is a model token (not an added token's
  // content), else -1: what BPE may produce.
  int32_t FindModelToken(std::string_view token) const {
    std::optional<int32_t> id = Find(token);
    return id.has_value() && !(flags[*id] & kIdAdded) ? *id : -1;
  }

  // Ids from 0 to size - 1, none of them known yet.
  void Resize(int32_t size) {
    tokens.resize(size);
    flags.resize(size, 0);
  }

  // Sets `token` as the text of `id` (growing the tables as needed).
  void Set(const std::string& token, int32_t id, uint8_t id_flags) {
    if (id >= size()) {
      tokens.resize(id + 1);
      flags.resize(id + 1, 0);
    }
    ids[token] = id;
    tokens[id] = token;
    flags[id] |= kIdKnown | id_flags;
  }
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_VOCABULARY_H_
