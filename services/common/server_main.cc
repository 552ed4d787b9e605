#include "services/common/server_main.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "sampler/base/status_macros.h"

ABSL_FLAG(std::string, host, "[::]",
          "Address to listen on: \"[::]\" is every interface (IPv6 and IPv4), "
          "\"127.0.0.1\" or \"localhost\" loopback only. --health_port and --metrics_port "
          "listen on it too.");
// A batch of 64 rows of 152k-token FLOAT32 logits is 64 * 151936 * 4 bytes
// = 38.9 MB, plus attention scores: 64 MiB holds it with room to spare.
ABSL_FLAG(int32_t, max_message_mb, 64,
          "Largest gRPC message in MiB, either way (at most 2047); a larger one ends its "
          "call with RESOURCE_EXHAUSTED. The default holds a batch of 64 rows of 152k-token "
          "FLOAT32 logits (39 MB) plus attention.");
ABSL_FLAG(int32_t, shutdown_grace_s, 10,
          "On SIGTERM/SIGINT health turns NOT_SERVING at once; then calls and generations "
          "in flight get this many seconds to finish before they are cancelled.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain of this server: with --tls_key_file, the port speaks TLS "
          "only (plaintext clients are refused).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA certificates: clients must present a certificate signed by one of them "
          "(mutual TLS). Needs --tls_cert_file.");
ABSL_FLAG(int32_t, health_port, 0,
          "A second port serving grpc.health.v1 alone, in plaintext, whatever the main "
          "port speaks (Kubernetes' gRPC probes use plaintext). 0: none.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of bearer tokens, one per line (# comments), re-read when it changes: every "
          "call but health checks must send \"authorization: Bearer TOKEN\" with one of them, "
          "else UNAUTHENTICATED. Without TLS, server reflection is then off.");
ABSL_FLAG(int32_t, metrics_port, 0,
          "Port of an HTTP server of Prometheus metrics at /metrics (README: \"Running in "
          "production\"). 0: none.");
ABSL_FLAG(std::string, log_format, "text",
          "Log lines on stderr: text, or json (one object per line: time, level, program, "
          "message and fields such as request_id, sequence_id, peer).");

namespace entroserve {
namespace {

absl::Status CheckPort(const char* flag, int32_t port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be in [0, 65535], got ", port));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerOptions> ServerOptionsFromFlags(int32_t port) {
  ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  if (options.host.empty()) return absl::InvalidArgumentError("--host must not be empty");
  RETURN_IF_ERROR(CheckPort("--port", port));
  options.port = port;
  const int32_t max_message_mb = absl::GetFlag(FLAGS_max_message_mb);
  if (max_message_mb < 1 || max_message_mb > kMaxMessageMbLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max_message_mb must be in [1, ",
                                                   kMaxMessageMbLimit, "], got ", max_message_mb));
  }
  options.max_message_bytes = max_message_mb * (1 << 20);
  const int32_t grace = absl::GetFlag(FLAGS_shutdown_grace_s);
  if (grace < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--shutdown_grace_s must be >= 0, got ", grace));
  }
  options.shutdown_grace = absl::Seconds(grace);
  options.tls = {absl::GetFlag(FLAGS_tls_cert_file), absl::GetFlag(FLAGS_tls_key_file),
                 absl::GetFlag(FLAGS_tls_client_ca_file)};
  RETURN_IF_ERROR(CheckServerTlsFiles(options.tls));
  options.health_port = absl::GetFlag(FLAGS_health_port);
  RETURN_IF_ERROR(CheckPort("--health_port", options.health_port));
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  RETURN_IF_ERROR(CheckPort("--metrics_port", options.metrics_port));
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  absl::StatusOr<LogFormat> format = ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--log_format ", format.status().message()));
  }
  options.log_format = *format;
  return options;
}

namespace {

// The write end of the StopSignals pipe: a signal handler can only reach
// global state.
int stop_pipe_write_fd = -1;

void OnStopSignal(int signal_number) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  // A full pipe means a stop is already pending: dropping this one is fine.
  (void)!write(stop_pipe_write_fd, &byte, 1);
  errno = saved_errno;
}

// Drops server reflection from a builder. Linking grpc++_reflection
// registers its plugin with every ServerBuilder as the library loads (a
// static initializer), so leaving InitProtoReflectionServerBuilderPlugin
// uncalled does not keep reflection off; removing the plugin does.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return plugin->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

}  // namespace

namespace {

sigset_t StopSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

StopSignals::StopSignals() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    Log(LogLevel::kError, "cannot create the stop-signal pipe; signals end the process");
    return;
  }
  read_fd_ = fds[0];
  stop_pipe_write_fd = fds[1];
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // Blocked here, so in every thread started from now on (gRPC's, the
  // workers, the engine): Wait() unblocks them in this thread alone, which
  // then runs the handler in its read(). A thread waiting in a raw futex
  // syscall (absl::Mutex) would otherwise be picked too, and under
  // ThreadSanitizer, which runs handlers only at its next intercepted call,
  // the stop never came.
  const sigset_t stops = StopSignalSet();
  pthread_sigmask(SIG_BLOCK, &stops, nullptr);
}

StopSignals::~StopSignals() {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
}

