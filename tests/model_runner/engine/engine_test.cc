// The serving engine in process, on the bundled tiny model, with scripted
// sampler backends: admission checks, stop handling and text deltas, limits,
// cancellation, an unreachable sampler, chunked prefill.
#include "model_runner/engine/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model_runner/engine/served_model.h"
#include "model_runner/model/transformer.h"
#include "model_runner/tokenizer/tokenizer.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kTinyModel[] = ENTROSERVE_SOURCE_DIR "/models/tiny";

const ServedModel& Tiny() {
  static const ServedModel* model = [] {
    ModelOptions options;
    options.threads = 1;
    absl::StatusOr<std::unique_ptr<ServedModel>> loaded = ServedModel::Load(kTinyModel, options);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded->release();
  }();
  return *model;
}

// Picks each row's token with `choose(row)` (argmax by default) and records
// every call; `before_call(call index)` may make the call fail.
class ScriptedBackend : public SamplerBackend {
 public:
  struct Call {
    std::vector<std::string> sequences;
    std::vector<int64_t> steps;
    std::vector<size_t> appended;
    std::vector<std::vector<float>> logits;
  };

  std::function<int32_t(const Row&)> choose = [](const Row& row) {
    return static_cast<int32_t>(std::max_element(row.logits.begin(), row.logits.end()) -
                                row.logits.begin());
  };
  std::function<absl::Status(int, const SampleControl&)> before_call;
  absl::Duration delay = absl::ZeroDuration();
  bool record_logits = false;

  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl& control) override {
    int index;
    {
      absl::MutexLock lock(&mu_);
      index = static_cast<int>(calls_.size());
      Call call;
      for (const Row& row : rows) {
        call.sequences.push_back(row.sequence_id);
        call.steps.push_back(row.step);
        call.appended.push_back(row.appended_tokens.size());
        if (record_logits) call.logits.emplace_back(row.logits.begin(), row.logits.end());
      }
      calls_.push_back(std::move(call));
    }
    if (before_call) {
      if (absl::Status s = before_call(index, control); !s.ok()) return s;
    }
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    std::vector<RowResult> results(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      results[i].output.token = choose(rows[i]);
      results[i].output.mode = Mode::kGreedy;
      results[i].state = rows[i].state;
      results[i].state.next_step = rows[i].step + 1;
      results[i].seed = rows[i].seed;
    }
    return results;
  }
  std::string Describe() const override { return "scripted"; }

  std::vector<Call> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Call> calls_;
};

// Collects a generation's output; Wait() blocks until its end.
class Collector : public GenerationSink {
 public:
  void OnToken(TokenOutput token) override {
    absl::MutexLock lock(&mu_);
    tokens_.push_back(std::move(token));
  }
  void OnEnd(const GenerationEnd& end) override {
    absl::MutexLock lock(&mu_);
    end_ = end;
    ended_ = true;
  }
  GenerationEnd Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&ended_));
    return end_;
  }
  std::vector<TokenOutput> tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  std::string text() {
    std::string out;
    for (const TokenOutput& t : tokens()) out += t.text;
    return out;
  }
  std::vector<int32_t> ids() {
    std::vector<int32_t> out;
    for (const TokenOutput& t : tokens()) out.push_back(t.id);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<TokenOutput> tokens_;
  GenerationEnd end_;
  bool ended_ = false;
};

GenerationRequest Request(const std::string& text, int32_t max_new_tokens) {
  GenerationRequest request;
  request.prompt = Tiny().tokenizer().EncodeWithSpecialTokens(text);
  request.max_new_tokens = max_new_tokens;
  request.ignore_eos = true;
  request.sampler = GreedyConfig();
  request.seed = 1;
  return request;
}

// Runs one request to its end.
std::shared_ptr<Collector> RunToEnd(Engine& engine, GenerationRequest request) {
  auto sink = std::make_shared<Collector>();
  auto handle = engine.Submit(std::move(request), sink);
  EXPECT_TRUE(handle.ok()) << handle.status();
  if (handle.ok()) sink->Wait();
  return sink;
}

