#include "clients/samplerctl/connection.h"

#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/support/client_interceptor.h"
#include "sampler/base/status_macros.h"
#include "services/common/auth.h"
#include "services/common/tls.h"

ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM CA certificates that signed the server's certificate: connect with TLS.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate to present to a server that asks for one (mutual TLS); with "
          "--tls_key_file.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "",
          "The name the server's certificate must carry, when it is not the --server host.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of bearer tokens (the daemons' format): the first is sent on every call as "
          "\"authorization: Bearer TOKEN\".");

namespace entroserve {
namespace {

struct Connection {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  std::string server_name;
  std::string authorization;  // "Bearer TOKEN", or empty
};

Connection& TheConnection() {
  static Connection* const connection = new Connection();
  return *connection;
}

// Adds the authorization metadata to every call. An interceptor rather than
// call credentials: gRPC sends those over TLS only, and the daemons also
// take tokens in plaintext.
class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* authorization) : authorization_(authorization) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *authorization_});
    }
    methods->Proceed();
  }

 private:
  const std::string* authorization_;
};

class BearerInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(const std::string* authorization)
      : authorization_(authorization) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new BearerInterceptor(authorization_);
  }

 private:
  const std::string* authorization_;
};

}  // namespace

absl::Status InitConnectionFromFlags() {
  Connection& connection = TheConnection();
  const ClientTlsFiles tls = {absl::GetFlag(FLAGS_tls_ca_file), absl::GetFlag(FLAGS_tls_cert_file),
                              absl::GetFlag(FLAGS_tls_key_file),
                              absl::GetFlag(FLAGS_tls_server_name)};
  ASSIGN_OR_RETURN(connection.credentials, MakeChannelCredentials(tls, "--tls_", nullptr));
  connection.server_name = tls.server_name;
  const std::string token_file = absl::GetFlag(FLAGS_auth_token_file);
  if (!token_file.empty()) {
    ASSIGN_OR_RETURN(std::shared_ptr<TokenFile> tokens,
                     TokenFile::Open("--auth_token_file", token_file));
    connection.authorization = absl::StrCat("Bearer ", tokens->First());
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& server) {
  const Connection& connection = TheConnection();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (!connection.server_name.empty()) args.SetSslTargetNameOverride(connection.server_name);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  if (!connection.authorization.empty()) {
    factories.push_back(std::make_unique<BearerInterceptorFactory>(&connection.authorization));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(server, connection.credentials,
                                                                 args, std::move(factories));
}

}  // namespace entroserve
