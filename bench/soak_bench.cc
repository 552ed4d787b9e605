// Soak of both daemons (issue 12), a bench and not a test: it runs minutes.
//   1. --streams concurrent SampleStreams (default 256) for --seconds against
//      one samplerd, each sending seeded batches drawn from 16 fixed ones;
//   2. --generates concurrent Generate calls (default 64) for --seconds
//      against runnerd on models/tiny with its sampler in a samplerd that is
//      killed (SIGKILL) and started again on the same port half-way; a
//      quarter of the calls are cancelled after a random number of messages.
// It passes when no call ends with an error other than the expected
// (CANCELLED for a call it cancelled), every answer equals the first answer
// to the same request (batches: byte for byte; generations: the tokens, a
// cancelled one a prefix of them), and each server's resident memory grew
// by at most 10 %: its peak in the second half of the run against its peak
// from the end of warm-up (a sixth of the run) to half-way.
//   build/bin/soak_bench [--seconds=60] [--streams=256] [--generates=64]
//                        [--phases=sampler,runner]
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/bench_process.h"
#include "grpcpp/grpcpp.h"
#include "runner/v1/runner.grpc.pb.h"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.grpc.pb.h"

ABSL_FLAG(int32_t, seconds, 60, "Length of each phase");
ABSL_FLAG(int32_t, streams, 256, "Concurrent SampleStreams of phase 1");
ABSL_FLAG(int32_t, generates, 64, "Concurrent Generate calls of phase 2");
ABSL_FLAG(std::string, phases, "sampler,runner", "Phases to run: sampler, runner or both");
ABSL_FLAG(std::string, samplerd, ENTROSERVE_SAMPLERD_PATH, "samplerd binary to soak");
ABSL_FLAG(std::string, runnerd, ENTROSERVE_RUNNERD_PATH, "runnerd binary to soak");

namespace entroserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

// What the workers of a phase saw.
class Tally {
 public:
  // Counts one call; false (and a mismatch) when `answer` differs from the
  // first answer recorded for `key` (`prefix`: it only has to start it).
  bool Check(const std::string& key, const std::string& answer, bool prefix = false) {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    auto [it, inserted] = first_.emplace(key, answer);
    if (inserted || (prefix ? absl::StartsWith(it->second, answer) : it->second == answer)) {
      return true;
    }
    if (!prefix && absl::StartsWith(answer, it->second)) {  // the first was a cancelled prefix
      it->second = answer;
      return true;
    }
    ++mismatches_;
    return false;
  }
  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (errors_.size() < 5) errors_.push_back(what);
    ++error_count_;
  }
  void Cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    ++cancelled_;
  }
  bool Report(const std::string& phase) {
    std::lock_guard<std::mutex> lock(mu_);
    std::printf("%s: %lld calls, %lld cancelled, %lld errors, %lld mismatches, %zu distinct\n",
                phase.c_str(), calls_, cancelled_, error_count_, mismatches_, first_.size());
    for (const std::string& e : errors_) std::printf("  error: %s\n", e.c_str());
    return error_count_ == 0 && mismatches_ == 0;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> first_;
  std::vector<std::string> errors_;
  long long calls_ = 0, cancelled_ = 0, error_count_ = 0, mismatches_ = 0;
};

long RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Resident memory of a server under load: the peak of one-second samples
// from the end of warm-up (a sixth of the run) to half-way, and from there to
// the end. In-flight messages make single samples swing by a third under 256
// streams; a leak shows as a later peak above the earlier one.
struct RssWatch {
  long early_kb = 0, late_kb = 0;
  bool Report(const std::string& name) const {
    const double growth = 100.0 * (late_kb - early_kb) / std::max(1L, early_kb);
    std::printf(
        "%s RSS peak: %ld kB from warm-up to half-way, %ld kB in the second half "
        "(%+.1f %%)\n",
        name.c_str(), early_kb, late_kb, growth);
    return growth <= 10.0;
  }
};

