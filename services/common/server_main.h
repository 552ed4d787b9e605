// What samplerd and runnerd share around their services: the flags both
// have, parsed and checked once into ServerOptions; the stop signals; the
// security of a server (TLS, bearer tokens); a listening server with health
// checking, reflection, a plaintext health-only port, call metrics and a
// /metrics page; and main()'s parse-and-check.
//
// The flags defined here, with the same meaning on both daemons:
//   --host --max_message_mb --shutdown_grace_s --tls_cert_file --tls_key_file
//   --tls_client_ca_file --health_port --auth_token_file --metrics_port
//   --log_format
// Each daemon defines its own --port (their defaults differ).
#ifndef ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_
#define ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_

#include <signal.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/registry.h"
#include "services/common/auth.h"
#include "services/common/log.h"
#include "services/common/metrics.h"
#include "services/common/tls.h"

namespace entroserve {

// Largest gRPC message in MiB: gRPC's limits are int byte counts.
inline constexpr int kMaxMessageMbLimit = 2047;

struct ServerOptions {
  std::string host;
  int port = 0;
  int max_message_bytes = 64 << 20;
  absl::Duration shutdown_grace;
  ServerTlsFiles tls;
  int health_port = 0;  // 0: no plaintext health port
  std::string auth_token_file;
  int metrics_port = 0;  // 0: no /metrics
  LogFormat log_format = LogFormat::kText;
};

// The shared flags (and the daemon's own --port, given as `port`) checked
// and parsed; INVALID_ARGUMENT naming the flag and its value otherwise.
absl::StatusOr<ServerOptions> ServerOptionsFromFlags(int32_t port);

// SIGTERM and SIGINT, taken by the main thread: a handler writes the
// signal's number to a pipe that Wait() reads, so the daemon's shutdown runs
// outside any handler. Construct it before any thread starts and call Wait()
// from the same thread: the signals stay blocked in the threads started in
// between, so the handler runs in Wait()'s thread (threads that libraries
// start before main(), such as OpenBLAS's, block nothing and may run it too). Notify()
// wakes Wait() from another thread (runnerd's loader: "the model failed to
// load"). One per process.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Blocks until a signal (or a Notify) comes; returns its number.
  int Wait();
  // Makes Wait() return `code` (e.g. kLoadFailed).
  void Notify(int code);

  // A Notify code that is no signal's number.
  static constexpr int kLoadFailed = 255;

 private:
  int read_fd_ = -1;
};

// The credentials of the listening port and the AuthGate its services ask
// (services/common/auth.h): made before the services, which hold the gate.
struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::shared_ptr<TokenFile> tokens;  // null: no tokens required
  AuthGate gate;
};
absl::StatusOr<ServerSecurity> MakeServerSecurity(const ServerOptions& options);

// A daemon's gRPC server: `service` on host:port (port 0: a free one) with
// the security given, gRPC health checking (`service_name` and the server
// as a whole), reflection (unless tokens are required without TLS: it could
// not be protected), calls counted in the registry, messages up to
// max_message_bytes either way; with options.health_port a second,
// plaintext server of grpc.health.v1 alone (Kubernetes' gRPC probes speak
// plaintext); with options.metrics_port the registry at /metrics.
// Prints "NAME listening on HOST:PORT" on stdout.
class DaemonServer {
 public:
  struct Spec {
    std::string name;  // "samplerd"
    grpc::Service* service = nullptr;
    std::string service_name;  // "sampler.v1.Sampler"
    bool serving = true;       // the health status to start with
    // Each stream's HTTP/2 window opens to a whole message at once.
    bool whole_message_windows = false;
    std::shared_ptr<prometheus::Registry> registry;  // never null
    std::function<void()> before_scrape;             // may be empty
  };

  static absl::StatusOr<std::unique_ptr<DaemonServer>> Start(const ServerOptions& options,
                                                             const ServerSecurity& security,
                                                             Spec spec);
  ~DaemonServer();

  // The health status, on the main port and the health port alike.
  void SetServing(bool serving);
  // Refuses new calls, lets calls in flight run until `deadline` (then
  // cancels them) and returns once the server is down; health (on the
  // health port) and metrics stay up until then.
  void Shutdown(absl::Time deadline);

  int port() const { return port_; }
  int health_port() const { return health_port_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }

 private:
  DaemonServer() = default;
  absl::Status StartHealthPort(const ServerOptions& options);
  absl::Status StartMain(const ServerOptions& options, const ServerSecurity& security);

  Spec spec_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  std::unique_ptr<grpc::CallbackGenericService> health_only_;
  std::unique_ptr<MetricsServer> metrics_;
  int port_ = 0;
  int health_port_ = 0;
};

// Parses the command line (usage for --help); false, after saying why on
// stderr, on a leftover argument.
bool ParseDaemonFlags(int argc, char** argv, const std::string& name, const std::string& usage);

// main() of a daemon: parses the flags, turns them into the daemon's
// Options once with `parse` (an error: "NAME: message" and exit 2), sets up
// logging (--log_format), then returns run(options).
template <typename Options>
int DaemonMain(int argc, char** argv, const std::string& name, const std::string& usage,
               absl::StatusOr<Options> (*parse)(), int (*run)(const Options&)) {
  if (!ParseDaemonFlags(argc, argv, name, usage)) return 2;
  absl::StatusOr<Options> options = parse();
  if (!options.ok()) {
    std::cerr << name << ": " << options.status().message() << "\n";
    return 2;
  }
  InitLogging(name, options->server.log_format);
  return run(*options);
}

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_SERVER_MAIN_H_
