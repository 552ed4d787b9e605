// What samplerd and runnerd share around their services: the checks of the
// flags both have, the stop signals, a server listening with health checking
// and reflection, and main()'s parse-and-check.
#ifndef ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_
#define ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_

#include <signal.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace entroserve {

// Largest gRPC message in MiB: gRPC's limits are int byte counts.
inline constexpr int kMaxMessageMbLimit = 2047;

// The flags every daemon has: "" when fine, else a message naming the flag
// and its value.
std::string ServerFlagsError(const std::string& host, int32_t port, int32_t max_message_mb,
                             int32_t shutdown_grace_s);

// Blocks SIGTERM, SIGINT and `extra` in this thread and so in every thread
// started later (gRPC's, the pool's, libtorch's), to be taken synchronously
// by sigwait() on the returned set: no code runs in a signal handler.
sigset_t BlockStopSignals(std::initializer_list<int> extra = {});

struct Listening {
  std::unique_ptr<grpc::Server> server;
  grpc::HealthCheckServiceInterface* health = nullptr;
};

// Starts `service` on host:port (port 0: a free one) with gRPC health
// checking (`service_name` and the server as a whole set to `serving`) and
// reflection, messages up to `max_message_bytes` either way; with
// `whole_message_windows` each stream's HTTP/2 window opens to a whole
// message at once. Prints "NAME listening on HOST:PORT" on stdout. Null,
// after saying why on stderr, when it cannot listen.
Listening Listen(const std::string& name, const std::string& host, int32_t port,
                 grpc::Service* service, const std::string& service_name, bool serving,
                 int max_message_bytes, bool whole_message_windows);

// main() of a daemon: parses the flags (usage for --help), refuses a
// leftover argument and flags that `flag_error` rejects (exit 2, message
// "NAME: ..."), then returns run().
int DaemonMain(int argc, char** argv, const std::string& name, const std::string& usage,
               std::string (*flag_error)(), int (*run)());

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_
