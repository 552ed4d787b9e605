#include "services/runnerd/remote_sampler_backend.h"

#include <algorithm>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sampler/base/status_macros.h"
#include "services/common/log.h"
#include "services/wire/row_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// How often a wait for the channel or an answer looks at SampleControl.stop.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// Each area of a shared-memory channel (the region, 3 MiB, gives each about
// 1.5): a step's request without its tensors (specs, states) and its
// answer fit many times over; one that does not (long prompts at step 0)
// goes as a message.
constexpr uint64_t kShmChannelBytes = uint64_t{1} << 20;

// Whether samplerd refused the step for not reading the shared memory: no
// row succeeded and some failed with FAILED_PRECONDITION on a
// ".shared_memory" field (samplerd is on another host, in another /dev/shm,
// runs as another user, or with --shared_memory=false).
bool RefusedSharedMemory(const std::vector<RowResult>& results) {
  bool refused = false;
  for (const RowResult& result : results) {
    if (result.status.ok()) return false;
    refused = refused || (result.status.code() == absl::StatusCode::kFailedPrecondition &&
                          absl::StrContains(result.status.message(), ".shared_memory"));
  }
  return refused;
}

}  // namespace

absl::Duration RemoteSamplerOptions::DefaultChannelSpin(bool one_row) {
  if (std::thread::hardware_concurrency() >= 8) return absl::Milliseconds(2);
  return one_row ? absl::Microseconds(200) : absl::ZeroDuration();
}

