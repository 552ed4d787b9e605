#include "services/runnerd/sequence_breakers.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

template <typename T>
void SortUnique(std::vector<T>* items) {
  std::sort(items->begin(), items->end());
  items->erase(std::unique(items->begin(), items->end()), items->end());
}

template <typename T>
void Merge(absl::Span<const T> items, std::vector<T>* into) {
  into->insert(into->end(), items.begin(), items.end());
  SortUnique(into);
}

// A breaker string with the encodings of its proper suffixes, each made
// once rather than for every token that ends with the matching beginning.
struct Breaker {
  Breaker(const std::string& text, const Tokenizer& tokenizer) : text(text), rest(text.size()) {
    for (size_t k = 1; k < text.size(); ++k) {
      rest[k] = tokenizer.Encode(text.substr(k), /*parse_special=*/false);
      if (rest[k].size() >= kMaxTokenSequenceLength) rest[k].resize(kMaxTokenSequenceLength - 1);
    }
  }
  std::string text;
  std::vector<std::vector<int32_t>> rest;  // [k]: the tokens of text[k..], k >= 1
};

// What token `id` (of text `token`) adds for `breaker`: its id when its text
// contains the breaker, else a sequence for each place where its text ends
// with the breaker's beginning (the token, then the tokens of the rest).
void AddBreakersOfToken(int32_t id, absl::string_view token, const Breaker& breaker,
                        SequenceBreakers* out) {
  const absl::string_view text = breaker.text;
  if (absl::StrContains(token, text)) {
    out->ids.push_back(id);
    return;
  }
  for (size_t pos = token.find(text[0]); pos != absl::string_view::npos;
       pos = token.find(text[0], pos + 1)) {
    const absl::string_view overlap = token.substr(pos);  // shorter than the breaker here
    if (!absl::StartsWith(text, overlap)) continue;
    std::vector<int32_t> sequence = {id};
    const std::vector<int32_t>& rest = breaker.rest[overlap.size()];
    sequence.insert(sequence.end(), rest.begin(), rest.end());
    out->sequences.push_back(std::move(sequence));
  }
}

absl::Status CheckBreakers(absl::Span<const std::string> breakers) {
  if (breakers.size() > static_cast<size_t>(kMaxSequenceBreakers)) {
    return absl::InvalidArgumentError(absl::StrCat("dry_sequence_breakers has ", breakers.size(),
                                                   " strings; at most ", kMaxSequenceBreakers));
  }
  for (size_t i = 0; i < breakers.size(); ++i) {
    if (breakers[i].empty() || breakers[i].size() > kMaxSequenceBreakerBytes) {
      return absl::InvalidArgumentError(absl::StrCat("dry_sequence_breakers[", i, "] has ",
                                                     breakers[i].size(), " bytes; must be 1 to ",
                                                     kMaxSequenceBreakerBytes));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SequenceBreakers> SequenceBreakersOf(absl::Span<const std::string> breakers,
                                                    const Tokenizer& tokenizer) {
  if (absl::Status s = CheckBreakers(breakers); !s.ok()) return s;
  std::vector<Breaker> prepared;
  for (const std::string& breaker : breakers) prepared.emplace_back(breaker, tokenizer);
  SequenceBreakers out;
  std::string token;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    token.clear();
    tokenizer.AppendTokenBytes(id, /*skip_special=*/true, &token);
    if (token.empty()) continue;
    for (const Breaker& breaker : prepared) AddBreakersOfToken(id, token, breaker, &out);
  }
  SortUnique(&out.ids);
  SortUnique(&out.sequences);
  return out;
}

absl::Status AddSequenceBreakers(const SequenceBreakers& breakers, SamplerConfig* config) {
  if (breakers.ids.empty() && breakers.sequences.empty()) return absl::OkStatus();
  const absl::Span<const int32_t> ids = breakers.ids;
  const absl::Span<const std::vector<int32_t>> sequences = breakers.sequences;
  return std::visit(
      [&](auto& c) -> absl::Status {
        using Config = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<Config, DryConfig>) {
          Merge(ids, &c.sequence_breaker_ids);
          Merge(sequences, &c.sequence_breaker_sequences);
          return absl::OkStatus();
        } else if constexpr (std::is_same_v<Config, ChainConfig> ||
                             std::is_same_v<Config, EntropixConfig> ||
                             std::is_same_v<Config, AlphaConfig>) {
          Merge(ids, &c.dry_sequence_breaker_ids);
          Merge(sequences, &c.dry_sequence_breaker_sequences);
          return absl::OkStatus();
        }
        return absl::InvalidArgumentError(
            absl::StrCat("dry_sequence_breakers: sampler ", Config::kName,
                         " has no DRY stage; use chain, entropix, alpha or dry"));
      },
      *config);
}

}  // namespace entroserve
