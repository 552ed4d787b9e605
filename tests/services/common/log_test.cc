// The daemons' log lines: their two formats and the redaction of bearer
// tokens, in text and in gRPC's byte dumps.
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

TEST(RedactSecretsTest, ReplacesTokensInHexByteDumps) {
  // "..authorization.Bearer tok!" as gRPC's tcp trace prints it, then
  // the next header's bytes (00 0d).
  EXPECT_EQ(RedactSecrets("READ DATA: 0d 42 65 61 72 65 72 20 74 6f 6b 21 00 0d 61"),
            "READ DATA: 0d 42 65 61 72 65 72 20 [redacted] 00 0d 61");
  // Lower case "bearer ", upper-case hex digits, at the end of the line.
  EXPECT_EQ(RedactSecrets("62 65 61 72 65 72 20 7A 7A"), "62 65 61 72 65 72 20 [redacted] ");
  // "earer " after another letter is no token.
  EXPECT_EQ(RedactSecrets("6e 65 61 72 65 72 20 74 6f"), "6e 65 61 72 65 72 20 74 6f");
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
