// The allowed-token set a row may carry (Row::allowed_tokens): what a grammar
// or JSON-schema engine allows at this step. One form inside the library, a
// bitmask over the vocabulary in 64-bit words (bit id % 64 of word id / 64),
// whichever form it came in on the wire (a bitmask or a sorted id list,
// services/wire/row_convert.h).
#ifndef ENTROSERVE_SAMPLER_CORE_TOKEN_MASK_H_
#define ENTROSERVE_SAMPLER_CORE_TOKEN_MASK_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace entroserve {

// Words of a mask over `vocab_size` tokens.
inline size_t MaskWords(int64_t vocab_size) { return static_cast<size_t>((vocab_size + 63) / 64); }

inline bool MaskAllows(absl::Span<const uint64_t> mask, int32_t id) {
  return (mask[static_cast<size_t>(id) / 64] >> (static_cast<uint32_t>(id) % 64) & 1) != 0;
}

// A mask of `vocab_size` tokens allowing exactly `ids` (each in range).
std::vector<uint64_t> MaskFromIds(absl::Span<const int32_t> ids, int64_t vocab_size);

// The allowed ids of `mask`, ascending.
std::vector<int32_t> MaskIds(absl::Span<const uint64_t> mask);

// A sorted id list as the wire carries it: strictly ascending, each in
// [0, vocab_size). INVALID_ARGUMENT naming `field`[i].
absl::Status CheckSortedIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                            absl::string_view field);

// A row's mask (non-empty): MaskWords(vocab_size) words, no bit at or past
// vocab_size, at least one token allowed. `field` names it
// ("rows[0].allowed_tokens").
absl::Status CheckMask(absl::Span<const uint64_t> mask, int64_t vocab_size,
                       absl::string_view field);

// `logits` with every token the mask does not allow at -inf.
std::vector<float> MaskLogits(absl::Span<const float> logits, absl::Span<const uint64_t> mask);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_TOKEN_MASK_H_
