#include "services/common/log.h"

#include <iostream>

#include "absl/strings/ascii.h"
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

std::string RedactSecrets(absl::string_view text) {
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
    while (i < text.size() && !absl::ascii_isspace(static_cast<unsigned char>(text[i])) &&
           text[i] != '"' && text[i] != '\'' && text[i] != ',') {
      ++i;
    }
  }
  absl::StrAppend(&out, text.substr(i));
  return out;
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
