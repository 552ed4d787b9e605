#include "services/common/auth.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "sampler/base/status_macros.h"
#include "services/common/log.h"
#include "services/common/tls.h"

namespace entroserve {
namespace {

constexpr absl::string_view kBearerPrefix = "Bearer ";
constexpr absl::Duration kReloadInterval = absl::Seconds(1);

// Equal bytes, in a time that depends on the length alone (not on where the
// first difference is).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

absl::Status MissingToken() {
  return absl::UnauthenticatedError(
      "this server requires a token: send the metadata \"authorization: Bearer TOKEN\"");
}

}  // namespace

bool IsHealthMethod(absl::string_view path) {
  return absl::StartsWith(path, "/grpc.health.v1.Health/");
}

absl::StatusOr<std::shared_ptr<TokenFile>> TokenFile::Open(const std::string& flag,
                                                           const std::string& path) {
  std::shared_ptr<TokenFile> file(new TokenFile(flag, path));
  absl::MutexLock lock(&file->mu_);
  RETURN_IF_ERROR(file->Load());
  return file;
}

absl::Status TokenFile::Load() {
  struct stat info;
  if (stat(path_.c_str(), &info) == 0) {
    mtime_ns_ = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
    size_ = static_cast<int64_t>(info.st_size);
  }
  ASSIGN_OR_RETURN(const std::string text, ReadFileForFlag(flag_, path_));
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag_, "=", path_, ": no token in the file (one per line)"));
  }
  tokens_ = std::move(tokens);
  next_check_ = absl::Now() + kReloadInterval;
  return absl::OkStatus();
}

void TokenFile::MaybeReload() {
  const absl::Time now = absl::Now();
  if (now < next_check_) return;
  next_check_ = now + kReloadInterval;
  struct stat info;
  if (stat(path_.c_str(), &info) != 0) return;
  const int64_t mtime =
      static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  if (mtime == mtime_ns_ && static_cast<int64_t>(info.st_size) == size_) return;
  if (absl::Status s = Load(); !s.ok()) {
    Log(LogLevel::kWarning, absl::StrCat("keeping the previous tokens: ", s.message()));
    return;
  }
  Log(LogLevel::kInfo,
      absl::StrCat("re-read ", flag_, "=", path_, ": ", tokens_.size(), " token(s)"));
}

absl::Status TokenFile::Check(absl::string_view authorization) {
  if (authorization.empty()) return MissingToken();
  if (!absl::StartsWithIgnoreCase(authorization, kBearerPrefix)) {
    return absl::UnauthenticatedError("the authorization metadata is not \"Bearer TOKEN\"");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kBearerPrefix.size()));
  absl::MutexLock lock(&mu_);
  MaybeReload();
  bool match = false;
  for (const std::string& known : tokens_) match |= ConstantTimeEquals(token, known);
  if (!match) return absl::UnauthenticatedError("invalid token: not one of this server's tokens");
  return absl::OkStatus();
}

std::string TokenFile::First() {
  absl::MutexLock lock(&mu_);
  MaybeReload();
  return tokens_.front();
}

grpc::Status BearerAuthProcessor::Process(const InputMetadata& metadata, grpc::AuthContext* context,
                                          OutputMetadata* consumed, OutputMetadata* response) {
  const auto path = metadata.find(":path");
  if (path != metadata.end() &&
      IsHealthMethod(absl::string_view(path->second.data(), path->second.size()))) {
    return grpc::Status::OK;
  }
  const auto header = metadata.find("authorization");
  const absl::string_view value =
      header == metadata.end() ? absl::string_view()
                               : absl::string_view(header->second.data(), header->second.size());
  const absl::Status status = tokens_->Check(value);
  if (!status.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(status.message()));
  }
  // Removed before the handler: the token goes no further than this check.
  consumed->insert(std::make_pair(std::string("authorization"), std::string(value)));
  return grpc::Status::OK;
}

absl::Status AuthGate::Check(const grpc::ServerContextBase& context) const {
  if (tokens_ == nullptr || checked_by_transport_) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  if (header == metadata.end()) return MissingToken();
  return tokens_->Check(absl::string_view(header->second.data(), header->second.size()));
}

}  // namespace entroserve