// One SampleStream over the callback API: Send() starts a read and a write
// (one batch in flight), Await() waits for the answer or the end.
class RemoteSamplerBackend::StreamCall final
    : public grpc::ClientBidiReactor<v1::SampleRequest, v1::SampleResponse> {
 public:
  // `token`: sent as a bearer token when not empty.
  StreamCall(v1::Sampler::Stub* stub, const std::string& token) {
    if (!token.empty()) context_.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    stub->async()->SampleStream(&context_, this);
    // The hold keeps OnDone back until Close or CancelAndWait releases it:
    // without it a call that ended on its own (samplerd gone) could run
    // OnDone before a later Send's or Close's operations start, and the
    // owner, seeing done_, would delete the reactor while gRPC still runs
    // them (a use-after-free ThreadSanitizer found).
    AddHold();
    StartCall();
  }

  // Waits for the write in flight to complete: its OnWriteDone can come
  // after the answer to it, and until then gRPC may read its message and
  // allows no other write.
  void AwaitWriteDone() {
    absl::MutexLock lock(&mu_);
    auto write_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_ || done_; };
    mu_.Await(absl::Condition(&write_done));
  }

  // Starts the read of the answer and the write of `request` (which must
  // stay unchanged until the next AwaitWriteDone). False when the stream
  // broke.
  bool Send(const v1::SampleRequest* request) {
    AwaitWriteDone();
    bool start_read = false;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) return false;
      answered_ = false;
      writing_ = true;
      start_read = !reading_;  // a read KeepReading started takes the answer
      reading_ = true;
    }
    if (start_read) StartRead(&response_);
    StartWrite(request);
    return true;
  }

  // Keeps a read pending while the steps go through the channel: without
  // one (and with the hold) nothing would tell this reactor that samplerd
  // went away, and a step would wait out the response timeout.
  void KeepReading() {
    {
      absl::MutexLock lock(&mu_);
      if (broken_ || reading_) return;
      reading_ = true;
    }
    StartRead(&response_);
  }

  // Waits until the answer comes, the stream breaks, `deadline` passes or
  // `stop` says so (polled every kPollInterval).
  Outcome Await(absl::Time deadline, const std::function<bool()>& stop) {
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return answered_ || broken_; };
    while (!settled()) {
      const absl::Time now = absl::Now();
      if (now >= deadline) return Outcome::kTimedOut;
      mu_.AwaitWithDeadline(absl::Condition(&settled), std::min(deadline, now + kPollInterval));
      if (!settled() && stop) {
        mu_.Unlock();
        const bool stopping = stop();
        mu_.Lock();
        if (stopping && !settled()) return Outcome::kStopped;
      }
    }
    return answered_ ? Outcome::kAnswered : Outcome::kBroken;
  }

  const v1::SampleResponse& response() const { return response_; }

  // The shared-memory channel samplerd serves for this stream, if any
  // (the owner's thread only); it lives and dies with the stream.
  ChannelClient* shm_channel() const { return shm_channel_.get(); }
  void set_shm_channel(std::unique_ptr<ChannelClient> channel) {
    shm_channel_ = std::move(channel);
  }

  // Whether the stream can no longer carry a batch (it ended or failed).
  bool broken() {
    absl::MutexLock lock(&mu_);
    return broken_;
  }

  // Cancels the call and waits for OnDone; the status it ended with.
  grpc::Status CancelAndWait() {
    context_.TryCancel();
    ReleaseHold();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

  // Half-closes and waits for the end (a clean close), at most `timeout`;
  // cancels after that.
  void Close(absl::Duration timeout) {
    StartWritesDone();
    ReleaseHold();
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&done_), timeout)) {
      mu_.Unlock();
      context_.TryCancel();
      mu_.Lock();
      mu_.Await(absl::Condition(&done_));
    }
  }

  // What ended the stream: its status, or "connection lost" while the
  // status has not come.
  std::string Error() {
    absl::MutexLock lock(&mu_);
    if (!done_) return "connection lost";
    return absl::StrCat("status ", status_.error_code(), ": ", status_.error_message());
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) broken_ = true;
  }
  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (ok) {
      answered_ = true;
    } else {
      broken_ = true;
    }
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    broken_ = true;
    done_ = true;
  }

 private:
  // Once: no operation starts after it (only the owner's thread starts them).
  void ReleaseHold() {
    if (held_) RemoveHold();
    held_ = false;
  }

  grpc::ClientContext context_;
  bool held_ = true;  // the owner's thread only
  std::unique_ptr<ChannelClient> shm_channel_;
  v1::SampleResponse response_;
  absl::Mutex mu_;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<SamplerTransport> ParseSamplerTransport(absl::string_view name) {
  if (name == "auto") return SamplerTransport::kAuto;
  if (name == "inline") return SamplerTransport::kInline;
  if (name == "shared_memory") return SamplerTransport::kSharedMemory;
  return absl::InvalidArgumentError(
      absl::StrCat("must be auto, inline or shared_memory, got \"", name, "\""));
}

absl::StatusOr<std::vector<RowResult>> ResponseToResults(absl::Span<const Row> rows,
                                                         const v1::SampleResponse& response) {
  if (static_cast<size_t>(response.results_size()) != rows.size()) {
    return absl::InternalError(absl::StrCat("samplerd answered ", response.results_size(),
                                            " results for ", rows.size(), " rows"));
  }
  std::vector<RowResult> results;
  results.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    results.push_back(DecodeResult(response.results(static_cast<int>(i)), rows[i].vocab_size(),
                                   absl::StrCat("results[", i, "]")));
  }
  return results;
}

bool IsResolverTarget(absl::string_view target) {
  return absl::StartsWith(target, "dns:") || absl::StartsWith(target, "ipv4:") ||
         absl::StartsWith(target, "ipv6:");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeSamplerChannel(
    const RemoteSamplerOptions& options, bool own_connection) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Reconnect quickly after samplerd restarts, backing off exponentially.
  const int initial_ms = static_cast<int>(absl::ToInt64Milliseconds(options.initial_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::max(1, initial_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::max(1, initial_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_backoff)));
  // As samplerd does for its side: open each stream's window to a whole
  // message rather than growing it from 64 KiB.
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, options.max_message_bytes);
  // Notice a samplerd host that went away without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (own_connection) {
    // Several backends to one samplerd (ShardedSamplerBackend) would
    // otherwise share one subchannel, one TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  } else {
    // Each new stream goes to the next ready address (replicas behind a
    // headless Service), not all to the first.
    args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   MakeChannelCredentials(options.tls, "--sampler_tls_", &args));
  return grpc::CreateCustomChannel(options.address, credentials, args);
}