// Runs `work(deadline)` on `threads` threads for --seconds, sampling the RSS
// of `pid()` every second; `midway` runs once half-way.
RssWatch RunPhase(int threads, const std::function<void(Clock::time_point)>& work,
                  const std::function<pid_t()>& pid, const std::function<void()>& midway = {}) {
  const int seconds = absl::GetFlag(FLAGS_seconds);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(work, deadline);
  RssWatch rss;
  for (int s = 1; s <= seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    const long kb = RssKb(pid());
    if (s * 6 > seconds && s * 2 <= seconds) rss.early_kb = std::max(rss.early_kb, kb);
    if (s * 2 > seconds) rss.late_kb = std::max(rss.late_kb, kb);
    if (s % 10 == 0) std::printf("  %3d s: RSS %ld kB\n", s, kb);
    if (s * 2 == seconds && midway) midway();
    std::fflush(stdout);
  }
  for (std::thread& t : workers) t.join();
  return rss;
}

// --- Phase 1: SampleStreams -------------------------------------------------

sampler::v1::SampleRequest SoakBatch(int variant) {
  static const char* const kSamplers[] = {"chain", "entropix", "greedy", "alpha"};
  std::mt19937 gen(static_cast<uint32_t>(variant));
  std::normal_distribution<float> normal(0.0f, 3.0f);
  sampler::v1::SampleRequest request;
  for (int r = 0; r < 4; ++r) {
    sampler::v1::SampleRow* row = request.add_rows();
    row->set_sequence_id(absl::StrCat("soak-", variant, "-", r));
    row->mutable_spec()->set_name(kSamplers[r]);
    row->set_seed(static_cast<uint64_t>(variant * 10 + r + 1));
    std::vector<float> logits(4096);
    for (float& v : logits) v = normal(gen);
    sampler::v1::Tensor* t = row->mutable_logits();
    t->set_dtype(sampler::v1::DTYPE_FLOAT32);
    t->add_shape(4096);
    t->set_data(EncodeTensor(DType::kFloat32, logits));
    if (r % 2 == 1) {
      std::vector<float> attention(4 * 64);
      for (float& v : attention) v = normal(gen);
      sampler::v1::Tensor* a = row->mutable_attention();
      a->set_dtype(sampler::v1::DTYPE_FLOAT32);
      a->add_shape(4);
      a->add_shape(64);
      a->set_data(EncodeTensor(DType::kFloat32, attention));
    }
  }
  return request;
}

void StreamWorker(sampler::v1::Sampler::Stub* stub,
                  const std::vector<sampler::v1::SampleRequest>& batches,
                  Clock::time_point deadline, Tally* tally) {
  std::mt19937 gen(std::random_device{}());
  while (Clock::now() < deadline) {
    grpc::ClientContext context;
    auto stream = stub->SampleStream(&context);
    for (int i = 0; i < 20 && Clock::now() < deadline; ++i) {
      const int variant = static_cast<int>(gen() % batches.size());
      sampler::v1::SampleResponse response;
      if (!stream->Write(batches[static_cast<size_t>(variant)]) || !stream->Read(&response)) break;
      bool row_error = false;
      for (const auto& result : response.results()) row_error |= result.has_error();
      if (row_error) {
        tally->Error(absl::StrCat("row error: ", response.ShortDebugString().substr(0, 200)));
      } else {
        tally->Check(absl::StrCat(variant), response.SerializeAsString());
      }
    }
    stream->WritesDone();
    if (grpc::Status status = stream->Finish(); !status.ok()) {
      tally->Error(
          absl::StrCat("stream ended ", status.error_code(), ": ", status.error_message()));
    }
  }
}

bool SamplerPhase() {
  absl::StatusOr<BenchServer> samplerd =
      BenchServer::Start(absl::GetFlag(FLAGS_samplerd), {"--workers=2"}, "samplerd", "");
  if (!samplerd.ok()) {
    std::printf("samplerd: %s\n", samplerd.status().ToString().c_str());
    return false;
  }
  auto stub = sampler::v1::Sampler::NewStub(
      grpc::CreateChannel(samplerd->address(), grpc::InsecureChannelCredentials()));
  std::vector<sampler::v1::SampleRequest> batches;
  for (int v = 0; v < 16; ++v) batches.push_back(SoakBatch(v));
  Tally tally;
  const RssWatch rss = RunPhase(
      absl::GetFlag(FLAGS_streams),
      [&](Clock::time_point deadline) { StreamWorker(stub.get(), batches, deadline, &tally); },
      [&] { return samplerd->pid(); });
  const bool calls_ok = tally.Report("SampleStream");
  return rss.Report("samplerd") && calls_ok;
}

