// The config tables of sampler/core/configs.h: the validation their rules
// make (config_schema.h), and the documents generated from them (README.md's
// config table, the per-sampler tables of docs/SAMPLERS.md).
//
// When a table changes, regenerate the documents with
//   ENTROSERVE_UPDATE_DOCS=1 build/bin/configs_test --gtest_filter='*Docs*'
// (or paste `samplerctl samplers --markdown [--sampler=NAME]`).
#include "sampler/core/configs.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(ConfigTableTest, DefaultsAreValid) {
  ForEachSamplerConfig([](const auto& config) {
    EXPECT_TRUE(config.Validate().ok()) << config.kName << ": " << config.Validate();
  });
}

TEST(ConfigTableTest, EveryFieldHasAUniqueNameAndHelp) {
  ForEachSamplerConfig([](const auto& config) {
    std::set<std::string> names;
    std::decay_t<decltype(config)>::VisitFields(config, [&](const FieldInfo& field, const auto&) {
      EXPECT_TRUE(names.insert(field.name).second) << config.kName << "." << field.name;
      EXPECT_STRNE(field.help, "") << config.kName << "." << field.name;
      if (field.rule.at_least_field != nullptr) {
        // The other field comes first, so that its own check runs before.
        EXPECT_EQ(names.count(field.rule.at_least_field), 1u) << config.kName << "." << field.name;
      }
    });
  });
}

// One wording whatever the sampler: the checks of config_schema.h in their order.
TEST(ConfigTableTest, RulesWordTheirErrorsAlike) {
  EntropixConfig entropix;
  entropix.temperature = -INFINITY;
  EXPECT_EQ(Message(entropix.Validate()), "entropix.temperature must be finite, got -inf");
  entropix = EntropixConfig();
  entropix.low_entropy = NAN;
  EXPECT_EQ(Message(entropix.Validate()), "entropix.low_entropy must be >= 0, got nan");
  entropix = EntropixConfig();
  entropix.adaptive_samples = 1025;
  EXPECT_EQ(Message(entropix.Validate()),
            "entropix.adaptive_samples must be in [1, 1024], got 1025");
  entropix = EntropixConfig();
  entropix.min_p = NAN;
  EXPECT_EQ(Message(entropix.Validate()), "entropix.min_p must be in [0, 1), got nan");

  AlphaConfig alpha;
  alpha.window = 257;
  EXPECT_EQ(Message(alpha.Validate()), "alpha.window must be <= 256, got 257");
  alpha = AlphaConfig();
  alpha.max_iterations = 1001;
  EXPECT_EQ(Message(alpha.Validate()), "alpha.max_iterations must be <= 1000, got 1001");
  alpha = AlphaConfig();
  alpha.max_temperature = NAN;
  EXPECT_EQ(Message(alpha.Validate()), "alpha.max_temperature must be finite, got nan");
  alpha = AlphaConfig();
  alpha.max_top_p = -INFINITY;
  EXPECT_EQ(Message(alpha.Validate()),
            "alpha.max_top_p must be >= alpha.min_top_p (0.1), got -inf");
  alpha = AlphaConfig();
  alpha.max_candidate_size = 0;
  EXPECT_EQ(Message(alpha.Validate()),
            "alpha.max_candidate_size must be >= alpha.min_candidate_size (1), got 0");

  XtcConfig xtc;
  xtc.threshold = INFINITY;
  EXPECT_EQ(Message(xtc.Validate()), "xtc.threshold must be in [0, 1], got inf");
}

TEST(ConfigTableTest, TheFirstBrokenRuleInTableOrderIsReported) {
  AlphaConfig alpha;
  alpha.max_temperature = 0.05f;  // below min_temperature, checked before...
  alpha.min_top_k = 0;            // ...this field's own rule
  EXPECT_EQ(Message(alpha.Validate()),
            "alpha.max_temperature must be >= alpha.min_temperature (0.1), got 0.05");

  DryConfig dry;
  dry.sequence_breaker_ids = {3, -5};
  dry.temperature = 0;  // after sequence_breaker_ids in the table
  EXPECT_EQ(Message(dry.Validate()), "dry.sequence_breaker_ids[1] must be >= 0, got -5");

  // Breaker sequences: 1 to 8 ids each, every id by the field's rule.
  DryConfig sequences;
  sequences.sequence_breaker_sequences = {{1, 2}, {}};
  EXPECT_EQ(Message(sequences.Validate()),
            "dry.sequence_breaker_sequences[1] has 0 token ids; must be 1 to 8");
  sequences.sequence_breaker_sequences = {{1, 2, 3, 4, 5, 6, 7, 8, 9}};
  EXPECT_EQ(Message(sequences.Validate()),
            "dry.sequence_breaker_sequences[0] has 9 token ids; must be 1 to 8");
  sequences.sequence_breaker_sequences = {{1, 2}, {4, -3}};
  EXPECT_EQ(Message(sequences.Validate()),
            "dry.sequence_breaker_sequences[1] must be >= 0, got -3");
}

