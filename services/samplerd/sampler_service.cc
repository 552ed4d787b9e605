#include "services/samplerd/sampler_service.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "sampler/core/row.h"
#include "sampler/registry.h"
#include "services/common/message_bytes.h"
#include "services/common/status_util.h"
#include "services/samplerd/row_sampling.h"
#include "services/wire/sampler_convert.h"
#include "services/wire/shared_memory_channel.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// How often a channel's thread looks up from waiting for a request (to see
// whether the stream ended, besides StopChannel's wake).
constexpr absl::Duration kChannelPoll = absl::Milliseconds(50);
// Channels served now, by every stream of the process.
std::atomic<int> open_channels{0};
// Channel threads spinning for a request now (Environment::channel_spinners).
std::atomic<int> spinning_channels{0};

// What the rows of a call check before being sampled: whether the call was
// cancelled (set by the reactor's OnCancel) and its deadline.
struct CallControl {
  explicit CallControl(std::chrono::system_clock::time_point deadline) : deadline(deadline) {}

  // OK, or the status a row gets instead of being sampled.
  absl::Status Check() const {
    if (cancelled.load(std::memory_order_relaxed)) {
      return absl::CancelledError("the call was cancelled before the row was sampled");
    }
    if (std::chrono::system_clock::now() > deadline) {
      return absl::DeadlineExceededError("the call's deadline passed before the row was sampled");
    }
    return absl::OkStatus();
  }

  const std::chrono::system_clock::time_point deadline;
  std::atomic<bool> cancelled{false};
};

// Shared memory is read only for a client on this host (loopback or a Unix
// socket): a region name means nothing on another machine, and a client
// there has no business reading this host's regions.
SharedMemoryReader* ForPeer(SharedMemoryReader* shm, grpc::CallbackServerContext* context) {
  return shm != nullptr && IsLoopbackTarget(context->peer()) ? shm : nullptr;
}

// What the rows of one call are sampled with: the service's pool and
// metrics, and the shared memory this call's peer may use.
struct CallEnvironment {
  CallEnvironment(const SamplerService::Environment& env, grpc::CallbackServerContext* context)
      : pool(env.pool),
        shm(ForPeer(env.shm, context)),
        metrics(env.metrics),
        channel_spin(env.channel_spin),
        channel_spinners(env.channel_spinners) {}

  WorkerPool* pool;
  SharedMemoryReader* shm;
  SamplerMetrics* metrics;
  absl::Duration channel_spin;
  int channel_spinners;
};

// Samples row `i` of `request` into `result` unless the call says not to,
// and observes it.
void SampleRowOfCall(const CallEnvironment& env, const v1::SampleRequest& request, int i,
                     const CallControl& control, v1::SampleResult* result) {
  const absl::Time start = absl::Now();
  const v1::SampleRow& row = request.rows(i);
  if (absl::Status skip = control.Check(); !skip.ok()) {
    SetRowFailure(row, absl::Status(skip.code(), absl::StrCat(RowPrefix(i), skip.message())),
                  result);
  } else {
    SampleOneRow(row, i, result, env.shm);
  }
  if (env.metrics != nullptr) env.metrics->ObserveRow(row, *result, absl::Now() - start);
}

