// The serving engine: continuous batching of generations over one model and
// one SamplerBackend (docs/ARCHITECTURE.md "An engine batches concurrent
// requests").
//
// A scheduler thread runs steps. Between steps, requests join the running
// batch (in arrival order, up to EngineOptions.max_batch sequences and
// max_kv_bytes of KV cache) and sequences that ended leave it. Each step:
//   1. drops sequences whose client went away (GenerationHandle::Cancel) or
//      whose deadline passed;
//   2. one Model::Forward() over the batch: the next prompt chunk of
//      sequences still prefilling (at most prefill_chunk prompt tokens per
//      step in all, so that a long prompt does not stall the others' decode)
//      and the last sampled token of every decoding sequence;
//   3. one SamplerBackend::Sample() with a row per sequence that has a token
//      to draw: its logits, last-layer attention scores, sampler config,
//      seed, step, SamplerState (the engine holds each sequence's state: a
//      sampler keeps nothing), special tokens, and at step 0 the prompt as
//      appended tokens;
//   4. per sequence: the token goes through the tokenizer's StreamingDecoder
//      (text deltas never split a UTF-8 character), then the stop checks in
//      this order: a stop token id (the model's EOS ids unless ignore_eos,
//      and the request's stop_token_ids), a stop string in the generated text
//      (the text is cut where it starts; text that may be the start of a stop
//      string is held back until it is known not to be), max_new_tokens. The
//      token is then handed to the request's sink, and the end after it.
//
// Pipelining (EngineOptions.pipeline; on by default where the model's
// forward pass runs on the device after Model::Launch returns: CUDA with
// decode graphs): from pipeline_min_batch running sequences on, they take
// turns in two cohorts of about half the batch each. A step launches one
// cohort's forward pass, then, while the device runs it, reads the other
// cohort's outputs of the step before, samples them and hands out their
// tokens; that cohort is launched next. Each sequence's own steps are those
// of an unsplit batch (the same inputs, one after another); only the batch a
// step is computed in differs, which changes its values by a rounding at
// most (none with ModelOptions.batch_invariant). A sequence that ends or is
// cancelled while its cohort's step is in flight is dropped when that step
// comes back; new sequences join the cohort launched next, and a cohort
// larger than half the batch hands its extra sequences to the other one.
//
// Chunk boundaries of a prompt are fixed (multiples of prefill_chunk from its
// start) whatever else is running. With ModelOptions.batch_invariant a
// sequence's logits, and so its tokens, do not depend on what it is batched
// with; without it they can differ by a rounding from a run alone (batched
// matrix products sum in another order).
//
// Admission (Submit) checks the request against the model (prompt length and
// token ids, max_new_tokens against the context) and the engine's limits.
// Requests that do not fit the batch at once wait in a bounded queue: past
// max_queue waiting, Submit answers RESOURCE_EXHAUSTED "queue full (N
// waiting)". A request whose deadline has already passed is refused with
// DEADLINE_EXCEEDED; one that passes later ends with DEADLINE_EXCEEDED at the
// next step.
//
// When the sampler cannot be reached (a remote samplerd that died), the step
// waits: the backend reconnects and resends the step's rows with the states
// the engine holds, so the sequences continue with the tokens they would
// have had. A sequence waits until its deadline (or sampler_wait when it has
// none) and then ends with UNAVAILABLE; it is never silently truncated.
//
// Shutdown(grace): no more admissions (UNAVAILABLE); accepted requests run on
// for `grace`; what is left then ends with FinishReason::kCancelled.
//
// Thread-safety: Submit, Stats and Shutdown may be called from any thread.
// Sinks are called on the scheduler thread only, never under the engine's
// lock, and must not block (queue the write and return). The ServedModel and
// the backend are not owned and must outlive the engine.
#ifndef ENTROSERVE_MODEL_RUNNER_ENGINE_ENGINE_H_
#define ENTROSERVE_MODEL_RUNNER_ENGINE_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model_runner/engine/sampler_backend.h"
#include "model_runner/engine/served_model.h"
#include "sampler/core/configs.h"
#include "sampler/core/types.h"

namespace entroserve {

// Why a generation ended. Mirrors runner.v1.FinishReason (same numbers).
enum class FinishReason {
  kLength = 1,     // max_new_tokens reached
  kEos = 2,        // an EOS or stop token id
  kStop = 3,       // a stop string
  kCancelled = 4,  // the client went away or the server shut down
  kContext = 5,    // the context is full
};

const char* FinishReasonName(FinishReason reason);

// What the engine reports as it runs (runnerd's metrics:
// services/runnerd/runner_metrics.h). Called on the scheduler thread, never
// under the engine's lock; must be quick and must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // A step that ran the model: its whole time, the forward pass, and the
  // sampler call (zero when no row was due).
  virtual void OnStep(absl::Duration step, absl::Duration forward, absl::Duration sampling) {}
  // A generated token handed to its request's sink: the sampler's name
  // ("entropix"), what it returned, and the time since the request arrived
  // (the first token) or since its previous token.
  virtual void OnToken(const std::string& sampler, const RowOutput& sample, bool first,
                       absl::Duration since_previous) {}
  // A generation's end, as its sink hears it.
  virtual void OnEnd(const struct GenerationEnd& end) {}
};

