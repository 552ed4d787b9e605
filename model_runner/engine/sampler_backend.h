// Where the serving engine's tokens are chosen: one call per engine step with
// every row of the step (sampler/core/row.h's Row: the spans point into the
// engine's forward-pass output and stay valid for the duration of the call).
//
// Two implementations, chosen by runnerd's --sampler flag:
//   local      in process (services/runnerd/local_sampler_backend.h):
//              sampler/sample_row.h's SampleRow, the call samplerd makes;
//   HOST:PORT  a remote samplerd (services/runnerd/remote_sampler_backend.h): one
//              long-lived SampleStream, reconnected when it breaks.
// "Same tokens through either": a row's result is a pure function of its
// fields, and both implementations sample from the same float values. The
// remote one sends logits and attention as BF16 by default, so the local one
// rounds them to BF16 (or to the --sampler_dtype in use) the same way
// (sampler/core/tensor.h's EncodeTensor, then DecodeTensor) before sampling.
//
// No gRPC and no protobuf here: rows and results are the sampler library's
// domain types (sampler/core/row.h).
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
#include "sampler/core/row.h"

namespace entroserve {

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
  // Every row's logits and attention are bfloat16 values widened to float32
  // (the model computes in bfloat16): rounding them through bfloat16 leaves
  // them as they are, so a backend may skip it.
  bool bfloat16_values = false;
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
  virtual absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                        const SampleControl& control) = 0;

  // "local", or the samplerd address: what ModelInfo reports.
  virtual std::string Describe() const = 0;

  // Since the backend was made: streams to a remote sampler opened again
  // after one broke, and streams that fell back from shared memory to
  // sending the bytes inline (for metrics; zero for the local backend).
  struct Counters {
    int64_t reconnects = 0;
    int64_t shared_memory_fallbacks = 0;
  };
  virtual Counters GetCounters() const { return {}; }
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_ENGINE_SAMPLER_BACKEND_H_