RemoteSamplerBackend::RemoteSamplerBackend(RemoteSamplerOptions options)
    : options_(std::move(options)) {
  channel_ = options_.channel;
  if (channel_ == nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeSamplerChannel(options_, /*own_connection=*/true);
    if (channel.ok()) {
      channel_ = *std::move(channel);
    } else {
      channel_error_ = channel.status();
    }
  }
  if (channel_ != nullptr) stub_ = v1::Sampler::NewStub(channel_);
  use_shared_memory_ =
      options_.transport == SamplerTransport::kSharedMemory ||
      (options_.transport == SamplerTransport::kAuto && IsLoopbackTarget(options_.address));
}

absl::Status RemoteSamplerBackend::EnsureRegion(uint64_t bytes) {
  if (region_ && region_->size() >= bytes) return absl::OkStatus();
  // Room to grow: a batch that gains rows does not make a region per step.
  region_.reset();
  absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> region =
      SharedMemoryRegion::Create(bytes + bytes / 2);
  if (!region.ok()) return region.status();
  region_ = *std::move(region);
  return absl::OkStatus();
}

void RemoteSamplerBackend::FallBackToInline(absl::string_view why) {
  Log(LogLevel::kWarning, absl::StrCat("sending tensors to samplerd at ", options_.address,
                                       " in the messages, not through shared memory: ", why));
  ++fallbacks_;
  use_shared_memory_ = false;
  region_.reset();
}

RemoteSamplerBackend::~RemoteSamplerBackend() {
  if (stream_) stream_->Close(absl::Seconds(1));
}

void RemoteSamplerBackend::DropStream() {
  if (!stream_) return;
  stream_->CancelAndWait();
  stream_.reset();
}

bool RemoteSamplerBackend::SleepWithin(absl::Duration duration, const SampleControl& control) {
  const absl::Time until = absl::Now() + duration;
  while (true) {
    if (control.stop && control.stop()) return false;
    const absl::Time now = absl::Now();
    if (now >= control.deadline) return false;
    if (now >= until) return true;
    absl::SleepFor(std::min({kPollInterval, until - now, control.deadline - now}));
  }
}

void RemoteSamplerBackend::RecycleOldStream() {
  if (!stream_ || options_.stream_max_age <= absl::ZeroDuration() ||
      absl::Now() - stream_opened_ < options_.stream_max_age) {
    return;
  }
  // Between two steps nothing is in flight: a clean close, then the next
  // Connect opens a stream on whichever address round robin picks.
  stream_->Close(absl::Seconds(1));
  stream_.reset();
  recycled_ = true;
}

absl::Status RemoteSamplerBackend::Connect(const SampleControl& control) {
  while (true) {
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) {
      stream_ = std::make_unique<StreamCall>(
          stub_.get(), options_.token == nullptr ? std::string() : options_.token->First());
      stream_opened_ = absl::Now();
      if (ever_connected_ && !recycled_) ++reconnects_;
      ever_connected_ = true;
      recycled_ = false;
      return absl::OkStatus();
    }
    if (control.stop && control.stop()) {
      return absl::CancelledError("stopped while waiting for samplerd");
    }
    const absl::Time now = absl::Now();
    if (now >= control.deadline) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to samplerd at ", options_.address));
    }
    channel_->WaitForStateChange(
        state, absl::ToChronoTime(std::min(control.deadline, now + kPollInterval)));
  }
}