TEST(ConfigTableTest, RuleTexts) {
  EXPECT_EQ(RuleText(rule::Temperature(), false), "≥ 0.001");
  EXPECT_EQ(RuleText(rule::Positive(), false), "> 0");
  EXPECT_EQ(RuleText(rule::AtLeast(1), true), "≥ 1");
  EXPECT_EQ(RuleText(rule::OpenClosed(0, 1), false), "(0, 1]");
  EXPECT_EQ(RuleText(rule::ClosedOpen(0, 1), false), "[0, 1)");
  EXPECT_EQ(RuleText(rule::AtLeast(1).AtMost(256), true), "[1, 256]");
  EXPECT_EQ(RuleText(rule::AtMost(1).AtLeastField("min_top_p"), false), "≤ 1, ≥ `min_top_p`");
  EXPECT_EQ(RuleText(rule::Finite(), false), "finite");
  EXPECT_EQ(RuleText(rule::Any(), true), "any");
}

TEST(ConfigTableTest, MarkdownOfOneSampler) {
  absl::StatusOr<std::string> table = ConfigMarkdown("mirostat_v2");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(*table,
            "| field | default | range | meaning |\n"
            "|---|---|---|---|\n"
            "| `tau` | 5 | > 0 | target surprise, bits |\n"
            "| `eta` | 0.1 | > 0 | learning rate of mu |\n"
            "| `temperature` | 1 | ≥ 0.001 | applied before the truncation |\n");
  EXPECT_EQ(*ConfigMarkdown("greedy"), "No fields.\n");
  EXPECT_THAT(std::string(ConfigMarkdown("nucleus").status().message()),
              testing::StartsWith("unknown sampler \"nucleus\"; known samplers: greedy, chain"));
}

// ---------------------------------------------------------------------------
// The generated blocks of the documents:
//   <!-- BEGIN GENERATED: samplerctl samplers --markdown[ --sampler=NAME] ... -->
//   (blank line, the markdown, blank line)
//   <!-- END GENERATED -->

constexpr char kBegin[] = "<!-- BEGIN GENERATED: samplerctl samplers --markdown";
constexpr char kEnd[] = "<!-- END GENERATED -->";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Checks every generated block of the file at `path` (rewriting it with
// ENTROSERVE_UPDATE_DOCS set) and returns the samplers whose blocks it holds
// ("" for the block of every sampler).
std::vector<std::string> CheckGeneratedBlocks(const std::string& path) {
  std::string text = ReadFile(path);
  EXPECT_FALSE(text.empty()) << path;
  const bool update = std::getenv("ENTROSERVE_UPDATE_DOCS") != nullptr;
  std::vector<std::string> samplers;
  for (size_t begin = text.find(kBegin); begin != std::string::npos;
       begin = text.find(kBegin, begin + 1)) {
    const size_t line_end = text.find('\n', begin);
    const size_t end = text.find(kEnd, begin);
    if (line_end == std::string::npos || end == std::string::npos || end < line_end) {
      ADD_FAILURE() << path << ": a generated block without its end marker";
      break;
    }
    const std::string marker = text.substr(begin, line_end - begin);
    const size_t flag = marker.find("--sampler=");
    std::string name;
    if (flag != std::string::npos) {
      name = marker.substr(flag + 10, marker.find(' ', flag + 10) - flag - 10);
    }
    samplers.push_back(name);
    absl::StatusOr<std::string> markdown = name.empty() ? ConfigMarkdown() : ConfigMarkdown(name);
    if (!markdown.ok()) {
      ADD_FAILURE() << path << ": " << markdown.status();
      continue;
    }
    const std::string want = absl::StrCat("\n", *markdown, "\n");
    const std::string got = text.substr(line_end + 1, end - line_end - 1);
    if (got == want) continue;
    if (update) {
      text.replace(line_end + 1, end - line_end - 1, want);
    } else {
      ADD_FAILURE() << path << ": the table after \"" << marker
                    << "\" is not what sampler/core/configs.h makes; regenerate it with "
                       "ENTROSERVE_UPDATE_DOCS=1 build/bin/configs_test. Expected:\n"
                    << want;
    }
  }
  if (update) std::ofstream(path) << text;
  return samplers;
}

TEST(ConfigDocsTest, ReadmeShowsTheTableOfEverySampler) {
  const std::vector<std::string> blocks =
      CheckGeneratedBlocks(absl::StrCat(ENTROSERVE_SOURCE_DIR, "/README.md"));
  EXPECT_EQ(blocks, std::vector<std::string>{""});
}

TEST(ConfigDocsTest, SamplersDocShowsEachSamplersTable) {
  const std::vector<std::string> blocks =
      CheckGeneratedBlocks(absl::StrCat(ENTROSERVE_SOURCE_DIR, "/docs/SAMPLERS.md"));
  std::vector<std::string> want;
  ForEachSamplerConfig([&want](const auto& config) { want.push_back(config.kName); });
  EXPECT_EQ(std::set<std::string>(blocks.begin(), blocks.end()),
            std::set<std::string>(want.begin(), want.end()));
}

}  // namespace
}  // namespace entroserve
