// Loopback round trips through a real samplerd process.
//
//   build/bin/roundtrip_bench [--samplerd=build/bin/samplerd] [--vocab=128256]
//       [--heads=32 --keys=4096] [--sampler=entropix] [--iterations=2000]
//       [--workers=2]
//
// Starts samplerd on a free loopback port, then over one SampleStream sends
// rows of BF16 logits [vocab] and BF16 attention [heads, keys] (what runnerd
// sends by default) and prints: batch 1 round-trip p50/p99, and rows/s at
// batch 8 and 64. The client encodes each request once up front, so the
// figures are the service's cost plus the transport, not the encoding.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_process.h"
#include "bench/bench_security.h"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "services/common/malloc_tuning.h"

ABSL_FLAG(std::string, samplerd, ENTROSERVE_SAMPLERD_PATH, "samplerd binary to start");
ABSL_FLAG(std::string, server, "", "use an already running samplerd at HOST:PORT instead");
ABSL_FLAG(int32_t, vocab, 128256, "vocabulary size of each row");
ABSL_FLAG(int32_t, heads, 32, "attention heads of each row (0: no attention)");
ABSL_FLAG(int32_t, keys, 4096, "attention keys of each row");
ABSL_FLAG(std::string, sampler, "entropix", "sampler name");
ABSL_FLAG(int32_t, iterations, 2000, "round trips measured at batch 1");
ABSL_FLAG(int32_t, batch_seconds, 4, "seconds measured at each larger batch size");
ABSL_FLAG(int32_t, workers, 0, "samplerd --workers (0: its default)");
ABSL_FLAG(bool, tls_and_tokens, false,
          "start samplerd with mutual TLS and a bearer token (certificates made with openssl) "
          "and connect with them");

