// Where the serving engine's tokens are chosen: one call per engine step with
// every row of the step (DESIGN.md "SampleStream carries batches of rows").
//
// Two implementations, chosen by runnerd's --sampler flag:
//   local      in process (services/runnerd/local_sampler_backend.h): the sampler
//              registry, with the same checks and the same sampling code as
//              samplerd (services/wire/sampler_convert.h, row_sampling.h);
//   HOST:PORT  a remote samplerd (services/runnerd/remote_sampler_backend.h): one
//              long-lived SampleStream, reconnected when it breaks.
// "Same tokens through either": a row's result is a pure function of its
// fields, and both implementations sample from the same float values. The
// remote one sends logits and attention as BF16 by default, so the local one
// rounds them to BF16 (or to the --sampler_dtype in use) the same way
// (sampler/core/tensor.h's EncodeTensor, then DecodeTensor) before sampling.
//
// No gRPC and no protobuf here: rows and results are the sampler library's
// domain types (sampler/core/types.h, sampler/core/configs.h).
#ifndef ENTROSERVE_MODEL_RUNNER_ENGINE_SAMPLER_BACKEND_H_
#define ENTROSERVE_MODEL_RUNNER_ENGINE_SAMPLER_BACKEND_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sampler/core/configs.h"
#include "sampler/core/types.h"

namespace entroserve {

// One sequence's step, as the engine builds it. The spans point into the
// engine's forward-pass output and stay valid for the duration of the call.
struct SamplerRow {
  // The engine's name of the sequence ("runnerd-17"); echoed in errors.
  std::string sequence_id;
  // Index of this step in the sequence (0 for the first generated token).
  int64_t step = 0;
  // The sampler and its config (checked when the request was admitted).
  SamplerConfig config;
  uint64_t seed = 0;
  // The state returned with the previous step; empty at step 0.
  SamplerState state;
  // Next-token logits [V], float32 as the model produced them.
  absl::Span<const float> logits;
  // Pre-softmax attention scores [heads, keys] of the last layer; empty for
  // none.
  absl::Span<const float> attention;
  int32_t heads = 0;
  int32_t keys = 0;
  SpecialTokens special_tokens;
  // Tokens appended to the sequence that the sampler did not choose: the
  // prompt at step 0.
  absl::Span<const int32_t> appended_tokens;
};

// The answer for one row.
struct SamplerRowResult {
  // Not OK: this row failed (an in-band error; the other rows are unaffected)
  // and nothing below is set.
  absl::Status status;
  RowOutput output;
  // The sequence's new state, to send back with its next step.
  SamplerState state;
  // The seed used (echoed).
  uint64_t seed = 0;
};

// What bounds one Sample() call besides its rows.
struct SampleControl {
  // Past this, a call that cannot reach its sampler gives up with
  // UNAVAILABLE. A reachable sampler's answer is never cut short by it.
  absl::Time deadline = absl::InfiniteFuture();
  // Polled while the call waits (for an unreachable sampler, or for an
  // answer): true makes it give up and return CANCELLED soon after. The
  // engine says true once no row's client still waits, or at shutdown.
  // May be empty.
  std::function<bool()> stop;
};

// Thread-safety: implementations are called by one thread at a time (the
// engine's scheduler); they need not be thread-safe, but must be safe to
// destroy from another thread once no call is running.
class SamplerBackend {
 public:
  virtual ~SamplerBackend() = default;

  // Samples every row. On success, one result per row, in row order (a bad
  // row gets its own error in its result). A status for the call as a whole
  // means no row was sampled: UNAVAILABLE when the sampler could not be
  // reached before control.deadline, CANCELLED when control.stop said so.
  // The caller may call again with the same rows (states included) and gets
  // the same tokens.
  virtual absl::StatusOr<std::vector<SamplerRowResult>> Sample(absl::Span<const SamplerRow> rows,
                                                               const SampleControl& control) = 0;

  // "local", or the samplerd address: what ModelInfo reports.
  virtual std::string Describe() const = 0;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_ENGINE_SAMPLER_BACKEND_H_
