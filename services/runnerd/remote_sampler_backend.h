// The SamplerBackend of a remote samplerd (runnerd --sampler=HOST:PORT): one
// long-lived bidirectional SampleStream; each Sample() call writes the
// step's rows as one SampleRequest and reads the SampleResponse that answers
// it (one batch in flight).
//
// Wire format: logits and attention scores as `wire_dtype` (BF16 by default:
// half the bytes of FLOAT32; LocalSamplerBackend rounds the same way, so both
// backends sample from the same values), the spec with every field set
// (services/wire/row_convert.h's EncodeRows), the state the engine holds, special tokens, and at
// step 0 the prompt as appended_tokens.
//
// Transport of the tensor bytes (`transport`): inline in the message, or,
// when samplerd is on this host, in a shared-memory region this backend owns
// (services/wire/shared_memory.h) with the message naming region and offset.
// kAuto uses shared memory for a loopback address (IsLoopbackTarget) and
// falls back to inline for good, with one log line (per stream of a
// ShardedSamplerBackend), when the region cannot be
// created or samplerd answers that it cannot read it (no row sampled, and
// rows FAILED_PRECONDITION on a `.shared_memory` field); the step is then
// resent inline, so no row fails for it. kSharedMemory does not fall back: those
// errors reach the rows. Tokens are the same either way.
//
// Shared-memory channel: with shared memory in use and options.shm_channel
// on, each new stream first asks samplerd to take its steps through a
// shared-memory channel (services/wire/shared_memory_channel.h: the
// request written into a region, a futex to wake samplerd's thread for the
// stream, the answer back the same way), which saves gRPC's per-message
// work and thread hand-offs (about half of a one-row step's round trip).
// A samplerd that refuses (or predates channels) gets the stream's
// messages, for good, with one log line; a step too large for the channel
// goes as a message. Failures are the stream's: a samplerd that dies breaks
// the stream, and the step is resent on a new one (with a new channel).
//
// Failures: when the stream breaks (samplerd died or restarted, the
// connection dropped) or no answer comes within response_timeout, the call
// is cancelled, and the rows are sent again on a new stream once the channel
// is connected again (gRPC's reconnection backoff, from initial_backoff
// doubling up to max_backoff, and the same backoff between attempts here).
// The rows carry the states the engine holds, so the resent step gives the
// tokens the first attempt would have. Until SampleControl.deadline or
// SampleControl.stop: then UNAVAILABLE (with the last error) or CANCELLED.
// In-band row errors come back as row statuses.
//
// Thread-safety: Sample() is called by one thread at a time (the engine's
// scheduler).
#ifndef ENTROSERVE_SERVICES_RUNNERD_REMOTE_SAMPLER_BACKEND_H_
#define ENTROSERVE_SERVICES_RUNNERD_REMOTE_SAMPLER_BACKEND_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "model_runner/engine/sampler_backend.h"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "services/common/auth.h"
#include "services/common/tls.h"
#include "services/wire/shared_memory.h"
#include "services/wire/shared_memory_channel.h"

namespace entroserve {

enum class SamplerTransport { kAuto, kInline, kSharedMemory };

// "auto", "inline", "shared_memory" (runnerd --sampler_transport).
absl::StatusOr<SamplerTransport> ParseSamplerTransport(absl::string_view name);

struct RemoteSamplerOptions {
  // samplerd's gRPC target: HOST:PORT, or any target gRPC resolves
  // (dns:///NAME:PORT, a Kubernetes headless Service; ipv4:A:P,B:P).
  std::string address;
  // The channel to use; null: the backend makes one of its own
  // (MakeSamplerChannel, own_connection).
  std::shared_ptr<grpc::Channel> channel;
  // Channel security (services/common/tls.h); off by default.
  ClientTlsFiles tls;
  // Sent as "authorization: Bearer TOKEN" on every stream; null: none.
  std::shared_ptr<TokenFile> token;
  // A stream older than this is closed between two steps and a new one
  // opened, so that streams spread again over the replicas behind the
  // target (one added back, or new ones of a scaled-up Deployment); zero:
  // streams live until they break.
  absl::Duration stream_max_age = absl::ZeroDuration();
  DType wire_dtype = DType::kBFloat16;
  SamplerTransport transport = SamplerTransport::kAuto;
  // With shared memory: steps through a shared-memory channel when samplerd
  // takes one (above); false keeps them in the stream's messages.
  bool shm_channel = true;
  // How long a step through the channel spins for its answer before it
  // sleeps on the doorbell (a wake from sleep costs tens of microseconds,
  // more on a virtual machine), a one-row step and one of more rows. On a
  // machine of 8 hardware threads or more, 2 ms for both (a row alone takes
  // ~0.2 ms to sample on a GPU host's cores; the shards' threads spinning
  // side by side leave samplerd cores to sample on); on fewer, 200 us for a
  // one-row step and none for more rows, whose spinning shards would take
  // samplerd's cores.
  absl::Duration shm_channel_spin = DefaultChannelSpin(/*one_row=*/true);
  absl::Duration shm_channel_spin_rows = DefaultChannelSpin(/*one_row=*/false);
  static absl::Duration DefaultChannelSpin(bool one_row);
  // Largest message either way, bytes (runnerd's --max_message_mb).
  int max_message_bytes = 64 << 20;
  // A connected samplerd's answer to one batch; past it the stream counts as
  // broken (a hung samplerd) and the rows go out again on a new one.
  absl::Duration response_timeout = absl::Seconds(30);
  // Reconnection backoff: the first wait, doubled per failed attempt up to
  // max_backoff.
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
};

// A channel to samplerd at options.address, with the options' TLS, message
// limits, reconnection backoff and keepalive. `own_connection`: a TCP
// connection (subchannel pool) of its own, for streams to one samplerd that
// each want their own connection; otherwise the channel is meant to be
// shared by several streams and spreads them round robin over every address
// the target resolves to (following re-resolution).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeSamplerChannel(
    const RemoteSamplerOptions& options, bool own_connection);