absl::Status RemoteSamplerBackend::EncodeStep(absl::Span<const Row> rows) {
  if (use_shared_memory_) {
    if (absl::Status s = EnsureRegion(SharedMemoryBytes(rows, options_.wire_dtype)); !s.ok()) {
      if (options_.transport == SamplerTransport::kSharedMemory) return s;
      FallBackToInline(s.message());
    }
  }
  EncodeRows(rows, options_.wire_dtype, &request_, use_shared_memory_ ? region_.get() : nullptr);
  return absl::OkStatus();
}

absl::Status RemoteSamplerBackend::EnsureStream(const SampleControl& control,
                                                std::string* last_error) {
  // A stream that ended while idle (samplerd shut down between steps).
  if (stream_ && stream_->broken()) {
    *last_error = absl::StrCat("the stream to samplerd at ", options_.address,
                               " ended between steps: ", stream_->Error());
    Log(LogLevel::kWarning, absl::StrCat(*last_error, "; reconnecting"));
    DropStream();
  }
  if (stream_) return absl::OkStatus();
  absl::Status s = Connect(control);
  if (s.code() == absl::StatusCode::kUnavailable && !last_error->empty()) {
    return absl::UnavailableError(absl::StrCat(s.message(), " (", *last_error, ")"));
  }
  return s;
}

// A stream asks once: an answer either attaches the channel or refuses it
// for good, and a stream whose asking failed is replaced.
bool RemoteSamplerBackend::WantShmChannel() const {
  return use_shared_memory_ && options_.shm_channel && !shm_channel_refused_ &&
         stream_->shm_channel() == nullptr;
}

RemoteSamplerBackend::Outcome RemoteSamplerBackend::SendAndAwait(const v1::SampleRequest* request,
                                                                 const SampleControl& control) {
  if (!stream_->Send(request)) return Outcome::kBroken;
  return stream_->Await(absl::Now() + options_.response_timeout, control.stop);
}

RemoteSamplerBackend::Outcome RemoteSamplerBackend::OpenShmChannel(const SampleControl& control) {
  auto refuse = [this](absl::string_view why) {
    shm_channel_refused_ = true;
    Log(LogLevel::kWarning,
        absl::StrCat("steps to samplerd at ", options_.address,
                     " go in the stream's messages, not through a shared-memory channel: ", why));
    return Outcome::kAnswered;
  };
  absl::StatusOr<std::unique_ptr<ChannelClient>> channel = ChannelClient::Create(kShmChannelBytes);
  if (!channel.ok()) return refuse(channel.status().message());
  shm_channel_request_.mutable_channel()->set_region((*channel)->name());
  const Outcome outcome = SendAndAwait(&shm_channel_request_, control);
  if (outcome != Outcome::kAnswered) return outcome;
  const v1::SampleResponse& answer = stream_->response();
  if (!answer.has_channel()) return refuse("samplerd does not know channels");
  if (!answer.channel().attached()) return refuse(answer.channel().error());
  stream_->set_shm_channel(*std::move(channel));
  return Outcome::kAnswered;
}

absl::StatusOr<RemoteSamplerBackend::Outcome> RemoteSamplerBackend::Exchange(
    const SampleControl& control, const v1::SampleResponse** answer) {
  ChannelClient* channel = use_shared_memory_ ? stream_->shm_channel() : nullptr;
  const size_t bytes = channel != nullptr ? request_.ByteSizeLong() : 0;
  if (channel == nullptr || bytes > channel->capacity()) {
    *answer = &stream_->response();
    return SendAndAwait(&request_, control);
  }
  stream_->KeepReading();
  request_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(channel->request_area()));
  channel->Post(static_cast<uint32_t>(bytes));
  const absl::Time deadline = absl::Now() + options_.response_timeout;
  // A wake from sleep is one of several in a step's round trip (runnerd's
  // shard threads, samplerd's channel thread and pool): each costs tens of
  // microseconds on a virtual machine.
  absl::Duration spin =
      request_.rows_size() == 1 ? options_.shm_channel_spin : options_.shm_channel_spin_rows;
  // Between sleeps: whether the stream broke (samplerd gone), stop, the
  // response timeout.
  while (!channel->Wait(std::min(kPollInterval, deadline - absl::Now()), spin)) {
    spin = absl::ZeroDuration();
    if (stream_->broken()) return Outcome::kBroken;
    if (control.stop && control.stop()) return Outcome::kStopped;
    if (absl::Now() >= deadline) return Outcome::kTimedOut;
  }
  absl::StatusOr<absl::string_view> got = channel->Answer();
  if (got.ok() &&
      shm_channel_response_.ParseFromArray(got->data(), static_cast<int>(got->size()))) {
    *answer = &shm_channel_response_;
    return Outcome::kAnswered;
  }
  DropStream();
  return absl::InternalError(
      got.ok() ? absl::StrCat("samplerd's answer through the shared-memory channel (", got->size(),
                              " bytes) does not parse as a sampler.v1.SampleResponse")
               : std::string(got.status().message()));
}

