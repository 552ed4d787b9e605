#include "model_runner/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model_runner/tokenizer/tokenizer.h"
#include "sampler/base/status_macros.h"
#include "sampler/registry.h"

namespace entroserve {
namespace {

// How long a step backs off when the backend gave up before any sequence's
// wait was over (a backend that does not wait itself), so that the retry
// loop cannot spin.
constexpr absl::Duration kSamplerRetryPause = absl::Milliseconds(10);
// A request stops waiting for an unreachable sampler this long before its
// deadline, so that its UNAVAILABLE reaches the client before the deadline
// itself does (which the client would see as DEADLINE_EXCEEDED).
constexpr absl::Duration kDeadlineMargin = absl::Milliseconds(200);

double Milliseconds(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// The length of the longest suffix of text[from:] that is a proper prefix of
// one of `stops`: text that must be held back, since the next token may
// complete a stop string.
size_t HeldBack(const std::string& text, size_t from, const std::vector<std::string>& stops) {
  size_t held = 0;
  const size_t available = text.size() - from;
  for (const std::string& stop : stops) {
    for (size_t k = std::min(stop.size() - 1, available); k > held; --k) {
      if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
        held = k;
        break;
      }
    }
  }
  return held;
}

// The earliest position at or after `from` where one of `stops` starts;
// npos when none does.
size_t FindStop(const std::string& text, size_t from, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const std::string& stop : stops) {
    const size_t at = text.find(stop, from);
    if (at < best) best = at;
  }
  return best;
}

// Whether `config`'s sampler reads attention scores (entropix, alpha): the
// others' tokens and outputs do not depend on them, so none are captured.
bool SamplerReadsAttention(const SamplerConfig& config) {
  const std::string name = SamplerName(config);
  for (const SamplerDescription& d : ListSamplers()) {
    if (d.name == name) return d.uses_attention;
  }
  return true;
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kContext:
      return "context";
  }
  return "unknown";
}

// The choices of one request: what its sink hears once all have ended.
// Touched by the scheduler thread only.
struct Engine::Group {
  int32_t remaining = 0;
  GenerationEnd end;
};

struct Engine::Sequence {
  Sequence(std::string n, GenerationRequest r, std::shared_ptr<GenerationSink> s,
           std::shared_ptr<GenerationHandle> h, const Tokenizer& tokenizer)
      : name(std::move(n)),
        request(std::move(r)),
        sink(std::move(s)),
        handle(std::move(h)),
        decoder(tokenizer, /*skip_special=*/true) {}

  const std::string name;
  const GenerationRequest request;
  std::shared_ptr<GenerationSink> sink;
  const std::shared_ptr<GenerationHandle> handle;
  // The request's choices (shared by them) and this one's number; choices
  // after the first wait for the first's prefill, then copy its cache.
  std::shared_ptr<Group> group;
  int32_t choice = 0;
  bool awaiting_fork = false;
  // EOS ids (unless ignore_eos) and the request's stop_token_ids.
  std::vector<int32_t> stop_ids;
  // The last layer's attention scores go to the sampler (it reads them).
  bool capture_attention = true;
  int64_t kv_bytes = 0;
  // Counted in running_count_ and kv_bytes_ (from admission to its end).
  bool counted = false;
  SequenceCache cache;

  // Prompt tokens in the cache, and those fed in the step under way.
  size_t prefilled = 0;
  size_t chunk = 0;
  // The last sampled token, fed at the next step.
  int32_t pending_token = -1;

  int64_t step = 0;
  SamplerState state;
  int32_t generated = 0;
  // When the last token (or, before the first, the request) reached the
  // sink: the time between tokens the observer is told.
  absl::Time last_token;
  absl::Time first_token = absl::InfinitePast();

  StreamingDecoder decoder;
  std::string text;    // generated so far
  size_t emitted = 0;  // bytes of `text` handed to the sink
  bool ended = false;
  // In a launched step whose outputs are still to be read (kept in running_
  // until then, even once ended: the step writes its cache).
  bool in_flight = false;
  // The engine's launch count at its last launch (who waited longest).
  int64_t last_launch = -1;

  bool prefilling() const { return prefilled < request.prompt.size(); }
  // Until when a step waits for an unreachable sampler for this sequence.
  absl::Time SamplerWaitDeadline(absl::Time step_start, absl::Duration wait) const {
    return std::min(request.deadline - kDeadlineMargin, step_start + wait);
  }
};

