// The daemons' log: one line per event on stderr, as text
//   samplerd: stream to samplerd at 127.0.0.1:50051 broke; reconnecting (peer=...)
// or, with --log_format=json, one JSON object per line
//   {"time":"2026-12-02T17:23:46.123Z","level":"warning","program":"runnerd",
//    "message":"...","peer":"ipv4:127.0.0.1:40112","request_id":"runnerd-17"}
// gRPC's own log lines (gpr_log) go through the same function. Bearer
// tokens are never written: anything after "Bearer " is redacted, in our
// messages and in gRPC's (whose http trace prints request headers).
//
// The "NAME listening on HOST:PORT" and "runnerd serving ..." announcements
// are not log lines: they go to stdout, unchanged by the format, since
// scripts wait for them.
//
// Thread-safe: lines are written whole.
#ifndef ENTROSERVE_SERVICES_COMMON_LOG_H_
#define ENTROSERVE_SERVICES_COMMON_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace entroserve {

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarning, kError };

// "text" or "json" (--log_format).
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Sets the program name and format of every later line, and routes gRPC's
// log lines here. Call once, early in main().
void InitLogging(std::string program, LogFormat format);

// Named values of an event: request id, sequence id, peer, ...
using LogFields = std::vector<std::pair<std::string, std::string>>;

void Log(LogLevel level, absl::string_view message, const LogFields& fields = {});

// `text` with every bearer token replaced: "Bearer abc" -> "Bearer [redacted]",
// and in gRPC's hex byte dumps (GRPC_TRACE=tcp, secure_endpoint)
// "42 65 61 72 65 72 20 61 62 63" -> "42 65 61 72 65 72 20 [redacted] ". A
// token that a dump splits over two lines, or that a client compresses
// (HPACK Huffman coding), is not recognised: never set GRPC_TRACE where
// tokens matter.
std::string RedactSecrets(absl::string_view text);

// One log line as Log writes it (no newline), at `time_text`: exposed for
// tests.
std::string FormatLogLine(LogFormat format, absl::string_view program, LogLevel level,
                          absl::string_view time_text, absl::string_view message,
                          const LogFields& fields);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_LOG_H_
