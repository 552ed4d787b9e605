// sampler.v1.Sampler over the gRPC callback API: thin handlers that hand each
// batch to a WorkerPool, where every row is parsed, sampled and converted
// (row_sampling.h), and answer when all rows are done, results in row order.
//
// Contract:
// - Results depend on nothing but each row (seed, step, logits, attention,
//   spec, state): not on the batch, the stream, the pool size or timing.
// - A bad row gets an in-band RowError; the call and the other rows go on.
//   A broken stream (e.g. an oversize message) ends with a gRPC status; so
//   does a message that does not parse (INVALID_ARGUMENT "message N of the
//   stream could not be parsed ...", N counted from 0), once the messages
//   before it are answered.
// - Reactions never block: they only queue work on the pool.
// - SampleStream keeps one read and one write in flight, and at most
//   kMaxBatchesInFlight batches read but not yet answered per stream (reading
//   stops while that many wait: flow control pushes back on the client).
// - Rows of a call that was cancelled or ran past its deadline are not
//   sampled (they get CANCELLED / DEADLINE_EXCEEDED).
// - Tensors may name a shared-memory region instead of carrying their bytes
//   (services/wire/shared_memory.h), read through the service's reader; without
//   one such rows get FAILED_PRECONDITION.
// - A stream of a client on this host may move its batches into a
//   shared-memory channel (SampleRequest.channel, services/wire/
//   shared_memory_channel.h), served on a thread of its own (at most
//   kMaxChannels at once in the process), which samples rows itself beside
//   the pool (a one-row batch alone) and waits for the pool's.
//
// - With bearer tokens required and checked here (services/common/auth.h),
//   a call without the right token ends UNAUTHENTICATED before anything else.
// - Every row is observed in the metrics (services/samplerd/sampler_metrics.h).
//
// Thread-safety: thread-safe. The service and what its Environment points
// to must outlive the grpc::Server they are registered with (Shutdown() and
// Wait() it first).
#ifndef ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_SERVICE_H_
#define ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "services/common/auth.h"
#include "services/common/worker_pool.h"
#include "services/samplerd/sampler_metrics.h"
#include "services/wire/shared_memory.h"

namespace entroserve {

// Every method takes its request as raw bytes and parses it itself
// (services/common/message_bytes.h): bytes that do not parse get
// INVALID_ARGUMENT saying so, not gRPC's bare UNIMPLEMENTED, and on a
// stream the messages after them are not dropped silently.
using SamplerServiceBase = ::sampler::v1::Sampler::WithRawCallbackMethod_SampleStream<
    ::sampler::v1::Sampler::WithRawCallbackMethod_Sample<
        ::sampler::v1::Sampler::WithRawCallbackMethod_ListSamplers<
            ::sampler::v1::Sampler::Service>>>;

class SamplerService final : public SamplerServiceBase {
 public:
  // Batches read ahead on a stream while earlier ones are sampled or written.
  static constexpr int kMaxBatchesInFlight = 2;
  // Shared-memory channels served at once (a thread each); past it a
  // request for one is refused and the stream keeps its messages.
  static constexpr int kMaxChannels = 256;

  // What the service works with; not owned.
  struct Environment {
    WorkerPool* pool = nullptr;  // required
    // Null refuses tensors in shared memory (samplerd --shared_memory=false).
    SharedMemoryReader* shm = nullptr;
    SamplerMetrics* metrics = nullptr;  // null: none kept
    const AuthGate* auth = nullptr;     // null: no tokens checked here
    // A channel's thread spins up to `channel_spin` for its next request
    // before it sleeps, while fewer than `channel_spinners` threads of the
    // process spin (samplerd --channel_spin_us, --channel_spinners): at one
    // row a step, the wake-up of a sleeping thread is a large part of the
    // round trip.
    absl::Duration channel_spin = absl::ZeroDuration();
    int channel_spinners = 0;
  };

  explicit SamplerService(Environment environment);

  // sampler.v1.SampleRequest messages in, sampler.v1.SampleResponse out.
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SampleStream(
      grpc::CallbackServerContext* context) override;
  // sampler.v1.SampleRequest in, sampler.v1.SampleResponse out.
  grpc::ServerUnaryReactor* Sample(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  // sampler.v1.ListSamplersRequest in, sampler.v1.ListSamplersResponse out.
  grpc::ServerUnaryReactor* ListSamplers(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  // OK, or UNAUTHENTICATED: the call lacks the token this service checks.
  absl::Status CheckAuth(grpc::CallbackServerContext* context) const;

  const Environment env_;
  // Built once: ListSamplers() of the registry as the wire message.
  const ::sampler::v1::ListSamplersResponse samplers_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_SERVICE_H_