// --- Phase 2: Generate with cancellations and a restarted sampler ----------

runner::v1::GenerateRequest SoakGeneration(int variant) {
  static const char* const kPrompts[] = {"The jury said", "Once upon a time", "In the morning",
                                         "She opened the door and"};
  runner::v1::GenerateRequest request;
  request.set_text(kPrompts[variant % 4]);
  request.set_max_new_tokens(24);
  request.set_ignore_eos(true);
  request.mutable_sampler()->set_name(variant < 4 ? "entropix" : "chain");
  request.set_seed(static_cast<uint64_t>(variant + 1));
  return request;
}

// One call: its tokens (as text of ids), cancelled after `cancel_after`
// messages when that is positive.
void GenerateOnce(runner::v1::Runner::Stub* stub, int variant, int cancel_after, Tally* tally) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  auto reader = stub->Generate(&context, SoakGeneration(variant));
  runner::v1::GenerateResponse response;
  std::vector<int32_t> ids;
  int messages = 0;
  while (reader->Read(&response)) {
    for (const auto& token : response.tokens()) ids.push_back(token.id());
    if (cancel_after > 0 && ++messages == cancel_after) context.TryCancel();
  }
  const grpc::Status status = reader->Finish();
  const std::string tokens = absl::StrJoin(ids, " ");
  if (status.error_code() == grpc::StatusCode::CANCELLED && cancel_after > 0) {
    tally->Cancelled();
    tally->Check(absl::StrCat(variant), tokens, /*prefix=*/true);
  } else if (!status.ok()) {
    tally->Error(
        absl::StrCat("Generate ended ", status.error_code(), ": ", status.error_message()));
  } else {
    tally->Check(absl::StrCat(variant), tokens);
  }
}

bool RunnerPhase() {
  absl::StatusOr<BenchServer> samplerd =
      BenchServer::Start(absl::GetFlag(FLAGS_samplerd), {"--workers=2"}, "samplerd", "");
  if (!samplerd.ok()) return false;
  const std::string address = samplerd->address();
  const std::string port = address.substr(address.rfind(':') + 1);
  absl::StatusOr<BenchServer> runnerd =
      BenchServer::Start(absl::GetFlag(FLAGS_runnerd),
                         {absl::StrCat("--model=", ENTROSERVE_SOURCE_DIR, "/models/tiny"),
                          absl::StrCat("--sampler=", address), "--batch_invariant=true",
                          "--max_queue=256", "--threads=1"},
                         "runnerd serving", "/tmp/soak_runnerd.log");
  if (!runnerd.ok()) {
    std::printf("runnerd: %s\n", runnerd.status().ToString().c_str());
    return false;
  }
  auto stub = runner::v1::Runner::NewStub(
      grpc::CreateChannel(runnerd->address(), grpc::InsecureChannelCredentials()));
  Tally tally;
  auto work = [&](Clock::time_point deadline) {
    std::mt19937 gen(std::random_device{}());
    while (Clock::now() < deadline) {
      const int cancel_after = gen() % 4 == 0 ? static_cast<int>(1 + gen() % 12) : 0;
      GenerateOnce(stub.get(), static_cast<int>(gen() % 8), cancel_after, &tally);
    }
  };
  auto restart = [&] {
    kill(samplerd->pid(), SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    samplerd = BenchServer::Start(absl::GetFlag(FLAGS_samplerd), {"--workers=2", "--port=" + port},
                                  "samplerd", "");
    std::printf("samplerd killed and restarted on port %s: %s\n", port.c_str(),
                samplerd.ok() ? "ok" : samplerd.status().ToString().c_str());
  };
  const RssWatch rss = RunPhase(
      absl::GetFlag(FLAGS_generates), work, [&] { return runnerd->pid(); }, restart);
  const bool calls_ok = tally.Report("Generate");
  return rss.Report("runnerd") && calls_ok && samplerd.ok();
}

}  // namespace
}  // namespace entroserve::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string phases = absl::GetFlag(FLAGS_phases);
  bool ok = true;
  if (absl::StrContains(phases, "sampler")) ok &= entroserve::bench::SamplerPhase();
  if (absl::StrContains(phases, "runner")) ok &= entroserve::bench::RunnerPhase();
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
