// Latency of the sampler library on one row, one thread (Google Benchmark).
//
//   build/bin/sampler_bench [--benchmark_filter=ComputeSignals]
//
// Every iteration is timed on its own (UseManualTime), and each benchmark
// reports the median and 99th percentile of those per-row times as the
// counters p50_us and p99_us; the usual Time column is the mean.
//
// Rows are built once, deterministically, to look like a language model's:
// MakeLogits() gives a Zipf-like next-token distribution, MakeAttention()
// last-layer scores with an attention sink. Iterations cycle through
// kRowsInRotation different rows, so a row is not hot in L1/L2 from the
// previous iteration (a samplerd row has just been decoded from the wire:
// warm in cache, but not from the same call).
//
// Adding a benchmark: build rows with MakeRows() (floats, and the BFLOAT16
// wire bytes), time one call per iteration with RunTimed(), register it with
// the shape arguments (->Apply(SignalsShapes)); whole sampler steps go through the registry
// (BM_SamplerStep). Work that must not be timed (copying a set before an
// operation that consumes it) goes in RunTimedWithSetup()'s `setup`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "benchmark/benchmark.h"
#include "sampler/core/candidates.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"
#include "sampler/core/signals.h"
#include "sampler/core/tensor.h"
#include "sampler/core/types.h"
#include "sampler/registry.h"
#include "sampler/stages/truncation_stages.h"

namespace entroserve {
namespace {

// --- Rows ----------------------------------------------------------------------

// Seed of every generated row: the figures of two runs are comparable.
constexpr uint64_t kRowSeed = 20240611;
// Distinct rows cycled through; at V = 152k and 32 x 4096 attention a row is
// ~1.1 MB, so 4 rows (4.5 MB) exceed L2 but stay in L3.
constexpr int kRowsInRotation = 4;

// Zipf-like logits: the token of rank r (ranks are a random permutation of
// the ids) gets -kZipfExponent * ln(r + 1) plus Gaussian noise, so that
// p ~ (r + 1)^-kZipfExponent. Exponent ~1.1 is the classic word-frequency
// law; with the noise, rows have entropy of a few bits, as mid-generation
// rows of instruction-tuned models do.
constexpr double kZipfExponent = 1.1;
constexpr double kLogitNoise = 0.5;
// Offset of every logit (models' raw logits sit around +10..+30).
constexpr double kLogitOffset = 18.0;

// Attention scores q.k/sqrt(d): Gaussian per key, plus an attention sink on
// key 0 and a boost on the most recent keys (recency), as seen in the last
// layers of Llama-style models.
constexpr double kScoreStddev = 1.5;
constexpr double kSinkBoost = 6.0;
constexpr int kRecentKeys = 8;
constexpr double kRecentBoost = 2.0;

std::vector<float> MakeLogits(int32_t vocab, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> rank(static_cast<size_t>(vocab));
  std::iota(rank.begin(), rank.end(), 0);
  std::shuffle(rank.begin(), rank.end(), gen);
  std::normal_distribution<double> noise(0.0, kLogitNoise);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (int32_t id = 0; id < vocab; ++id) {
    logits[static_cast<size_t>(id)] = static_cast<float>(
        kLogitOffset - kZipfExponent * std::log(rank[static_cast<size_t>(id)] + 1.0) + noise(gen));
  }
  return logits;
}

std::vector<float> MakeAttention(int32_t heads, int32_t keys, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> score(0.0, kScoreStddev);
  std::vector<float> scores(static_cast<size_t>(heads) * keys);
  for (int32_t h = 0; h < heads; ++h) {
    float* row = scores.data() + static_cast<size_t>(h) * keys;
    for (int32_t k = 0; k < keys; ++k) row[k] = static_cast<float>(score(gen));
    row[0] += static_cast<float>(kSinkBoost);
    for (int32_t k = std::max(0, keys - kRecentKeys); k < keys; ++k) {
      row[k] += static_cast<float>(kRecentBoost);
    }
  }
  return scores;
}

struct BenchRow {
  std::vector<float> logits;
  std::vector<float> attention;  // [heads, keys]; empty when heads == 0
  int32_t heads = 0;
  int32_t keys = 0;
  // The same as they arrive on the wire: BFLOAT16, runnerd's default.
  std::string wire_logits;
  std::string wire_attention;
};

// The rows of one shape, built on first use and kept for the process (Google
// Benchmark calls a benchmark function several times while it sizes the run).
const std::vector<BenchRow>& MakeRows(int32_t vocab, int32_t heads, int32_t keys) {
  static std::map<std::tuple<int32_t, int32_t, int32_t>, std::vector<BenchRow>> cache;
  std::vector<BenchRow>& rows = cache[{vocab, heads, keys}];
  if (!rows.empty()) return rows;
  rows.resize(kRowsInRotation);
  for (int i = 0; i < kRowsInRotation; ++i) {
    rows[i].logits = MakeLogits(vocab, kRowSeed + 2 * i);
    if (heads > 0) rows[i].attention = MakeAttention(heads, keys, kRowSeed + 2 * i + 1);
    rows[i].heads = heads;
    rows[i].keys = keys;
    rows[i].wire_logits = EncodeTensor(DType::kBFloat16, rows[i].logits);
    rows[i].wire_attention = EncodeTensor(DType::kBFloat16, rows[i].attention);
  }
  return rows;
}

// --- Timing --------------------------------------------------------------------

// Runs `setup(index)` untimed, then `fn(row, index)` timed, once per
// iteration over the rotation of rows (index: the row's place in `rows`),
// and reports p50_us and p99_us of the timed calls.
template <typename Setup, typename Fn>
void RunTimedWithSetup(benchmark::State& state, const std::vector<BenchRow>& rows, Setup&& setup,
                       Fn&& fn) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> micros;
  micros.reserve(1 << 16);
  size_t next = 0;
  for (auto _ : state) {
    const size_t index = next;
    const BenchRow& row = rows[index];
    next = next + 1 == rows.size() ? 0 : next + 1;
    setup(index);
    const Clock::time_point start = Clock::now();
    fn(row, index);
    const Clock::time_point end = Clock::now();
    const double seconds = std::chrono::duration<double>(end - start).count();
    state.SetIterationTime(seconds);
    micros.push_back(seconds * 1e6);
  }
  if (micros.empty()) return;
  // Nearest-rank percentiles.
  auto percentile = [&micros](double q) {
    const size_t rank = static_cast<size_t>(std::ceil(q * micros.size()));
    const size_t index = std::min(micros.size() - 1, rank == 0 ? 0 : rank - 1);
    std::nth_element(micros.begin(), micros.begin() + index, micros.end());
    return micros[index];
  };
  state.counters["p50_us"] = percentile(0.50);
  state.counters["p99_us"] = percentile(0.99);
  state.SetItemsProcessed(state.iterations());  // rows/s
}

// Runs `fn(row)` once per iteration over the rotation of rows, timing each
// call, and reports p50_us and p99_us.
template <typename Fn>
void RunTimed(benchmark::State& state, const std::vector<BenchRow>& rows, Fn&& fn) {
  RunTimedWithSetup(
      state, rows, [](size_t) {}, [&fn](const BenchRow& row, size_t) { fn(row); });
}

// Vocabulary sizes: Llama 2 / Mistral (32000), Llama 3 (128256), Qwen2
// (151936); attention of Llama-3-8B's last layer (32 query heads) at a 4096
// token context.
constexpr int64_t kHeads = 32;
constexpr int64_t kKeys = 4096;
void SignalsShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"vocab", "heads", "keys"});
  for (int64_t vocab : {32000, 128256, 151936}) b->Args({vocab, kHeads, kKeys});
}

