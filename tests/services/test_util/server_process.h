// A server binary (samplerd, runnerd) started as a subprocess for tests: on
// 127.0.0.1 with --port=0, its port read from the "NAME listening on
// HOST:PORT" line it prints on stdout. Killed (SIGKILL) when destroyed
// unless it was stopped first.
//
// Failures to start are reported with ADD_FAILURE (GoogleTest) and give a
// null pointer.
#ifndef ENTROSERVE_TESTS_SERVICES_TEST_UTIL_SERVER_PROCESS_H_
#define ENTROSERVE_TESTS_SERVICES_TEST_UTIL_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace entroserve {

// How a process that ran to its end ended.
struct ProcessExit {
  int status = -1;     // waitpid status
  std::string output;  // stdout and stderr together
};

// Runs `binary` with `args` to its end (at most `timeout`, then SIGKILL).
ProcessExit RunToExit(const std::string& binary, const std::vector<std::string>& args,
                      std::chrono::seconds timeout = std::chrono::seconds(60));

// A unary call of `method` with raw request bytes, for services whose stubs
// this build does not generate (health, reflection).
absl::StatusOr<std::string> GenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& method,
                                         const std::string& request_bytes);

// A length-delimited protobuf field with a short (< 128 bytes) payload.
std::string ShortBytesField(int number, const std::string& payload);

// grpc.health.v1.Health/Check of `service` ("" for the server as a whole):
// true when SERVING.
bool HealthServing(const std::shared_ptr<grpc::Channel>& channel, const std::string& service);

// The same check's status: 1 SERVING, 2 NOT_SERVING (grpc.health.v1's
// numbers), or the call's error.
absl::StatusOr<int> HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& service);

// A plaintext channel to 127.0.0.1:port of its own (no shared subchannel),
// not waited for.
std::shared_ptr<grpc::Channel> PlaintextChannel(int port);

// A TCP port on 127.0.0.1 that was free a moment ago (for flags that need a
// fixed port: --health_port, --metrics_port, replicas restarted on theirs).
int FreeTcpPort();

// The body of http://127.0.0.1:port/path; the HTTP status as an error
// otherwise.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// The services grpc.reflection.v1alpha lists.
std::vector<std::string> ReflectedServices(const std::shared_ptr<grpc::Channel>& channel);

class ServerProcess {
 public:
  // Starts `binary` with `args` (which set the host and port) and waits up
  // to `timeout` for its line "`name` listening on HOST:PORT". Its stderr
  // goes to `stderr_path` when not empty (appended), else to the test's.
  static std::unique_ptr<ServerProcess> Start(
      const std::string& binary, const std::vector<std::string>& args, const std::string& name,
      const std::string& stderr_path = "", std::chrono::seconds timeout = std::chrono::seconds(60));

  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string address() const;

  // A channel of its own (no shared subchannel), unlimited message sizes,
  // connected (waits up to 20 s).
  std::shared_ptr<grpc::Channel> NewChannel() const;

  // Sends `signal` and waits for the exit; returns the waitpid status, or -1
  // if it did not exit within `timeout`.
  int Stop(int signal, std::chrono::seconds timeout = std::chrono::seconds(30));
  // Sends `signal` and returns (SIGSTOP, SIGCONT, ...).
  void Signal(int signal) const;

  // Waits up to `timeout` for `text` to appear on the process's stdout.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);
  // Everything read from its stdout so far.
  const std::string& output() const { return output_; }

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  // Reads what stdout has, waiting up to `wait`; false at end of file.
  bool ReadSome(std::chrono::milliseconds wait);

  pid_t pid_;
  int stdout_fd_;
  int port_ = 0;
  std::string output_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_TESTS_SERVICES_TEST_UTIL_SERVER_PROCESS_H_
