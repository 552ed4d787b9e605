// Generation throughput of runnerd with the sampler in process (--sampler=local)
// and in a separate samplerd (--sampler=HOST:PORT): the remote/local ratio is
// the cost of splitting the sampler into a service. Backends:
//   local          runnerd --sampler=local
//   remote         samplerd on loopback, tensor bytes through shared memory
//                  (--sampler_transport=shared_memory, what auto picks there;
//                  services/wire/shared_memory.h)
//                  and the steps through a shared-memory channel
//                  (services/wire/shared_memory_channel.h)
//   remote_messages  the same with --sampler_shm_channel=false (the steps in
//                  the stream's gRPC messages, the tensors still in shared
//                  memory)
//   remote_inline  --sampler_transport=inline (bytes in the gRPC messages,
//                  as to a samplerd on another host)
//
//   build/bin/generate_bench --model=models/tiny [--concurrency=1,8,32]
//       [--new_tokens=64] [--rounds=3] [--backends=local,remote,remote_inline]
//       [--device=cpu --dtype=float32 --threads=0] [--sampler=entropix]
//
// It starts every backend's servers (samplerd, then runnerd on the model with
// --max_batch = the largest concurrency) and warms each up; then for each
// concurrency N it runs `rounds` rounds of N simultaneous Generate calls,
// the backends taking turns round by round (each call its own prompt of
// --prompt_tokens random token ids, --new_tokens tokens, ignore_eos), and
// prints the median tokens/s of the rounds (generated tokens
// of all N requests over the round's wall time, prefill included), the
// spread, the median time to first token, and per engine step (runnerd's
// ModelInfo counters over the rounds) the mean forward time and sampling
// time. Then remote/local per N for each remote backend: of the tok/s
// medians, and per step with local's forward time and each one's sampler
// call (the split's cost without the forward pass's process-to-process
// spread).
// Server logs go to --log_dir. bench/generate_bench.sh makes the model of
// Llama-3.2-1B's shape and runs the figures of docs/PERFORMANCE.md.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_process.h"
#include "bench/bench_security.h"
#include "runner/v1/runner.grpc.pb.h"

ABSL_FLAG(std::string, runnerd, ENTROSERVE_RUNNERD_PATH, "runnerd binary to start");
ABSL_FLAG(std::string, samplerd, ENTROSERVE_SAMPLERD_PATH,
          "samplerd binary to start for the remote backend");
ABSL_FLAG(std::string, model, ENTROSERVE_SOURCE_DIR "/models/tiny",
          "checkpoint folder runnerd serves (config.json, model.safetensors, tokenizer.json)");
ABSL_FLAG(std::string, device, "cpu", "runnerd --device");
ABSL_FLAG(std::string, dtype, "", "runnerd --dtype (empty: runnerd's default)");
ABSL_FLAG(int32_t, threads, 0, "runnerd --threads (0: all cores)");
ABSL_FLAG(std::string, sampler_dtype, "",
          "runnerd --sampler_dtype for the remote backend (empty: runnerd's default, bfloat16)");
ABSL_FLAG(int32_t, samplerd_workers, 0, "samplerd --workers (0: its default)");
ABSL_FLAG(std::string, backends, "local,remote,remote_inline",
          "comma-separated: local, remote (samplerd on loopback, shared-memory transport and "
          "channel), remote_messages (the steps in the stream's messages), remote_inline (the "
          "tensor bytes in the messages too); each with the suffix _tls "
          "(remote_tls): mutual TLS and bearer tokens on every hop, client -> runnerd -> "
          "samplerd (certificates made with openssl)");
ABSL_FLAG(std::string, concurrency, "1,8,32", "comma-separated numbers of simultaneous requests");
ABSL_FLAG(int32_t, new_tokens, 64, "tokens generated per request");
ABSL_FLAG(int32_t, prompt_tokens, 16, "random prompt tokens per request");
ABSL_FLAG(int32_t, rounds, 3, "rounds measured per concurrency (the median is reported)");
ABSL_FLAG(std::string, sampler, "entropix", "sampler of every request");
ABSL_FLAG(std::string, log_dir, "/tmp", "where the servers' stderr logs go");
ABSL_FLAG(std::string, runnerd_flags, "",
          "more runnerd flags, space-separated (e.g. \"--sampler_streams=1\")");
ABSL_FLAG(std::string, samplerd_flags, "",
          "more flags of every samplerd, space-separated (e.g. \"--channel_spinners=0\")");

