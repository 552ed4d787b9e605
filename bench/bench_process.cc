#include "bench/bench_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace entroserve::bench {

namespace {

// The end of the server's log, for an error message.
std::string LogTail(const std::string& log_path) {
  if (log_path.empty()) return "";
  std::ifstream in(log_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return absl::StrCat("\n", log_path, " ends with:\n", text);
}

}  // namespace

absl::StatusOr<BenchServer> BenchServer::Start(const std::string& binary,
                                               const std::vector<std::string>& args,
                                               const std::string& ready,
                                               const std::string& log_path, int timeout_s) {
  int pipe_fds[2];
  // Close-on-exec: a server started later does not inherit this one's pipe.
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> argv_strings = {binary, "--host=127.0.0.1", "--port=0"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (!log_path.empty()) {
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) dup2(log, STDERR_FILENO);
    }
    execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", binary.c_str(), strerror(errno));
    _exit(127);
  }
  close(pipe_fds[1]);
  BenchServer server;
  server.pid_ = pid;
  server.stdout_fd_ = pipe_fds[0];
  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const size_t listening = output.find("listening on ");
    if (listening != std::string::npos && server.address_.empty()) {
      const size_t end = output.find('\n', listening);
      if (end != std::string::npos) {
        const std::string hostport = output.substr(listening + 13, end - listening - 13);
        server.address_ = absl::StrCat("127.0.0.1:", hostport.substr(hostport.rfind(':') + 1));
      }
    }
    if (!server.address_.empty() && output.find(ready) != std::string::npos) return server;
    pollfd fd{server.stdout_fd_, POLLIN, 0};
    if (poll(&fd, 1, 100) > 0) {
      char buffer[4096];
      const ssize_t n = read(server.stdout_fd_, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return absl::UnavailableError(absl::StrCat(binary, " exited before printing \"", ready,
                                                   "\"; stdout: ", output, LogTail(log_path)));
      }
      output.append(buffer, static_cast<size_t>(n));
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat(binary, " did not print \"", ready, "\" within ", timeout_s, " s"));
}

BenchServer& BenchServer::operator=(BenchServer&& other) noexcept {
  std::swap(pid_, other.pid_);
  std::swap(stdout_fd_, other.stdout_fd_);
  std::swap(address_, other.address_);
  return *this;
}

BenchServer::~BenchServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    // A graceful shutdown gets 30 s, then SIGKILL.
    int status = 0;
    for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(100000);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(q * values.size()));
  return values[index];
}

}  // namespace entroserve::bench
