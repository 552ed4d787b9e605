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

// `text` with every bearer token replaced: "Bearer abc" -> "Bearer [redacted]".
std::string RedactSecrets(absl::string_view text);

// A gRPC log line of `source_file` without the bytes it dumps: gRPC's tcp
// and secure_endpoint traces print what crosses the wire as hex, a slice
// at a time (a token can be a slice of its own, where no "Bearer " precedes
// it), so those dumps are cut: "READ DATA: 00 0d ..." -> "READ DATA: [bytes
// not logged]". Other lines are returned whole.
std::string DropByteDumps(absl::string_view source_file, absl::string_view message);

// One log line as Log writes it (no newline), at `time_text`: exposed for
// tests.
std::string FormatLogLine(LogFormat format, absl::string_view program, LogLevel level,
                          absl::string_view time_text, absl::string_view message,
                          const LogFields& fields);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_LOG_H_