// --- Signals -------------------------------------------------------------------

void BM_ComputeSignals(benchmark::State& state) {
  const std::vector<BenchRow>& rows =
      MakeRows(static_cast<int32_t>(state.range(0)), static_cast<int32_t>(state.range(1)),
               static_cast<int32_t>(state.range(2)));
  RunTimed(state, rows, [](const BenchRow& row) {
    LogitSummary summary;
    Signals signals = ComputeSignals(row.logits, row.attention, row.heads, row.keys, &summary);
    benchmark::DoNotOptimize(signals);
    benchmark::DoNotOptimize(summary);
  });
}
BENCHMARK(BM_ComputeSignals)->Apply(SignalsShapes)->UseManualTime()->Unit(benchmark::kMicrosecond);

// The two halves on their own.
void BM_LogitSignals(benchmark::State& state) {
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  RunTimed(state, rows, [](const BenchRow& row) {
    Signals signals;
    LogitSummary summary;
    ComputeLogitSignals(row.logits, &signals, &summary);
    benchmark::DoNotOptimize(signals);
    benchmark::DoNotOptimize(summary);
  });
}
BENCHMARK(BM_LogitSignals)
    ->ArgName("vocab")
    ->Arg(32000)
    ->Arg(128256)
    ->Arg(151936)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void BM_AttentionSignals(benchmark::State& state) {
  const int32_t heads = static_cast<int32_t>(state.range(0));
  const int32_t keys = static_cast<int32_t>(state.range(1));
  const std::vector<BenchRow>& rows = MakeRows(1, heads, keys);
  RunTimed(state, rows, [](const BenchRow& row) {
    Signals signals;
    ComputeAttentionSignals(row.attention, row.heads, row.keys, &signals);
    benchmark::DoNotOptimize(signals);
  });
}
BENCHMARK(BM_AttentionSignals)
    ->ArgNames({"heads", "keys"})
    ->Args({kHeads, kKeys})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// --- Candidate sets ---------------------------------------------------------------