Engine::Engine(const ServedModel* model, SamplerBackend* backend, EngineOptions options)
    : model_(model),
      backend_(backend),
      options_(std::move(options)),
      pipeline_(options_.pipeline.value_or(model->model().asynchronous_launch())) {
  scheduler_ = std::thread([this] { Run(); });
}

Engine::~Engine() { Shutdown(absl::ZeroDuration()); }

namespace {

// The prompt's ids, the context it leaves and max_new_tokens.
absl::Status CheckPromptFits(const GenerationRequest& request, int64_t vocab, int64_t context) {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) {
    return absl::InvalidArgumentError("prompt is empty: at least one token is needed");
  }
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const int32_t id = request.prompt[i];
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt[", i, "] is ", id, ", outside the vocabulary [0, ", vocab, ")"));
    }
  }
  if (prompt > context) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt has ", prompt, " tokens; the context holds ", context));
  }
  if (prompt == context) {
    return absl::InvalidArgumentError(absl::StrCat("prompt has ", prompt,
                                                   " tokens; the context holds ", context,
                                                   ", which leaves no room for a new token"));
  }
  if (request.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens must be >= 1, got ", request.max_new_tokens));
  }
  if (prompt + request.max_new_tokens > context) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens is ", request.max_new_tokens, ", but the prompt's ", prompt,
                     " tokens leave room for ", context - prompt, " in the context of ", context));
  }
  return absl::OkStatus();
}

absl::Status CheckStops(const GenerationRequest& request, int64_t vocab) {
  for (size_t i = 0; i < request.stop_token_ids.size(); ++i) {
    const int32_t id = request.stop_token_ids[i];
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat("stop_token_ids[", i, "] is ", id,
                                                     ", outside the vocabulary [0, ", vocab, ")"));
    }
  }
  for (size_t i = 0; i < request.stop.size(); ++i) {
    if (request.stop[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop[", i, "] is empty"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> Engine::CheckAdmissible(const GenerationRequest& request) const {
  const int64_t vocab = model_->vocab_size();
  RETURN_IF_ERROR(CheckPromptFits(request, vocab, model_->context_length()));
  RETURN_IF_ERROR(CheckStops(request, vocab));
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  const int64_t kv_bytes = model_->model().CacheBytes(prompt + request.max_new_tokens);
  if (options_.max_kv_bytes > 0 && kv_bytes > options_.max_kv_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the prompt's ", prompt, " tokens plus max_new_tokens ", request.max_new_tokens, " need ",
        Mib(kv_bytes), " of KV cache; the server's KV budget is ", Mib(options_.max_kv_bytes)));
  }
  RETURN_IF_ERROR(CheckChoices(request, kv_bytes));
  return kv_bytes;
}

absl::StatusOr<std::shared_ptr<GenerationHandle>> Engine::Submit(
    GenerationRequest request, std::shared_ptr<GenerationSink> sink) {
  int64_t kv_bytes;
  ASSIGN_OR_RETURN(kv_bytes, CheckAdmissible(request));
  if (request.deadline <= absl::Now()) {
    return absl::DeadlineExceededError("the request's deadline had passed when it arrived");
  }

  absl::MutexLock lock(&mu_);
  if (!accepting_) return absl::UnavailableError("the server is shutting down");
  const size_t free_slots = static_cast<size_t>(std::max(0, options_.max_batch - running_count_));
  // Requests that wait for a slot are those beyond the free ones; this one
  // may not make them more than max_queue.
  const size_t queued = waiting_.size() > free_slots ? waiting_.size() - free_slots : 0;
  const size_t n = static_cast<size_t>(request.n);
  const size_t queued_with_this =
      waiting_.size() + n > free_slots ? waiting_.size() + n - free_slots : 0;
  if (queued_with_this > static_cast<size_t>(options_.max_queue)) {
    return absl::ResourceExhaustedError(absl::StrCat("queue full (", queued, " waiting)"));
  }
  auto handle = std::make_shared<GenerationHandle>(next_id_++);
  auto group = std::make_shared<Group>();
  group->remaining = request.n;
  for (int32_t c = 0; c < request.n; ++c) {
    GenerationRequest copy = request;
    copy.seed = request.seed + static_cast<uint64_t>(c);
    waiting_.push_back(MakeSequence(std::move(copy), sink, handle, group, c, kv_bytes));
  }
  return handle;
}

