// DRY's sequence breakers given as strings (GenerateRequest.
// dry_sequence_breakers; llama.cpp's dry_sequence_breakers, by default "\n",
// ":", "\"" and "*"), turned into the token ids the DRY stage takes: runnerd
// has the tokenizer, samplerd keeps taking ids.
//
// As llama.cpp does: a string breaks a repeat at every token whose text
// contains it (so "\n" also breaks at ".\n" or "\n\n"), and where it is
// spread over several tokens: for every token whose text ends with the
// string's beginning, the sequence of that token and the encoding of the
// string's rest (at most 8 tokens in all) breaks a repeat where it stands in
// a row (sampler.v1's dry_sequence_breaker_sequences).
#ifndef ENTROSERVE_SERVICES_RUNNERD_SEQUENCE_BREAKERS_H_
#define ENTROSERVE_SERVICES_RUNNERD_SEQUENCE_BREAKERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/core/configs.h"

namespace entroserve {

// Bounds of a request's breakers (each costs a scan of the vocabulary).
inline constexpr int kMaxSequenceBreakers = 32;
inline constexpr size_t kMaxSequenceBreakerBytes = 40;

struct SequenceBreakers {
  std::vector<int32_t> ids;  // single tokens, ascending and unique
  TokenSequences sequences;  // two or more tokens each, sorted, unique
};

// What `breakers` break at. INVALID_ARGUMENT naming "dry_sequence_breakers[i]"
// for an empty or too long string, or more than kMaxSequenceBreakers of them.
absl::StatusOr<SequenceBreakers> SequenceBreakersOf(absl::Span<const std::string> breakers,
                                                    const Tokenizer& tokenizer);

// Adds `breakers` to the DRY breakers of `config` (dry_sequence_breaker_ids
// and _sequences of chain, entropix and alpha; sequence_breaker_ids and
// _sequences of dry), kept sorted and unique. INVALID_ARGUMENT for a sampler
// without DRY.
absl::Status AddSequenceBreakers(const SequenceBreakers& breakers, SamplerConfig* config);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_SEQUENCE_BREAKERS_H_
