#include "sampler/core/token_mask.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace entroserve {

std::vector<uint64_t> MaskFromIds(absl::Span<const int32_t> ids, int64_t vocab_size) {
  std::vector<uint64_t> mask(MaskWords(vocab_size), 0);
  for (int32_t id : ids) mask[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
  return mask;
}

std::vector<int32_t> MaskIds(absl::Span<const uint64_t> mask) {
  std::vector<int32_t> ids;
  for (size_t w = 0; w < mask.size(); ++w) {
    for (uint64_t bits = mask[w]; bits != 0; bits &= bits - 1) {
      ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    }
  }
  return ids;
}

absl::Status CheckSortedIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                            absl::string_view field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "] is ", ids[i], ", outside the vocabulary [0, ", vocab_size, ")"));
    }
    if (i > 0 && ids[i] <= ids[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] is ", ids[i], ", not above ", field, "[", i - 1, "] (",
                       ids[i - 1], "); the list must be ascending without repeats"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMask(absl::Span<const uint64_t> mask, int64_t vocab_size,
                       absl::string_view field) {
  if (mask.size() != MaskWords(vocab_size)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has ", mask.size() * 64,
                                                   " bits; a vocabulary of ", vocab_size,
                                                   " tokens takes ", MaskWords(vocab_size) * 64));
  }
  const uint32_t used = static_cast<uint32_t>(vocab_size % 64);
  if (used != 0 && (mask.back() >> used) != 0) {
    const int64_t bit =
        static_cast<int64_t>(mask.size() - 1) * 64 + used + __builtin_ctzll(mask.back() >> used);
    return absl::InvalidArgumentError(absl::StrCat(
        field, " allows token ", bit, ", outside the vocabulary [0, ", vocab_size, ")"));
  }
  for (uint64_t word : mask) {
    if (word != 0) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat(field, " allows no token: there is nothing to sample"));
}

std::vector<float> MaskLogits(absl::Span<const float> logits, absl::Span<const uint64_t> mask) {
  std::vector<float> out(logits.size(), -std::numeric_limits<float>::infinity());
  for (size_t w = 0; w < mask.size(); ++w) {
    for (uint64_t bits = mask[w]; bits != 0; bits &= bits - 1) {
      const size_t id = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
      out[id] = logits[id];
    }
  }
  return out;
}

}  // namespace entroserve
