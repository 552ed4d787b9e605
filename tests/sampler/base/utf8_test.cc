// Unit tests of sampler/base/utf8.h: Unicode's table 3-7 at its edges, and
// repair by maximal subparts (Unicode's recommended practice, section 3.9).
#include "sampler/base/utf8.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

std::vector<uint32_t> Decode(std::string_view text) {
  std::vector<uint32_t> codepoints;
  for (size_t pos = 0; pos < text.size();) codepoints.push_back(DecodeUtf8(text, &pos));
  return codepoints;
}

TEST(Utf8Test, SequenceLengthFollowsTable3_7) {
  auto length = [](std::string_view bytes) {
    return Utf8SequenceLength(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  };
  EXPECT_EQ(length("a"), 1);
  EXPECT_EQ(length("\xC3\xA9"), 2);
  EXPECT_EQ(length("\xE4\xBD\xA0"), 3);
  EXPECT_EQ(length("\xF0\x9F\x98\x80"), 4);
  EXPECT_EQ(length("\xF4\x8F\xBF\xBF"), 4);   // U+10FFFF
  EXPECT_EQ(length("\xC0\x80"), -1);          // overlong lead
  EXPECT_EQ(length("\xE0\x80\x80"), -1);      // overlong second byte
  EXPECT_EQ(length("\xED\xA0\x80"), -1);      // surrogate
  EXPECT_EQ(length("\xF4\x90\x80\x80"), -1);  // above U+10FFFF
  EXPECT_EQ(length("\xF5"), -1);
  EXPECT_EQ(length("\x80"), -1);
  EXPECT_EQ(length("\xF0\x9F\x98"), 0);  // a prefix, cut short
  EXPECT_EQ(length("\xF0\x9F\x98("), -3);
  EXPECT_EQ(length("\xE4("), -1);
}

TEST(Utf8Test, DecodeGivesCodePointsAndOneReplacementPerMaximalSubpart) {
  EXPECT_THAT(Decode("a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80"),
              ::testing::ElementsAre('a', 0xE9, 0x4F60, 0x1F600));
  EXPECT_THAT(Decode("\xF0\x9F\x98("), ::testing::ElementsAre(0xFFFD, '('));
  EXPECT_THAT(Decode("\xED\xA0\x80"), ::testing::ElementsAre(0xFFFD, 0xFFFD, 0xFFFD));
  EXPECT_THAT(Decode("\xC0\xAF"), ::testing::ElementsAre(0xFFFD, 0xFFFD));
  EXPECT_THAT(Decode("x\xE4\xBD"), ::testing::ElementsAre('x', 0xFFFD));
}

TEST(Utf8Test, AppendUtf8EncodesEveryLength) {
  for (uint32_t codepoint : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFDu, 0x10000u, 0x10FFFFu}) {
    std::string text;
    AppendUtf8(codepoint, &text);
    EXPECT_TRUE(IsValidUtf8(text)) << codepoint;
    size_t pos = 0;
    EXPECT_EQ(DecodeUtf8(text, &pos), codepoint);
    EXPECT_EQ(pos, text.size());
  }
}

TEST(Utf8Test, ToValidUtf8ReplacesMaximalSubpartsAndKeepsValidText) {
  EXPECT_EQ(ToValidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(ToValidUtf8("b\xC3("), "b\uFFFD(");
  // Unicode's example of section 3.9: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  EXPECT_EQ(ToValidUtf8("a\xF1\x80\x80\xE1\x80\xC2"
                        "b\x80"
                        "c\x80\xBF"
                        "d"),
            "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd");
  EXPECT_EQ(ToValidUtf8("end\xF0\x9F\x98"), "end\uFFFD");
}

TEST(Utf8Test, AppendValidUtf8LeavesAnIncompleteTailUnlessFinal) {
  std::string out;
  EXPECT_EQ(AppendValidUtf8("ok\xF0\x9F", /*final=*/false, &out), 2u);
  EXPECT_EQ(out, "ok");
  out.clear();
  EXPECT_EQ(AppendValidUtf8("ok\xF0\x9F", /*final=*/true, &out), 4u);
  EXPECT_EQ(out, "ok\uFFFD");
}

TEST(Utf8Test, CharLengthCountsBadBytesAsOne) {
  EXPECT_EQ(Utf8CharLength("\xE4\xBD\xA0x", 0), 3u);
  EXPECT_EQ(Utf8CharLength("\xE4\xBDx", 0), 1u);
  EXPECT_EQ(Utf8CharLength("x\x80", 1), 1u);
}

TEST(Utf8Test, ValidateNamesTheOffsetOfTheFirstBadSequence) {
  EXPECT_TRUE(ValidateUtf8("").ok());
  EXPECT_TRUE(ValidateUtf8("caf\xC3\xA9 \xF4\x8F\xBF\xBF").ok());
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));
  EXPECT_FALSE(IsValidUtf8("caf\xC3"));
  absl::Status status = ValidateUtf8("ab\xFF");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("invalid sequence at byte 2 (0xFF)"));
  EXPECT_THAT(ValidateUtf8("abc\xE4\xBD").message(), HasSubstr("truncated sequence at byte 3"));
}

}  // namespace
}  // namespace entroserve
