// TLS for both daemons and their clients: gRPC credentials from PEM files.
//
// Server: a certificate and key (--tls_cert_file, --tls_key_file) turn TLS
// on; with a client CA (--tls_client_ca_file) every client must present a
// certificate signed by it (mutual TLS). Client (runnerd's connection to
// samplerd, samplerctl): a CA to verify the server, optionally a certificate
// and key of its own, and optionally the name the server's certificate must
// carry when it is not the target's host (a gRPC target that lists several
// addresses has no single host name).
#ifndef ENTROSERVE_SERVICES_COMMON_TLS_H_
#define ENTROSERVE_SERVICES_COMMON_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace entroserve {

struct ServerTlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: no client certificates asked for

  bool enabled() const { return !cert_file.empty(); }
};

// INVALID_ARGUMENT naming the --tls_* flags when only one of cert and key is
// given, or a client CA without them.
absl::Status CheckServerTlsFiles(const ServerTlsFiles& files);

// TLS credentials from the files (read now; an unreadable one is
// INVALID_ARGUMENT naming its flag), or insecure ones when TLS is off.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files);

struct ClientTlsFiles {
  std::string ca_file;    // empty: TLS off (unless cert_file is set)
  std::string cert_file;  // with key_file: this client's certificate (mutual TLS)
  std::string key_file;
  std::string server_name;  // the name to verify the server's certificate against

  bool enabled() const { return !ca_file.empty() || !cert_file.empty(); }
};

// Flag names in messages start with `flag_prefix` ("--sampler_tls_",
// "--tls_"): cert without key or key without cert is INVALID_ARGUMENT.
absl::Status CheckClientTlsFiles(const ClientTlsFiles& files, const std::string& flag_prefix);

// Channel credentials from the files (TLS, with the system's roots when no
// CA is given but a certificate is), or insecure ones when TLS is off.
// `args` gets the server name override when one is set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsFiles& files, const std::string& flag_prefix, grpc::ChannelArguments* args);

// The file's bytes; INVALID_ARGUMENT "FLAG=PATH: cannot read ..." otherwise.
absl::StatusOr<std::string> ReadFileForFlag(const std::string& flag, const std::string& path);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_TLS_H_
