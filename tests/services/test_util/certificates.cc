#include "tests/services/test_util/certificates.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

bool Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(quiet.c_str()) == 0) return true;
  ADD_FAILURE() << "failed: " << command;
  return false;
}

// A CA (key + self-signed certificate) named `name` in `dir`.
bool MakeCa(const std::string& dir, const std::string& name) {
  return Run(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=", name,
                          " -keyout ", dir, "/", name, ".key -out ", dir, "/", name, ".pem"));
}

// A key and a certificate for `cn` signed by `ca`, with `extensions` (an
// openssl extensions section's lines).
bool MakeSigned(const std::string& dir, const std::string& ca, const std::string& name,
                const std::string& cn, const std::string& extensions) {
  const std::string ext = absl::StrCat(dir, "/", name, ".ext");
  std::ofstream(ext) << extensions;
  return Run(absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=", cn, " -keyout ", dir,
                          "/", name, ".key -out ", dir, "/", name, ".csr")) &&
         Run(absl::StrCat("openssl x509 -req -days 2 -in ", dir, "/", name, ".csr -CA ", dir, "/",
                          ca, ".pem -CAkey ", dir, "/", ca, ".key -CAcreateserial -out ", dir, "/",
                          name, ".pem -extfile ", ext));
}

}  // namespace

TestCertificates MakeTestCertificates() {
  char dir[] = "/tmp/entroserve_certs_XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return {};
  }
  const std::string d = dir;
  const std::string server_ext =
      "subjectAltName=DNS:localhost,DNS:samplerd,IP:127.0.0.1,IP:::1\n"
      "extendedKeyUsage=serverAuth\n";
  const std::string client_ext = "extendedKeyUsage=clientAuth\n";
  if (!MakeCa(d, "ca") || !MakeCa(d, "other_ca") ||
      !MakeSigned(d, "ca", "server", "localhost", server_ext) ||
      !MakeSigned(d, "ca", "client", "runnerd", client_ext) ||
      !MakeSigned(d, "other_ca", "other_client", "intruder", client_ext)) {
    return {};
  }
  TestCertificates certs;
  certs.dir = d;
  certs.ca = d + "/ca.pem";
  certs.server_cert = d + "/server.pem";
  certs.server_key = d + "/server.key";
  certs.client_cert = d + "/client.pem";
  certs.client_key = d + "/client.key";
  certs.other_ca = d + "/other_ca.pem";
  certs.other_client_cert = d + "/other_client.pem";
  certs.other_client_key = d + "/other_client.key";
  return certs;
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteTestFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".new";
  std::ofstream(temporary) << text;
  if (std::rename(temporary.c_str(), path.c_str()) != 0) ADD_FAILURE() << "cannot write " << path;
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& ca,
                                          const std::string& cert, const std::string& key,
                                          const std::string& token) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadTestFile(ca);
  if (!cert.empty()) {
    options.pem_cert_chain = ReadTestFile(cert);
    options.pem_private_key = ReadTestFile(key);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(options);
  if (!token.empty()) {
    // gRPC's access-token credentials send "authorization: Bearer TOKEN".
    credentials =
        grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(token));
  }
  return grpc::CreateCustomChannel(address, credentials, args);
}

}  // namespace entroserve