TEST(EngineTest, GreedyGenerationStreamsTokensAndEndsWithLength) {
  ScriptedBackend backend;
  Engine engine(&Tiny(), &backend, EngineOptions());
  auto sink = RunToEnd(engine, Request("The jury said", 12));
  const GenerationEnd end = sink->Wait();
  EXPECT_TRUE(end.status.ok()) << end.status;
  EXPECT_EQ(end.reason, FinishReason::kLength);
  EXPECT_EQ(end.generated_tokens, 12);
  EXPECT_EQ(end.prompt_tokens, 4);
  ASSERT_EQ(sink->tokens().size(), 12u);
  EXPECT_EQ(sink->text(), Tiny().tokenizer().Decode(sink->ids(), /*skip_special=*/true));
  // One row per step; the prompt is appended at step 0 only.
  const auto calls = backend.calls();
  ASSERT_EQ(calls.size(), 12u);
  for (size_t i = 0; i < calls.size(); ++i) {
    ASSERT_EQ(calls[i].steps.size(), 1u);
    EXPECT_EQ(calls[i].steps[0], static_cast<int64_t>(i));
    EXPECT_EQ(calls[i].appended[0], i == 0 ? 4u : 0u);
  }
}

TEST(EngineTest, StatsCountStepsRowsAndTheirTime) {
  // One request of 6 tokens with a prompt shorter than a prefill chunk: one
  // step (a forward pass and one sampled row) per token. The backend takes
  // 2 ms a call, so sampling time is at least 6 x 2 ms.
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(2);
  Engine engine(&Tiny(), &backend, EngineOptions());
  const EngineStats before = engine.Stats();
  EXPECT_EQ(before.steps, 0);
  EXPECT_EQ(before.rows_sampled, 0);
  EXPECT_EQ(before.forward_time, absl::ZeroDuration());
  EXPECT_EQ(before.sampling_time, absl::ZeroDuration());
  ASSERT_TRUE(RunToEnd(engine, Request("The jury said", 6))->Wait().status.ok());
  const EngineStats after = engine.Stats();
  EXPECT_EQ(after.steps, 6);
  EXPECT_EQ(after.rows_sampled, 6);
  EXPECT_GT(after.forward_time, absl::ZeroDuration());
  EXPECT_GE(after.sampling_time, absl::Milliseconds(12));
}

TEST(EngineTest, AdmissionChecksNameTheField) {
  ScriptedBackend backend;
  EngineOptions options;
  options.max_kv_bytes = Tiny().model().CacheBytes(100);
  Engine engine(&Tiny(), &backend, options);
  auto submit = [&](GenerationRequest request) {
    return engine.Submit(std::move(request), std::make_shared<Collector>()).status();
  };
  GenerationRequest empty = Request("x", 4);
  empty.prompt.clear();
  EXPECT_THAT(std::string(submit(empty).message()), StartsWith("prompt is empty"));

  GenerationRequest long_prompt = Request("x", 4);
  long_prompt.prompt.assign(1030, 7);
  EXPECT_EQ(submit(long_prompt).message(), "prompt has 1030 tokens; the context holds 1024");

  GenerationRequest bad_id = Request("x", 4);
  bad_id.prompt.push_back(6144);
  EXPECT_THAT(std::string(submit(bad_id).message()),
              StartsWith("prompt[2] is 6144, outside the vocabulary"));

  EXPECT_EQ(submit(Request("x", 0)).message(), "max_new_tokens must be >= 1, got 0");
  EXPECT_EQ(submit(Request("x", 1023)).message(),
            "max_new_tokens is 1023, but the prompt's 2 tokens leave room for 1022 in the "
            "context of 1024");

  absl::Status kv = submit(Request("x", 200));
  EXPECT_EQ(kv.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(kv.message()), HasSubstr("KV cache"));

  GenerationRequest late = Request("x", 4);
  late.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_EQ(submit(late).code(), absl::StatusCode::kDeadlineExceeded);

  GenerationRequest stop = Request("x", 4);
  stop.stop = {"ok", ""};
  EXPECT_EQ(submit(stop).message(), "stop[1] is empty");
}