int StopSignals::Wait() {
  const sigset_t stops = StopSignalSet();
  pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
  unsigned char byte = 0;
  while (true) {
    // poll() first: ThreadSanitizer's runtime runs a handler that comes
    // during poll() at once, but one that comes during read() only at the
    // thread's next intercepted call, which would never come.
    pollfd readable = {read_fd_, POLLIN, 0};
    if (poll(&readable, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return SIGTERM;
    }
    const ssize_t n = read(read_fd_, &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe broke: behave as on a stop
  }
}

void StopSignals::Notify(int code) { OnStopSignal(code); }

absl::StatusOr<ServerSecurity> MakeServerSecurity(const ServerOptions& options) {
  ServerSecurity security;
  ASSIGN_OR_RETURN(security.credentials, MakeServerCredentials(options.tls));
  if (options.auth_token_file.empty()) return security;
  ASSIGN_OR_RETURN(security.tokens, TokenFile::Open("--auth_token_file", options.auth_token_file));
  if (options.tls.enabled()) {
    // Checked by the transport, before any handler (reflection included).
    security.credentials->SetAuthMetadataProcessor(
        std::make_shared<BearerAuthProcessor>(security.tokens));
  }
  security.gate = AuthGate(security.tokens, /*checked_by_transport=*/options.tls.enabled());
  return security;
}

absl::StatusOr<std::unique_ptr<DaemonServer>> DaemonServer::Start(const ServerOptions& options,
                                                                  const ServerSecurity& security,
                                                                  Spec spec) {
  std::unique_ptr<DaemonServer> daemon(new DaemonServer());
  daemon->spec_ = std::move(spec);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  RETURN_IF_ERROR(daemon->StartHealthPort(options));
  RETURN_IF_ERROR(daemon->StartMain(options, security));
  if (options.metrics_port != 0) {
    ASSIGN_OR_RETURN(daemon->metrics_,
                     MetricsServer::Start(options.host, options.metrics_port,
                                          daemon->spec_.registry, daemon->spec_.before_scrape));
  }
  daemon->SetServing(daemon->spec_.serving);
  std::cout << daemon->spec_.name << " listening on " << options.host << ":" << daemon->port_
            << std::endl;
  return daemon;
}

absl::Status DaemonServer::StartHealthPort(const ServerOptions& options) {
  if (options.health_port == 0) return absl::OkStatus();
  // A server needs a service to start; the generic one answers UNIMPLEMENTED
  // to every method but the health service's.
  health_only_ = std::make_unique<grpc::CallbackGenericService>();
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(health_only_.get());
  builder.SetOption(std::make_unique<WithoutReflection>());  // health alone
  builder.AddListeningPort(absl::StrCat(options.host, ":", options.health_port),
                           grpc::InsecureServerCredentials(), &health_port_);
  health_server_ = builder.BuildAndStart();
  if (health_server_ == nullptr || health_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--health_port: cannot listen on ", options.host, ":", options.health_port));
  }
  return absl::OkStatus();
}

absl::Status DaemonServer::StartMain(const ServerOptions& options, const ServerSecurity& security) {
  const std::string address = absl::StrCat(options.host, ":", options.port);
  grpc::ServerBuilder builder;
  // Reflection would answer without a token when tokens are required but
  // the transport cannot check them (no TLS): off then.
  if (security.tokens != nullptr && !options.tls.enabled()) {
    builder.SetOption(std::make_unique<WithoutReflection>());
  }
  builder.AddListeningPort(address, security.credentials, &port_);
  builder.RegisterService(spec_.service);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  if (spec_.whole_message_windows) {
    // Large messages (a batch of rows is tens of MB): let each stream's
    // HTTP/2 receive window open to a whole message at once, rather than
    // growing from 64 KiB by BDP probing, which stalls loopback transfers.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, options.max_message_bytes);
  }
  // Clients (runnerd) ping idle connections every 10 s to notice a host that
  // went away without closing them; allow it.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counters;
  counters.push_back(MakeCallCounter(*spec_.registry));
  builder.experimental().SetInterceptorCreators(std::move(counters));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return absl::OkStatus();
}

DaemonServer::~DaemonServer() {
  if (server_) Shutdown(absl::Now());
}

void DaemonServer::SetServing(bool serving) {
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    server->GetHealthCheckService()->SetServingStatus(spec_.service_name, serving);
    server->GetHealthCheckService()->SetServingStatus(serving);
  }
}

void DaemonServer::Shutdown(absl::Time deadline) {
  if (server_ == nullptr) return;
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  server_.reset();
  if (health_server_) {
    health_server_->Shutdown(std::chrono::system_clock::now());
    health_server_->Wait();
    health_server_.reset();
  }
  metrics_.reset();
}

bool ParseDaemonFlags(int argc, char** argv, const std::string& name, const std::string& usage) {
  absl::SetProgramUsageMessage(usage);
  // --help lists the flags of the daemon's own file and the ones every
  // daemon shares (this file's), not only those of files named after it.
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [name](absl::string_view file) {
    return absl::StrContains(file, name + "_main.cc") ||
           absl::StrContains(file, "services/common/server_main.cc");
  };
  absl::SetFlagsUsageConfig(config);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << name << ": unexpected argument \"" << rest[1] << "\"; see --help\n";
    return false;
  }
  return true;
}

}  // namespace entroserve
