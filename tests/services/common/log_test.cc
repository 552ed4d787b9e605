// The daemons' log lines: their two formats, the redaction of bearer tokens
// and the cut of gRPC's byte dumps.
#include "services/common/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace entroserve {
namespace {

TEST(RedactSecretsTest, ReplacesTokensAfterBearerInAnyCase) {
  EXPECT_EQ(RedactSecrets("authorization: Bearer abc.def-1 next"),
            "authorization: Bearer [redacted] next");
  EXPECT_EQ(RedactSecrets("{x: BEARER t1, y: bearer t2 }"),
            "{x: BEARER [redacted], y: bearer [redacted] }");
  EXPECT_EQ(RedactSecrets("'Bearer tok'"), "'Bearer [redacted]'");
  EXPECT_EQ(RedactSecrets("no token here"), "no token here");
}

TEST(DropByteDumpsTest, CutsTheHexOfGrpcsWireTracesOnly) {
  EXPECT_EQ(
      DropByteDumps("./src/core/lib/iomgr/tcp_posix.cc", "READ DATA: 00 0d 61 75 74 68 '..auth'"),
      "READ DATA: [bytes not logged]");
  EXPECT_EQ(DropByteDumps("./src/core/lib/security/transport/secure_endpoint.cc",
                          "WRITE 0x7f04bc03fac0: 73 61 6d 70 'samp'"),
            "WRITE 0x7f04bc03fac0: [bytes not logged]");
  EXPECT_EQ(DropByteDumps("./src/core/lib/iomgr/tcp_posix.cc", "TCP:0x7f notify_on_read"),
            "TCP:0x7f notify_on_read");
  EXPECT_EQ(DropByteDumps("./src/core/ext/transport/chttp2/transport/frame_settings.cc",
                          "got setting: 00 01 "),
            "got setting: 00 01 ");
}

TEST(FormatLogLineTest, TextIsProgramMessageAndFields) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, "runnerd", LogLevel::kWarning, "T", "stream broke",
                          {{"peer", "ipv4:1.2.3.4:5"}, {"request_id", "r-1"}}),
            "runnerd: stream broke (peer=ipv4:1.2.3.4:5, request_id=r-1)");
}

TEST(FormatLogLineTest, JsonIsOneObjectWithRedactedValues) {
  const std::string line =
      FormatLogLine(LogFormat::kJson, "samplerd", LogLevel::kError, "2026-12-03T07:00:00.000Z",
                    "sent Bearer abc", {{"header", "bearer xyz"}, {"bad", "\xff"}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(line),
            nlohmann::json::parse(R"({"time":"2026-12-03T07:00:00.000Z","level":"error",
                "program":"samplerd","message":"sent Bearer [redacted]",
                "header":"bearer [redacted]","bad":"\ufffd"})"));
}

}  // namespace
}  // namespace entroserve
