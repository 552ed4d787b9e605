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
  Log(level, absl::StrCat("grpc: ", args->message),
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

// The byte of the hex pair at text[at] ("4f "), or -1.
int HexPairAt(absl::string_view text, size_t at) {
  if (at + 2 > text.size()) return -1;
  int value = 0;
  for (size_t i = at; i < at + 2; ++i) {
    const char c = absl::ascii_tolower(static_cast<unsigned char>(text[i]));
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return -1;
    value = value * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return value;
}

// Bearer tokens in gRPC's byte dumps (its tcp and secure_endpoint traces
// print what goes over the wire as hex pairs: "42 65 61 72 65 72 20 74 ..."
// is "Bearer t..."): the token's pairs become "[redacted] ".
std::string RedactHexBearer(absl::string_view text) {
  static constexpr char kEarer[] = "65 61 72 65 72 20 ";  // "earer "
  const std::string lower = absl::AsciiStrToLower(text);
  std::string out;
  size_t i = 0;
  while (true) {
    size_t at = lower.find(kEarer, i);
    while (at != std::string::npos && !(at >= 3 && (lower.compare(at - 3, 3, "42 ") == 0 ||
                                                    lower.compare(at - 3, 3, "62 ") == 0))) {
      at = lower.find(kEarer, at + 1);
    }
    if (at == std::string::npos) break;
    size_t token = at + sizeof(kEarer) - 1;
    absl::StrAppend(&out, text.substr(i, token - i), "[redacted] ");
    while (IsTokenByte(HexPairAt(text, token))) token += 3;
    i = std::min(token, text.size());
  }
  absl::StrAppend(&out, text.substr(i));
  return out;
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

std::string RedactSecrets(absl::string_view text) {
  return RedactTextBearer(RedactHexBearer(text));
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
