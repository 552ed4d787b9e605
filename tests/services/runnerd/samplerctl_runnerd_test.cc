// samplerctl against a real runnerd (models/tiny, in-process sampler):
// `compare` runs one prompt through several samplers with one seed, and
// `generate` writes its summary and traces; flag names may be dashed.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/test_util/runnerd_test_util.h"
#include "tests/services/test_util/server_process.h"

namespace entroserve {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// One runnerd (--sampler=local) for the whole suite: the tests only read.
class SamplerctlRunnerdTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = StartRunnerd({"--sampler=local"}).release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  // samplerctl `command` against the server with `args`; exit code 0 expected
  // unless `code` says otherwise.
  static std::string Samplerctl(const std::string& command, std::vector<std::string> args,
                                int code = 0) {
    args.insert(args.begin(), {command, absl::StrCat("--server=", server_->address())});
    const ProcessExit exit = RunToExit(SAMPLERCTL_PATH, args);
    EXPECT_TRUE(WIFEXITED(exit.status)) << exit.output;
    EXPECT_EQ(WEXITSTATUS(exit.status), code) << exit.output;
    return exit.output;
  }

  static ServerProcess* server_;
};

ServerProcess* SamplerctlRunnerdTest::server_ = nullptr;

// The text `generate` printed (stdout: the text and a newline; the finish
// line follows on stderr).
std::string GeneratedText(const std::string& output) {
  const size_t end = output.find("\n[finish: ");
  EXPECT_NE(end, std::string::npos) << output;
  return output.substr(0, end);
}

