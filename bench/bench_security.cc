#include "bench/bench_security.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace entroserve::bench {
namespace {

constexpr char kToken[] = "bench-token-0d9e4c1a";

// Each line one openssl command, {D} the folder: the CA, then a key, a
// request and a signed certificate for the server and for the client.
constexpr const char* kCommands[] = {
    "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout {D}/ca.key "
    "-out {D}/ca.pem",
    "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout {D}/server.key -out {D}/server.csr",
    "x509 -req -days 2 -in {D}/server.csr -CA {D}/ca.pem -CAkey {D}/ca.key -CAcreateserial "
    "-extfile {D}/server.ext -out {D}/server.pem",
    "req -newkey rsa:2048 -nodes -subj /CN=bench-client -keyout {D}/client.key "
    "-out {D}/client.csr",
    "x509 -req -days 2 -in {D}/client.csr -CA {D}/ca.pem -CAkey {D}/ca.key -CAcreateserial "
    "-out {D}/client.pem",
};

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<BenchSecurity> BenchSecurity::Make() {
  char dir[] = "/tmp/entroserve_bench_pki_XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp failed");
  BenchSecurity security;
  security.dir_ = dir;
  security.token_ = kToken;
  security.cleanup_ = std::shared_ptr<void>(nullptr, [path = security.dir_](void*) {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  });
  std::ofstream(security.dir_ + "/server.ext")
      << "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
  std::ofstream(security.dir_ + "/tokens") << kToken << "\n";
  for (const char* command : kCommands) {
    const std::string line = absl::StrCat(
        "openssl ", absl::StrReplaceAll(command, {{"{D}", security.dir_}}), " >/dev/null 2>&1");
    if (std::system(line.c_str()) != 0) return absl::InternalError("failed: " + line);
  }
  return security;
}

std::vector<std::string> BenchSecurity::ServerFlags() const {
  return {absl::StrCat("--tls_cert_file=", dir_, "/server.pem"),
          absl::StrCat("--tls_key_file=", dir_, "/server.key"),
          absl::StrCat("--tls_client_ca_file=", dir_, "/ca.pem"),
          absl::StrCat("--auth_token_file=", dir_, "/tokens")};
}

std::vector<std::string> BenchSecurity::SamplerClientFlags() const {
  return {absl::StrCat("--sampler_tls_ca_file=", dir_, "/ca.pem"),
          absl::StrCat("--sampler_tls_cert_file=", dir_, "/client.pem"),
          absl::StrCat("--sampler_tls_key_file=", dir_, "/client.key"),
          absl::StrCat("--sampler_auth_token_file=", dir_, "/tokens")};
}

std::shared_ptr<grpc::Channel> BenchSecurity::Channel(const std::string& address,
                                                      const grpc::ChannelArguments& args) const {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = Read(dir_ + "/ca.pem");
  options.pem_cert_chain = Read(dir_ + "/client.pem");
  options.pem_private_key = Read(dir_ + "/client.key");
  // Access-token credentials send "authorization: Bearer TOKEN".
  return grpc::CreateCustomChannel(
      address,
      grpc::CompositeChannelCredentials(grpc::SslCredentials(options),
                                        grpc::AccessTokenCredentials(token_)),
      args);
}

}  // namespace entroserve::bench
