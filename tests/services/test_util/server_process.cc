#include "tests/services/test_util/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "httplib.h"

extern char** environ;

namespace entroserve {
namespace {

// Starts `binary` with `args`, its stdout into a pipe whose read end goes to
// *read_fd; its stderr too with `merge_stderr`, else appended to the file
// `stderr_path` when not empty (else the test's). The child's pid, or -1
// with *error set.
pid_t SpawnWithPipe(const std::string& binary, const std::vector<std::string>& args,
                    bool merge_stderr, const std::string& stderr_path, int* read_fd,
                    std::string* error) {
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe(out) != 0) {
    *error = "pipe failed";
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (merge_stderr) posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, out[1]);
  if (!merge_stderr && !stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    *error = absl::StrCat("cannot start ", binary, ": ", strerror(rc));
    return -1;
  }
  *read_fd = out[0];
  return pid;
}

}  // namespace

std::unique_ptr<ServerProcess> ServerProcess::Start(const std::string& binary,
                                                    const std::vector<std::string>& args,
                                                    const std::string& name,
                                                    const std::string& stderr_path,
                                                    std::chrono::seconds timeout) {
  int read_fd = -1;
  std::string error;
  const pid_t pid =
      SpawnWithPipe(binary, args, /*merge_stderr=*/false, stderr_path, &read_fd, &error);
  if (pid < 0) {
    ADD_FAILURE() << error;
    return nullptr;
  }
  auto server = std::unique_ptr<ServerProcess>(new ServerProcess(pid, read_fd));
  const std::string prefix = absl::StrCat(name, " listening on ");
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    const size_t at = server->output_.find(prefix);
    if (at != std::string::npos) {
      const size_t end = server->output_.find('\n', at);
      if (end != std::string::npos) {
        const std::string host_port =
            server->output_.substr(at + prefix.size(), end - at - prefix.size());
        const size_t colon = host_port.rfind(':');
        if (colon != std::string::npos) server->port_ = std::stoi(host_port.substr(colon + 1));
        if (server->port_ > 0) return server;
        break;
      }
    }
    if (!server->ReadSome(std::chrono::milliseconds(100))) break;
  }
  ADD_FAILURE() << name << " did not print its listening line; stdout: " << server->output_;
  return nullptr;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  close(stdout_fd_);
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::shared_ptr<grpc::Channel> ServerProcess::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A channel of its own, not shared with other tests' channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  EXPECT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)));
  return channel;
}

int ServerProcess::Stop(int signal, std::chrono::seconds timeout) {
  kill(pid_, signal);
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

void ServerProcess::Signal(int signal) const { kill(pid_, signal); }

bool ServerProcess::ReadSome(std::chrono::milliseconds wait) {
  pollfd pfd = {stdout_fd_, POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(wait.count())) > 0) {
    char buffer[4096];
    const ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) return false;
    output_.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

bool ServerProcess::WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (output_.find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    if (!ReadSome(std::chrono::milliseconds(50))) return output_.find(text) != std::string::npos;
  }
  return true;
}

ProcessExit RunToExit(const std::string& binary, const std::vector<std::string>& args,
                      std::chrono::seconds timeout) {
  ProcessExit result;
  int read_fd = -1;
  const pid_t pid =
      SpawnWithPipe(binary, args, /*merge_stderr=*/true, "", &read_fd, &result.output);
  if (pid < 0) return result;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    pollfd pfd = {read_fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) > 0) {
      char buffer[4096];
      const ssize_t n = read(read_fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      result.output.append(buffer, static_cast<size_t>(n));
    }
  }
  close(read_fd);
  if (std::chrono::steady_clock::now() >= give_up) kill(pid, SIGKILL);
  waitpid(pid, &result.status, 0);
  return result;
}

absl::StatusOr<std::string> GenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& method,
                                         const std::string& request_bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the response");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

std::string ShortBytesField(int number, const std::string& payload) {
  return std::string(1, static_cast<char>((number << 3) | 2)) +
         std::string(1, static_cast<char>(payload.size())) + payload;
}

absl::StatusOr<int> HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& service) {
  absl::StatusOr<std::string> response = GenericUnary(
      channel, "/grpc.health.v1.Health/Check", service.empty() ? "" : ShortBytesField(1, service));
  if (!response.ok()) return response.status();
  // HealthCheckResponse{status: S} is field 1 = S: bytes 08 S (UNKNOWN, 0,
  // is the empty message).
  if (response->empty()) return 0;
  if (response->size() != 2 || (*response)[0] != '\x08') {
    return absl::InternalError("unexpected HealthCheckResponse bytes");
  }
  return static_cast<int>((*response)[1]);
}

bool HealthServing(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  absl::StatusOr<int> status = HealthStatus(channel, service);
  return status.ok() && *status == 1;
}

std::shared_ptr<grpc::Channel> PlaintextChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  EXPECT_GT(port, 0) << "no free port";
  return port;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result result = client.Get(path.c_str());
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET :", port, path, ": ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::UnknownError(absl::StrCat("GET :", port, path, ": HTTP ", result->status));
  }
  return result->body;
}

std::vector<std::string> ReflectedServices(const std::shared_ptr<grpc::Channel>& channel) {
  // ServerReflectionRequest{list_services: ""} (field 7), sent as the one
  // message of the bidi ServerReflectionInfo stream.
  absl::StatusOr<std::string> bytes =
      GenericUnary(channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   ShortBytesField(7, ""));
  std::vector<std::string> services;
  if (!bytes.ok()) return services;
  // ServerReflectionResponse.list_services_response (6) .service (1) .name (1)
  google::protobuf::UnknownFieldSet response;
  if (!response.ParseFromString(*bytes)) return services;
  for (int i = 0; i < response.field_count(); ++i) {
    if (response.field(i).number() != 6) continue;
    google::protobuf::UnknownFieldSet list;
    if (!list.ParseFromString(response.field(i).length_delimited())) continue;
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet entry;
      if (!entry.ParseFromString(list.field(j).length_delimited())) continue;
      for (int k = 0; k < entry.field_count(); ++k) {
        if (entry.field(k).number() == 1) services.push_back(entry.field(k).length_delimited());
      }
    }
  }
  return services;
}

}  // namespace entroserve