absl::Status Engine::CheckChoices(const GenerationRequest& request, int64_t kv_bytes) const {
  if (request.n < 1 || request.n > options_.max_batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n is ", request.n, "; must be in [1, ", options_.max_batch,
        "] (the choices run together, and the batch holds ", options_.max_batch, " sequences)"));
  }
  if (request.top_logprobs < 0 || request.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs is ", request.top_logprobs,
                                                   "; must be in [0, ", kMaxTopLogprobs, "]"));
  }
  if (options_.max_kv_bytes > 0 && kv_bytes * request.n > options_.max_kv_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("n is ", request.n, ": the choices need ", Mib(kv_bytes * request.n),
                     " of KV cache; the server's KV budget is ", Mib(options_.max_kv_bytes)));
  }
  return absl::OkStatus();
}

std::unique_ptr<Engine::Sequence> Engine::MakeSequence(GenerationRequest request,
                                                       std::shared_ptr<GenerationSink> sink,
                                                       std::shared_ptr<GenerationHandle> handle,
                                                       std::shared_ptr<Group> group, int32_t choice,
                                                       int64_t kv_bytes) const {
  std::string name = absl::StrCat("seq-", handle->id());
  if (choice > 0) absl::StrAppend(&name, ".", choice);
  auto s = std::make_unique<Sequence>(std::move(name), std::move(request), std::move(sink),
                                      std::move(handle), model_->tokenizer());
  s->group = std::move(group);
  s->choice = choice;
  s->awaiting_fork = choice > 0;
  s->kv_bytes = kv_bytes;
  s->capture_attention = options_.capture_attention && SamplerReadsAttention(s->request.sampler);
  if (!s->request.ignore_eos) s->stop_ids = model_->eos_token_ids();
  s->stop_ids.insert(s->stop_ids.end(), s->request.stop_token_ids.begin(),
                     s->request.stop_token_ids.end());
  return s;
}

void Engine::Shutdown(absl::Duration grace) {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (accepting_) {
      accepting_ = false;
      shutdown_deadline_ = absl::Now() + std::max(grace, absl::ZeroDuration());
    } else {
      shutdown_deadline_ = std::min(shutdown_deadline_, absl::Now() + grace);
    }
  }
  if (scheduler_.joinable()) scheduler_.join();
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats stats;
  stats.running = running_count_;
  stats.waiting = static_cast<int>(waiting_.size());
  stats.kv_bytes = kv_bytes_;
  stats.steps = steps_;
  stats.rows_sampled = rows_sampled_;
  stats.forward_time = forward_time_;
  stats.sampling_time = sampling_time_;
  return stats;
}

bool Engine::StopNow() const {
  if (stop_now_.load(std::memory_order_relaxed)) return true;
  absl::MutexLock lock(&mu_);
  return !accepting_ && absl::Now() >= shutdown_deadline_;
}

void Engine::Run() {
  while (Admit()) {
    if (!running_.empty()) Step();
    RemoveEnded();
  }
}

bool Engine::Admit() {
  std::vector<std::unique_ptr<Sequence>> admitted;
  std::vector<std::unique_ptr<Sequence>> dropped;
  bool done = false;
  {
    absl::MutexLock lock(&mu_);
    if (running_.empty()) {
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !waiting_.empty() || !accepting_;
      };
      mu_.Await(absl::Condition(&has_work));
    }
    if (!accepting_ && absl::Now() >= shutdown_deadline_) {
      stop_now_.store(true, std::memory_order_relaxed);
    }
    AdmitAndDrop(&admitted, &dropped);
    done = !accepting_ && waiting_.empty() && running_.empty() && admitted.empty();
  }
  for (std::unique_ptr<Sequence>& sequence : dropped) {
    if (stop_now_.load() || sequence->handle->cancelled()) {
      End(sequence.get(), absl::OkStatus(), FinishReason::kCancelled);
    } else {
      End(sequence.get(),
          absl::DeadlineExceededError("the deadline passed while the request was queued"),
          FinishReason::kCancelled);
    }
  }
  for (std::unique_ptr<Sequence>& sequence : admitted) {
    Sequence* s = sequence.get();
    running_.push_back(std::move(sequence));
    const int64_t positions =
        static_cast<int64_t>(s->request.prompt.size()) + s->request.max_new_tokens;
    if (absl::Status reserved = model_->model().ReserveCache(&s->cache, positions);
        !reserved.ok()) {
      End(s,
          absl::Status(reserved.code(),
                       absl::StrCat("cannot allocate the KV cache: ", reserved.message())),
          FinishReason::kCancelled);
    }
  }
  if (done) return false;

  const absl::Time now = absl::Now();
  const bool stop = stop_now_.load();
  for (std::unique_ptr<Sequence>& sequence : running_) {
    if (sequence->ended) continue;
    if (stop || sequence->handle->cancelled()) {
      End(sequence.get(), absl::OkStatus(), FinishReason::kCancelled);
    } else if (now >= sequence->request.deadline) {
      End(sequence.get(),
          absl::DeadlineExceededError(
              absl::StrCat("the deadline passed after ", sequence->generated, " generated tokens")),
          FinishReason::kCancelled);
    }
  }
  RemoveEnded();
  return true;
}

