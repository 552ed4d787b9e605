#include "services/common/log.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/support/log.h"
#include "nlohmann/json.hpp"

namespace entroserve {
namespace {

struct LogConfig {
  absl::Mutex mu;
  std::string program = "entroserve";
  LogFormat format = LogFormat::kText;
};

LogConfig& Config() {
  // Never destroyed: threads may log while the process exits.
  static LogConfig* const config = new LogConfig();
  return *config;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// gRPC's log lines, through Log (so redacted and in the chosen format).
void GrpcLogFunction(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                                   : LogLevel::kWarning;
  Log(level, absl::StrCat("grpc: ", DropByteDumps(args->file, args->message)),
      {{"source", absl::StrCat(args->file, ":", args->line)}});
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("must be text or json, got \"", name, "\""));
}

void InitLogging(std::string program, LogFormat format) {
  LogConfig& config = Config();
  {
    absl::MutexLock lock(&config.mu);
    config.program = std::move(program);
    config.format = format;
  }
  gpr_set_log_function(GrpcLogFunction);
}

namespace {

bool IsTokenByte(int byte) {
  return byte > ' ' && byte < 0x7f && byte != '"' && byte != '\'' && byte != ',';
}

// "Bearer abc" -> "Bearer [redacted]", any case of "bearer".
std::string RedactTextBearer(absl::string_view text) {
  static constexpr char kBearer[] = "bearer ";
  const std::string lower = absl::AsciiStrToLower(text);
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = lower.find(kBearer, i);
    if (at == std::string::npos) break;
    const size_t token = at + sizeof(kBearer) - 1;
    absl::StrAppend(&out, text.substr(i, token - i), "[redacted]");
    i = token;
    while (i < text.size() && IsTokenByte(static_cast<unsigned char>(text[i]))) ++i;
  }
  absl::StrAppend(&out, text.substr(i));
  return out;
}

}  // namespace

std::string RedactSecrets(absl::string_view text) { return RedactTextBearer(text); }

std::string DropByteDumps(absl::string_view source_file, absl::string_view message) {
  if (!absl::EndsWith(source_file, "tcp_posix.cc") &&
      !absl::EndsWith(source_file, "secure_endpoint.cc")) {
    return std::string(message);
  }
  // "READ DATA: 00 0d 61 ..." and "WRITE 0x7f..: 00 0d 61 ...": cut at the
  // first hex pair after a colon.
  for (size_t at = message.find(": "); at != absl::string_view::npos;
       at = message.find(": ", at + 1)) {
    const absl::string_view rest = message.substr(at + 2);
    if (rest.size() >= 3 && absl::ascii_isxdigit(static_cast<unsigned char>(rest[0])) &&
        absl::ascii_isxdigit(static_cast<unsigned char>(rest[1])) && rest[2] == ' ') {
      return absl::StrCat(message.substr(0, at), ": [bytes not logged]");
    }
  }
  return std::string(message);
}

std::string FormatLogLine(LogFormat format, absl::string_view program, LogLevel level,
                          absl::string_view time_text, absl::string_view message,
                          const LogFields& fields) {
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line = {{"time", time_text},
                                   {"level", LevelName(level)},
                                   {"program", program},
                                   {"message", RedactSecrets(message)}};
    for (const auto& [key, value] : fields) line[key] = RedactSecrets(value);
    // Invalid UTF-8 (a client's id) is replaced rather than thrown on.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = absl::StrCat(program, ": ", RedactSecrets(message));
  if (!fields.empty()) {
    line.append(" (");
    for (size_t i = 0; i < fields.size(); ++i) {
      absl::StrAppend(&line, i ? ", " : "", fields[i].first, "=", RedactSecrets(fields[i].second));
    }
    line.append(")");
  }
  return line;
}

void Log(LogLevel level, absl::string_view message, const LogFields& fields) {
  LogConfig& config = Config();
  const std::string time_text =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  absl::MutexLock lock(&config.mu);
  std::cerr << FormatLogLine(config.format, config.program, level, time_text, message, fields)
            << std::endl;
}

}  // namespace entroserve
