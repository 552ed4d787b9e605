#include "services/runnerd/sequence_breakers.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

template <typename T>
void Merge(absl::Span<const T> items, std::vector<T>* into) {
  into->insert(into->end(), items.begin(), items.end());
  std::sort(into->begin(), into->end());
  into->erase(std::unique(into->begin(), into->end()), into->end());
}

// The breaker `text` of token `id`: its id when the text contains the
// breaker, else a sequence for each place where the text ends with the
// breaker's beginning (the token, then the encoding of the breaker's rest).
void AddBreakersOfToken(int32_t id, absl::string_view text, absl::string_view breaker,
                        const Tokenizer& tokenizer, SequenceBreakers* out) {
  if (absl::StrContains(text, breaker)) {
    out->ids.push_back(id);
    return;
  }
  for (size_t pos = text.find(breaker[0]); pos != absl::string_view::npos;
       pos = text.find(breaker[0], pos + 1)) {
    const absl::string_view overlap = text.substr(pos);  // shorter than breaker, or contained
    if (!absl::StartsWith(breaker, overlap)) continue;
    std::vector<int32_t> sequence = {id};
    for (int32_t rest : tokenizer.Encode(std::string(breaker.substr(overlap.size())), false)) {
      if (sequence.size() == kMaxTokenSequenceLength) break;
      sequence.push_back(rest);
    }
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
  SequenceBreakers out;
  std::string text;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    text.clear();
    tokenizer.AppendTokenBytes(id, /*skip_special=*/true, &text);
    if (text.empty()) continue;
    for (const std::string& breaker : breakers)
      AddBreakersOfToken(id, text, breaker, tokenizer, &out);
  }
  Merge<int32_t>({}, &out.ids);  // sorts and removes repeats
  Merge<std::vector<int32_t>>({}, &out.sequences);
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
