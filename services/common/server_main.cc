#include "services/common/server_main.h"

#include <pthread.h>

#include <iostream>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"

namespace entroserve {

std::string ServerFlagsError(const std::string& host, int32_t port, int32_t max_message_mb,
                             int32_t shutdown_grace_s) {
  if (port < 0 || port > 65535) return absl::StrCat("--port must be in [0, 65535], got ", port);
  if (host.empty()) return "--host must not be empty";
  if (max_message_mb < 1 || max_message_mb > kMaxMessageMbLimit) {
    return absl::StrCat("--max_message_mb must be in [1, ", kMaxMessageMbLimit, "], got ",
                        max_message_mb);
  }
  if (shutdown_grace_s < 0) {
    return absl::StrCat("--shutdown_grace_s must be >= 0, got ", shutdown_grace_s);
  }
  return "";
}

sigset_t BlockStopSignals(std::initializer_list<int> extra) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  for (int signal_number : extra) sigaddset(&signals, signal_number);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

Listening Listen(const std::string& name, const std::string& host, int32_t port,
                 grpc::Service* service, const std::string& service_name, bool serving,
                 int max_message_bytes, bool whole_message_windows) {
  const std::string address = absl::StrCat(host, ":", port);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  if (whole_message_windows) {
    // Large messages (a batch of rows is tens of MB): let each stream's
    // HTTP/2 receive window open to a whole message at once, rather than
    // growing from 64 KiB by BDP probing, which stalls loopback transfers.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, max_message_bytes);
  }
  Listening listening;
  listening.server = builder.BuildAndStart();
  if (listening.server == nullptr || selected_port == 0) {
    std::cerr << name << ": cannot listen on " << address << "\n";
    listening.server = nullptr;
    return listening;
  }
  listening.health = listening.server->GetHealthCheckService();
  listening.health->SetServingStatus(service_name, serving);
  listening.health->SetServingStatus(serving);
  std::cout << name << " listening on " << host << ":" << selected_port << std::endl;
  return listening;
}

int DaemonMain(int argc, char** argv, const std::string& name, const std::string& usage,
               std::string (*flag_error)(), int (*run)()) {
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << name << ": unexpected argument \"" << rest[1] << "\"; see --help\n";
    return 2;
  }
  if (std::string error = flag_error(); !error.empty()) {
    std::cerr << name << ": " << error << "\n";
    return 2;
  }
  return run();
}

}  // namespace entroserve