struct EngineOptions {
  // Sequences in the running batch at once (>= 1).
  int max_batch = 8;
  // Requests accepted beyond the free batch slots, waiting for one (>= 0).
  int max_queue = 64;
  // KV cache of the running sequences in all, in bytes; 0: no limit. Each
  // sequence is counted (and its cache allocated) for its prompt plus
  // max_new_tokens when it joins the batch (Model::CacheBytes).
  int64_t max_kv_bytes = 0;
  // Prompt tokens prefilled per step in all (>= 1); a prompt is fed in
  // chunks of at most this many tokens.
  int prefill_chunk = 512;
  // Send the last layer's attention scores with each row whose sampler
  // reads them (entropix, alpha; the registry's uses_attention).
  bool capture_attention = true;
  // Two alternating cohorts (see "Pipelining" above). Unset: on where
  // Model::Launch returns before the device is done (CUDA decode graphs).
  std::optional<bool> pipeline;
  // Pipelining splits the running sequences from this many on (>= 2):
  // below, one forward pass of the whole batch costs about what one of half
  // of it does, and the sampler call is short.
  int pipeline_min_batch = 8;
  // How long a step waits for an unreachable sampler on behalf of a request
  // without a deadline before it ends with UNAVAILABLE.
  absl::Duration sampler_wait = absl::Seconds(60);
  // Not owned; null: nothing reported. Must outlive the engine.
  EngineObserver* observer = nullptr;
};

// One generation request, in tokens (the service tokenizes and checks the
// wire fields first).
struct GenerationRequest {
  std::vector<int32_t> prompt;
  // >= 1; the prompt plus this must fit the context.
  int32_t max_new_tokens = 1;
  // max_new_tokens is what the context leaves (a default lowered to fit):
  // reaching it ends with kContext rather than kLength.
  bool max_new_tokens_is_context = false;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  SamplerConfig sampler;
  uint64_t seed = 0;
  // When the request arrived (for the usage timings) and its deadline.
  absl::Time arrival = absl::Now();
  absl::Time deadline = absl::InfiniteFuture();
  // Independent completions of the prompt (choices), >= 1 and at most
  // EngineOptions.max_batch. They are admitted together (n slots, n caches)
  // and share the prompt's prefill: choice 0 computes it, the others copy
  // its KV cache (Model::CopyCache) and sample their first token from the
  // same logits. Choice i draws with seed + i (mod 2^64), so it gives what a
  // request with n = 1 and that seed gives (bit for bit with
  // ModelOptions.batch_invariant).
  int32_t n = 1;
  // The most probable tokens returned with each token (RowOutput's
  // top_logprobs), in [0, kMaxTopLogprobs].
  int32_t top_logprobs = 0;
  // The tokens every step may produce, as a mask over the vocabulary
  // (sampler/core/token_mask.h); empty allows every token. Each row carries
  // it (Row::allowed_tokens).
  std::vector<uint64_t> allowed_tokens;
};

// One generated token as the sink receives it.
struct TokenOutput {
  int32_t id = 0;
  // 0-based among the generated tokens.
  int32_t index = 0;
  // The text this token completes (valid UTF-8; may be empty).
  std::string text;
  // Mode, signals, parameters, logprob, inserted, top_logprobs: what the
  // sampler returned.
  RowOutput sample;
  // The choice the token belongs to, in [0, n).
  int32_t choice = 0;
};

// How one choice ended.
struct ChoiceEnd {
  int32_t choice = 0;
  FinishReason reason = FinishReason::kLength;
  int32_t generated_tokens = 0;
};

struct GenerationEnd {
  // OK: ended for `reason`. Otherwise the error that ended it (then `reason`
  // is meaningless): DEADLINE_EXCEEDED, UNAVAILABLE (the sampler could not be
  // reached), a row error of the sampler, a model error.
  absl::Status status;
  // With n > 1: choice 0's reason; generated_tokens counts every choice's.
  FinishReason reason = FinishReason::kLength;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  // From GenerationRequest.arrival; time_to_first_token_ms is 0 without one.
  double time_to_first_token_ms = 0;
  double total_ms = 0;
};

// Receives one generation's output. See the thread-safety note above.
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  virtual void OnToken(TokenOutput token) = 0;
  // Once per choice that ended well (end.status OK), after its last token.
  virtual void OnChoiceEnd(const ChoiceEnd& end) {}
  // Exactly once, after the last OnToken and OnChoiceEnd, when every choice
  // has ended; the engine drops the sink then.
  virtual void OnEnd(const GenerationEnd& end) = 0;
};

// The caller's side of an accepted request.
class GenerationHandle {
 public:
  // Ends the generation at the next step (kCancelled) and frees its slot.
  // Thread-safe; any number of calls.
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // The engine's number of the request ("runnerd-<id>" on the wire).
  uint64_t id() const { return id_; }

