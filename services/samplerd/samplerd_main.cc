// samplerd: the sampler service (sampler.v1.Sampler) with gRPC health
// checking and server reflection. Prints "samplerd listening on HOST:PORT"
// once serving; SIGTERM or SIGINT shut it down gracefully (health goes
// NOT_SERVING at once, calls in flight get --shutdown_grace_s to finish, the
// worker pool drains) and it exits 0. The flags it shares with runnerd
// (TLS, tokens, health port, metrics, logs) are services/common/server_main.h's.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sampler/base/status_macros.h"
#include "services/common/log.h"
#include "services/common/malloc_tuning.h"
#include "services/common/server_main.h"
#include "services/common/worker_pool.h"
#include "services/samplerd/sampler_metrics.h"
#include "services/samplerd/sampler_service.h"
#include "services/wire/shared_memory.h"

ABSL_FLAG(int32_t, port, 50051,
          "TCP port to listen on; 0 picks a free port (printed in the "
          "\"samplerd listening on HOST:PORT\" line).");
ABSL_FLAG(int32_t, workers, 0,
          "Threads that sample rows; the rows of a batch are sampled in parallel. "
          "0 means one per hardware thread. Results do not depend on this.");
ABSL_FLAG(bool, shared_memory, true,
          "Read tensors that a client on this host (loopback or a Unix socket) put in shared "
          "memory owned by samplerd's user "
          "(/dev/shm/entroserve-*, e.g. runnerd with --sampler=127.0.0.1:PORT) instead of "
          "the message. false: such rows get FAILED_PRECONDITION, and runnerd falls back "
          "to sending the bytes in the message.");

ABSL_FLAG(int32_t, channel_spin_us, 2000,
          "How long a shared-memory channel's thread spins for its client's next step before "
          "it sleeps on the doorbell (microseconds): a step due within it is taken without a "
          "thread wake-up, which on a virtual machine can cost more than sampling a row. "
          "2000 covers a 1B model's decode step on a GPU. 0 never spins.");
ABSL_FLAG(int32_t, channel_spinners, -1,
          "How many channel threads may spin at once (each holds a core while it spins); "
          "the others sleep at once. -1: one per 4 hardware threads, none below 8 (16 give 4, "
          "as many as runnerd's sampler streams).");

namespace entroserve {
namespace {

constexpr char kServiceName[] = "sampler.v1.Sampler";

struct SamplerdOptions {
  ServerOptions server;
  int workers = 1;
  bool shared_memory = true;
  absl::Duration channel_spin;
  int channel_spinners = 0;
};

// --channel_spinners=-1: a spinning thread holds a core, so none on a small
// machine (its cores sample), one per 4 hardware threads from 8 on.
int DefaultSpinners(unsigned hardware_threads) {
  return hardware_threads < 8 ? 0 : static_cast<int>(hardware_threads / 4);
}

// Every flag, checked and parsed once.
absl::StatusOr<SamplerdOptions> OptionsFromFlags() {
  SamplerdOptions options;
  ASSIGN_OR_RETURN(options.server, ServerOptionsFromFlags(absl::GetFlag(FLAGS_port)));
  const int32_t workers = absl::GetFlag(FLAGS_workers);
  if (workers < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--workers must be >= 0, got ", workers));
  }
  options.workers =
      workers > 0 ? workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.shared_memory = absl::GetFlag(FLAGS_shared_memory);
  const int32_t spin_us = absl::GetFlag(FLAGS_channel_spin_us);
  if (spin_us < 0 || spin_us > 1000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--channel_spin_us must be in [0, 1000000], got ", spin_us));
  }
  options.channel_spin = absl::Microseconds(spin_us);
  const int32_t spinners = absl::GetFlag(FLAGS_channel_spinners);
  if (spinners < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--channel_spinners must be >= 0, or -1 for one per 4 hardware threads; got ", spinners));
  }
  options.channel_spinners =
      spinners >= 0 ? spinners : DefaultSpinners(std::thread::hardware_concurrency());
  return options;
}

int Run(const SamplerdOptions& options) {
  StopSignals stop_signals;
  TuneMallocForLargeMessages();
  absl::StatusOr<ServerSecurity> security = MakeServerSecurity(options.server);
  if (!security.ok()) {
    Log(LogLevel::kError, security.status().message());
    return 2;
  }

  // Destroyed after the server: the service and what it uses outlive it.
  WorkerPool pool(options.workers);
  std::unique_ptr<SharedMemoryReader> shm;
  if (options.shared_memory) {
    shm = std::make_unique<SharedMemoryReader>(
        static_cast<uint64_t>(options.server.max_message_bytes));
  }
  auto registry = std::make_shared<prometheus::Registry>();
  SamplerMetrics metrics(*registry);
  SamplerService service({&pool, shm.get(), &metrics, &security->gate, options.channel_spin,
                          options.channel_spinners});

  absl::StatusOr<std::unique_ptr<DaemonServer>> server =
      DaemonServer::Start(options.server, *security,
                          {"samplerd",
                           &service,
                           kServiceName,
                           /*serving=*/true,
                           /*whole_message_windows=*/true,
                           registry,
                           {}});
  if (!server.ok()) {
    Log(LogLevel::kError, server.status().message());
    return 1;
  }

  const int signal_number = stop_signals.Wait();
  Log(LogLevel::kInfo, absl::StrCat("signal ", signal_number, ", shutting down"));
  (*server)->SetServing(false);
  (*server)->Shutdown(absl::Now() + options.server.shutdown_grace);
  return 0;  // The pool drains in its destructor.
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  return entroserve::DaemonMain<entroserve::SamplerdOptions>(
      argc, argv, "samplerd",
      "The entroserve sampler service: sampler.v1.Sampler over gRPC, with "
      "grpc.health.v1 health checking and server reflection.\n"
      "Usage: samplerd [--host=[::]] [--port=50051] [--workers=0] [--max_message_mb=64]\n"
      "                [--shared_memory=true] [--channel_spin_us=2000] [--channel_spinners=-1]\n"
      "                [--shutdown_grace_s=10] [--metrics_port=0]\n"
      "                [--health_port=0] [--tls_cert_file= --tls_key_file= "
      "[--tls_client_ca_file=]]\n"
      "                [--auth_token_file=] [--log_format=text|json]",
      entroserve::OptionsFromFlags, entroserve::Run);
}
