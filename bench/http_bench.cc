// Tokens/s of runnerd's OpenAI-compatible HTTP API (streaming
// /v1/completions, server-sent events) against runner.v1.Generate over gRPC,
// on one runnerd (the same engine serves both), at 1, 8 and 32 concurrent
// requests: the cost of HTTP/1.1 + JSON + SSE per token against gRPC's.
//
//   build/bin/http_bench [--model=models/tiny] [--concurrency=1,8,32]
//       [--new_tokens=64] [--prompt_tokens=16] [--rounds=3] [--sampler=entropix]
//       [--threads=0] [--runnerd_flags=...]
//
// Each request has its own prompt of random token ids (the same for both
// APIs), ignore_eos, and a seed; rounds of N simultaneous requests alternate
// between the APIs, and the median round's tokens/s (all N requests'
// generated tokens over the round's wall time) and median time to the first
// token are printed, with HTTP/gRPC per N.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_process.h"
#include "runner/v1/runner.grpc.pb.h"

ABSL_FLAG(std::string, runnerd, ENTROSERVE_RUNNERD_PATH, "runnerd binary to start");
ABSL_FLAG(std::string, model, ENTROSERVE_SOURCE_DIR "/models/tiny", "runnerd --model");
ABSL_FLAG(int32_t, threads, 0, "runnerd --threads (0: all cores)");
ABSL_FLAG(std::string, concurrency, "1,8,32", "comma-separated numbers of simultaneous requests");
ABSL_FLAG(int32_t, new_tokens, 64, "tokens generated per request");
ABSL_FLAG(int32_t, prompt_tokens, 16, "random prompt tokens per request");
ABSL_FLAG(int32_t, rounds, 3, "rounds per API and concurrency (the median is reported)");
ABSL_FLAG(std::string, sampler, "entropix", "sampler of every request");
ABSL_FLAG(std::string, runnerd_flags, "", "more runnerd flags, space-separated");
ABSL_FLAG(std::string, log_dir, "/tmp", "where runnerd's stderr goes");

namespace entroserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct One {
  bool ok = false;
  int64_t tokens = 0;
  double first_token_ms = 0;
};

std::vector<int32_t> Prompt(int index) {
  std::mt19937 engine(static_cast<uint32_t>(1000 + index));
  std::uniform_int_distribution<int32_t> id(3, 3999);
  std::vector<int32_t> ids;
  for (int i = 0; i < absl::GetFlag(FLAGS_prompt_tokens); ++i) ids.push_back(id(engine));
  return ids;
}

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

One Grpc(runner::v1::Runner::Stub* stub, int index) {
  runner::v1::GenerateRequest request;
  for (int32_t id : Prompt(index)) request.mutable_tokens()->add_ids(id);
  request.set_max_new_tokens(absl::GetFlag(FLAGS_new_tokens));
  request.set_ignore_eos(true);
  request.mutable_sampler()->set_name(absl::GetFlag(FLAGS_sampler));
  request.set_seed(static_cast<uint64_t>(index + 1));
  grpc::ClientContext context;
  const auto start = Clock::now();
  auto reader = stub->Generate(&context, request);
  One one;
  runner::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (one.tokens == 0 && response.tokens_size() > 0) one.first_token_ms = MsSince(start);
    one.tokens += response.tokens_size();
  }
  const grpc::Status status = reader->Finish();
  one.ok = status.ok();
  if (!one.ok) std::fprintf(stderr, "gRPC request %d: %s\n", index, status.error_message().c_str());
  return one;
}

// runnerd's model id: the --model folder's name.
std::string ModelName() {
  const std::filesystem::path dir =
      std::filesystem::path(absl::GetFlag(FLAGS_model)).lexically_normal();
  return dir.has_filename() ? dir.filename().string() : dir.parent_path().filename().string();
}