TEST(EngineTest, StopStringsAreCutAndHeldBackTextIsNeverStreamed) {
  // The tokens of a known text, returned one by one whatever the logits.
  const std::string script = "Hello world, hello there, and more words after.";
  const std::vector<int32_t> ids = Tiny().tokenizer().Encode(script);
  ASSERT_GT(ids.size(), 6u);
  ScriptedBackend backend;
  backend.choose = [&](const Row& row) { return ids[static_cast<size_t>(row.step)]; };
  Engine engine(&Tiny(), &backend, EngineOptions());

  GenerationRequest request = Request("x", static_cast<int32_t>(ids.size()));
  request.stop = {"lo there", "never"};
  auto sink = RunToEnd(engine, request);
  const GenerationEnd end = sink->Wait();
  EXPECT_EQ(end.reason, FinishReason::kStop);
  EXPECT_EQ(sink->text(), "Hello world, hel");
  // Each delta is what was safe to show: no delta ends with a proper prefix
  // of a stop string that was later cut.
  std::string shown;
  for (const TokenOutput& t : sink->tokens()) {
    shown += t.text;
    EXPECT_EQ(script.compare(0, shown.size(), shown), 0) << shown;
    EXPECT_LE(shown.size(), std::string("Hello world, hel").size()) << shown;
  }

  // Without a match, everything held back comes out at the end.
  request.stop = {"there!"};
  sink = RunToEnd(engine, request);
  EXPECT_EQ(sink->Wait().reason, FinishReason::kLength);
  EXPECT_EQ(sink->text(), script);
}

TEST(EngineTest, TextDeltasNeverSplitAUtf8Character) {
  // "é" as two byte tokens (byte-level BPE: 0xC3 is "Ã", 0xA9 is "©").
  const Tokenizer& tokenizer = Tiny().tokenizer();
  const std::optional<int32_t> lead = tokenizer.TokenToId("\xc3\x83");   // Ã
  const std::optional<int32_t> trail = tokenizer.TokenToId("\xc2\xa9");  // ©
  ASSERT_TRUE(lead && trail);
  const std::vector<int32_t> ids = {*lead, *trail, *lead, *trail};
  ScriptedBackend backend;
  backend.choose = [&](const Row& row) { return ids[static_cast<size_t>(row.step)]; };
  Engine engine(&Tiny(), &backend, EngineOptions());
  auto sink = RunToEnd(engine, Request("x", 4));
  sink->Wait();
  const auto tokens = sink->tokens();
  ASSERT_EQ(tokens.size(), 4u);
  EXPECT_EQ(tokens[0].text, "");
  EXPECT_EQ(tokens[1].text, "\xc3\xa9");
  EXPECT_EQ(tokens[2].text, "");
  EXPECT_EQ(tokens[3].text, "\xc3\xa9");
}

TEST(EngineTest, EosAndStopTokenIdsEndTheGeneration) {
  ScriptedBackend backend;
  backend.choose = [](const Row& row) { return row.step == 2 ? 2 : 100; };  // <|im_end|>
  Engine engine(&Tiny(), &backend, EngineOptions());
  GenerationRequest request = Request("x", 10);
  request.ignore_eos = false;
  auto sink = RunToEnd(engine, request);
  EXPECT_EQ(sink->Wait().reason, FinishReason::kEos);
  EXPECT_EQ(sink->ids(), (std::vector<int32_t>{100, 100, 2}));

  request.ignore_eos = true;
  EXPECT_EQ(RunToEnd(engine, request)->Wait().reason, FinishReason::kLength);

  request.stop_token_ids = {100};
  sink = RunToEnd(engine, request);
  EXPECT_EQ(sink->Wait().reason, FinishReason::kEos);
  EXPECT_EQ(sink->ids(), (std::vector<int32_t>{100}));
}