namespace entroserve {
namespace {

// A peaked, Zipf-like next-token distribution, like a trained model's.
std::vector<float> RealisticLogits(int32_t vocab, uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  std::vector<float> z(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i) {
    const int32_t rank = static_cast<int32_t>((static_cast<int64_t>(i) * 7919 + seed) % vocab);
    z[i] = 12.0f - 1.6f * std::log1p(static_cast<float>(rank)) + noise(engine);
  }
  return z;
}

sampler::v1::SampleRequest MakeRequest(int batch, int64_t step) {
  const int32_t vocab = absl::GetFlag(FLAGS_vocab);
  const int32_t heads = absl::GetFlag(FLAGS_heads);
  const int32_t keys = absl::GetFlag(FLAGS_keys);
  std::mt19937_64 engine(step);
  std::normal_distribution<float> noise(0.0f, 2.0f);
  sampler::v1::SampleRequest request;
  for (int b = 0; b < batch; ++b) {
    sampler::v1::SampleRow* row = request.add_rows();
    row->set_sequence_id(absl::StrCat("bench-", b));
    row->set_step(0);
    row->mutable_spec()->set_name(absl::GetFlag(FLAGS_sampler));
    row->set_seed(static_cast<uint64_t>(step * 1000 + b));
    row->mutable_logits()->set_dtype(sampler::v1::DTYPE_BFLOAT16);
    row->mutable_logits()->add_shape(vocab);
    row->mutable_logits()->set_data(
        EncodeTensor(DType::kBFloat16, RealisticLogits(vocab, step * 1000 + b)));
    if (heads > 0) {
      std::vector<float> scores(static_cast<size_t>(heads) * keys);
      for (float& s : scores) s = noise(engine);
      row->mutable_attention()->set_dtype(sampler::v1::DTYPE_BFLOAT16);
      row->mutable_attention()->add_shape(heads);
      row->mutable_attention()->add_shape(keys);
      row->mutable_attention()->set_data(EncodeTensor(DType::kBFloat16, scores));
    }
  }
  return request;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  using namespace entroserve;
  using Clock = std::chrono::steady_clock;
  absl::SetProgramUsageMessage("Loopback round trips through samplerd (see the file header).");
  absl::ParseCommandLine(argc, argv);
  TuneMallocForLargeMessages();
  bench::BenchServer server;  // SIGTERMed when main returns
  std::string address = absl::GetFlag(FLAGS_server);
  std::optional<bench::BenchSecurity> security;
  if (absl::GetFlag(FLAGS_tls_and_tokens)) {
    absl::StatusOr<bench::BenchSecurity> made = bench::BenchSecurity::Make();
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      return 1;
    }
    security = *std::move(made);
  }
  if (address.empty()) {
    std::vector<std::string> flags;
    if (security) flags = security->ServerFlags();
    if (absl::GetFlag(FLAGS_workers) > 0) {
      flags.push_back(absl::StrCat("--workers=", absl::GetFlag(FLAGS_workers)));
    }
    absl::StatusOr<bench::BenchServer> started =
        bench::BenchServer::Start(absl::GetFlag(FLAGS_samplerd), flags, "listening on", "", 60);
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    server = *std::move(started);
    address = server.address();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 20);
  auto stub = sampler::v1::Sampler::NewStub(
      security ? security->Channel(address, args)
               : grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  std::printf("samplerd at %s%s; V=%d, attention %dx%d BF16, sampler %s\n", address.c_str(),
              security ? " (mutual TLS and a token)" : "", absl::GetFlag(FLAGS_vocab),
              absl::GetFlag(FLAGS_heads), absl::GetFlag(FLAGS_keys),
              absl::GetFlag(FLAGS_sampler).c_str());

  int exit_code = 0;
  {
    grpc::ClientContext context;
    auto stream = stub->SampleStream(&context);
    // Batch 1: latency percentiles over pre-encoded requests.
    constexpr int kDistinctRequests = 16;
    std::vector<sampler::v1::SampleRequest> singles;
    for (int i = 0; i < kDistinctRequests; ++i) singles.push_back(MakeRequest(1, i));
    std::vector<double> latencies_us;
    sampler::v1::SampleResponse response;
    const int iterations = absl::GetFlag(FLAGS_iterations);
    for (int i = -50; i < iterations; ++i) {  // 50 warm-up round trips
      const auto start = Clock::now();
      if (!stream->Write(singles[(i + 50) % kDistinctRequests]) || !stream->Read(&response)) {
        std::fprintf(stderr, "stream broke: %s\n", stream->Finish().error_message().c_str());
        return 1;
      }
      if (response.results(0).has_error()) {
        std::fprintf(stderr, "row error: %s\n", response.results(0).error().message().c_str());
        return 1;
      }
      if (i >= 0) {
        latencies_us.push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      }
    }
    std::printf("batch 1: round trip p50 %.1f us, p99 %.1f us (%d calls)\n",
                bench::Quantile(latencies_us, 0.50), bench::Quantile(latencies_us, 0.99),
                iterations);
    // Larger batches: throughput in rows/s.
    for (int batch : {8, 64}) {
      std::vector<sampler::v1::SampleRequest> requests;
      for (int i = 0; i < 2; ++i) requests.push_back(MakeRequest(batch, 100 + i));
      int64_t rows = 0;
      int calls = 0;
      std::vector<double> call_ms;
      const auto begin = Clock::now();
      const auto budget = std::chrono::seconds(absl::GetFlag(FLAGS_batch_seconds));
      while (Clock::now() - begin < budget || calls < 3) {
        const auto start = Clock::now();
        if (!stream->Write(requests[calls % 2]) || !stream->Read(&response)) {
          std::fprintf(stderr, "stream broke at batch %d\n", batch);
          exit_code = 1;
          break;
        }
        call_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        rows += batch;
        ++calls;
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
      std::printf("batch %d: %.0f rows/s (%d calls, call p50 %.2f ms)\n", batch, rows / seconds,
                  calls, bench::Quantile(call_ms, 0.5));
    }
    stream->WritesDone();
    stream->Finish();
  }
  return exit_code;
}
