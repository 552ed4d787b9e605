// DRY's sequence breakers given as strings (GenerateRequest.
// dry_sequence_breakers; llama.cpp's dry_sequence_breakers, by default "\n",
// ":", "\"" and "*"), turned into the token ids the DRY stage takes: runnerd
// has the tokenizer, samplerd keeps taking ids.
//
// A string breaks a repeat at every token whose text contains it (so "\n"
// also breaks at ".\n" or "\n\n") and at the tokens it encodes to. llama.cpp
// also matches a breaker spread over several tokens; the DRY stage here
// takes single tokens only, so a breaker longer than one token breaks at each
// of its tokens instead.
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

// The ids `breakers` break at, ascending and unique. INVALID_ARGUMENT naming
// "dry_sequence_breakers[i]" for an empty or too long string, or more than
// kMaxSequenceBreakers of them.
absl::StatusOr<std::vector<int32_t>> SequenceBreakerIds(absl::Span<const std::string> breakers,
                                                        const Tokenizer& tokenizer);

// Adds `ids` to the DRY breakers of `config` (dry_sequence_breaker_ids of
// chain, entropix and alpha, sequence_breaker_ids of dry), kept ascending and
// unique. INVALID_ARGUMENT for a sampler without DRY.
absl::Status AddSequenceBreakers(absl::Span<const int32_t> ids, SamplerConfig* config);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_SEQUENCE_BREAKERS_H_