// Whether `target` names a gRPC resolver (dns:, ipv4:, ipv6:): possibly
// several samplerd replicas, to spread streams over.
bool IsResolverTarget(absl::string_view target);

class RemoteSamplerBackend final : public SamplerBackend {
 public:
  // A channel that cannot be made (unreadable TLS files; runnerd makes its
  // channels itself at start and reports that there) leaves every call
  // FAILED_PRECONDITION with the reason.
  explicit RemoteSamplerBackend(RemoteSamplerOptions options);
  // Closes the stream (half-close, then waits for it to end).
  ~RemoteSamplerBackend() override;

  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl& control) override;
  std::string Describe() const override { return options_.address; }

  // Streams opened after a broken one (for logs and tests).
  int64_t reconnects() const { return reconnects_.load(); }
  Counters GetCounters() const override { return {reconnects_.load(), fallbacks_.load()}; }
  // Whether the next step's tensors go through shared memory.
  bool using_shared_memory() const { return use_shared_memory_; }

  class StreamCall;  // remote_sampler_backend.cc

 private:
  // How a step's exchange with samplerd ended.
  enum class Outcome { kAnswered, kBroken, kTimedOut, kStopped };

  // Waits (within `control`) for a connected channel and opens a stream.
  absl::Status Connect(const SampleControl& control);
  // Cancels the open stream and waits for it to end.
  void DropStream();
  // Sleeps `duration`, waking early to return false when control says to
  // stop waiting (stop, or the deadline reached).
  bool SleepWithin(absl::Duration duration, const SampleControl& control);
  // A region of at least `bytes`, made anew when the current one is smaller.
  absl::Status EnsureRegion(uint64_t bytes);
  // Closes the open stream when it is older than options_.stream_max_age.
  void RecycleOldStream();
  // kAuto only: inline from now on, saying why once.
  void FallBackToInline(absl::string_view why);
  // Puts the rows in request_: their tensors in the shared-memory region,
  // or inline.
  absl::Status EncodeStep(absl::Span<const Row> rows);
  // An open stream: reconnects when the last one broke between steps.
  absl::Status EnsureStream(const SampleControl& control, std::string* last_error);
  // Whether a new stream should ask for a shared-memory channel.
  bool WantShmChannel() const;
  // Writes `request` on the stream (kept unchanged until the stream's next
  // AwaitWriteDone) and waits for its answer, within the response timeout.
  Outcome SendAndAwait(const ::sampler::v1::SampleRequest* request, const SampleControl& control);
  // Asks samplerd, on the new stream, to take the steps through a channel;
  // a refusal turns channels off for good (saying why once).
  Outcome OpenShmChannel(const SampleControl& control);
  // Sends request_ (through the stream's channel when it has one and the
  // request fits) and waits for the answer, set in *answer. An error for
  // an answer that does not parse (the stream is dropped).
  absl::StatusOr<Outcome> Exchange(const SampleControl& control,
                                   const ::sampler::v1::SampleResponse** answer);
  // Ends a stream that timed out or broke, saying why in last_error; an
  // error when resending cannot help.
  absl::Status DropFailedStream(bool timed_out, std::string* last_error);

  const RemoteSamplerOptions options_;
  std::shared_ptr<grpc::Channel> channel_;  // null when it could not be made
  absl::Status channel_error_;
  std::unique_ptr<::sampler::v1::Sampler::Stub> stub_;
  std::unique_ptr<StreamCall> stream_;
  // The batch being sent: kept until the stream's next AwaitWriteDone.
  ::sampler::v1::SampleRequest request_;
  bool use_shared_memory_ = false;
  std::unique_ptr<SharedMemoryRegion> region_;
  // The request for a channel, kept as request_ is; the last answer that
  // came through a channel; whether samplerd refused a channel.
  ::sampler::v1::SampleRequest shm_channel_request_;
  ::sampler::v1::SampleResponse shm_channel_response_;
  bool shm_channel_refused_ = false;
  bool ever_connected_ = false;
  bool recycled_ = false;  // the stream was closed for its age, not broken
  std::atomic<int64_t> reconnects_{0};
  std::atomic<int64_t> fallbacks_{0};
  // When the open stream was opened (for options_.stream_max_age).
  absl::Time stream_opened_;
};

// The results of `response` for `rows` (which give the vocabulary sizes):
// INTERNAL when the counts differ or a result is malformed; in-band errors
// become row statuses.
absl::StatusOr<std::vector<RowResult>> ResponseToResults(
    absl::Span<const Row> rows, const ::sampler::v1::SampleResponse& response);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_REMOTE_SAMPLER_BACKEND_H_
