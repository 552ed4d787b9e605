#include "services/common/tls.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "sampler/base/status_macros.h"

namespace entroserve {

absl::StatusOr<std::string> ReadFileForFlag(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, ": cannot read it (", std::strerror(errno), ")"));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (bytes.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, ": the file is empty"));
  }
  return bytes.str();
}

absl::Status CheckServerTlsFiles(const ServerTlsFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert_file and --tls_key_file go together: give both, or neither");
  }
  if (!files.client_ca_file.empty() && !files.enabled()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca_file needs --tls_cert_file and --tls_key_file (client certificates "
        "are asked for over TLS only)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files) {
  RETURN_IF_ERROR(CheckServerTlsFiles(files));
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      files.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadFileForFlag("--tls_key_file", files.key_file));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFileForFlag("--tls_cert_file", files.cert_file));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!files.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadFileForFlag("--tls_client_ca_file", files.client_ca_file));
  }
  return grpc::SslServerCredentials(options);
}

absl::Status CheckClientTlsFiles(const ClientTlsFiles& files, const std::string& flag_prefix) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag_prefix, "cert_file and ", flag_prefix,
                                                   "key_file go together: give both, or neither"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsFiles& files, const std::string& flag_prefix, grpc::ChannelArguments* args) {
  RETURN_IF_ERROR(CheckClientTlsFiles(files, flag_prefix));
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  if (!files.ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadFileForFlag(absl::StrCat(flag_prefix, "ca_file"), files.ca_file));
  }
  if (!files.cert_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_cert_chain,
                     ReadFileForFlag(absl::StrCat(flag_prefix, "cert_file"), files.cert_file));
    ASSIGN_OR_RETURN(options.pem_private_key,
                     ReadFileForFlag(absl::StrCat(flag_prefix, "key_file"), files.key_file));
  }
  if (!files.server_name.empty() && args != nullptr) {
    args->SetSslTargetNameOverride(files.server_name);
  }
  return grpc::SslCredentials(options);
}

}  // namespace entroserve