// What the stage samplers (chain, mirostat, ...) do with a whole row: build
// the candidate set, normalise it, keep the top k of it.
void VocabShapes(benchmark::internal::Benchmark* b) {
  b->ArgName("vocab");
  for (int64_t vocab : {128256, 151936}) b->Arg(vocab);
}

void BM_CandidateSetFromLogits(benchmark::State& state) {
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  RunTimed(state, rows, [](const BenchRow& row) {
    CandidateSet set = CandidateSet::FromLogits(row.logits);
    benchmark::DoNotOptimize(set.items().data());
  });
}
BENCHMARK(BM_CandidateSetFromLogits)
    ->Apply(VocabShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Normalize over a whole row (the first stage that needs p when no top-k ran
// before it: top_p, typical, mirostat, dynatemp, xtc).
void BM_CandidateSetNormalize(benchmark::State& state) {
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  std::vector<CandidateSet> sets;
  for (const BenchRow& row : rows) sets.push_back(CandidateSet::FromLogits(row.logits));
  RunTimedWithSetup(
      state, rows, [&sets](size_t i) { sets[i].MarkLogitsChanged(); },
      [&sets](const BenchRow&, size_t i) {
        sets[i].Normalize();
        benchmark::DoNotOptimize(sets[i].items().data());
      });
}
BENCHMARK(BM_CandidateSetNormalize)
    ->Apply(VocabShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The top-p stage alone (p = 0.95) on a whole unsorted row: the softmax and
// the mass-prefix selection (CandidateSet::KeepTopMass).
void BM_TopPStage(benchmark::State& state) {
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  std::vector<CandidateSet> full;
  for (const BenchRow& row : rows) full.push_back(CandidateSet::FromLogits(row.logits));
  CandidateSet set;
  const TopPStage stage(0.95f);
  RunTimedWithSetup(
      state, rows, [&](size_t i) { set = full[i]; },
      [&](const BenchRow&, size_t) {
        StepContext ctx;
        benchmark::DoNotOptimize(stage.Apply(set, ctx));
        benchmark::DoNotOptimize(set.items().data());
      });
}
BENCHMARK(BM_TopPStage)->Apply(VocabShapes)->UseManualTime()->Unit(benchmark::kMicrosecond);

// KeepTop(k) on a whole unsorted row: k = 27 (entropix's top_k) and 40
// (llama.cpp's default top_k).
void BM_CandidateSetKeepTop(benchmark::State& state) {
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  const int32_t k = static_cast<int32_t>(state.range(1));
  std::vector<CandidateSet> full;
  for (const BenchRow& row : rows) full.push_back(CandidateSet::FromLogits(row.logits));
  CandidateSet set;
  RunTimedWithSetup(
      state, rows, [&](size_t i) { set = full[i]; },
      [&](const BenchRow&, size_t) {
        set.KeepTop(k);
        benchmark::DoNotOptimize(set.items().data());
      });
}
BENCHMARK(BM_CandidateSetKeepTop)
    ->ArgNames({"vocab", "k"})
    ->Args({128256, 27})
    ->Args({128256, 40})
    ->Args({151936, 27})
    ->Args({151936, 40})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// --- The edge -------------------------------------------------------------------

// What samplerd does to a row before sampling: decode BFLOAT16 wire logits
// [V] and attention [32, 4096] (runnerd's default dtype) into floats and
// validate them (DecodeTensor, CheckLogits, CheckAttention).
void BM_DecodeAndCheckRow(benchmark::State& state) {
  const std::vector<BenchRow>& rows =
      MakeRows(static_cast<int32_t>(state.range(0)), static_cast<int32_t>(state.range(1)),
               static_cast<int32_t>(state.range(2)));
  std::vector<float> logits, attention;
  bool failed = false;
  RunTimed(state, rows, [&](const BenchRow& row) {
    absl::Status status = DecodeTensor(DType::kBFloat16, row.wire_logits,
                                       static_cast<int64_t>(row.logits.size()), "logits", &logits);
    if (status.ok()) status = CheckLogits(logits, "logits");
    if (status.ok()) {
      status = DecodeTensor(DType::kBFloat16, row.wire_attention,
                            static_cast<int64_t>(row.attention.size()), "attention", &attention);
    }
    if (status.ok()) status = CheckAttention(attention, "attention");
    if (!status.ok() && !failed) {
      failed = true;
      state.SkipWithError(status.ToString().c_str());
    }
  });
}
BENCHMARK(BM_DecodeAndCheckRow)
    ->Apply(SignalsShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// --- Whole sampler steps ---------------------------------------------------------

// One Sample() call of the sampler registered as `name`, with its default
// config, the sequence's state carried from step to step as a client would.
void BM_SamplerStep(benchmark::State& state, const std::string& name) {
  const absl::StatusOr<SamplerConfig> config = DefaultConfig(name);
  if (!config.ok()) {
    state.SkipWithError(config.status().ToString().c_str());
    return;
  }
  const absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(*config);
  if (!sampler.ok()) {
    state.SkipWithError(sampler.status().ToString().c_str());
    return;
  }
  const std::vector<BenchRow>& rows =
      MakeRows(static_cast<int32_t>(state.range(0)), static_cast<int32_t>(state.range(1)),
               static_cast<int32_t>(state.range(2)));
  SamplerState sequence;
  int64_t step = 0;
  bool failed = false;
  RunTimed(state, rows, [&](const BenchRow& row) {
    Row input;
    input.step = step++;
    input.seed = kRowSeed;
    input.logits = row.logits;
    input.attention = row.attention;
    input.heads = row.heads;
    input.keys = row.keys;
    absl::StatusOr<RowOutput> out = (*sampler)->Sample(input, sequence);
    if (!out.ok() && !failed) {
      failed = true;
      state.SkipWithError(out.status().ToString().c_str());
    }
    benchmark::DoNotOptimize(out);
  });
}
BENCHMARK_CAPTURE(BM_SamplerStep, entropix, std::string("entropix"))
    ->Apply(SignalsShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SamplerStep, alpha, std::string("alpha"))
    ->Apply(SignalsShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// One Sample() call of the chain sampler (logit signals, FromLogits, the
// stages, the draw) on a row without attention, with llama.cpp's usual
// settings: temperature 0.8, top_k 40, top_p 0.95. The top_p_only variant
// (top_k 0) normalises and filters the whole vocabulary.
void BM_ChainStep(benchmark::State& state, int32_t top_k) {
  ChainConfig config;
  config.temperature = 0.8f;
  config.top_k = top_k;
  config.top_p = 0.95f;
  const absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(config);
  if (!sampler.ok()) {
    state.SkipWithError(sampler.status().ToString().c_str());
    return;
  }
  const std::vector<BenchRow>& rows = MakeRows(static_cast<int32_t>(state.range(0)), 0, 0);
  SamplerState sequence;
  int64_t step = 0;
  bool failed = false;
  RunTimed(state, rows, [&](const BenchRow& row) {
    Row input;
    input.step = step++;
    input.seed = kRowSeed;
    input.logits = row.logits;
    absl::StatusOr<RowOutput> out = (*sampler)->Sample(input, sequence);
    if (!out.ok() && !failed) {
      failed = true;
      state.SkipWithError(out.status().ToString().c_str());
    }
    benchmark::DoNotOptimize(out);
  });
}
BENCHMARK_CAPTURE(BM_ChainStep, top_k40_top_p095_t08, 40)
    ->Apply(VocabShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ChainStep, top_p095_t08_top_p_only, 0)
    ->Apply(VocabShapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// A chain of six stages in a user's order, on a sequence 64 tokens into its
// history: penalties (repetition 1.1) -> dry (0.8) -> top_p 0.95 -> min_p
// 0.05 -> temperature 0.8 -> dist. top_p meets the whole vocabulary.
void BM_ChainOfSixStages(benchmark::State& state) {
  ChainConfig config;
  config.stages = {"penalties", "dry", "top_p", "min_p", "temperature", "dist"};
  config.repetition_penalty = 1.1f;
  config.dry_multiplier = 0.8f;
  config.top_p = 0.95f;
  config.min_p = 0.05f;
  config.temperature = 0.8f;
  const absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(config);
  if (!sampler.ok()) {
    state.SkipWithError(sampler.status().ToString().c_str());
    return;
  }
  const int32_t vocab = static_cast<int32_t>(state.range(0));
  const std::vector<BenchRow>& rows = MakeRows(vocab, 0, 0);
  SamplerState history;
  for (int32_t i = 0; i < 64; ++i) history.PushToken((i * 7919) % 97 % vocab);
  SamplerState sequence;
  int64_t step = 0;
  RunTimedWithSetup(
      state, rows, [&](size_t) { sequence = history; },
      [&](const BenchRow& row, size_t) {
        Row input;
        input.step = step++;
        input.seed = kRowSeed;
        input.logits = row.logits;
        benchmark::DoNotOptimize((*sampler)->Sample(input, sequence));
      });
}
BENCHMARK(BM_ChainOfSixStages)->Apply(VocabShapes)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace entroserve

BENCHMARK_MAIN();
