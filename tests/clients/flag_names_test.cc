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

}  // namespace
}  // namespace entroserve
