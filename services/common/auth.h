// Bearer tokens (--auth_token_file on both daemons, --sampler_auth_token_file
// on runnerd's side of samplerd).
//
// Server side: every RPC but grpc.health.v1 needs the metadata
// "authorization: Bearer TOKEN" with one of the file's tokens; a call
// without it, or with another token, ends UNAUTHENTICATED before it reaches
// the service ("this server requires a token ...", "invalid token:
// ..."; worded so that the log's redaction of "Bearer X" leaves them
// whole): the token itself is
// never echoed or logged. Two paths, one check (TokenFile::Check):
//   with TLS    a grpc::AuthMetadataProcessor in the transport, before any
//               handler (reflection included);
//   without TLS gRPC cannot attach such a processor to insecure credentials,
//               so each service handler asks its AuthGate first, and
//               reflection is not registered (it could not be protected).
//
// The file holds one token per line (blank lines and lines starting with #
// are ignored) and is re-read when it changes (looked at, by modification
// time and size, at most once a second), so tokens rotate without a
// restart.
//
// Thread-safe.
#ifndef ENTROSERVE_SERVICES_COMMON_AUTH_H_
#define ENTROSERVE_SERVICES_COMMON_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace entroserve {

class TokenFile {
 public:
  // Reads `path` now; INVALID_ARGUMENT naming `flag` when it cannot be read
  // or holds no token.
  static absl::StatusOr<std::shared_ptr<TokenFile>> Open(const std::string& flag,
                                                         const std::string& path);

  // OK when `authorization` is "Bearer T" for one of the tokens, else
  // UNAUTHENTICATED. Compares in constant time per token.
  absl::Status Check(absl::string_view authorization);

  // The first token (a client sends it), re-read like the rest.
  std::string First();

 private:
  TokenFile(std::string flag, std::string path) : flag_(std::move(flag)), path_(std::move(path)) {}
  // Re-reads the file when its mtime or size changed, at most once a second.
  // A file that became unreadable or empty keeps the tokens it had (with a
  // log line), so a half-written rotation does not lock everyone out.
  void MaybeReload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string flag_;
  const std::string path_;
  absl::Mutex mu_;
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  int64_t mtime_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t size_ ABSL_GUARDED_BY(mu_) = -1;
};

// The transport-level check, for servers with TLS.
class BearerAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit BearerAuthProcessor(std::shared_ptr<TokenFile> tokens) : tokens_(std::move(tokens)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

 private:
  std::shared_ptr<TokenFile> tokens_;
};

// What a service handler asks before doing anything: OK when no tokens are
// required or the transport already checked them (TLS), else the token
// check on the call's metadata.
class AuthGate {
 public:
  AuthGate() = default;  // no tokens required
  AuthGate(std::shared_ptr<TokenFile> tokens, bool checked_by_transport)
      : tokens_(std::move(tokens)), checked_by_transport_(checked_by_transport) {}

  absl::Status Check(const grpc::ServerContextBase& context) const;

 private:
  std::shared_ptr<TokenFile> tokens_;
  bool checked_by_transport_ = false;
};

// Whether `path` (":path" of a call) is one of grpc.health.v1's, which needs
// no token (Kubernetes' probes send none).
bool IsHealthMethod(absl::string_view path);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_AUTH_H_
