// The sampler call of one engine step, as runnerd makes it, without a model:
// the same rows through the in-process backend and through a samplerd
// process started here, side by side (services/runnerd/make_sampler_backend.h
// builds each exactly as runnerd's --sampler flags would).
//
//   build/bin/backend_bench [--batches=1,8,32] [--vocab=128256] [--heads=32]
//       [--keys=1024] [--sampler=entropix] [--transports=shared_memory,inline]
//       [--streams=4] [--rounds=5] [--calls=40] [--gap_us=0]
//       [--samplerd_flags="--channel_spinners=0 ..."]
//
// Rows: Zipf-like logits as bfloat16 bits and random attention scores of
// bfloat16 values (what the engine hands on from a BF16 model's decode
// step), step 0 with a 16-token prompt. The
// backends take turns round by round (the host's speed drifts); each prints
// the median and 90th percentile of its calls' wall time, and the remote
// ones their cost over the in-process call: what running the sampler as a
// separate service adds to every step of a generation. --gap_us puts a
// busy wait between calls, as a decode step's forward pass on the GPU puts
// one between a sequence's sampler calls (a samplerd thread that waits that
// long for its next request may have gone to sleep; back-to-back calls
// never show that wake-up).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/bench_process.h"
#include "sampler/core/row.h"
#include "sampler/registry.h"
#include "services/common/malloc_tuning.h"
#include "services/runnerd/local_sampler_backend.h"
#include "services/runnerd/make_sampler_backend.h"

ABSL_FLAG(std::string, samplerd, ENTROSERVE_SAMPLERD_PATH, "samplerd binary to start");
ABSL_FLAG(std::string, batches, "1,8,32", "rows per call, comma-separated");
ABSL_FLAG(int32_t, vocab, 128256, "vocabulary size of each row");
ABSL_FLAG(int32_t, heads, 32, "attention heads of each row (0: no attention)");
ABSL_FLAG(int32_t, keys, 1024, "attention keys of each row");
ABSL_FLAG(std::string, sampler, "entropix", "sampler of every row");
ABSL_FLAG(std::string, transports, "shared_memory,shared_memory+messages,inline",
          "remote transports to measure, comma-separated: shared_memory (tensors in shared "
          "memory, steps through a shared-memory channel), shared_memory+messages (steps in the "
          "stream's messages), inline (everything in the messages)");
ABSL_FLAG(int32_t, streams, 4, "SampleStreams of each remote backend (runnerd --sampler_streams)");
ABSL_FLAG(int32_t, workers, 0,
          "threads of the in-process backend and of samplerd (0: the cores available)");
ABSL_FLAG(int32_t, rounds, 5, "rounds; each backend makes --calls calls per round");
ABSL_FLAG(int32_t, calls, 40, "calls per backend and round (after 5 unmeasured ones)");
ABSL_FLAG(int32_t, gap_us, 0,
          "busy wait between calls, microseconds (a forward pass between a sequence's steps)");
ABSL_FLAG(std::string, samplerd_flags, "",
          "more samplerd flags, space-separated (e.g. \"--channel_spinners=0\")");