// One streaming completion; the tokens are counted from the usage chunk.
One Http(int port, int index) {
  const std::string body = absl::StrCat(
      R"({"model":")", ModelName(), R"(","prompt":[)", absl::StrJoin(Prompt(index), ","),
      R"(],"max_tokens":)", absl::GetFlag(FLAGS_new_tokens), R"(,"ignore_eos":true,"sampler":")",
      absl::GetFlag(FLAGS_sampler), R"(","seed":)", index + 1,
      R"(,"stream":true,"stream_options":{"include_usage":true}})");
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(600, 0);
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.body = body;
  request.set_header("Content-Type", "application/json");
  One one;
  std::string stream;
  const auto start = Clock::now();
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (one.first_token_ms == 0) one.first_token_ms = MsSince(start);
    stream.append(data, size);
    return true;
  };
  httplib::Result result = client.send(request);
  const size_t at = stream.rfind("\"completion_tokens\":");
  one.ok = result && result->status == 200 && at != std::string::npos && stream.size() > 14 &&
           stream.compare(stream.size() - 14, 14, "data: [DONE]\n\n") == 0;
  if (one.ok) one.tokens = std::strtoll(stream.c_str() + at + 20, nullptr, 10);
  if (!one.ok) {
    std::fprintf(stderr, "HTTP request %d: %s %d %s\n", index,
                 httplib::to_string(result.error()).c_str(), result ? result->status : 0,
                 stream.substr(0, 300).c_str());
  }
  return one;
}

struct Round {
  double tokens_per_s = -1;
  double first_token_ms = 0;
};

Round RunRound(int n, int first_index, const std::function<One(int)>& run) {
  std::vector<One> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { results[i] = run(first_index + i); });
  for (std::thread& t : threads) t.join();
  const double seconds = MsSince(start) / 1000;
  int64_t tokens = 0;
  std::vector<double> ttft;
  for (const One& r : results) {
    if (!r.ok) return {};
    tokens += r.tokens;
    ttft.push_back(r.first_token_ms);
  }
  return {tokens / seconds, Quantile(ttft, 0.5)};
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

int Main() {
  std::vector<int> levels;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < 1) return std::fprintf(stderr, "bad --concurrency\n"), 2;
    levels.push_back(n);
  }
  const int max_level = *std::max_element(levels.begin(), levels.end());
  const int http_port = FreePort();
  std::vector<std::string> args = {absl::StrCat("--model=", absl::GetFlag(FLAGS_model)),
                                   "--sampler=local", absl::StrCat("--max_batch=", max_level),
                                   absl::StrCat("--threads=", absl::GetFlag(FLAGS_threads)),
                                   absl::StrCat("--http_port=", http_port)};
  for (absl::string_view f :
       absl::StrSplit(absl::GetFlag(FLAGS_runnerd_flags), ' ', absl::SkipEmpty())) {
    args.emplace_back(f);
  }
  absl::StatusOr<BenchServer> server =
      BenchServer::Start(absl::GetFlag(FLAGS_runnerd), args, "runnerd serving",
                         absl::StrCat(absl::GetFlag(FLAGS_log_dir), "/http_bench_runnerd.log"));
  if (!server.ok()) return std::fprintf(stderr, "%s\n", server.status().ToString().c_str()), 1;
  auto stub = runner::v1::Runner::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  const std::function<One(int)> apis[2] = {[&](int i) { return Grpc(stub.get(), i); },
                                           [&](int i) { return Http(http_port, i); }};
  RunRound(max_level, 0, apis[0]);  // warm up
  RunRound(max_level, 0, apis[1]);
  std::printf("%-6s %12s %12s %14s %14s %10s\n", "N", "grpc tok/s", "http tok/s", "grpc ttft ms",
              "http ttft ms", "http/grpc");
  for (int n : levels) {
    std::vector<double> tps[2], ttft[2];
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      for (int api = 0; api < 2; ++api) {
        const Round r = RunRound(n, 100 * (round + 1), apis[api]);
        if (r.tokens_per_s < 0) return std::fprintf(stderr, "a request failed\n"), 1;
        tps[api].push_back(r.tokens_per_s);
        ttft[api].push_back(r.first_token_ms);
      }
    }
    const double g = Quantile(tps[0], 0.5), h = Quantile(tps[1], 0.5);
    std::printf("%-6d %12.1f %12.1f %14.1f %14.1f %10.3f\n", n, g, h, Quantile(ttft[0], 0.5),
                Quantile(ttft[1], 0.5), h / g);
  }
  return 0;
}

}  // namespace
}  // namespace entroserve::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return entroserve::bench::Main();
}
