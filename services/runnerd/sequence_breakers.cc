#include "services/runnerd/sequence_breakers.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

void Merge(absl::Span<const int32_t> ids, std::vector<int32_t>* into) {
  into->insert(into->end(), ids.begin(), ids.end());
  std::sort(into->begin(), into->end());
  into->erase(std::unique(into->begin(), into->end()), into->end());
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

absl::StatusOr<std::vector<int32_t>> SequenceBreakerIds(absl::Span<const std::string> breakers,
                                                        const Tokenizer& tokenizer) {
  if (absl::Status s = CheckBreakers(breakers); !s.ok()) return s;
  std::vector<int32_t> ids;
  if (breakers.empty()) return ids;
  std::string text;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    text.clear();
    tokenizer.AppendTokenBytes(id, /*skip_special=*/true, &text);
    for (const std::string& breaker : breakers) {
      if (absl::StrContains(text, breaker)) {
        ids.push_back(id);
        break;
      }
    }
  }
  for (const std::string& breaker : breakers) {
    Merge(tokenizer.Encode(breaker, /*parse_special=*/false), &ids);
  }
  return ids;
}

absl::Status AddSequenceBreakers(absl::Span<const int32_t> ids, SamplerConfig* config) {
  if (ids.empty()) return absl::OkStatus();
  return std::visit(
      [ids](auto& c) -> absl::Status {
        using Config = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<Config, DryConfig>) {
          Merge(ids, &c.sequence_breaker_ids);
          return absl::OkStatus();
        } else if constexpr (std::is_same_v<Config, ChainConfig> ||
                             std::is_same_v<Config, EntropixConfig> ||
                             std::is_same_v<Config, AlphaConfig>) {
          Merge(ids, &c.dry_sequence_breaker_ids);
          return absl::OkStatus();
        }
        return absl::InvalidArgumentError(
            absl::StrCat("dry_sequence_breakers: sampler ", Config::kName,
                         " has no DRY stage; use chain, entropix, alpha or dry"));
      },
      *config);
}

}  // namespace entroserve