namespace entroserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct RequestResult {
  grpc::Status status;
  int32_t generated = 0;
  double first_token_ms = 0;
};

RequestResult RunOne(runner::v1::Runner::Stub* stub, const runner::v1::GenerateRequest& request) {
  RequestResult result;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  const auto start = Clock::now();
  std::unique_ptr<grpc::ClientReader<runner::v1::GenerateResponse>> reader =
      stub->Generate(&context, request);
  runner::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (result.generated == 0 && response.tokens_size() > 0) {
      result.first_token_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    result.generated += response.tokens_size();
  }
  result.status = reader->Finish();
  return result;
}

runner::v1::GenerateRequest MakeRequest(int index, int32_t vocab) {
  runner::v1::GenerateRequest request;
  std::mt19937 engine(static_cast<uint32_t>(1000 + index));
  // Ordinary tokens: the first few hundred ids of byte-level vocabularies
  // are bytes and common pieces; special tokens sit at the end.
  std::uniform_int_distribution<int32_t> id(0, std::max(1, std::min(vocab, 4000)) - 1);
  for (int i = 0; i < absl::GetFlag(FLAGS_prompt_tokens); ++i) {
    request.mutable_tokens()->add_ids(id(engine));
  }
  request.set_max_new_tokens(absl::GetFlag(FLAGS_new_tokens));
  request.set_ignore_eos(true);
  request.mutable_sampler()->set_name(absl::GetFlag(FLAGS_sampler));
  request.set_seed(static_cast<uint64_t>(index + 1));
  return request;
}

struct Round {
  double tokens_per_s = 0;
  double first_token_ms = 0;  // median over the round's requests
};

// N simultaneous requests; nullopt-like (tokens_per_s < 0) on a failure.
Round RunRound(runner::v1::Runner::Stub* stub, int n, int32_t vocab, int first_index) {
  std::vector<RequestResult> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = RunOne(stub, MakeRequest(first_index + i, vocab)); });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t tokens = 0;
  std::vector<double> ttft;
  for (const RequestResult& r : results) {
    if (!r.status.ok()) {
      std::fprintf(stderr, "a request failed: %d %s\n", static_cast<int>(r.status.error_code()),
                   r.status.error_message().c_str());
      return {-1, 0};
    }
    tokens += r.generated;
    ttft.push_back(r.first_token_ms);
  }
  return {tokens / seconds, Quantile(ttft, 0.5)};
}

// runnerd's ModelInfo (for its engine's time counters); false on failure.
bool GetInfo(runner::v1::Runner::Stub* stub, runner::v1::ModelInfoResponse* info) {
  grpc::ClientContext context;
  const grpc::Status status = stub->ModelInfo(&context, {}, info);
  if (!status.ok()) std::fprintf(stderr, "ModelInfo: %s\n", status.error_message().c_str());
  return status.ok();
}

std::vector<int> ParseInts(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 1) {
      std::fprintf(stderr, "--concurrency: \"%s\" is not a positive number\n",
                   std::string(part).c_str());
      std::exit(2);
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace
}  // namespace entroserve::bench

namespace entroserve::bench {
// "remote_tls" -> "remote": the backend without its TLS-and-tokens suffix.
std::string BaseBackend(const std::string& name) {
  return absl::EndsWith(name, "_tls") ? name.substr(0, name.size() - 4) : name;
}
}  // namespace entroserve::bench