// The reactor of a call refused before it started (a missing or wrong token).
template <typename Reactor>
class RefusedCall final : public Reactor {
 public:
  explicit RefusedCall(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// Samples every row of `request` into `response` on `pool`, then calls
// `done` on the thread that finished the last row, or inline when there are
// no rows. With `sample_here` (a thread of samplerd's own that would only
// wait) the calling thread samples rows too, before it returns: a one-row
// batch is never handed off, and a larger one wakes one pool thread fewer,
// whose wake-up would be on the batch's path. `request`, `response` and
// `control` must stay alive until `done` runs.
void SampleBatchAsync(const CallEnvironment& env, const v1::SampleRequest* request,
                      v1::SampleResponse* response, const CallControl* control,
                      std::function<void()> done, bool sample_here = false) {
  const int rows = request->rows_size();
  if (env.metrics != nullptr) env.metrics->ObserveMessage(rows);
  if (rows == 0) {
    done();
    return;
  }
  if (env.metrics != nullptr) {
    // Observed before `done`, which may end the call.
    done = [metrics = env.metrics, start = absl::Now(), done = std::move(done)] {
      metrics->ObserveBatch(absl::Now() - start);
      done();
    };
  }
  // The results exist before any task runs, so that tasks only touch their
  // own element.
  response->mutable_results()->Reserve(rows);
  std::vector<v1::SampleResult*> results(rows);
  for (int i = 0; i < rows; ++i) results[i] = response->add_results();
  // Each task, and the calling thread with sample_here, takes the next row
  // not yet taken until none is left.
  struct Batch {
    std::vector<v1::SampleResult*> results;
    std::atomic<int> next{0};
    std::atomic<int> remaining{0};
    std::function<void()> done;
  };
  auto batch = std::make_shared<Batch>();
  batch->results = std::move(results);
  batch->remaining.store(rows, std::memory_order_relaxed);
  batch->done = std::move(done);
  auto take_rows = [env, request, control, batch, rows] {
    for (int i; (i = batch->next.fetch_add(1, std::memory_order_relaxed)) < rows;) {
      SampleRowOfCall(env, *request, i, *control, batch->results[i]);
      if (batch->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) batch->done();
    }
  };
  for (int i = sample_here ? 1 : 0; i < rows; ++i) env.pool->Schedule(take_rows);
  if (sample_here) take_rows();
}

// Unary Sample: the request is parsed, the batch goes to the pool, and the
// last row serializes the answer and finishes the call.
class SampleReactor final : public grpc::ServerUnaryReactor {
 public:
  SampleReactor(grpc::CallbackServerContext* context, const SamplerService::Environment& env,
                const grpc::ByteBuffer* request_bytes, grpc::ByteBuffer* response_bytes)
      : control_(context->deadline()), response_bytes_(response_bytes) {
    if (absl::Status parsed = ParseMessage(*request_bytes, &request_); !parsed.ok()) {
      Finish(ToGrpcStatus(parsed));
      return;
    }
    SampleBatchAsync(CallEnvironment(env, context), &request_, &response_, &control_, [this] {
      if (control_.cancelled.load()) {
        Finish(grpc::Status::CANCELLED);
        return;
      }
      Finish(SerializeMessage(response_, response_bytes_));
    });
  }

  void OnCancel() override { control_.cancelled.store(true); }
  void OnDone() override { delete this; }

 private:
  CallControl control_;
  v1::SampleRequest request_;
  v1::SampleResponse response_;
  grpc::ByteBuffer* const response_bytes_;
};

// SampleStream: batches are read one at a time, sampled on the pool (up to
// kMaxBatchesInFlight at once) and written back one at a time in the order
// they were read. The stream ends, OK, once the client has half-closed and
// every batch read has been answered. A message that does not parse stops
// the reading: the batches before it are answered, then the stream ends
// INVALID_ARGUMENT naming it ("message 2 of the stream could not be parsed").
//
// A message asking for a shared-memory channel (SampleRequest.channel) is
// answered once the channel is open, and a thread of the stream's own then
// serves it (ServeChannel) until the client half-closes or cancels; it
// counts as a batch in flight, so the stream cannot finish under it. A bad
// request in the channel, or a channel that breaks, ends the stream with
// the reason even while a read is pending.
//
// gRPC operations (StartRead, StartWrite, Finish) are started outside `mu_`:
// each path decides under the lock what to start, then starts it.
class SampleStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  SampleStreamReactor(grpc::CallbackServerContext* context, const SamplerService::Environment& env)
      : env_(env, context), control_(context->deadline()) {
    reading_ = true;
    StartRead(&read_bytes_);
  }

  void OnReadDone(bool ok) override {
    auto batch = std::make_shared<Batch>();
    batch->sequence = messages_read_++;
    absl::Status parsed = absl::OkStatus();
    if (ok) {
      parsed = ParseMessage(read_bytes_, &batch->request,
                            absl::StrCat("message ", batch->sequence, " of the stream"));
      read_bytes_.Clear();
    }
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok || !parsed.ok()) {  // Half-close, cancellation, a broken stream or bad bytes.
        reads_done_ = true;
        if (!parsed.ok()) read_error_ = parsed;
      } else {
        ++in_flight_;  // Keeps the reactor alive until the batch is written.
      }
      actions = NextActionsLocked();
    }
    if (ok && parsed.ok() && batch->request.has_channel()) {
      AnswerChannelRequest(batch.get());
      OnBatchSampled(batch);
    } else if (ok && parsed.ok()) {
      SampleBatchAsync(env_, &batch->request, &batch->response, &control_,
                       [this, batch] { OnBatchSampled(batch); });
    }
    if (!ok || !parsed.ok()) StopChannel();
    Run(actions);
  }

  void OnWriteDone(bool ok) override {
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      writing_.reset();
      --in_flight_;
      ++next_write_sequence_;
      if (!ok) broken_ = true;
      actions = NextActionsLocked();
    }
    Run(actions);
  }

  void OnCancel() override {
    control_.cancelled.store(true);
    StopChannel();
  }
  // gRPC calls OnDone after every other reaction has returned. The lock is
  // taken once more before the delete so that every critical section of
  // those reactions and of the pool's callbacks ends before it, visibly to
  // ThreadSanitizer too (gRPC's own hand-over to this thread is not). The
  // channel's thread has left its last critical section by then (the
  // stream finished after it); the join waits for it to return.
  void OnDone() override {
    { absl::MutexLock lock(&mu_); }
    { absl::MutexLock lock(&ops_mu_); }
    if (channel_thread_.joinable()) {
      if (channel_thread_.get_id() == std::this_thread::get_id()) {
        channel_thread_.detach();
      } else {
        channel_thread_.join();
      }
    }
    delete this;
  }

 private:
  struct Batch {
    uint64_t sequence = 0;
    v1::SampleRequest request;
    v1::SampleResponse response;
    grpc::ByteBuffer response_bytes;  // response serialized, once sampled
  };

  // What to start once the lock is released.
  struct Actions {
    const grpc::ByteBuffer* write = nullptr;
    bool read = false;
    bool finish = false;
    grpc::Status status;
  };

  // Opens the channel a request names and starts its thread, or says why
  // not, in the batch's response.
  void AnswerChannelRequest(Batch* batch) {
    v1::ChannelAnswer* answer = batch->response.mutable_channel();
    if (absl::Status opened = OpenChannel(batch->request); !opened.ok()) {
      answer->set_error(std::string(opened.message()));
      return;
    }
    answer->set_attached(true);
  }

  absl::Status OpenChannel(const v1::SampleRequest& request) {
    if (request.rows_size() > 0) {
      return absl::InvalidArgumentError("a request for a channel carries no rows");
    }
    if (env_.shm == nullptr) {
      return absl::FailedPreconditionError(
          "samplerd reads no shared memory for this client (--shared_memory=false, or the "
          "client is not on samplerd's host)");
    }
    if (channel_ != nullptr)
      return absl::FailedPreconditionError("the stream has a channel already");
    absl::StatusOr<std::unique_ptr<ChannelServer>> channel =
        ChannelServer::Open(request.channel().region(), "channel");
    if (!channel.ok()) return channel.status();
    if (open_channels.fetch_add(1) >= SamplerService::kMaxChannels) {
      open_channels.fetch_sub(1);
      return absl::ResourceExhaustedError(
          absl::StrCat("samplerd serves ", SamplerService::kMaxChannels, " channels already"));
    }
    {
      absl::MutexLock lock(&mu_);
      channel_ = *std::move(channel);  // once: OnReadDone's thread only
      ++in_flight_;                    // until ServeChannel returns
    }
    if (env_.metrics != nullptr) env_.metrics->ChannelOpened();
    channel_thread_ = std::thread([this] { ServeChannel(); });
    return absl::OkStatus();
  }

  // The channel's thread: each request is parsed, sampled (on this thread
  // and, with more rows, the pool) and answered, until StopChannel or an error,
  // which ends the stream.
  void ServeChannel() {
    absl::Status end;
    std::string bytes;
    uint64_t n = 0;  // requests taken before this one
    while (!channel_stop_.load(std::memory_order_acquire)) {
      absl::StatusOr<bool> took = TakeRequest(&bytes);
      if (!took.ok()) {
        end = took.status();
        break;
      }
      if (!*took) continue;
      v1::SampleRequest request;
      v1::SampleResponse response;
      const std::string what = absl::StrCat("channel request ", n, " (", bytes.size(), " bytes)");
      if (end = ParseMessage(bytes, &request, what); !end.ok()) break;
      if (request.has_channel()) {
        end = absl::InvalidArgumentError(
            absl::StrCat(what, " asks for a channel inside the channel"));
        break;
      }
      absl::Notification sampled;
      SampleBatchAsync(
          env_, &request, &response, &control_, [&sampled] { sampled.Notify(); },
          /*sample_here=*/true);
      sampled.WaitForNotification();
      response.SerializeToString(&bytes);
      if (end = channel_->Answer(bytes); !end.ok()) break;
      ++n;
    }
    open_channels.fetch_sub(1);
    // Before the stream can finish: a client that saw it end sees the gauge
    // without this channel.
    if (env_.metrics != nullptr) env_.metrics->ChannelClosed();
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      if (!end.ok()) channel_error_ = end;
      actions = NextActionsLocked();
    }
    Run(actions);
  }

  // The channel's next request, as Take: spun for first while fewer than
  // channel_spinners threads spin, then slept for (up to kChannelPoll).
  absl::StatusOr<bool> TakeRequest(std::string* bytes) {
    if (env_.channel_spin > absl::ZeroDuration()) {
      if (spinning_channels.fetch_add(1) < env_.channel_spinners) {
        absl::StatusOr<bool> took = channel_->Take(env_.channel_spin, env_.channel_spin, bytes);
        spinning_channels.fetch_sub(1);
        if (!took.ok() || *took) return took;
      } else {
        spinning_channels.fetch_sub(1);
      }
    }
    return channel_->Take(kChannelPoll, absl::ZeroDuration(), bytes);
  }

  // Makes ServeChannel return (the client half-closed, cancelled, or the
  // stream broke).
  void StopChannel() {
    channel_stop_.store(true, std::memory_order_release);
    absl::MutexLock lock(&mu_);
    if (channel_ != nullptr) channel_->Interrupt();
  }

  void OnBatchSampled(std::shared_ptr<Batch> batch) {
    // Serialized here, on the pool, not on gRPC's thread. A response is far
    // below protobuf's 2 GiB limit, the one way serialization fails.
    (void)SerializeMessage(batch->response, &batch->response_bytes);
    Actions actions;
    {
      absl::MutexLock lock(&mu_);
      sampled_.emplace(batch->sequence, std::move(batch));
      actions = NextActionsLocked();
    }
    Run(actions);
  }

  Actions NextActionsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions actions;
    // After a failed write nothing more reaches the client: drop what is
    // sampled (in order, so that in_flight_ counts down to zero).
    while (broken_ && !writing_ && !sampled_.empty() &&
           sampled_.begin()->first == next_write_sequence_) {
      sampled_.erase(sampled_.begin());
      --in_flight_;
      ++next_write_sequence_;
    }
    if (!broken_ && !writing_ && !sampled_.empty() &&
        sampled_.begin()->first == next_write_sequence_) {
      writing_ = std::move(sampled_.begin()->second);
      sampled_.erase(sampled_.begin());
      actions.write = &writing_->response_bytes;
    }
    if (!reading_ && !reads_done_ && !broken_ && channel_error_.ok() &&
        in_flight_ < SamplerService::kMaxBatchesInFlight) {
      reading_ = true;
      actions.read = true;
    }
    // A broken channel ends the stream even with a read pending (which
    // then completes, not ok).
    if ((reads_done_ || !channel_error_.ok()) && in_flight_ == 0 && !writing_ && !finished_) {
      finished_ = true;
      actions.finish = true;
      actions.status = control_.cancelled.load() ? grpc::Status::CANCELLED
                       : !channel_error_.ok()    ? ToGrpcStatus(channel_error_)
                                                 : ToGrpcStatus(read_error_);
    }
    return actions;
  }

  // Under ops_mu_, which OnDone takes too: gRPC frees the call's state after
  // OnDone, possibly on another thread while an earlier Start* or Finish
  // call is still returning; its own hand-over is in its uninstrumented
  // core, and the lock makes the order visible to ThreadSanitizer. (No
  // reaction runs inline in these calls, so none can wait on the lock.)
  void Run(const Actions& actions) {
    absl::MutexLock lock(&ops_mu_);
    if (actions.write != nullptr) StartWrite(actions.write);
    if (actions.read) StartRead(&read_bytes_);
    if (actions.finish) Finish(actions.status);
  }

  const CallEnvironment env_;
  CallControl control_;

  absl::Mutex mu_;
  absl::Mutex ops_mu_;  // held while gRPC operations are started (Run)
  // The read in flight writes here; only the path that set reading_ touches
  // it. messages_read_ is touched only by OnReadDone (one read at a time).
  grpc::ByteBuffer read_bytes_;
  uint64_t messages_read_ = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Batches read and not yet written (being sampled, waiting or writing).
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Why reading stopped early: the message that did not parse.
  absl::Status read_error_ ABSL_GUARDED_BY(mu_);
  uint64_t next_write_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Sampled batches waiting for their turn to be written, by sequence.
  std::map<uint64_t, std::shared_ptr<Batch>> sampled_ ABSL_GUARDED_BY(mu_);
  // The batch whose response the write in flight sends.
  std::shared_ptr<Batch> writing_ ABSL_GUARDED_BY(mu_);

  // The shared-memory channel, once opened (set under mu_ by OnReadDone's
  // thread; ServeChannel, started after, uses it without), and its thread.
  std::unique_ptr<ChannelServer> channel_;
  std::thread channel_thread_;
  std::atomic<bool> channel_stop_{false};
  // Why the channel ended the stream.
  absl::Status channel_error_ ABSL_GUARDED_BY(mu_);
};