namespace entroserve {
namespace {

using Clock = std::chrono::steady_clock;

// Rows and the storage their spans point into: the logits as bfloat16
// bits, as the engine hands a BF16 model's decode steps on.
struct Batch {
  std::vector<OwnedRow> owned;
  std::vector<std::vector<uint16_t>> logit_bits;
  std::vector<Row> rows;
};

// bfloat16 values, as a BF16 model's logits widened to float32 are.
void RoundToBFloat16(std::vector<float>* values) {
  std::vector<float> rounded;
  RoundThroughWire(DType::kBFloat16, *values, &rounded);
  values->swap(rounded);
}

Batch MakeBatch(int size, const SamplerConfig& config) {
  const int32_t vocab = absl::GetFlag(FLAGS_vocab);
  const int32_t heads = absl::GetFlag(FLAGS_heads);
  const int32_t keys = heads > 0 ? absl::GetFlag(FLAGS_keys) : 0;
  Batch batch;
  batch.owned.resize(static_cast<size_t>(size));
  batch.logit_bits.resize(static_cast<size_t>(size));
  for (int b = 0; b < size; ++b) {
    OwnedRow& owned = batch.owned[static_cast<size_t>(b)];
    std::mt19937_64 engine(static_cast<uint64_t>(b) + 1);
    std::normal_distribution<float> noise(0.0f, 0.5f);
    owned.logits.resize(static_cast<size_t>(vocab));
    for (int32_t i = 0; i < vocab; ++i) {
      const int64_t rank = (static_cast<int64_t>(i) * 7919 + b) % vocab;
      owned.logits[i] = 12.0f - 1.6f * std::log1p(static_cast<float>(rank)) + noise(engine);
    }
    owned.attention.resize(static_cast<size_t>(heads) * keys);
    for (float& s : owned.attention) s = 4.0f * noise(engine);
    std::vector<uint16_t>& bits = batch.logit_bits[static_cast<size_t>(b)];
    for (float z : owned.logits) bits.push_back(FloatToBFloat16(z));
    owned.logits.clear();
    RoundToBFloat16(&owned.attention);
    for (int32_t t = 0; t < 16; ++t) owned.appended_tokens.push_back((t * 101 + b) % vocab);
    owned.Bind();
    owned.row.logits_bf16 = bits;
    owned.row.sequence_id = absl::StrCat("bench-", b);
    owned.row.config = config;
    owned.row.seed = static_cast<uint64_t>(b) + 7;
    owned.row.heads = heads;
    owned.row.keys = keys;
    batch.rows.push_back(owned.row);
  }
  return batch;
}

struct Contender {
  std::string name;
  std::unique_ptr<SamplerBackend> backend;
  std::map<int, std::vector<double>> call_us;  // by batch size
};

// `calls` timed calls (after 5 unmeasured) of `batch` on `c`; false (with
// the error printed) when a call or a row fails.
bool Measure(Contender& c, const Batch& batch, int calls) {
  SampleControl control;
  control.bfloat16_values = true;
  control.deadline = absl::Now() + absl::Minutes(5);
  std::vector<double>& out = c.call_us[static_cast<int>(batch.rows.size())];
  const auto gap = std::chrono::microseconds(absl::GetFlag(FLAGS_gap_us));
  for (int i = -5; i < calls; ++i) {
    for (const auto until = Clock::now() + gap; Clock::now() < until;) {
    }
    const auto start = Clock::now();
    absl::StatusOr<std::vector<RowResult>> results = c.backend->Sample(batch.rows, control);
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    if (!results.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), results.status().ToString().c_str());
      return false;
    }
    for (const RowResult& r : *results) {
      if (!r.status.ok()) {
        std::fprintf(stderr, "%s: %s\n", c.name.c_str(), r.status.ToString().c_str());
        return false;
      }
    }
    if (i >= 0) out.push_back(us);
  }
  return true;
}

absl::StatusOr<std::vector<int>> ParseBatches(const std::string& text) {
  std::vector<int> batches;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int b = 0;
    if (!absl::SimpleAtoi(part, &b) || b < 1 || b > 1024) {
      return absl::InvalidArgumentError(
          absl::StrCat("--batches: \"", part, "\" is not a batch size in [1, 1024]"));
    }
    batches.push_back(b);
  }
  return batches;
}

// The contenders: in process, then samplerd over each transport.
absl::StatusOr<std::vector<Contender>> MakeContenders(const std::string& address) {
  std::vector<Contender> contenders;
  SamplerBackendOptions options;
  options.workers = absl::GetFlag(FLAGS_workers);
  options.streams = absl::GetFlag(FLAGS_streams);
  absl::StatusOr<std::unique_ptr<SamplerBackend>> local = MakeSamplerBackend(options);
  if (!local.ok()) return local.status();
  contenders.push_back({"local", *std::move(local), {}});
  for (absl::string_view transport : absl::StrSplit(absl::GetFlag(FLAGS_transports), ',')) {
    // "shared_memory+messages": the tensors in shared memory, the steps in
    // the stream's messages (no channel).
    const std::string name = absl::StrCat("remote ", transport);
    const bool messages = absl::ConsumeSuffix(&transport, "+messages");
    absl::StatusOr<SamplerTransport> parsed = ParseSamplerTransport(transport);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--transports: \"", transport, "\" ", parsed.status().message()));
    }
    options.sampler = address;
    options.remote.transport = *parsed;
    options.remote.shm_channel = !messages;
    absl::StatusOr<std::unique_ptr<SamplerBackend>> remote = MakeSamplerBackend(options);
    if (!remote.ok()) return remote.status();
    contenders.push_back({name, *std::move(remote), {}});
  }
  return contenders;
}

