#include "services/samplerd/sampler_service.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "sampler/core/row.h"
#include "sampler/registry.h"
#include "services/common/message_bytes.h"
#include "services/common/status_util.h"
#include "services/samplerd/row_sampling.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

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
      : pool(env.pool), shm(ForPeer(env.shm, context)), metrics(env.metrics) {}

  WorkerPool* pool;
  SharedMemoryReader* shm;
  SamplerMetrics* metrics;
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

// Samples every row of `request` into `response` on `pool` (one task a row),
// then calls `done` on the thread that finished the last row, or inline when
// there are no rows. `request`, `response` and `control` must stay alive
// until `done` runs.
void SampleBatchAsync(const CallEnvironment& env, const v1::SampleRequest* request,
                      v1::SampleResponse* response, const CallControl* control,
                      std::function<void()> done) {
  const int rows = request->rows_size();
  if (env.metrics != nullptr) env.metrics->ObserveMessage(rows);
  if (rows == 0) {
    done();
    return;
  }
  // The results exist before any task runs, so that tasks only touch their
  // own element.
  response->mutable_results()->Reserve(rows);
  std::vector<v1::SampleResult*> results(rows);
  for (int i = 0; i < rows; ++i) results[i] = response->add_results();

  struct Countdown {
    std::atomic<int> remaining;
    std::function<void()> done;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->remaining.store(rows, std::memory_order_relaxed);
  countdown->done = std::move(done);
  for (int i = 0; i < rows; ++i) {
    env.pool->Schedule([env, request, control, i, result = results[i], countdown] {
      SampleRowOfCall(env, *request, i, *control, result);
      if (countdown->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) countdown->done();
    });
  }
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
    if (ok && parsed.ok()) {
      SampleBatchAsync(env_, &batch->request, &batch->response, &control_,
                       [this, batch] { OnBatchSampled(batch); });
    }
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

  void OnCancel() override { control_.cancelled.store(true); }
  // gRPC calls OnDone after every other reaction has returned. The lock is
  // taken once more before the delete so that every critical section of
  // those reactions and of the pool's callbacks ends before it, visibly to
  // ThreadSanitizer too (gRPC's own hand-over to this thread is not).
  void OnDone() override {
    { absl::MutexLock lock(&mu_); }
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
    if (!reading_ && !reads_done_ && !broken_ && in_flight_ < SamplerService::kMaxBatchesInFlight) {
      reading_ = true;
      actions.read = true;
    }
    if (reads_done_ && in_flight_ == 0 && !writing_ && !finished_) {
      finished_ = true;
      actions.finish = true;
      actions.status =
          control_.cancelled.load() ? grpc::Status::CANCELLED : ToGrpcStatus(read_error_);
    }
    return actions;
  }

  void Run(const Actions& actions) {
    if (actions.write != nullptr) StartWrite(actions.write);
    if (actions.read) StartRead(&read_bytes_);
    if (actions.finish) Finish(actions.status);
  }

  const CallEnvironment env_;
  CallControl control_;

  absl::Mutex mu_;
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
