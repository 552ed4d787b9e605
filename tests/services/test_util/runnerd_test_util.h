// Helpers of the runnerd process tests (runnerd_integration_test.cc,
// runnerd_greedy_test.cc): starting runnerd and samplerd on the bundled tiny
// model, and running Generate calls to their end. Header-only: the binaries'
// paths come from the including test's SAMPLERD_PATH and RUNNERD_PATH.
#ifndef ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RUNNERD_TEST_UTIL_H_
#define ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RUNNERD_TEST_UTIL_H_

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "runner/v1/runner.grpc.pb.h"
#include "tests/services/test_util/server_process.h"

namespace entroserve {

inline constexpr char kTinyModel[] = ENTROSERVE_SOURCE_DIR "/models/tiny";
inline constexpr int32_t kVocab = 6144;
inline constexpr int32_t kContext = 1024;
inline constexpr char kPrompt[] = "The jury said";

// ---------------------------------------------------------------------------
// Processes.

inline std::string StderrPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/runnerd_test_", getpid(), "_", name, ".log");
}

inline std::unique_ptr<ServerProcess> StartSamplerd(std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"--host=127.0.0.1", "--port=0", "--workers=1"};
  args.insert(args.end(), flags.begin(), flags.end());
  return ServerProcess::Start(SAMPLERD_PATH, args, "samplerd");
}

// runnerd on the tiny model, one model thread, loopback, a free port; waits
// until the model is loaded ("runnerd serving").
inline std::unique_ptr<ServerProcess> StartRunnerd(std::vector<std::string> flags = {},
                                                   const std::string& stderr_path = "") {
  std::vector<std::string> args = {absl::StrCat("--model=", kTinyModel), "--host=127.0.0.1",
                                   "--port=0", "--threads=1"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::unique_ptr<ServerProcess> server =
      ServerProcess::Start(RUNNERD_PATH, args, "runnerd", stderr_path);
  if (server == nullptr) return nullptr;
  if (!server->WaitForOutput("runnerd serving", std::chrono::seconds(60))) {
    ADD_FAILURE() << "runnerd did not load the model; stdout: " << server->output();
    return nullptr;
  }
  return server;
}

// samplerd and runnerd sampling through it, each with /metrics on a port of
// its own; null processes (and a test failure) when one does not start.
struct MeteredServers {
  int sampler_metrics = 0;
  int runner_metrics = 0;
  std::unique_ptr<ServerProcess> samplerd;
  std::unique_ptr<ServerProcess> runnerd;
};

inline MeteredServers StartMeteredServers() {
  MeteredServers s;
  s.sampler_metrics = FreeTcpPort();
  s.runner_metrics = FreeTcpPort();
  s.samplerd = StartSamplerd({absl::StrCat("--metrics_port=", s.sampler_metrics)});
  if (s.samplerd == nullptr) return s;
  s.runnerd = StartRunnerd(
      {"--sampler=" + s.samplerd->address(), absl::StrCat("--metrics_port=", s.runner_metrics)});
  return s;
}

// The shared-memory regions a runnerd (pid) has in /dev/shm
// (services/wire/shared_memory.h).
inline int RegionsOf(pid_t pid) {
  int count = 0;
  const std::string prefix = absl::StrCat("entroserve-", pid, "-");
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
    if (absl::StartsWith(entry.path().filename().string(), prefix)) ++count;
  }
  return count;
}

inline std::unique_ptr<::runner::v1::Runner::Stub> RunnerStub(const ServerProcess& server) {
  return ::runner::v1::Runner::NewStub(server.NewChannel());
}

// ---------------------------------------------------------------------------
// Requests.

struct Generation {
  grpc::Status status;
  std::vector<::runner::v1::GeneratedToken> tokens;
  std::vector<::runner::v1::GenerateResponse> messages;

  std::vector<int32_t> ids() const {
    std::vector<int32_t> out;
    for (const auto& t : tokens) out.push_back(t.id());
    return out;
  }
  std::string text() const {
    std::string out;
    for (const auto& t : tokens) out += t.text();
    return out;
  }
  const ::runner::v1::GenerateResponse& last() const { return messages.back(); }
};

// Runs a Generate call to its end. `on_token(context, index)` runs after
// each token is read (to cancel, or to disturb the servers mid-stream).
inline Generation Generate(
    ::runner::v1::Runner::Stub* stub, const ::runner::v1::GenerateRequest& request,
    std::chrono::milliseconds timeout = std::chrono::seconds(120),
    const std::function<void(grpc::ClientContext*, int)>& on_token = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  Generation out;
  auto reader = stub->Generate(&context, request);
  ::runner::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    out.messages.push_back(response);
    for (const ::runner::v1::GeneratedToken& token : response.tokens()) {
      out.tokens.push_back(token);
      if (on_token) on_token(&context, static_cast<int>(out.tokens.size()) - 1);
    }
  }
  out.status = reader->Finish();
  return out;
}

inline ::runner::v1::GenerateRequest TextRequest(const std::string& text, int32_t max_new_tokens,
                                                 uint64_t seed) {
  ::runner::v1::GenerateRequest request;
  request.set_text(text);
  request.set_max_new_tokens(max_new_tokens);
  request.set_seed(seed);
  request.set_ignore_eos(true);
  return request;
}

inline ::runner::v1::GenerateRequest WithSampler(::runner::v1::GenerateRequest request,
                                                 const std::string& name) {
  request.mutable_sampler()->set_name(name);
  return request;
}

inline std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), ": ", status.error_message());
}

inline void ExpectSameTokens(const Generation& a, const Generation& b) {
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a.tokens[i], b.tokens[i]))
        << "token " << i << "\n  " << a.tokens[i].ShortDebugString() << "\n  "
        << b.tokens[i].ShortDebugString();
  }
}

inline int32_t Running(::runner::v1::Runner::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::runner::v1::ModelInfoResponse info;
  EXPECT_TRUE(stub->ModelInfo(&context, {}, &info).ok());
  return info.running();
}

}  // namespace entroserve

#endif  // ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RUNNERD_TEST_UTIL_H_
