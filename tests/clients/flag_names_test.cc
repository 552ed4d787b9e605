// samplerctl's flag names: dashes read as underscores, and which flags were
// given.
#include "clients/samplerctl/flag_names.h"

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Convert(std::vector<const char*> argv) {
  return DashesToUnderscores(static_cast<int>(argv.size()), argv.data());
}

TEST(DashesToUnderscoresTest, DashedFlagNamesBecomeUnderscored) {
  EXPECT_THAT(Convert({"samplerctl", "generate", "--show-modes", "--trace-html=a-b.html",
                       "--max-new-tokens", "12"}),
              ElementsAre("samplerctl", "generate", "--show_modes", "--trace_html=a-b.html",
                          "--max_new_tokens", "12"));
}

TEST(DashesToUnderscoresTest, ValuesSingleDashArgsAndArgsAfterDoubleDashKeepTheirDashes) {
  EXPECT_THAT(
      Convert({"my-prog", "-x-y", "--prompt=a-b --c-d", "word-with-dash", "--", "--show-modes"}),
      ElementsAre("my-prog", "-x-y", "--prompt=a-b --c-d", "word-with-dash", "--", "--show-modes"));
}

TEST(DashesToUnderscoresTest, UnderscoredNamesAndTheBareDoubleDashAreUnchanged) {
  EXPECT_THAT(Convert({"samplerctl", "--show_modes", "--"}),
              ElementsAre("samplerctl", "--show_modes", "--"));
}

TEST(FlagsGivenTest, NamesWithAndWithoutValuesAndNegatedBools) {
  EXPECT_EQ(FlagsGiven({"samplerctl", "generate", "--prompt=x=y", "--seed", "3", "--nosummary",
                        "-v", "--", "--json"}),
            (std::set<std::string>{"prompt", "seed", "nosummary", "summary"}));
}

TEST(CommandHelpTest, ACommandPrefixNamesTheCommandsAFlagBelongsTo) {
  EXPECT_TRUE(FlagBelongsTo({"prompt", "generate, compare: the prompt", ""}, "compare"));
  EXPECT_FALSE(FlagBelongsTo({"prompt", "generate, compare: the prompt", ""}, "sample"));
  EXPECT_TRUE(FlagBelongsTo({"heads", "sample/replay: attention heads", ""}, "replay"));
  EXPECT_FALSE(FlagBelongsTo({"heads", "sample/replay: attention heads", ""}, "generate"));
  // No prefix (or a colon inside a sentence): every command's.
  EXPECT_TRUE(FlagBelongsTo({"seed", "seed (-1: let the server pick)", ""}, "info"));
  EXPECT_TRUE(FlagBelongsTo({"server", "Server address: HOST:PORT", ""}, "replay"));
}

TEST(CommandHelpTest, ListsTheCommandsFlagsSortedWithoutThePrefix) {
  const std::string help = CommandHelp("sample", {{"steps", "replay: number of steps", "40"},
                                                  {"seed", "the seed", "-1"},
                                                  {"logits", "sample: file of logits", ""}});
  EXPECT_EQ(help,
            "samplerctl sample: flags\n"
            "  --logits (file of logits); default: \"\"\n"
            "  --seed (the seed); default: \"-1\"\n");
}

}  // namespace
}  // namespace entroserve