v1::ListSamplersResponse BuildSamplerList() {
  v1::ListSamplersResponse response;
  for (const SamplerDescription& description : ListSamplers()) {
    DescriptionToInfo(description, response.add_samplers());
  }
  return response;
}

}  // namespace

SamplerService::SamplerService(Environment environment)
    : env_(environment), samplers_(BuildSamplerList()) {}

absl::Status SamplerService::CheckAuth(grpc::CallbackServerContext* context) const {
  return env_.auth == nullptr ? absl::OkStatus() : env_.auth->Check(*context);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SamplerService::SampleStream(
    grpc::CallbackServerContext* context) {
  if (absl::Status auth = CheckAuth(context); !auth.ok()) {
    return new RefusedCall<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>>(auth);
  }
  return new SampleStreamReactor(context, env_);
}

grpc::ServerUnaryReactor* SamplerService::Sample(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* request,
                                                 grpc::ByteBuffer* response) {
  if (absl::Status auth = CheckAuth(context); !auth.ok()) {
    return new RefusedCall<grpc::ServerUnaryReactor>(auth);
  }
  return new SampleReactor(context, env_, request, response);
}

grpc::ServerUnaryReactor* SamplerService::ListSamplers(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request,
                                                       grpc::ByteBuffer* response) {
  if (absl::Status auth = CheckAuth(context); !auth.ok()) {
    return new RefusedCall<grpc::ServerUnaryReactor>(auth);
  }
  return AnswerUnary<v1::ListSamplersRequest, v1::ListSamplersResponse>(
      context, request, response,
      [this](const v1::ListSamplersRequest&, v1::ListSamplersResponse* answer) {
        *answer = samplers_;
        return absl::OkStatus();
      });
}

}  // namespace entroserve
