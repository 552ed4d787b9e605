// Server processes (samplerd, runnerd) started by the benchmarks: on
// 127.0.0.1 with --port=0, the port read from the "NAME listening on
// HOST:PORT" line the server prints on stdout. Unlike the tests' helper
// (tests/services/test_util/server_process.h) this one has no GoogleTest: a
// failure to start is an error the bench prints and exits on.
#ifndef ENTROSERVE_BENCH_BENCH_PROCESS_H_
#define ENTROSERVE_BENCH_BENCH_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace entroserve::bench {

class BenchServer {
 public:
  // Starts `binary` with `args` plus --host=127.0.0.1 --port=0, its stderr
  // written to `log_path` ("" keeps the bench's), and waits up to
  // `timeout_s` for the line containing `ready` (after "listening on").
  static absl::StatusOr<BenchServer> Start(const std::string& binary,
                                           const std::vector<std::string>& args,
                                           const std::string& ready, const std::string& log_path,
                                           int timeout_s = 600);
  BenchServer() = default;
  BenchServer(BenchServer&& other) noexcept { *this = std::move(other); }
  BenchServer& operator=(BenchServer&& other) noexcept;
  ~BenchServer();  // SIGTERM, then waits

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string address_;
};

// The q-quantile (0..1) of `values` (nearest rank); 0 when empty.
double Quantile(std::vector<double> values, double q);

}  // namespace entroserve::bench

#endif  // ENTROSERVE_BENCH_BENCH_PROCESS_H_