absl::Status RemoteSamplerBackend::DropFailedStream(bool timed_out, std::string* last_error) {
  if (timed_out) {
    *last_error = absl::StrCat("no answer from samplerd within ",
                               absl::FormatDuration(options_.response_timeout));
    DropStream();
    return absl::OkStatus();
  }
  const grpc::Status status = stream_->CancelAndWait();
  *last_error = absl::StrCat(
      "the stream to samplerd at ", options_.address,
      " broke: ", status.error_message().empty() ? "connection lost" : status.error_message());
  stream_.reset();
  // A status that resending cannot fix (samplerd refused the message).
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
      status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), *last_error);
  }
  return absl::OkStatus();
}

// Sends the step and waits for its answer; on a broken stream or a timeout,
// reconnects with backoff and resends, until control says to stop. Every
// resend is the same request, so the tokens do not change (the rows carry
// their seeds and states).
absl::StatusOr<std::vector<RowResult>> RemoteSamplerBackend::Sample(absl::Span<const Row> rows,
                                                                    const SampleControl& control) {
  if (channel_ == nullptr) return absl::FailedPreconditionError(channel_error_.message());
  // The message of the last write may still be read by gRPC until its
  // OnWriteDone.
  if (stream_) stream_->AwaitWriteDone();
  RecycleOldStream();
  RETURN_IF_ERROR(EncodeStep(rows));
  absl::Duration backoff = options_.initial_backoff;
  std::string last_error;
  while (true) {
    RETURN_IF_ERROR(EnsureStream(control, &last_error));
    Outcome outcome = WantShmChannel() ? OpenShmChannel(control) : Outcome::kAnswered;
    const v1::SampleResponse* answer = nullptr;
    if (outcome == Outcome::kAnswered) {
      ASSIGN_OR_RETURN(outcome, Exchange(control, &answer));
    }
    if (outcome == Outcome::kAnswered) {
      absl::StatusOr<std::vector<RowResult>> results = ResponseToResults(rows, *answer);
      if (results.ok() && use_shared_memory_ && options_.transport == SamplerTransport::kAuto &&
          RefusedSharedMemory(*results)) {
        FallBackToInline((*results)[0].status.message());
        stream_->AwaitWriteDone();  // gRPC may hold the request until then
        EncodeRows(rows, options_.wire_dtype, &request_);
        continue;
      }
      if (!results.ok()) DropStream();
      return results;
    }
    if (outcome == Outcome::kStopped) {
      DropStream();
      return absl::CancelledError("stopped while waiting for samplerd's answer");
    }
    RETURN_IF_ERROR(DropFailedStream(outcome == Outcome::kTimedOut, &last_error));
    // Only on failure, never in the per-token path.
    Log(LogLevel::kWarning, absl::StrCat(last_error, "; reconnecting"));
    if (!SleepWithin(backoff, control)) {
      if (control.stop && control.stop()) {
        return absl::CancelledError("stopped while waiting for samplerd");
      }
      return absl::UnavailableError(last_error);
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace entroserve
