// ComputeRowSignals (signals.h): apart from signals.cc, which the kernel
// clone tests compile on their own without Abseil's status library.
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sampler/core/row.h"
#include "sampler/core/signals.h"

namespace entroserve {

absl::StatusOr<Signals> ComputeRowSignals(const Row& row, LogitSummary* summary) {
  if (row.logits.empty()) return absl::InvalidArgumentError("logits must not be empty");
  if (!row.attention.empty() &&
      (row.heads < 1 || row.keys < 1 ||
       static_cast<int64_t>(row.attention.size()) != int64_t{row.heads} * row.keys)) {
    return absl::InvalidArgumentError(absl::StrCat("attention has ", row.attention.size(),
                                                   " scores, expected heads * keys = ", row.heads,
                                                   " * ", row.keys));
  }
  Signals signals = ComputeSignals(row.logits, row.attention, row.heads, row.keys, summary);
  if (summary->finite == 0) return absl::InvalidArgumentError("every logit is -inf");
  return signals;
}

}  // namespace entroserve