// The text of `sampler`'s block in compare's output.
std::string BlockText(const std::string& output, const std::string& sampler) {
  const std::string header = absl::StrCat("\n== ", sampler, " ==\n");
  const size_t begin = output.find(header);
  EXPECT_NE(begin, std::string::npos) << output;
  if (begin == std::string::npos) return "";
  const size_t text = begin + header.size();
  const size_t end = output.find("\n[finish: ", text);
  EXPECT_NE(end, std::string::npos) << output;
  return output.substr(text, end - text);
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

TEST_F(SamplerctlRunnerdTest, CompareShowsEachSamplersBlockSummaryAndTableRow) {
  const std::string out = Samplerctl("compare", {absl::StrCat("--prompt=", kPrompt), "--seed=3",
                                                 "--max_new_tokens=12", "--ignore_eos"});
  EXPECT_THAT(out, StartsWith(absl::StrCat("prompt: ", kPrompt, "\n")));
  for (const char* sampler : {"greedy", "chain", "entropix", "alpha"}) {
    EXPECT_THAT(out, HasSubstr(absl::StrCat("\n== ", sampler, " ==\n"))) << sampler;
    EXPECT_FALSE(BlockText(out, sampler).empty()) << sampler;
    // A row of the table: name, tokens, tokens/s, entropy, varentropy, finish.
    EXPECT_THAT(out, HasSubstr(absl::StrCat("\n", sampler))) << sampler;
  }
  EXPECT_THAT(out, HasSubstr("\n[finish: length; 12 tokens, "));
  EXPECT_THAT(out, HasSubstr("modes: greedy 12 (100%); mean entropy "));
  EXPECT_THAT(out, HasSubstr("modes: alpha 12 (100%); mean entropy "));
  EXPECT_THAT(out, HasSubstr("\nseed 3, the same for every sampler\n"));
  EXPECT_THAT(out, HasSubstr("\nsampler   tokens  tokens/s  entropy  varentropy  finish  modes\n"));
  EXPECT_THAT(out, HasSubstr("\ngreedy        12  "));
  // Not a terminal and no --show-modes: no colours.
  EXPECT_THAT(out, Not(HasSubstr("\033[")));
}

TEST_F(SamplerctlRunnerdTest, CompareTextsEqualGenerateWithTheSameSamplerAndSeed) {
  const std::string out =
      Samplerctl("compare", {absl::StrCat("--prompt=", kPrompt), "--samplers=greedy,entropix",
                             "--seed=5", "--max-new-tokens=16", "--ignore-eos"});
  for (const char* sampler : {"greedy", "entropix"}) {
    const std::string generated = Samplerctl(
        "generate", {absl::StrCat("--prompt=", kPrompt), absl::StrCat("--sampler=", sampler),
                     "--seed=5", "--max_new_tokens=16", "--ignore_eos"});
    EXPECT_EQ(BlockText(out, sampler), GeneratedText(generated)) << sampler;
  }
  EXPECT_THAT(out, Not(HasSubstr("== chain ==")));
}

TEST_F(SamplerctlRunnerdTest, CompareWithoutASeedUsesTheFirstGenerationsSeedForAll) {
  const std::string out =
      Samplerctl("compare", {absl::StrCat("--prompt=", kPrompt), "--samplers=entropix,entropix",
                             "--max_new_tokens=10", "--ignore_eos"});
  const size_t first = out.find("\n== entropix ==\n");
  ASSERT_NE(first, std::string::npos) << out;
  const std::string rest = out.substr(first + 1);
  EXPECT_EQ(BlockText(out, "entropix"), BlockText(rest, "entropix")) << out;
  EXPECT_THAT(out, HasSubstr(", the same for every sampler\n"));
}

TEST_F(SamplerctlRunnerdTest, CompareColumnsStandSideBySideAtTheGivenWidth) {
  const std::string out =
      Samplerctl("compare", {absl::StrCat("--prompt=", kPrompt), "--samplers=greedy,entropix",
                             "--seed=3", "--max_new_tokens=24", "--ignore_eos", "--layout=columns",
                             "--width=61", "--show-modes"});
  // (61 - 3) / 2 = 29 characters a column, " | " between them.
  const std::vector<std::string> lines = absl::StrSplit(out, '\n');
  size_t header = 0;
  while (header < lines.size() && lines[header].rfind("== greedy ==", 0) != 0) ++header;
  ASSERT_LT(header, lines.size()) << out;
  EXPECT_EQ(lines[header], absl::StrCat("== greedy ==", std::string(17, ' '), " | ",
                                        "== entropix ==", std::string(15, ' ')));
  int rows = 0;
  for (size_t i = header + 1; i < lines.size() && !lines[i].empty(); ++i, ++rows) {
    std::string plain;  // the line without its colour escapes
    for (size_t j = 0; j < lines[i].size(); ++j) {
      if (lines[i][j] == '\033') {
        j = lines[i].find('m', j);
        continue;
      }
      plain.push_back(lines[i][j]);
    }
    EXPECT_EQ(Utf8Length(plain), 61u) << lines[i];
    EXPECT_EQ(plain.substr(29, 3), " | ") << lines[i];
  }
  // 24 tokens of a few characters each do not fit in one 29-character line.
  EXPECT_GE(rows, 3) << out;
  EXPECT_THAT(out, HasSubstr("legend: "));
  EXPECT_THAT(out, HasSubstr("\033["));
  EXPECT_THAT(out, Not(HasSubstr("[finish: ")));  // the table holds the summaries
  EXPECT_THAT(out, HasSubstr("\nentropix  "));
}

TEST_F(SamplerctlRunnerdTest, CompareErrorsSayWhatIsWrong) {
  const std::string unknown =
      Samplerctl("compare", {"--prompt=x", "--samplers=greedy,nucleus9", "--max_new_tokens=2"}, 1);
  EXPECT_THAT(unknown, AllOf(HasSubstr("== greedy =="),
                             HasSubstr("generate with sampler \"nucleus9\" failed: "
                                       "INVALID_ARGUMENT: sampler.name: ")));
  EXPECT_THAT(Samplerctl("compare", {"--prompt=x", "--sampler=greedy"}, 2),
              HasSubstr("--samplers=a,b,c"));
  EXPECT_THAT(Samplerctl("compare", {}, 2), HasSubstr("compare needs one of --prompt"));
  EXPECT_THAT(Samplerctl("compare", {"--prompt=x", "--layout=grid"}, 2),
              HasSubstr("--layout must be auto, blocks or columns, got grid"));

  const ProcessExit down = RunToExit(
      SAMPLERCTL_PATH, {"compare", "--server=127.0.0.1:1", "--prompt=x", "--timeout_ms=3000"});
  EXPECT_EQ(WEXITSTATUS(down.status), 1) << down.output;
  EXPECT_THAT(down.output, HasSubstr("cannot reach runnerd at 127.0.0.1:1"));
}

TEST_F(SamplerctlRunnerdTest, GenerateShowModesAddsTheSummaryAndWritesDashedTraceFlags) {
  const std::string dir = testing::TempDir();
  const std::string jsonl = absl::StrCat(dir, "/samplerctl_runnerd_test.jsonl");
  const std::string html = absl::StrCat(dir, "/samplerctl_runnerd_test.html");
  std::remove(jsonl.c_str());
  std::remove(html.c_str());
  const std::string out = Samplerctl(
      "generate", {absl::StrCat("--prompt=", kPrompt), "--sampler=entropix", "--seed=7",
                   "--max-new-tokens=8", "--ignore-eos", "--show-modes",
                   absl::StrCat("--trace=", jsonl), absl::StrCat("--trace-html=", html)});
  EXPECT_THAT(out, HasSubstr("\n[summary: 8 tokens, "));
  EXPECT_THAT(out, HasSubstr(" tokens/s; modes: "));
  EXPECT_THAT(out, HasSubstr("; mean entropy "));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("\n[trace: ", jsonl, "]\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("\n[trace: ", html, "]\n")));
  std::ifstream lines(jsonl);
  int count = 0;
  for (std::string line; std::getline(lines, line);) ++count;
  EXPECT_EQ(count, 8);
  std::stringstream page;
  page << std::ifstream(html).rdbuf();
  EXPECT_THAT(page.str(), StartsWith("<!DOCTYPE html>"));

  EXPECT_THAT(
      Samplerctl("generate", {"--prompt=x", "--max_new_tokens=2", "--show-modes", "--nosummary"}),
      Not(HasSubstr("[summary: ")));
  EXPECT_THAT(Samplerctl("generate", {"--prompt=x", "--max_new_tokens=2", "--summary"}),
              HasSubstr("[summary: 2 tokens, "));
  EXPECT_THAT(Samplerctl("generate", {"--prompt=x", "--max_new_tokens=2"}),
              Not(HasSubstr("[summary: ")));
}

TEST_F(SamplerctlRunnerdTest, GenerateTakesAllowedTokenIdsAndDryBreakers) {
  const std::string output = Samplerctl(
      "generate", {"--prompt=The jury said", "--max_new_tokens=6", "--seed=3", "--json",
                   "--allowed_token_ids=250,17,4000,251", "--dry_sequence_breakers=\\n,:",
                   "--spec=chain { stages: [\"dry\", \"dist\"] dry_multiplier: 0.8 }"});
  int tokens = 0;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::StartsWith(line, "{\"id\":")) continue;  // a token record
    ++tokens;
    const absl::string_view id = line.substr(6, line.find(',') - 6);
    EXPECT_TRUE(id == "17" || id == "250" || id == "251" || id == "4000") << line;
  }
  EXPECT_EQ(tokens, 6) << output;
  EXPECT_THAT(Samplerctl("generate", {"--prompt=x", "--allowed_token_ids=4,x"}, 2),
              HasSubstr("--allowed_token_ids: \"x\" is not a token id"));
}

TEST(SamplerctlHelpTest, HelpExplainsCompareAndTheSummary) {
  const ProcessExit help = RunToExit(SAMPLERCTL_PATH, {"--help"});
  EXPECT_THAT(help.output, HasSubstr("compare    the same prompt and seed through several"));
  EXPECT_THAT(help.output, HasSubstr("--samplers"));
  EXPECT_THAT(help.output, HasSubstr("--summary"));
}

}  // namespace
}  // namespace entroserve
