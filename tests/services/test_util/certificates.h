// Certificates for the TLS tests, made with the openssl command line in a
// folder of the test's: a CA, a server certificate it signs (for localhost,
// 127.0.0.1 and ::1), a client certificate it signs, and a second CA with a
// client certificate of its own (the wrong ones).
#ifndef ENTROSERVE_TESTS_SERVICES_TEST_UTIL_CERTIFICATES_H_
#define ENTROSERVE_TESTS_SERVICES_TEST_UTIL_CERTIFICATES_H_

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"

namespace entroserve {

struct TestCertificates {
  std::string dir;
  std::string ca, server_cert, server_key, client_cert, client_key;
  std::string other_ca, other_client_cert, other_client_key;
};

// Makes them under a new temporary folder; ADD_FAILURE and an empty `dir`
// when openssl fails.
TestCertificates MakeTestCertificates();

// The text of a file (for grpc::SslCredentialsOptions).
std::string ReadTestFile(const std::string& path);

// Replaces the file `path` with `text` at once (written beside it, then
// renamed), as a token rotation would.
void WriteTestFile(const std::string& path, const std::string& text);

// A TLS channel to `address` verifying the server with `ca`, presenting
// `cert`/`key` when given, sending "authorization: Bearer `token`" on every
// call when one is given; not waited for.
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& ca,
                                          const std::string& cert = "", const std::string& key = "",
                                          const std::string& token = "");

}  // namespace entroserve

#endif  // ENTROSERVE_TESTS_SERVICES_TEST_UTIL_CERTIFICATES_H_
