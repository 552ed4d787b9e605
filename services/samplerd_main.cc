// samplerd: the sampler service (sampler.v1.Sampler) with gRPC health
// checking and server reflection. Prints "samplerd listening on HOST:PORT"
// once serving; SIGTERM or SIGINT shut it down gracefully (health goes
// NOT_SERVING, calls in flight get --shutdown_grace_s to finish, the worker
// pool drains) and it exits 0.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "services/malloc_tuning.h"
#include "services/sampler_service.h"
#include "services/worker_pool.h"

// Largest gRPC message in MiB: gRPC's limits are int byte counts.
constexpr int kMaxMessageMbLimit = 2047;

ABSL_FLAG(std::string, host, "[::]",
          "Address to listen on: \"[::]\" is every interface (IPv6 and IPv4), "
          "\"127.0.0.1\" or \"localhost\" loopback only.");
ABSL_FLAG(int32_t, port, 50051,
          "TCP port to listen on; 0 picks a free port (printed in the "
          "\"samplerd listening on HOST:PORT\" line).");
ABSL_FLAG(int32_t, workers, 0,
          "Threads that sample rows; the rows of a batch are sampled in parallel. "
          "0 means one per hardware thread. Results do not depend on this.");
// A batch of 64 rows of 152k-token FLOAT32 logits is 64 * 151936 * 4 bytes
// = 38.9 MB, plus attention scores: 64 MiB holds it with room to spare.
ABSL_FLAG(int32_t, max_message_mb, 64,
          "Largest request or response message in MiB (at most 2047). A larger "
          "message ends its call with RESOURCE_EXHAUSTED. The default holds a "
          "batch of 64 rows of 152k-token FLOAT32 logits (39 MB) plus attention.");
ABSL_FLAG(int32_t, shutdown_grace_s, 10,
          "On SIGTERM/SIGINT: seconds calls in flight get to finish before they "
          "are cancelled.");

namespace entroserve {
namespace {

constexpr char kServiceName[] = "sampler.v1.Sampler";



// Checks the flags; an error message, or empty when they are fine.
std::string FlagError() {
  const int32_t port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) return absl::StrCat("--port must be in [0, 65535], got ", port);
  const int32_t workers = absl::GetFlag(FLAGS_workers);
  if (workers < 0) return absl::StrCat("--workers must be >= 0, got ", workers);
  const int32_t mb = absl::GetFlag(FLAGS_max_message_mb);
  if (mb < 1 || mb > kMaxMessageMbLimit) {
    return absl::StrCat("--max_message_mb must be in [1, ", kMaxMessageMbLimit, "], got ", mb);
  }
  const int32_t grace = absl::GetFlag(FLAGS_shutdown_grace_s);
  if (grace < 0) return absl::StrCat("--shutdown_grace_s must be >= 0, got ", grace);
  if (absl::GetFlag(FLAGS_host).empty()) return "--host must not be empty";
  return "";
}

int Run() {
  // SIGTERM and SIGINT are blocked in every thread (gRPC's and the pool's
  // inherit this mask) and taken synchronously by sigwait() below: no code
  // runs in a signal handler at all.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  TuneMallocForLargeMessages();

  int workers = absl::GetFlag(FLAGS_workers);
  if (workers == 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int max_message_bytes = absl::GetFlag(FLAGS_max_message_mb) * (1 << 20);
  const std::string host = absl::GetFlag(FLAGS_host);
  const std::string address = absl::StrCat(host, ":", absl::GetFlag(FLAGS_port));

  // Destroyed after the server: the service and the pool outlive it.
  WorkerPool pool(workers);
  SamplerService service(&pool);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  // Large messages (a batch of rows is tens of MB): let each stream's
  // HTTP/2 receive window open to a whole message at once, rather than
  // growing from 64 KiB by BDP probing, which stalls loopback transfers.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, max_message_bytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    std::cerr << "samplerd: cannot listen on " << address << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  health->SetServingStatus(true);
  std::cout << "samplerd listening on " << host << ":" << selected_port << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  std::cerr << "samplerd: signal " << signal_number << ", shutting down\n";
  health->SetServingStatus(kServiceName, false);
  health->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(absl::GetFlag(FLAGS_shutdown_grace_s)));
  server->Wait();
  return 0;  // The pool drains in its destructor.
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The entroserve sampler service: sampler.v1.Sampler over gRPC, with "
      "grpc.health.v1 health checking and server reflection.\n"
      "Usage: samplerd [--host=[::]] [--port=50051] [--workers=0] "
      "[--max_message_mb=64] [--shutdown_grace_s=10]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << "samplerd: unexpected argument \"" << rest[1] << "\"; see --help\n";
    return 2;
  }
  if (std::string error = entroserve::FlagError(); !error.empty()) {
    std::cerr << "samplerd: " << error << "\n";
    return 2;
  }
  return entroserve::Run();
}