void Engine::AdmitAndDrop(std::vector<std::unique_ptr<Sequence>>* admitted,
                          std::vector<std::unique_ptr<Sequence>>* dropped) {
  const absl::Time now = absl::Now();
  const bool stop = stop_now_.load();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (stop || (*it)->handle->cancelled() || now >= (*it)->request.deadline) {
      dropped->push_back(std::move(*it));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  // A request's choices join together (the front is always a first choice:
  // a request's choices are queued and dropped together).
  while (!waiting_.empty()) {
    const int n = waiting_.front()->request.n;
    const int64_t kv = waiting_.front()->kv_bytes * n;
    if (running_count_ + n > options_.max_batch) break;
    if (options_.max_kv_bytes > 0 && kv_bytes_ + kv > options_.max_kv_bytes) break;
    kv_bytes_ += kv;
    running_count_ += n;
    for (int i = 0; i < n; ++i) {
      waiting_.front()->counted = true;
      admitted->push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
  }
}

void Engine::RemoveEnded() {
  running_.erase(
      std::remove_if(running_.begin(), running_.end(),
                     [](const std::unique_ptr<Sequence>& s) { return s->ended && !s->in_flight; }),
      running_.end());  // frees the caches
}

// The model's input for each running sequence: its next prompt chunk (at most
// prefill_chunk prompt tokens per step in all) or its last sampled token.
// Attention is captured only for sequences whose sampler reads it.
void Engine::StepInputs(const std::vector<Sequence*>& candidates, std::vector<Sequence*>* in_step,
                        std::vector<SequenceInput>* inputs) {
  const std::vector<int> last_layer = {-1};
  int64_t prefill_budget = options_.prefill_chunk;
  bool any_prefill = false;
  for (Sequence* s : candidates) {
    // Choices after a request's first wait for its prompt's cache (StepRows
    // copies it once the first choice has prefilled).
    if (s->awaiting_fork) continue;
    SequenceInput input;
    input.cache = &s->cache;
    // A BF16 model's decode-graph logits stay bfloat16: the sampler widens
    // them on its own threads, samplerd's transport sends them as they are
    // (the widening on this thread was the largest host cost of a large
    // batch's step).
    input.bf16_logits = true;
    const std::vector<int>& capture = s->capture_attention ? last_layer : std::vector<int>{};
    if (s->prefilling()) {
      // Chunks start at multiples of prefill_chunk whatever else runs.
      const int64_t remaining = static_cast<int64_t>(s->request.prompt.size() - s->prefilled);
      const int64_t n = std::min<int64_t>(remaining, options_.prefill_chunk);
      if (any_prefill && n > prefill_budget) continue;  // next step
      any_prefill = true;
      prefill_budget -= n;
      s->chunk = static_cast<size_t>(n);
      input.tokens = absl::MakeConstSpan(s->request.prompt.data() + s->prefilled, s->chunk);
      input.attention_layers = n == remaining ? capture : std::vector<int>{};
    } else {
      s->chunk = 0;
      input.tokens = absl::MakeConstSpan(&s->pending_token, 1);
      input.attention_layers = capture;
    }
    in_step->push_back(s);
    inputs->push_back(std::move(input));
  }
}

// A sampler row for each sequence of the step with a token to draw.
void Engine::StepRows(const std::vector<Sequence*>& in_step, const StepOutput& output,
                      std::vector<Sequence*>* sampling, std::vector<Row>* rows) {
  for (size_t i = 0; i < in_step.size(); ++i) {
    Sequence* s = in_step[i];
    if (s->ended) continue;  // cancelled while its step was in flight
    s->prefilled += s->chunk;
    if (s->prefilling()) continue;  // more prompt to feed first
    const SequenceOutput& out = output.sequences[i];
    Row row;
    row.sequence_id = s->name;
    row.step = s->step;
    row.config = s->request.sampler;
    row.seed = s->request.seed;
    row.top_logprobs = s->request.top_logprobs;
    row.allowed_tokens = s->request.allowed_tokens;
    row.state = s->state;
    row.logits = out.logits;
    row.logits_bf16 = out.logits_bf16;
    if (!out.attention.empty()) {
      const AttentionScores& a = out.attention.front();
      row.attention = a.scores;
      row.heads = static_cast<int32_t>(a.heads);
      row.keys = static_cast<int32_t>(a.keys);
    }
    row.special_tokens = model_->special_tokens();
    if (s->step == 0) row.appended_tokens = s->request.prompt;
    sampling->push_back(s);
    rows->push_back(std::move(row));
    if (s->request.n > 1 && s->choice == 0 && s->step == 0) Fork(s, sampling, rows);
  }
}

// Unsplit: launch every sequence, read, sample. Split (pipelining): launch
// one cohort, then read and sample the other's step launched before, while
// the device runs this one.
void Engine::Step() {
  int live = 0;
  for (const std::unique_ptr<Sequence>& s : running_) live += s->ended ? 0 : 1;
  const bool split = pipeline_ && live >= std::max(2, options_.pipeline_min_batch);
  std::optional<Launched> launched = LaunchReady(split);
  if (in_flight_) {
    Launched older = std::move(*in_flight_);
    in_flight_.reset();
    FinishStep(older);
  }
  if (!launched) return;
  if (split) {
    in_flight_ = std::move(launched);
  } else {
    FinishStep(*launched);
  }
}

std::optional<Engine::Launched> Engine::LaunchReady(bool split) {
  std::vector<Sequence*> ready;
  size_t in_flight = 0;
  for (const std::unique_ptr<Sequence>& s : running_) {
    if (s->ended) continue;
    if (s->in_flight) {
      ++in_flight;
    } else {
      ready.push_back(s.get());
    }
  }
  if (split) {
    // At most half of the running sequences, those that waited longest.
    const size_t half = std::max<size_t>(1, (ready.size() + in_flight + 1) / 2);
    std::stable_sort(ready.begin(), ready.end(), [](const Sequence* a, const Sequence* b) {
      return a->last_launch < b->last_launch;
    });
    if (ready.size() > half) ready.resize(half);
  }
  Launched launched;
  std::vector<SequenceInput> inputs;
  StepInputs(ready, &launched.in_step, &inputs);
  if (inputs.empty()) return std::nullopt;

  const absl::Time start = absl::Now();
  absl::StatusOr<PendingForward> pending = model_->model().Launch(inputs);
  launched.launch_time = absl::Now() - start;
  if (!pending.ok()) {
    for (Sequence* s : launched.in_step) {
      End(s,
          absl::Status(pending.status().code(),
                       absl::StrCat("model: ", pending.status().message())),
          FinishReason::kCancelled);
    }
    return std::nullopt;
  }
  ++launches_;
  for (Sequence* s : launched.in_step) {
    s->in_flight = true;
    s->last_launch = launches_;
  }
  launched.pending = std::move(*pending);
  return launched;
}

void Engine::FinishStep(Launched& launched) {
  const absl::Time wait_start = absl::Now();
  absl::StatusOr<StepOutput> output = launched.pending.Wait();
  const absl::Duration forward_time = launched.launch_time + (absl::Now() - wait_start);
  for (Sequence* s : launched.in_step) s->in_flight = false;
  if (!output.ok()) {
    for (Sequence* s : launched.in_step) {
      End(s,
          absl::Status(output.status().code(), absl::StrCat("model: ", output.status().message())),
          FinishReason::kCancelled);
    }
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ++steps_;
    forward_time_ += forward_time;
  }

  std::vector<Sequence*> sampling;
  std::vector<Row> rows;
  StepRows(launched.in_step, *output, &sampling, &rows);
  absl::Duration sampling_time;
  if (!rows.empty()) {
    std::vector<RowResult> results;
    std::vector<bool> sampled;
    const absl::Time sampling_start = absl::Now();
    SampleRows(sampling, rows, &results, &sampled);
    sampling_time = absl::Now() - sampling_start;
    {
      absl::MutexLock lock(&mu_);
      rows_sampled_ += static_cast<int64_t>(rows.size());
      sampling_time_ += sampling_time;
    }
    for (size_t i = 0; i < sampling.size(); ++i) {
      if (sampled[i] && !sampling[i]->ended) Accept(sampling[i], results[i]);
    }
  }
  if (options_.observer != nullptr) {
    // With cohorts pipelined, steps overlap in wall time: a step is its
    // forward pass and its sampler call.
    options_.observer->OnStep(forward_time + sampling_time, forward_time, sampling_time);
  }
  rows.clear();  // their spans point into the output
  model_->model().Recycle(std::move(*output));
}

void Engine::SampleRows(std::vector<Sequence*>& sequences, std::vector<Row>& rows,
                        std::vector<RowResult>* results, std::vector<bool>* sampled) {
  results->assign(rows.size(), RowResult());
  sampled->assign(rows.size(), false);
  std::vector<size_t> live(rows.size());
  for (size_t i = 0; i < live.size(); ++i) live[i] = i;
  const absl::Time start = absl::Now();
  while (!live.empty()) {
    std::vector<Row> retry;
    absl::Span<const Row> batch = rows;
    if (live.size() != rows.size()) {
      for (size_t i : live) retry.push_back(rows[i]);
      batch = retry;
    }
    SampleControl control;
    control.bfloat16_values = model_->model().dtype() == ComputeDType::kBFloat16;
    for (size_t i : live) {
      control.deadline = std::min(control.deadline,
                                  sequences[i]->SamplerWaitDeadline(start, options_.sampler_wait));
    }
    // Stop waiting once nobody waits for the answer: shut down, or every
    // row's client gone. (A row whose client left while others wait is
    // dropped when the call returns.)
    control.stop = [this, &sequences, &live] {
      if (StopNow()) return true;
      for (size_t i : live) {
        if (!sequences[i]->handle->cancelled()) return false;
      }
      return true;
    };
    absl::StatusOr<std::vector<RowResult>> answer = backend_->Sample(batch, control);
    if (answer.ok() && answer->size() == live.size()) {
      for (size_t k = 0; k < live.size(); ++k) {
        (*results)[live[k]] = std::move((*answer)[k]);
        (*sampled)[live[k]] = true;
      }
      return;
    }
    const absl::Status status =
        answer.ok() ? absl::InternalError(absl::StrCat("the sampler answered ", answer->size(),
                                                       " rows for ", live.size()))
                    : answer.status();
    const bool waitable = status.code() == absl::StatusCode::kUnavailable ||
                          status.code() == absl::StatusCode::kCancelled ||
                          status.code() == absl::StatusCode::kDeadlineExceeded;
    const absl::Time now = absl::Now();
    const bool stop = StopNow();
    std::vector<size_t> still;
    for (size_t i : live) {
      Sequence* s = sequences[i];
      if (stop || s->handle->cancelled()) {
        End(s, absl::OkStatus(), FinishReason::kCancelled);
      } else if (!waitable) {
        End(s, absl::Status(status.code(), absl::StrCat("sampler: ", status.message())),
            FinishReason::kCancelled);
      } else if (now >= s->SamplerWaitDeadline(start, options_.sampler_wait)) {
        End(s,
            absl::UnavailableError(absl::StrCat(
                "the sampler (", backend_->Describe(),
                ") could not be reached within the request's deadline: ", status.message())),
            FinishReason::kCancelled);
      } else {
        still.push_back(i);
      }
    }
    if (still.size() == live.size()) absl::SleepFor(kSamplerRetryPause);
    live = std::move(still);
  }
}

// The other choices of `first`'s request, now that its prompt is in its
// cache and its row (the last of `rows`) is built: each copies the cache and
// samples its first token from the same logits with its own seed.
void Engine::Fork(Sequence* first, std::vector<Sequence*>* sampling, std::vector<Row>* rows) {
  const Row first_row = rows->back();
  for (std::unique_ptr<Sequence>& owned : running_) {
    Sequence* s = owned.get();
    if (s->group != first->group || !s->awaiting_fork || s->ended) continue;
    if (absl::Status copied = model_->model().CopyCache(first->cache, &s->cache); !copied.ok()) {
      End(s, absl::Status(copied.code(), absl::StrCat("model: ", copied.message())),
          FinishReason::kCancelled);
      continue;
    }
    s->awaiting_fork = false;
    s->prefilled = s->request.prompt.size();
    Row row = first_row;
    row.sequence_id = s->name;
    row.seed = s->request.seed;
    sampling->push_back(s);
    rows->push_back(std::move(row));
  }
}

void Engine::Accept(Sequence* s, const RowResult& result) {
  if (!result.status.ok()) {
    End(s, absl::Status(result.status.code(), absl::StrCat("sampler: ", result.status.message())),
        FinishReason::kCancelled);
    return;
  }
  const int32_t token = result.output.token;
  s->state = result.state;
  ++s->step;
  s->pending_token = token;
  ++s->generated;
  if (s->generated == 1) s->first_token = absl::Now();
  s->text += s->decoder.Add(token);

  const GenerationRequest& request = s->request;
  bool finished = false;
  FinishReason reason = FinishReason::kLength;
  size_t release_end = s->text.size();
  if (std::find(s->stop_ids.begin(), s->stop_ids.end(), token) != s->stop_ids.end()) {
    finished = true;
    reason = FinishReason::kEos;
  } else if (!request.stop.empty()) {
    const size_t at = FindStop(s->text, s->emitted, request.stop);
    if (at != std::string::npos) {
      finished = true;
      reason = FinishReason::kStop;
      release_end = at;
    }
  }
  if (!finished && s->generated >= request.max_new_tokens) {
    finished = true;
    reason = request.max_new_tokens_is_context ? FinishReason::kContext : FinishReason::kLength;
  }
  if (finished && reason != FinishReason::kStop) {
    s->text += s->decoder.Flush();
    release_end = s->text.size();
  } else if (!finished) {
    release_end = s->text.size() - HeldBack(s->text, s->emitted, request.stop);
  }

  TokenOutput out;
  out.id = token;
  out.index = s->generated - 1;
  out.text = s->text.substr(s->emitted, release_end - s->emitted);
  out.sample = result.output;
  out.choice = s->choice;
  s->emitted = release_end;
  if (options_.observer != nullptr) {
    const absl::Time now = absl::Now();
    const absl::Time previous = s->generated == 1 ? request.arrival : s->last_token;
    options_.observer->OnToken(s->state.sampler, out.sample, s->generated == 1, now - previous);
    s->last_token = now;
  }
  s->sink->OnToken(std::move(out));
  if (finished) End(s, absl::OkStatus(), reason);
}

void Engine::End(Sequence* s, absl::Status status, FinishReason reason) {
  if (s->ended) return;
  s->ended = true;
  // The slot and the KV budget are free before the client hears of the end.
  if (s->counted) {
    s->counted = false;
    absl::MutexLock lock(&mu_);
    --running_count_;
    kv_bytes_ -= s->kv_bytes;
  }
  std::shared_ptr<GenerationSink> sink = std::move(s->sink);
  if (status.ok()) sink->OnChoiceEnd({s->choice, reason, s->generated});
  // The request's end: choice 0's reason and first token, the first error
  // (which ends the other choices too), every choice's tokens.
  GenerationEnd& end = s->group->end;
  if (!status.ok() && end.status.ok()) {
    end.status = std::move(status);
    s->handle->Cancel();
  }
  end.prompt_tokens = static_cast<int32_t>(s->request.prompt.size());
  end.generated_tokens += s->generated;
  if (s->choice == 0) {
    end.reason = reason;
    if (s->generated > 0)
      end.time_to_first_token_ms = Milliseconds(s->first_token - s->request.arrival);
  }
  end.total_ms = Milliseconds(absl::Now() - s->request.arrival);
  if (--s->group->remaining > 0) return;
  if (options_.observer != nullptr) options_.observer->OnEnd(end);
  sink->OnEnd(end);
}

}  // namespace entroserve
