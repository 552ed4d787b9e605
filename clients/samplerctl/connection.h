// How samplerctl reaches samplerd and runnerd: plaintext by default; TLS
// with --tls_ca_file (the CA that signed the server's certificate), mutual
// TLS with --tls_cert_file and --tls_key_file as well, --tls_server_name
// when the certificate's name is not the --server host; and with
// --auth_token_file the file's first token on every call as
// "authorization: Bearer TOKEN" (over TLS or not: the daemons accept both).
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_CONNECTION_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace entroserve {

// Reads the connection flags and their files once; INVALID_ARGUMENT naming
// the flag when one cannot be used. Call before OpenChannel.
absl::Status InitConnectionFromFlags();

// A channel to `server` (HOST:PORT or any gRPC target) with the
// connection's credentials and token, no message size limit.
std::shared_ptr<grpc::Channel> OpenChannel(const std::string& server);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_CONNECTION_H_