int main(int argc, char** argv) {
  using namespace entroserve::bench;
  absl::SetProgramUsageMessage(
      "Tokens/s of runnerd at several concurrencies, sampler local vs remote "
      "(see the header of bench/generate_bench.cc).\n"
      "  generate_bench --model=models/tiny --concurrency=1,8,32 --new_tokens=64");
  absl::ParseCommandLine(argc, argv);
  const std::vector<int> levels = ParseInts(absl::GetFlag(FLAGS_concurrency));
  if (levels.empty()) {
    std::fprintf(stderr, "--concurrency is empty\n");
    return 2;
  }
  const int max_level = *std::max_element(levels.begin(), levels.end());
  std::vector<std::string> backends =
      absl::StrSplit(absl::GetFlag(FLAGS_backends), ',', absl::SkipEmpty());
  bool any_tls = false;
  for (const std::string& backend : backends) {
    const std::string base = BaseBackend(backend);
    any_tls = any_tls || base != backend;
    if (base != "local" && base != "remote" && base != "remote_messages" &&
        base != "remote_inline") {
      std::fprintf(stderr,
                   "--backends: unknown backend \"%s\" (local, remote, remote_messages, "
                   "remote_inline, each with or without _tls)\n",
                   backend.c_str());
      return 2;
    }
  }
  std::optional<BenchSecurity> security;
  if (any_tls) {
    absl::StatusOr<BenchSecurity> made = BenchSecurity::Make();
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      return 1;
    }
    security = *std::move(made);
  }
  std::printf("model %s on %s%s, %s sampler, %d prompt + %d new tokens per request, %d rounds\n",
              absl::GetFlag(FLAGS_model).c_str(), absl::GetFlag(FLAGS_device).c_str(),
              absl::GetFlag(FLAGS_dtype).empty()
                  ? ""
                  : absl::StrCat(" ", absl::GetFlag(FLAGS_dtype)).c_str(),
              absl::GetFlag(FLAGS_sampler).c_str(), absl::GetFlag(FLAGS_prompt_tokens),
              absl::GetFlag(FLAGS_new_tokens), absl::GetFlag(FLAGS_rounds));
  std::printf("%-13s %5s %10s %10s %10s %12s %12s %12s\n", "backend", "N", "tok/s", "min", "max",
              "ttft p50 ms", "forward ms", "sampling ms");
  std::fflush(stdout);
  // Every backend's servers run at once and the rounds alternate between
  // them (round r of N: local, remote, remote_inline, ...), so that drift of
  // the machine (other tenants, clocks) falls on all of them alike.
  struct Backend {
    std::string name;
    BenchServer samplerd;
    BenchServer runnerd;
    std::unique_ptr<runner::v1::Runner::Stub> stub;
    int32_t vocab = 0;
  };
  std::vector<Backend> servers(backends.size());
  const std::string log_dir = absl::GetFlag(FLAGS_log_dir);
  for (size_t b = 0; b < backends.size(); ++b) {
    Backend& server = servers[b];
    server.name = backends[b];
    const std::string base = BaseBackend(server.name);
    const bool tls = base != server.name;
    std::vector<std::string> flags = {
        absl::StrCat("--model=", absl::GetFlag(FLAGS_model)),
        absl::StrCat("--device=", absl::GetFlag(FLAGS_device)),
        absl::StrCat("--threads=", absl::GetFlag(FLAGS_threads)),
        absl::StrCat("--max_batch=", max_level),
        absl::StrCat("--max_queue=", max_level),
    };
    if (!absl::GetFlag(FLAGS_dtype).empty()) {
      flags.push_back(absl::StrCat("--dtype=", absl::GetFlag(FLAGS_dtype)));
    }
    for (absl::string_view flag :
         absl::StrSplit(absl::GetFlag(FLAGS_runnerd_flags), ' ', absl::SkipEmpty())) {
      flags.emplace_back(flag);
    }
    if (tls) {
      const std::vector<std::string> server_flags = security->ServerFlags();
      flags.insert(flags.end(), server_flags.begin(), server_flags.end());
    }
    if (base != "local") {
      std::vector<std::string> samplerd_flags;
      if (tls) {
        samplerd_flags = security->ServerFlags();
        const std::vector<std::string> client_flags = security->SamplerClientFlags();
        flags.insert(flags.end(), client_flags.begin(), client_flags.end());
      }
      if (absl::GetFlag(FLAGS_samplerd_workers) > 0) {
        samplerd_flags.push_back(absl::StrCat("--workers=", absl::GetFlag(FLAGS_samplerd_workers)));
      }
      for (absl::string_view flag :
           absl::StrSplit(absl::GetFlag(FLAGS_samplerd_flags), ' ', absl::SkipEmpty())) {
        samplerd_flags.emplace_back(flag);
      }
      absl::StatusOr<BenchServer> started = BenchServer::Start(
          absl::GetFlag(FLAGS_samplerd), samplerd_flags, "listening on",
          absl::StrCat(log_dir, "/generate_bench.samplerd.", server.name, ".log"), 60);
      if (!started.ok()) {
        std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
        return 1;
      }
      server.samplerd = *std::move(started);
      flags.push_back(absl::StrCat("--sampler=", server.samplerd.address()));
      // Named, not auto: a fallback to inline must fail the bench, not
      // pass as shared-memory figures.
      flags.push_back(base == "remote_inline" ? "--sampler_transport=inline"
                                              : "--sampler_transport=shared_memory");
      if (base == "remote_messages") flags.push_back("--sampler_shm_channel=false");
      if (!absl::GetFlag(FLAGS_sampler_dtype).empty()) {
        flags.push_back(absl::StrCat("--sampler_dtype=", absl::GetFlag(FLAGS_sampler_dtype)));
      }
    } else {
      flags.push_back("--sampler=local");
    }
    absl::StatusOr<BenchServer> runnerd =
        BenchServer::Start(absl::GetFlag(FLAGS_runnerd), flags, "runnerd serving",
                           absl::StrCat(log_dir, "/generate_bench.runnerd.", server.name, ".log"));
    if (!runnerd.ok()) {
      std::fprintf(stderr, "%s\n", runnerd.status().ToString().c_str());
      return 1;
    }
    server.runnerd = *std::move(runnerd);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    server.stub = runner::v1::Runner::NewStub(
        tls ? security->Channel(server.runnerd.address(), args)
            : grpc::CreateCustomChannel(server.runnerd.address(),
                                        grpc::InsecureChannelCredentials(), args));
    runner::v1::ModelInfoResponse info;
    if (!GetInfo(server.stub.get(), &info)) return 1;
    server.vocab = info.vocab_size();
    // Warm-up: the largest batch once (allocations, libtorch's first calls).
    if (RunRound(server.stub.get(), max_level, server.vocab, 0).tokens_per_s < 0) return 1;
  }

  std::map<std::pair<std::string, int>, double> medians;
  // Per engine step, ms: the forward pass and the sampler call.
  std::map<std::pair<std::string, int>, std::pair<double, double>> step_ms;
  for (int n : levels) {
    const size_t count = servers.size();
    std::vector<runner::v1::ModelInfoResponse> before(count), after(count);
    std::vector<std::vector<double>> rates(count), ttfts(count);
    for (size_t b = 0; b < count; ++b) {
      if (!GetInfo(servers[b].stub.get(), &before[b])) return 1;
    }
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      for (size_t b = 0; b < count; ++b) {
        const Round r = RunRound(servers[b].stub.get(), n, servers[b].vocab, 100 * (round + 1));
        if (r.tokens_per_s < 0) return 1;
        rates[b].push_back(r.tokens_per_s);
        ttfts[b].push_back(r.first_token_ms);
      }
    }
    for (size_t b = 0; b < count; ++b) {
      if (!GetInfo(servers[b].stub.get(), &after[b])) return 1;
      const double steps =
          std::max<double>(1, static_cast<double>(after[b].steps() - before[b].steps()));
      const double median = Quantile(rates[b], 0.5);
      medians[{servers[b].name, n}] = median;
      step_ms[{servers[b].name, n}] = {(after[b].forward_ms() - before[b].forward_ms()) / steps,
                                       (after[b].sampling_ms() - before[b].sampling_ms()) / steps};
      std::printf("%-13s %5d %10.1f %10.1f %10.1f %12.1f %12.2f %12.2f\n", servers[b].name.c_str(),
                  n, median, *std::min_element(rates[b].begin(), rates[b].end()),
                  *std::max_element(rates[b].begin(), rates[b].end()), Quantile(ttfts[b], 0.5),
                  step_ms[{servers[b].name, n}].first, step_ms[{servers[b].name, n}].second);
    }
    std::fflush(stdout);
  }
  for (const std::string remote : {"remote", "remote_messages", "remote_inline"}) {
    if (!medians.count({"local", levels[0]}) || !medians.count({remote, levels[0]})) continue;
    std::printf("%s/local:", remote.c_str());
    for (int n : levels)
      std::printf("  N=%d %.3f", n, medians[{remote, n}] / medians[{"local", n}]);
    std::printf("\n");
  }
  // The split's cost alone: the same forward pass (local's) with each
  // set-up's sampler call. The forward does the same work either way, but
  // its time differs between two runnerd processes by more than the split
  // costs (placement on the machine), in either direction.
  for (const std::string remote : {"remote", "remote_messages", "remote_inline"}) {
    if (!step_ms.count({"local", levels[0]}) || !step_ms.count({remote, levels[0]})) continue;
    std::printf("%s/local per step, local's forward + each sampler call:", remote.c_str());
    for (int n : levels) {
      const auto [forward, local_sampling] = step_ms[{"local", n}];
      std::printf("  N=%d %.3f", n,
                  (forward + local_sampling) / (forward + step_ms[{remote, n}].second));
    }
    std::printf("\n");
  }
  return 0;
}
