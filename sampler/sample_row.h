// Sampling one row end to end, the one call behind every path: samplerd's
// rows (services/samplerd/row_sampling.h) and runnerd's in-process sampler
// (services/runnerd/local_sampler_backend.h).
#ifndef ENTROSERVE_SAMPLER_SAMPLE_ROW_H_
#define ENTROSERVE_SAMPLER_SAMPLE_ROW_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sampler/core/row.h"

namespace entroserve {

// Checks `row` (ValidateRow), applies its allowed-token set (the logits of
// the tokens it does not allow become -inf, for the signals, the draw, the
// logprob and top_logprobs alike; special tokens it does not allow are not
// inserted; FAILED_PRECONDITION when every allowed token's logit is -inf),
// creates its sampler, checks that a sampler
// that needs its state got it, pushes the appended tokens onto the state,
// samples and checks the token, and adds the row's top_logprobs most
// probable tokens (TopLogprobs). The result's state is the sequence's new
// state (stamped with the sampler's name and next_step = step + 1), its seed
// the row's. Errors name `prefix` ("rows[3]."). Never throws: an exception
// becomes an INTERNAL status. Thread-safe; a pure function of the row.
// Logits given as bfloat16 bits (Row::logits_bf16) are widened first, and
// sampled exactly as the same values in Row::logits would be; errors about
// their values then name `logits`.
RowResult SampleRow(const Row& row, absl::string_view prefix);

// The `n` most probable tokens of `logits` with their log-probabilities
// under softmax(logits) (nats), most probable first, ties by id ascending;
// fewer when fewer tokens are unmasked. `logits` as ValidateRow accepts them.
std::vector<TokenLogprob> TopLogprobs(absl::Span<const float> logits, int32_t n);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_SAMPLE_ROW_H_