void PrintTable(const std::vector<Contender>& contenders, const std::vector<int>& batches) {
  std::printf("\n| batch | backend | p50 ms / call | p90 ms | over local (p50) | local/remote |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int b : batches) {
    const double local = bench::Quantile(contenders.front().call_us.at(b), 0.5);
    for (const Contender& c : contenders) {
      const double p50 = bench::Quantile(c.call_us.at(b), 0.5);
      const double p90 = bench::Quantile(c.call_us.at(b), 0.9);
      if (&c == &contenders.front()) {
        std::printf("| %d | %s | %.3f | %.3f | | |\n", b, c.name.c_str(), p50 / 1e3, p90 / 1e3);
      } else {
        std::printf("| %d | %s | %.3f | %.3f | +%.3f ms | %.2f |\n", b, c.name.c_str(), p50 / 1e3,
                    p90 / 1e3, (p50 - local) / 1e3, local / p50);
      }
    }
  }
}

int Run() {
  absl::StatusOr<std::vector<int>> batches = ParseBatches(absl::GetFlag(FLAGS_batches));
  absl::StatusOr<SamplerConfig> config = DefaultConfig(absl::GetFlag(FLAGS_sampler));
  if (!batches.ok() || !config.ok()) {
    std::fprintf(stderr, "%s\n",
                 (!batches.ok() ? batches.status() : config.status()).ToString().c_str());
    return 2;
  }
  std::vector<std::string> flags;
  if (absl::GetFlag(FLAGS_workers) > 0) {
    flags.push_back(absl::StrCat("--workers=", absl::GetFlag(FLAGS_workers)));
  }
  for (absl::string_view flag :
       absl::StrSplit(absl::GetFlag(FLAGS_samplerd_flags), ' ', absl::SkipEmpty())) {
    flags.emplace_back(flag);
  }
  absl::StatusOr<bench::BenchServer> server =
      bench::BenchServer::Start(absl::GetFlag(FLAGS_samplerd), flags, "listening on", "", 60);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<Contender>> contenders = MakeContenders(server->address());
  if (!contenders.ok()) {
    std::fprintf(stderr, "%s\n", contenders.status().ToString().c_str());
    return 2;
  }
  std::printf(
      "samplerd at %s (flags: %s); V=%d, attention %dx%d, sampler %s, %d streams, "
      "%d us between calls\n",
      server->address().c_str(), absl::GetFlag(FLAGS_samplerd_flags).c_str(),
      absl::GetFlag(FLAGS_vocab), absl::GetFlag(FLAGS_heads), absl::GetFlag(FLAGS_keys),
      absl::GetFlag(FLAGS_sampler).c_str(), absl::GetFlag(FLAGS_streams),
      absl::GetFlag(FLAGS_gap_us));
  const int rounds = absl::GetFlag(FLAGS_rounds);
  for (int b : *batches) {
    const Batch batch = MakeBatch(b, *config);
    for (int r = 0; r < rounds; ++r) {
      for (Contender& c : *contenders) {
        if (!Measure(c, batch, absl::GetFlag(FLAGS_calls))) return 1;
      }
      std::fprintf(stderr, "batch %d: round %d of %d done\n", b, r + 1, rounds);
    }
  }
  PrintTable(*contenders, *batches);
  return 0;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The sampler call of an engine step, in process vs through samplerd (see the file "
      "header).");
  absl::ParseCommandLine(argc, argv);
  entroserve::TuneMallocForLargeMessages();
  return entroserve::Run();
}
