// samplerd: the sampler service (sampler.v1.Sampler) with gRPC health
// checking and server reflection. Prints "samplerd listening on HOST:PORT"
// once serving; SIGTERM or SIGINT shut it down gracefully (health goes
// NOT_SERVING, calls in flight get --shutdown_grace_s to finish, the worker
// pool drains) and it exits 0.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "services/common/malloc_tuning.h"
#include "services/samplerd/sampler_service.h"
#include "services/common/server_main.h"
#include "services/wire/shared_memory.h"
#include "services/common/worker_pool.h"

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
ABSL_FLAG(bool, shared_memory, true,
          "Read tensors that a client on this host (loopback or a Unix socket) put in shared "
          "memory owned by samplerd's user "
          "(/dev/shm/entroserve-*, e.g. runnerd with --sampler=127.0.0.1:PORT) instead of "
          "the message. false: such rows get FAILED_PRECONDITION, and runnerd falls back "
          "to sending the bytes in the message.");
ABSL_FLAG(int32_t, shutdown_grace_s, 10,
          "On SIGTERM/SIGINT: seconds calls in flight get to finish before they "
          "are cancelled.");

namespace entroserve {
namespace {

constexpr char kServiceName[] = "sampler.v1.Sampler";

// Checks the flags; an error message, or empty when they are fine.
std::string FlagError() {
  if (std::string error = ServerFlagsError(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port),
                                           absl::GetFlag(FLAGS_max_message_mb),
                                           absl::GetFlag(FLAGS_shutdown_grace_s));
      !error.empty()) {
    return error;
  }
  const int32_t workers = absl::GetFlag(FLAGS_workers);
  if (workers < 0) return absl::StrCat("--workers must be >= 0, got ", workers);
  return "";
}

int Run() {
  const sigset_t stop_signals = BlockStopSignals();
  TuneMallocForLargeMessages();

  int workers = absl::GetFlag(FLAGS_workers);
  if (workers == 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int max_message_bytes = absl::GetFlag(FLAGS_max_message_mb) * (1 << 20);

  // Destroyed after the server: the service and the pool outlive it.
  WorkerPool pool(workers);
  std::unique_ptr<SharedMemoryReader> shm;
  if (absl::GetFlag(FLAGS_shared_memory)) {
    shm = std::make_unique<SharedMemoryReader>(static_cast<uint64_t>(max_message_bytes));
  }
  SamplerService service(&pool, shm.get());

  Listening listening = Listen("samplerd", absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port),
                               &service, kServiceName, /*serving=*/true, max_message_bytes,
                               /*whole_message_windows=*/true);
  if (listening.server == nullptr) return 1;
  grpc::Server* server = listening.server.get();
  grpc::HealthCheckServiceInterface* health = listening.health;

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
  return entroserve::DaemonMain(
      argc, argv, "samplerd",
      "The entroserve sampler service: sampler.v1.Sampler over gRPC, with "
      "grpc.health.v1 health checking and server reflection.\n"
      "Usage: samplerd [--host=[::]] [--port=50051] [--workers=0] "
      "[--max_message_mb=64] [--shutdown_grace_s=10]",
      entroserve::FlagError, entroserve::Run);
}