  explicit GenerationHandle(uint64_t id) : id_(id) {}

 private:
  const uint64_t id_;
  std::atomic<bool> cancelled_{false};
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int64_t kv_bytes = 0;
  int64_t steps = 0;
  // Since the engine started: rows sampled, and the wall time of the forward
  // passes and of the sampler calls (retries included). With pipelining a
  // step is one cohort's, and its forward time is the host's launch plus its
  // wait for the outputs (the device's work overlaps the other cohort's).
  int64_t rows_sampled = 0;
  absl::Duration forward_time;
  absl::Duration sampling_time;
};

class Engine {
 public:
  // Starts the scheduler thread. `model` and `backend` must outlive the engine.
  Engine(const ServedModel* model, SamplerBackend* backend, EngineOptions options);
  // Shutdown(absl::ZeroDuration()).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Accepts a request; its output goes to `sink`. Errors (nothing is called
  // on the sink then): INVALID_ARGUMENT naming the field (an empty prompt,
  // "prompt has N tokens; the context holds M", a token id outside the
  // vocabulary, max_new_tokens < 1 or beyond the context, a request whose KV
  // cache alone exceeds max_kv_bytes, n outside [1, max_batch], top_logprobs
  // outside [0, 20]), DEADLINE_EXCEEDED for a deadline
  // already passed, RESOURCE_EXHAUSTED "queue full (N waiting)",
  // UNAVAILABLE once shutting down.
  absl::StatusOr<std::shared_ptr<GenerationHandle>> Submit(GenerationRequest request,
                                                           std::shared_ptr<GenerationSink> sink);

  // Stops admitting, lets accepted requests run for up to `grace`, ends the
  // rest with kCancelled, and returns once the scheduler has stopped.
  // Idempotent.
  void Shutdown(absl::Duration grace);

  EngineStats Stats() const;
  const EngineOptions& options() const { return options_; }
  const ServedModel& model() const { return *model_; }

 private:
  struct Sequence;
  // A launched forward pass whose outputs are still to be read.
  struct Launched {
    std::vector<Sequence*> in_step;
    PendingForward pending;
    absl::Duration launch_time;
  };

  struct Group;

  void Run();
  // Admits, drops and ends what the time says; false once done.
  bool Admit();
  void AdmitAndDrop(std::vector<std::unique_ptr<Sequence>>* admitted,
                    std::vector<std::unique_ptr<Sequence>>* dropped);
  void Step();
  // Launches the forward pass of the sequences whose turn it is: all those
  // not in flight, or, when the batch is split, up to half of the running
  // ones (those that waited longest first).
  std::optional<Launched> LaunchReady(bool split);
  void FinishStep(Launched& launched);
  void StepInputs(const std::vector<Sequence*>& candidates, std::vector<Sequence*>* in_step,
                  std::vector<SequenceInput>* inputs);
  void StepRows(const std::vector<Sequence*>& in_step, const StepOutput& output,
                std::vector<Sequence*>* sampling, std::vector<Row>* rows);
  // Samples the step's rows (retrying while the sampler is unreachable);
  // fills results[i] for rows that were sampled, ends the sequences that
  // could not wait any longer.
  void SampleRows(std::vector<Sequence*>& sequences, std::vector<Row>& rows,
                  std::vector<RowResult>* results, std::vector<bool>* sampled);
  // INVALID_ARGUMENT for an n or top_logprobs the engine cannot serve.
  absl::Status CheckChoices(const GenerationRequest& request, int64_t kv_bytes) const;
  // What Submit checks before taking the lock: the request against the
  // model and the limits. Its KV cache bytes when it fits.
  absl::StatusOr<int64_t> CheckAdmissible(const GenerationRequest& request) const;
  std::unique_ptr<Sequence> MakeSequence(GenerationRequest request,
                                         std::shared_ptr<GenerationSink> sink,
                                         std::shared_ptr<GenerationHandle> handle,
                                         std::shared_ptr<Group> group, int32_t choice,
                                         int64_t kv_bytes) const;
  void Fork(Sequence* first, std::vector<Sequence*>* sampling, std::vector<Row>* rows);
  void Accept(Sequence* sequence, const RowResult& result);
  void End(Sequence* sequence, absl::Status status, FinishReason reason);
  void RemoveEnded();
  bool StopNow() const;

  const ServedModel* const model_;
  SamplerBackend* const backend_;
  const EngineOptions options_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Sequence>> waiting_ ABSL_GUARDED_BY(mu_);
  int running_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t kv_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rows_sampled_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration forward_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration sampling_time_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time shutdown_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Set once the grace period is over: everything left is cancelled.
  std::atomic<bool> stop_now_{false};

  // Owned by the scheduler thread.
  std::vector<std::unique_ptr<Sequence>> running_;
  std::optional<Launched> in_flight_;  // the other cohort's step
  int64_t launches_ = 0;
  const bool pipeline_;

  absl::Mutex shutdown_mu_;
  std::thread scheduler_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_ENGINE_ENGINE_H_
