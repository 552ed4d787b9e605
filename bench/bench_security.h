// TLS and bearer tokens for the benches' --tls_and_tokens: a CA, a server
// certificate (localhost, 127.0.0.1), a client certificate and a token,
// made with the openssl command line in a temporary folder; the flags that
// turn them on in samplerd and runnerd (mutual TLS and tokens on every hop),
// and a client channel that uses them. The folder goes with the last copy.
#ifndef ENTROSERVE_BENCH_BENCH_SECURITY_H_
#define ENTROSERVE_BENCH_BENCH_SECURITY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace entroserve::bench {

class BenchSecurity {
 public:
  // The files, made now; an error when openssl fails.
  static absl::StatusOr<BenchSecurity> Make();

  // A server's --tls_cert_file, --tls_key_file, --tls_client_ca_file and
  // --auth_token_file.
  std::vector<std::string> ServerFlags() const;
  // runnerd's --sampler_tls_* and --sampler_auth_token_file.
  std::vector<std::string> SamplerClientFlags() const;
  // A channel to `address` with the CA, the client certificate and the
  // token.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                         const grpc::ChannelArguments& args) const;

 private:
  std::string dir_;
  std::string token_;
  // Removes dir_ when the last copy goes.
  std::shared_ptr<void> cleanup_;
};

}  // namespace entroserve::bench

#endif  // ENTROSERVE_BENCH_BENCH_SECURITY_H_