TEST(EngineTest, BatchAndQueueLimitsHold) {
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(5);
  EngineOptions options;
  options.max_batch = 2;
  options.max_queue = 1;
  Engine engine(&Tiny(), &backend, options);
  std::vector<std::shared_ptr<Collector>> sinks;
  std::vector<absl::Status> statuses;
  for (int i = 0; i < 4; ++i) {
    auto sink = std::make_shared<Collector>();
    statuses.push_back(engine.Submit(Request("The jury", 20), sink).status());
    sinks.push_back(sink);
  }
  // Two fit the batch, one the queue; the fourth is refused.
  EXPECT_TRUE(statuses[0].ok() && statuses[1].ok() && statuses[2].ok());
  EXPECT_EQ(statuses[3].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(statuses[3].message(), "queue full (1 waiting)");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(sinks[i]->Wait().status.ok());
  for (const auto& call : backend.calls()) EXPECT_LE(call.sequences.size(), 2u);
}

TEST(EngineTest, AZeroQueueTakesOnlyWhatTheBatchHolds) {
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(5);
  EngineOptions options;
  options.max_batch = 1;
  options.max_queue = 0;
  Engine engine(&Tiny(), &backend, options);
  auto a = std::make_shared<Collector>();
  ASSERT_TRUE(engine.Submit(Request("The jury", 20), a).ok());
  absl::Status b = engine.Submit(Request("The jury", 20), std::make_shared<Collector>()).status();
  EXPECT_EQ(b.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(b.message(), "queue full (0 waiting)");
  EXPECT_TRUE(a->Wait().status.ok());
}

TEST(EngineTest, TheKvBudgetAdmitsWhatFits) {
  ScriptedBackend backend;
  EngineOptions options;
  // Room for one sequence of 64 positions (the smallest allocation).
  options.max_kv_bytes = Tiny().model().CacheBytes(64);
  Engine engine(&Tiny(), &backend, options);
  auto a = std::make_shared<Collector>();
  auto b = std::make_shared<Collector>();
  ASSERT_TRUE(engine.Submit(Request("The jury", 10), a).ok());
  ASSERT_TRUE(engine.Submit(Request("The jury", 10), b).ok());
  EXPECT_TRUE(a->Wait().status.ok());
  EXPECT_TRUE(b->Wait().status.ok());
  // Never both in one step.
  for (const auto& call : backend.calls()) EXPECT_EQ(call.sequences.size(), 1u);
}

TEST(EngineTest, ACancelledRequestEndsAndFreesItsSlot) {
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(2);
  EngineOptions options;
  options.max_batch = 1;
  Engine engine(&Tiny(), &backend, options);
  auto long_sink = std::make_shared<Collector>();
  auto handle = engine.Submit(Request("The jury", 1000), long_sink);
  ASSERT_TRUE(handle.ok());
  while (long_sink->tokens().size() < 3) absl::SleepFor(absl::Milliseconds(1));
  (*handle)->Cancel();
  const GenerationEnd end = long_sink->Wait();
  EXPECT_TRUE(end.status.ok());
  EXPECT_EQ(end.reason, FinishReason::kCancelled);
  EXPECT_LT(end.generated_tokens, 1000);
  EXPECT_TRUE(RunToEnd(engine, Request("The jury", 3))->Wait().status.ok());
  EXPECT_EQ(engine.Stats().running, 0);
  EXPECT_EQ(engine.Stats().kv_bytes, 0);
}

TEST(EngineTest, AnUnreachableSamplerIsWaitedForAndTheStepResent) {
  ScriptedBackend backend;
  // Calls 3 to 5 fail as an unreachable sampler does (after waiting a little).
  backend.before_call = [](int call, const SampleControl&) {
    if (call >= 3 && call <= 5) {
      absl::SleepFor(absl::Milliseconds(5));
      return absl::UnavailableError("samplerd is down");
    }
    return absl::OkStatus();
  };
  Engine engine(&Tiny(), &backend, EngineOptions());
  auto sink = RunToEnd(engine, Request("The jury said", 8));
  const GenerationEnd end = sink->Wait();
  EXPECT_TRUE(end.status.ok()) << end.status;
  EXPECT_EQ(end.generated_tokens, 8);
  // The step that failed was sent again, with the same step index.
  std::vector<int64_t> steps;
  for (const auto& call : backend.calls()) steps.push_back(call.steps[0]);
  EXPECT_EQ(steps, (std::vector<int64_t>{0, 1, 2, 3, 3, 3, 3, 4, 5, 6, 7}));

  // Compared with an undisturbed run: the same tokens.
  ScriptedBackend healthy;
  Engine other(&Tiny(), &healthy, EngineOptions());
  EXPECT_EQ(RunToEnd(other, Request("The jury said", 8))->ids(), sink->ids());
}

TEST(EngineTest, ASamplerUnreachablePastTheDeadlineIsUnavailable) {
  ScriptedBackend backend;
  backend.before_call = [](int, const SampleControl& control) {
    // Waits for the sampler until the control's deadline, as the remote
    // backend does.
    while (absl::Now() < control.deadline && !(control.stop && control.stop())) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return absl::UnavailableError("cannot connect to samplerd");
  };
  Engine engine(&Tiny(), &backend, EngineOptions());
  GenerationRequest request = Request("The jury said", 8);
  // Room for the prefill under ThreadSanitizer (~10x slower) before the
  // sampler is waited for.
  request.deadline = absl::Now() + absl::Milliseconds(1500);
  const absl::Time start = absl::Now();
  auto sink = RunToEnd(engine, request);
  const GenerationEnd end = sink->Wait();
  EXPECT_EQ(end.status.code(), absl::StatusCode::kUnavailable) << end.status;
  EXPECT_THAT(std::string(end.status.message()), HasSubstr("cannot connect to samplerd"));
  EXPECT_EQ(end.generated_tokens, 0);
  EXPECT_LT(absl::Now(), request.deadline);
  EXPECT_GT(absl::Now() - start, absl::Milliseconds(200));
}

TEST(EngineTest, ChunkedPrefillGivesTheLogitsOfOnePrefill) {
  const std::string prompt =
      "The Fulton County Grand Jury said Friday an investigation of recent primary elections";
  std::vector<std::vector<float>> first_logits;
  for (int chunk : {1000, 5, 3}) {
    ScriptedBackend backend;
    backend.record_logits = true;
    EngineOptions options;
    options.prefill_chunk = chunk;
    Engine engine(&Tiny(), &backend, options);
    auto sink = RunToEnd(engine, Request(prompt, 4));
    EXPECT_TRUE(sink->Wait().status.ok());
    const auto calls = backend.calls();
    ASSERT_FALSE(calls.empty());
    first_logits.push_back(calls[0].logits[0]);
  }
  for (size_t k = 1; k < first_logits.size(); ++k) {
    ASSERT_EQ(first_logits[k].size(), first_logits[0].size());
    float max_diff = 0;
    for (size_t i = 0; i < first_logits[0].size(); ++i) {
      max_diff = std::max(max_diff, std::abs(first_logits[k][i] - first_logits[0][i]));
    }
    EXPECT_LT(max_diff, 1e-3f) << "chunking " << k;
  }
}

// ModelOptions.group_decode_attention (the default on CUDA), here on the CPU:
// four requests decoding together through the engine give, token for token,
// what each gives alone with every sequence's attention computed on its own.
TEST(EngineTest, GroupedDecodeAttentionGivesEachRequestsTokensAlone) {
  ModelOptions options;
  options.threads = 1;
  options.group_decode_attention = true;
  absl::StatusOr<std::unique_ptr<ServedModel>> grouped = ServedModel::Load(kTinyModel, options);
  ASSERT_TRUE(grouped.ok()) << grouped.status();
  const std::vector<std::string> prompts = {"The jury said", "In the morning, the",
                                            "He looked at the old", "After the war,"};
  ScriptedBackend backend;
  Engine engine(grouped->get(), &backend, EngineOptions());
  std::vector<std::shared_ptr<Collector>> sinks;
  for (const std::string& prompt : prompts) {  // all submitted, then waited for
    sinks.push_back(std::make_shared<Collector>());
    ASSERT_TRUE(engine.Submit(Request(prompt, 16), sinks.back()).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE(prompts[i]);
    ASSERT_TRUE(sinks[i]->Wait().status.ok());
    ScriptedBackend alone_backend;
    Engine alone(&Tiny(), &alone_backend, EngineOptions());
    auto sink = RunToEnd(alone, Request(prompts[i], 16));
    ASSERT_TRUE(sink->Wait().status.ok());
    EXPECT_EQ(sinks[i]->ids(), sink->ids());
    EXPECT_EQ(sinks[i]->ids().size(), 16u);
  }
  // The requests did decode together: some sampler call carried several rows.
  size_t widest = 0;
  for (const auto& call : backend.calls()) widest = std::max(widest, call.steps.size());
  EXPECT_GE(widest, 2u);
}

TEST(EngineTest, ShutdownEndsWhatIsLeftWithCancelled) {
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(2);
  auto engine = std::make_unique<Engine>(&Tiny(), &backend, EngineOptions());
  auto sink = std::make_shared<Collector>();
  ASSERT_TRUE(engine->Submit(Request("The jury", 1000), sink).ok());
  while (sink->tokens().empty()) absl::SleepFor(absl::Milliseconds(1));
  engine->Shutdown(absl::Milliseconds(20));
  const GenerationEnd end = sink->Wait();
  EXPECT_TRUE(end.status.ok());
  EXPECT_EQ(end.reason, FinishReason::kCancelled);
  EXPECT_EQ(engine->Submit(Request("x", 2), std::make_shared<Collector>()).status().code(),
            absl::StatusCode::kUnavailable);
}

// The tiny model with ModelOptions.batch_invariant: a sequence's tokens do
// not depend on the batch it is in, so pipelined cohorts must give exactly
// the tokens of one batch.
const ServedModel& InvariantTiny() {
  static const ServedModel* model = [] {
    ModelOptions options;
    options.threads = 1;
    options.batch_invariant = true;
    absl::StatusOr<std::unique_ptr<ServedModel>> loaded = ServedModel::Load(kTinyModel, options);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded->release();
  }();
  return *model;
}

EngineOptions PipelineOptions(bool on) {
  EngineOptions options;
  options.pipeline = on;
  options.pipeline_min_batch = 2;
  return options;
}

const std::vector<std::string>& SixPrompts() {
  static const auto* prompts =
      new std::vector<std::string>{"The jury said",     "It was a dark and stormy night",
                                   "In the morning",    "Mr. Smith",
                                   "The committee met", "He said that the"};
  return *prompts;
}

// Each request's token ids, all submitted at once.
std::vector<std::vector<int32_t>> RunTogether(Engine& engine,
                                              const std::vector<GenerationRequest>& requests) {
  std::vector<std::shared_ptr<Collector>> sinks;
  for (const GenerationRequest& request : requests) {
    sinks.push_back(std::make_shared<Collector>());
    EXPECT_TRUE(engine.Submit(request, sinks.back()).ok());
  }
  std::vector<std::vector<int32_t>> ids;
  for (auto& sink : sinks) {
    EXPECT_TRUE(sink->Wait().status.ok());
    ids.push_back(sink->ids());
  }
  return ids;
}

// Each request's token ids when it runs alone.
std::vector<int32_t> AloneIds(const GenerationRequest& request) {
  ScriptedBackend backend;
  Engine engine(&InvariantTiny(), &backend, EngineOptions());
  return RunToEnd(engine, request)->ids();
}

// Six requests of different lengths (they leave at different steps): split in
// two cohorts of at most three that take turns, each request gets the tokens
// it gets in one unsplit batch.
TEST(PipelineTest, CohortsGiveEachRequestTheTokensOfOneBatch) {
  const std::vector<int32_t> lengths = {12, 5, 9, 16, 3, 10};
  std::vector<GenerationRequest> requests;
  for (size_t i = 0; i < lengths.size(); ++i)
    requests.push_back(Request(SixPrompts()[i], lengths[i]));
  ScriptedBackend plain_backend;
  Engine plain(&InvariantTiny(), &plain_backend, PipelineOptions(false));
  const auto expected = RunTogether(plain, requests);
  ScriptedBackend backend;
  Engine pipelined(&InvariantTiny(), &backend, PipelineOptions(true));
  EXPECT_EQ(RunTogether(pipelined, requests), expected);
  size_t widest = 0, rows = 0;
  for (const auto& call : backend.calls()) {
    widest = std::max(widest, call.steps.size());
    rows += call.steps.size();
  }
  EXPECT_LE(widest, 3u);  // never more than half of the six
  EXPECT_EQ(rows, 12u + 5 + 9 + 16 + 3 + 10);
  // The unsplit engine sampled all six in one call at some step.
  size_t plain_widest = 0;
  for (const auto& call : plain_backend.calls()) {
    plain_widest = std::max(plain_widest, call.steps.size());
  }
  EXPECT_EQ(plain_widest, 6u);
}

// Requests that arrive while two cohorts take turns join one of them; each
// gets the tokens it gets alone.
TEST(PipelineTest, RequestsJoiningAndLeavingKeepTheirTokens) {
  ScriptedBackend backend;
  Engine engine(&InvariantTiny(), &backend, PipelineOptions(true));
  std::vector<GenerationRequest> requests;
  std::vector<std::shared_ptr<Collector>> sinks;
  for (size_t i = 0; i < SixPrompts().size(); ++i) {
    requests.push_back(Request(SixPrompts()[i], 6 + 3 * static_cast<int32_t>(i % 3)));
    sinks.push_back(std::make_shared<Collector>());
  }
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(engine.Submit(requests[i], sinks[i]).ok());
  while (sinks[0]->tokens().size() < 3) absl::SleepFor(absl::Milliseconds(1));
  for (size_t i = 3; i < 6; ++i) ASSERT_TRUE(engine.Submit(requests[i], sinks[i]).ok());
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(SixPrompts()[i]);
    ASSERT_TRUE(sinks[i]->Wait().status.ok());
    EXPECT_EQ(sinks[i]->ids(), AloneIds(requests[i]));
  }
  EXPECT_EQ(engine.Stats().running, 0);
}

// A request cancelled while the cohorts take turns (its step in flight or
// waiting) ends with kCancelled; the others keep their tokens; nothing leaks.
TEST(PipelineTest, ACancelledRequestEndsAndTheOthersKeepTheirTokens) {
  ScriptedBackend backend;
  backend.delay = absl::Milliseconds(1);
  Engine engine(&InvariantTiny(), &backend, PipelineOptions(true));
  std::vector<std::shared_ptr<Collector>> sinks;
  std::vector<std::shared_ptr<GenerationHandle>> handles;
  for (size_t i = 0; i < 4; ++i) {
    sinks.push_back(std::make_shared<Collector>());
    auto handle = engine.Submit(Request(SixPrompts()[i], i == 1 ? 500 : 20), sinks.back());
    ASSERT_TRUE(handle.ok());
    handles.push_back(*handle);
  }
  while (sinks[1]->tokens().size() < 4) absl::SleepFor(absl::Milliseconds(1));
  handles[1]->Cancel();
  const GenerationEnd cancelled = sinks[1]->Wait();
  EXPECT_TRUE(cancelled.status.ok());
  EXPECT_EQ(cancelled.reason, FinishReason::kCancelled);
  EXPECT_LT(cancelled.generated_tokens, 500);
  for (size_t i : {0, 2, 3}) {
    ASSERT_TRUE(sinks[i]->Wait().status.ok());
    EXPECT_EQ(sinks[i]->ids(), AloneIds(Request(SixPrompts()[i], 20))) << i;
  }
  EXPECT_EQ(engine.Stats().running, 0);
  EXPECT_EQ(engine.Stats().kv_bytes, 0);
  // Shutdown with both cohorts busy ends them with kCancelled.
  auto a = std::make_shared<Collector>(), b = std::make_shared<Collector>();
  ASSERT_TRUE(engine.Submit(Request("The jury", 1000), a).ok());
  ASSERT_TRUE(engine.Submit(Request("In the morning", 1000), b).ok());
  while (a->tokens().size() < 2 || b->tokens().size() < 2) absl::SleepFor(absl::Milliseconds(1));
  engine.Shutdown(absl::ZeroDuration());
  EXPECT_EQ(a->Wait().reason, FinishReason::kCancelled);
  EXPECT_EQ(b->Wait().reason, FinishReason::kCancelled);
}

// Records, per row, the attention it carried.
class AttentionRecorder : public ScriptedBackend {
 public:
  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl& control) override {
    {
      absl::MutexLock lock(&mu_);
      for (const Row& row : rows) {
        seen_.push_back({row.sequence_id, row.step, row.heads, row.keys, row.attention.size()});
      }
    }
    return ScriptedBackend::Sample(rows, control);
  }
  struct Seen {
    std::string sequence;
    int64_t step;
    int32_t heads, keys;
    size_t values;
  };
  std::vector<Seen> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> seen_;
};

// Attention scores go only to rows whose sampler reads them (entropix here);
// greedy rows get none, and their tokens are those of a run that captures
// nothing at all.
TEST(EngineTest, SamplersThatDoNotReadAttentionGetNone) {
  AttentionRecorder backend;
  Engine engine(&Tiny(), &backend, EngineOptions());
  GenerationRequest greedy = Request("The jury said", 6);
  GenerationRequest entropix = Request("In the morning", 6);
  entropix.sampler = EntropixConfig();
  const auto ids = RunTogether(engine, {greedy, entropix});
  const std::string greedy_name = "seq-1", entropix_name = "seq-2";
  const int64_t heads = Tiny().model().config().num_attention_heads;
  int greedy_rows = 0, entropix_rows = 0;
  for (const AttentionRecorder::Seen& row : backend.seen()) {
    if (row.sequence == greedy_name) {
      ++greedy_rows;
      EXPECT_EQ(row.values, 0u) << "step " << row.step;
      EXPECT_EQ(row.heads, 0);
    } else {
      ++entropix_rows;
      const int64_t keys = static_cast<int64_t>(entropix.prompt.size()) + row.step;
      EXPECT_EQ(row.heads, heads);
      EXPECT_EQ(row.keys, keys) << "step " << row.step;
      EXPECT_EQ(row.values, static_cast<size_t>(heads * keys));
    }
  }
  EXPECT_EQ(greedy_rows, 6);
  EXPECT_EQ(entropix_rows, 6);
  EngineOptions none;
  none.capture_attention = false;
  ScriptedBackend plain;
  Engine no_capture(&Tiny(), &plain, none);
  EXPECT_EQ(RunToEnd(no_capture, greedy)->ids(), ids[0]);
}

// ModelOptions.batch_invariant: a sequence's logits alone and in a batch of
// six, prefill and decode, are the same floats.
TEST(BatchInvariantModelTest, LogitsAloneEqualLogitsInABatchBitForBit) {
  ModelOptions options;
  options.threads = 1;
  options.batch_invariant = true;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(kTinyModel, options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Tokenizer& tokenizer = Tiny().tokenizer();
  const std::vector<std::string> texts = {"The jury said",     "It was a dark and stormy night",
                                          "In the morning",    "Mr. Smith",
                                          "The committee met", "He said that the"};
  auto run = [&](bool together) {
    std::vector<SequenceCache> caches(texts.size());
    std::vector<std::vector<int32_t>> prompts;
    for (const std::string& text : texts)
      prompts.push_back(tokenizer.EncodeWithSpecialTokens(text));
    std::vector<std::vector<float>> logits;  // sequence 0's, prefill then 3 decode steps
    std::vector<int32_t> next(texts.size(), 0);
    for (int step = 0; step < 4; ++step) {
      std::vector<SequenceInput> inputs;
      for (size_t i = 0; i < (together ? texts.size() : 1); ++i) {
        SequenceInput input;
        input.cache = &caches[i];
        input.tokens =
            step == 0 ? absl::MakeConstSpan(prompts[i]) : absl::MakeConstSpan(&next[i], 1);
        inputs.push_back(input);
      }
      absl::StatusOr<StepOutput> out = (*model)->Forward(inputs);
      EXPECT_TRUE(out.ok()) << out.status();
      if (!out.ok()) return logits;
      logits.push_back(out->sequences[0].logits);
      for (size_t i = 0; i < inputs.size(); ++i) next[i] = 100 + static_cast<int32_t>(i) + step;
    }
    return logits;
  };
  const auto alone = run(false);
  const auto together = run(true);
  ASSERT_EQ(alone.size(), 4u);
  ASSERT_EQ(together.size(), 4u);
  for (size_t step = 0; step < alone.size(); ++step) {
    EXPECT_EQ(alone[step], together[step]) << "step " << step;
  }
}

TEST(BatchInvariantModelTest, ReserveCacheAllocatesWhatCacheBytesCounts) {
  const Model& model = Tiny().model();
  for (int64_t positions : {1, 64, 65, 300, 1024}) {
    SequenceCache cache;
    ASSERT_TRUE(model.ReserveCache(&cache, positions).ok());
    EXPECT_EQ(cache.allocated_bytes(), model.CacheBytes(positions)) << positions;
    EXPECT_GE(cache.capacity(), positions);
  }
  SequenceCache cache;
  EXPECT_FALSE(model.ReserveCache(&cache, 1025).ok());
}

TEST(ServedModelTest, SpecialTokensAndEosComeFromTheCheckpoint) {
  const ServedModel& model = Tiny();
  EXPECT_EQ(model.eos_token_ids(), (std::vector<int32_t>{0, 2}));
  ASSERT_TRUE(model.special_tokens().clarifying_question.has_value());
  EXPECT_EQ(model.tokenizer().Decode({*model.special_tokens().clarifying_question}), "?");
  if (model.special_tokens().pause) {
    EXPECT_EQ(model.tokenizer().Decode({*model.special_tokens().pause}), "...");
  }
  EXPECT_EQ(model.special_tokens().eos, 0);
  ASSERT_NE(model.chat_template(), nullptr);
  EXPECT_EQ(ParseGenerationEosIds("{\"eos_token_id\": [3, 3, 4]}", "g").value(),
            (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(ParseGenerationEosIds("{\"eos_token_id\": 7}", "g").value(), (std::vector<int32_t>{7}));
  EXPECT_FALSE(ParseGenerationEosIds("{\"eos_token_id\": \"x\"}", "g").ok());
  EXPECT_THAT(std::string(ServedModel::Load("/no/such/folder", ModelOptions()).status().message()),
              HasSubstr("does not exist"));
}

}  // namespace
}  // namespace entroserve
