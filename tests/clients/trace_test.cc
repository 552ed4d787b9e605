#include "clients/samplerctl/trace.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/clients/trace_demo_tokens.h"

namespace entroserve {
namespace {

using google::protobuf::Struct;
using google::protobuf::util::JsonStringToMessage;
using google::protobuf::util::MessageDifferencer;
using runner::v1::GeneratedToken;

int CountOf(const std::string& haystack, const std::string& needle) {
  int count = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

// The text between `open` and the next `close` after it ("" when absent).
std::string Between(const std::string& s, const std::string& open, const std::string& close) {
  const size_t start = s.find(open);
  if (start == std::string::npos) return "";
  const size_t end = s.find(close, start + open.size());
  if (end == std::string::npos) return "";
  return s.substr(start + open.size(), end - start - open.size());
}

std::string TextDiv(const std::string& html) {
  return Between(html, "<div class=\"text\" id=\"text\">", "</div>");
}

Struct ParseObject(const std::string& json) {
  Struct object;
  const auto status = JsonStringToMessage(json, &object);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return object;
}

// The page's embedded data as a Struct.
Struct PageData(const std::string& html) {
  return ParseObject(
      Between(html, "<script type=\"application/json\" id=\"trace-data\">", "</script>"));
}

GeneratedToken TokenWithText(const std::string& text, int32_t index = 0) {
  GeneratedToken t;
  t.set_id(42);
  t.set_text(text);
  t.set_mode(sampler::v1::MODE_ADAPTIVE);
  t.mutable_signals()->set_entropy(1.5f);
  t.mutable_signals()->set_varentropy(2.0f);
  t.set_index(index);
  return t;
}

TEST(TraceJsonLineTest, DemoTokensCoverEveryModeAndTrickyText) {
  const auto tokens = DemoTraceTokens();
  EXPECT_EQ(tokens.size(), 60u);
  std::map<int, int> modes;
  std::string all;
  for (const auto& t : tokens) {
    ++modes[t.mode()];
    all += t.text();
  }
  for (int mode = sampler::v1::MODE_GREEDY; mode <= sampler::v1::MODE_ALPHA; ++mode) {
    EXPECT_GT(modes[mode], 0) << sampler::v1::Mode_Name(mode);
  }
  for (const char* tricky : {"<script>", "&amp;", "\"", "'", "\n", "\t", "\xF0\x9F\x8E\x89",
                             "\xE4\xB8\xAD\xE6\x96\x87"}) {
    EXPECT_NE(all.find(tricky), std::string::npos) << tricky;
  }
}

TEST(TraceJsonLineTest, EachLineParsesBackIntoTheSameMessage) {
  for (const GeneratedToken& token : DemoTraceTokens()) {
    const std::string line = TraceJsonLine(token);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    GeneratedToken back;
    ASSERT_TRUE(JsonStringToMessage(line, &back).ok()) << line;
    EXPECT_TRUE(MessageDifferencer::Equals(back, token))
        << "line " << line << "\nparsed " << back.DebugString();
  }
}

TEST(TraceJsonLineTest, LinesHaveOneObjectPerTokenWithItsFields) {
  const auto tokens = DemoTraceTokens();
  const std::string jsonl = TraceJsonLines(tokens);
  ASSERT_FALSE(jsonl.empty());
  EXPECT_EQ(jsonl.back(), '\n');
  const std::vector<std::string> lines = absl::StrSplit(jsonl.substr(0, jsonl.size() - 1), '\n');
  ASSERT_EQ(lines.size(), tokens.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const Struct record = ParseObject(lines[i]);
    const auto& f = record.fields();
    for (const char* key : {"id", "text", "mode", "signals", "logprob", "inserted", "index"}) {
      EXPECT_TRUE(f.count(key)) << key << " missing in " << lines[i];
    }
    EXPECT_EQ(f.at("id").number_value(), tokens[i].id());
    EXPECT_EQ(f.at("text").string_value(), tokens[i].text());
    EXPECT_EQ(f.at("mode").string_value(), sampler::v1::Mode_Name(tokens[i].mode()));
    EXPECT_EQ(f.at("index").number_value(), static_cast<double>(i));
    EXPECT_EQ(f.at("inserted").bool_value(), tokens[i].inserted());
    EXPECT_EQ(static_cast<float>(f.at("logprob").number_value()), tokens[i].logprob());
    const auto& signals = f.at("signals").struct_value().fields();
    EXPECT_EQ(static_cast<float>(signals.at("entropy").number_value()),
              tokens[i].signals().entropy());
    EXPECT_EQ(static_cast<float>(signals.at("varentropy").number_value()),
              tokens[i].signals().varentropy());
    EXPECT_TRUE(signals.count("attn_entropy"));
    // Greedy sets no parameters: no "params" object; every other mode has one.
    EXPECT_EQ(f.count("params") == 1, tokens[i].has_params()) << lines[i];
    if (tokens[i].has_params()) {
      EXPECT_EQ(static_cast<float>(
                    f.at("params").struct_value().fields().at("temperature").number_value()),
                tokens[i].params().temperature());
    }
  }
}

TEST(TraceJsonLineTest, ZeroFieldsArePrintedAndUnsetOptionalsAreNot) {
  EXPECT_EQ(TraceJsonLine(GeneratedToken()),
            "{\"id\":0,\"text\":\"\",\"mode\":\"MODE_UNSPECIFIED\",\"logprob\":0,"
            "\"inserted\":false,\"index\":0}");
  GeneratedToken t;
  t.mutable_signals();  // entropy and varentropy 0, no attention
  t.mutable_params()->set_top_k(0);
  EXPECT_EQ(TraceJsonLine(t),
            "{\"id\":0,\"text\":\"\",\"mode\":\"MODE_UNSPECIFIED\","
            "\"signals\":{\"entropy\":0,\"varentropy\":0},\"params\":{\"top_k\":0},"
            "\"logprob\":0,\"inserted\":false,\"index\":0}");
}

TEST(TraceJsonLineTest, NonFiniteLogprobIsAStringThatParsesBack) {
  GeneratedToken t = TokenWithText("x");
  t.set_logprob(-std::numeric_limits<float>::infinity());
  const std::string line = TraceJsonLine(t);
  EXPECT_NE(line.find("\"logprob\":\"-Infinity\""), std::string::npos) << line;
  GeneratedToken back;
  ASSERT_TRUE(JsonStringToMessage(line, &back).ok());
  EXPECT_EQ(back.logprob(), -std::numeric_limits<float>::infinity());
}

TEST(TraceJsonLineTest, EscapesTextAsJson) {
  const std::string line = TraceJsonLine(TokenWithText("a\"b\\c\nd\t<e>&\x01"));
  EXPECT_NE(line.find(R"("text":"a\"b\\c\nd\t\u003ce\u003e&\u0001")"), std::string::npos) << line;
}

TEST(RenderTraceHtmlTest, HasOneTokenSpanPerTokenInOrder) {
  const auto tokens = DemoTraceTokens();
  const std::string html = RenderTraceHtml(DemoTraceMeta(), tokens);
  const std::string text = TextDiv(html);
  // The text div ends at its first "</div>": no token may contain one raw.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(CountOf(text, "<span class=\"tok "), static_cast<int>(tokens.size()));
  EXPECT_EQ(CountOf(html, " data-i=\""), static_cast<int>(tokens.size()));
  size_t pos = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    pos = text.find(absl::StrCat("data-i=\"", i, "\""), pos);
    ASSERT_NE(pos, std::string::npos) << "token " << i << " missing or out of order";
  }
  EXPECT_EQ(CountOf(text, "class=\"tok m-flowing\""), 19);
  EXPECT_EQ(CountOf(text, "class=\"tok m-clarify ins\""), 1);
}

TEST(RenderTraceHtmlTest, EmbedsOneRecordPerTokenAndTheThresholds) {
  const auto tokens = DemoTraceTokens();
  const Struct data = PageData(RenderTraceHtml(DemoTraceMeta(), tokens));
  const auto& records = data.fields().at("tokens").list_value().values();
  ASSERT_EQ(records.size(), static_cast<int>(tokens.size()));
  for (int i = 0; i < records.size(); ++i) {
    const auto& f = records[i].struct_value().fields();
    EXPECT_EQ(f.at("text").string_value(), tokens[i].text());
    EXPECT_EQ(f.at("mode").string_value(), sampler::v1::Mode_Name(tokens[i].mode()));
  }
  const auto& meta = data.fields().at("meta").struct_value().fields();
  EXPECT_EQ(meta.at("seed").string_value(), "7");
  EXPECT_EQ(meta.at("prompt").string_value(), DemoTraceMeta().prompt);
  const auto& thr = meta.at("thresholds").struct_value().fields();
  const EntropixConfig defaults;
  EXPECT_EQ(thr.at("low_entropy").number_value(), 0.1);  // shortest decimal of 0.1f
  EXPECT_EQ(static_cast<float>(thr.at("low_varentropy").number_value()), defaults.low_varentropy);
  EXPECT_EQ(thr.at("medium_entropy").number_value(), 3.0);
  EXPECT_EQ(thr.at("high_entropy").number_value(), 5.0);
  EXPECT_EQ(thr.at("high_varentropy").number_value(), 5.0);
  EXPECT_EQ(meta.at("modes").list_value().values_size(), 9);
}

TEST(RenderTraceHtmlTest, EscapesTokenTextAndTheHeader) {
  const std::string html = RenderTraceHtml(DemoTraceMeta(), DemoTraceTokens());
  // Only the page's own two script elements: the data and the code.
  EXPECT_EQ(CountOf(html, "<script"), 2);
  EXPECT_EQ(CountOf(html, "</script"), 2);
  const std::string text = TextDiv(html);
  EXPECT_NE(text.find(">&lt;script&gt;</span>"), std::string::npos);
  EXPECT_NE(text.find(">&lt;/script&gt;</span>"), std::string::npos);
  EXPECT_NE(text.find("> &amp;amp;</span>"), std::string::npos);
  EXPECT_NE(text.find("> &quot;</span>"), std::string::npos);
  EXPECT_NE(text.find(">&#39;</span>"), std::string::npos);
  // Newlines stay (pre-wrap) behind a visible mark; emoji and CJK pass as UTF-8.
  EXPECT_NE(text.find("<span class=\"nl\">\u21b5</span>\n</span>"), std::string::npos);
  EXPECT_NE(text.find("> \xF0\x9F\x8E\x89</span>"), std::string::npos);
  EXPECT_NE(text.find("> \xE4\xB8\xAD\xE6\x96\x87</span>"), std::string::npos);
  // The prompt's markup is text.
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("Explain &lt;b&gt;modes&lt;/b&gt; &amp; &quot;signals&quot;"),
            std::string::npos);
}

TEST(RenderTraceHtmlTest, TextCannotCloseTheScriptsOrTheTextDiv) {
  const std::vector<GeneratedToken> tokens = {
      TokenWithText("</script><script>alert(1)</script>", 0), TokenWithText("</div><!-- x", 1),
      TokenWithText("\xE2\x80\xA8\xE2\x80\xA9", 2)};
  TraceMeta meta;
  meta.prompt = "</script>";
  meta.sampler = "<i>chain</i>";
  meta.model = "\"quoted\" & <model>";
  meta.extra = {{"<k>", "<v>"}};
  const std::string html = RenderTraceHtml(meta, tokens);
  EXPECT_EQ(CountOf(html, "<script"), 2);
  EXPECT_EQ(CountOf(html, "</script"), 2);
  EXPECT_EQ(html.find("<!--"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(html.find("<k>"), std::string::npos);
  EXPECT_EQ(html.find("<model>"), std::string::npos);
  EXPECT_EQ(CountOf(TextDiv(html), "<span class=\"tok "), 3);
  const Struct data = PageData(html);
  const auto& records = data.fields().at("tokens").list_value().values();
  ASSERT_EQ(records.size(), 3);
  EXPECT_EQ(records[0].struct_value().fields().at("text").string_value(),
            "</script><script>alert(1)</script>");
}

TEST(RenderTraceHtmlTest, ControlCharactersAndInvalidUtf8AreVisible) {
  const std::vector<GeneratedToken> tokens = {TokenWithText("a\x01z", 0),
                                              TokenWithText("b\xC3(", 1), TokenWithText("", 2)};
  const std::string text = TextDiv(RenderTraceHtml(TraceMeta(), tokens));
  EXPECT_NE(text.find("a<span class=\"cc\">\u2401</span>z"), std::string::npos) << text;
  EXPECT_NE(text.find("b\uFFFD("), std::string::npos) << text;
  EXPECT_NE(text.find("data-i=\"2\"></span>"), std::string::npos) << text;
  // The JSON line of invalid UTF-8 is still valid JSON, with U+FFFD.
  EXPECT_EQ(ParseObject(TraceJsonLine(tokens[1])).fields().at("text").string_value(), "b\uFFFD(");
}

TEST(RenderTraceHtmlTest, HeaderShowsMetaAndTheModeHistogram) {
  const auto tokens = DemoTraceTokens();
  const std::string html = RenderTraceHtml(DemoTraceMeta(), tokens);
  std::map<std::string, int> expected = {{"flowing", 0},  {"clarify", 0},  {"explore", 0},
                                         {"resample", 0}, {"adaptive", 0}, {"alpha", 0},
                                         {"sample", 0},   {"greedy", 0}};
  const std::map<int, std::string> names = {
      {sampler::v1::MODE_FLOWING, "flowing"},   {sampler::v1::MODE_CLARIFY, "clarify"},
      {sampler::v1::MODE_EXPLORE, "explore"},   {sampler::v1::MODE_RESAMPLE, "resample"},
      {sampler::v1::MODE_ADAPTIVE, "adaptive"}, {sampler::v1::MODE_ALPHA, "alpha"},
      {sampler::v1::MODE_SAMPLE, "sample"},     {sampler::v1::MODE_GREEDY, "greedy"}};
  for (const auto& t : tokens) ++expected[names.at(t.mode())];
  for (const auto& [name, count] : expected) {
    EXPECT_NE(html.find(absl::StrCat("data-mode=\"", name, "\" data-count=\"", count, "\"")),
              std::string::npos)
        << name << " " << count;
  }
  EXPECT_EQ(expected["flowing"], 19);
  EXPECT_EQ(html.find("data-mode=\"unspecified\""), std::string::npos);
  EXPECT_NE(html.find("<dt>seed</dt><dd>7</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dt>model</dt><dd>demo (synthetic tokens, no model)</dd>"),
            std::string::npos);
  EXPECT_NE(html.find("<code>entropix { temperature: 0.666 }</code>"), std::string::npos);
  EXPECT_NE(html.find("60 tokens (1 inserted)"), std::string::npos);
  EXPECT_NE(html.find("<dt>finish</dt><dd>length</dd>"), std::string::npos);
  // No network: nothing is fetched.
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(RenderTraceHtmlTest, NoTokensStillRendersAPage) {
  TraceMeta meta;
  const std::string html = RenderTraceHtml(meta, {});
  EXPECT_EQ(CountOf(html, " data-i=\""), 0);
  EXPECT_EQ(PageData(html).fields().at("tokens").list_value().values_size(), 0);
  EXPECT_NE(html.find("<dt>seed</dt><dd>-</dd>"), std::string::npos);
  EXPECT_NE(html.find("0 tokens"), std::string::npos);
}

TEST(TraceThresholdsTest, FromSpecTakesTheFieldsItSetsAndDefaultsTheRest) {
  sampler::v1::SamplerSpec spec;
  spec.mutable_entropix()->set_medium_entropy(2.5f);
  spec.mutable_entropix()->set_high_varentropy(7.0f);
  const TraceThresholds t = ThresholdsFromSpec(spec);
  EXPECT_EQ(t.low_entropy, 0.1f);
  EXPECT_EQ(t.low_varentropy, 0.1f);
  EXPECT_EQ(t.medium_entropy, 2.5f);
  EXPECT_EQ(t.high_entropy, 5.0f);
  EXPECT_EQ(t.high_varentropy, 7.0f);

  sampler::v1::SamplerSpec chain;
  chain.set_name("chain");
  EXPECT_EQ(ThresholdsFromSpec(chain).medium_entropy, 3.0f);

  EntropixConfig config;
  config.high_entropy = 6.0f;
  EXPECT_EQ(ThresholdsFromConfig(config).high_entropy, 6.0f);

  TraceMeta meta;
  meta.thresholds = t;
  const Struct data = PageData(RenderTraceHtml(meta, {}));
  const auto& thr =
      data.fields().at("meta").struct_value().fields().at("thresholds").struct_value().fields();
  EXPECT_EQ(thr.at("medium_entropy").number_value(), 2.5);
  EXPECT_EQ(thr.at("high_varentropy").number_value(), 7.0);
}

TEST(WriteTraceFileTest, WritesTheContentsAndNamesAMissingFolder) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("trace_test_", ::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "t.jsonl").string();
  ASSERT_TRUE(WriteTraceFile(path, "a\nb\n").ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream read;
  read << in.rdbuf();
  EXPECT_EQ(read.str(), "a\nb\n");
  std::filesystem::remove_all(dir);

  const absl::Status missing = WriteTraceFile((dir / "no" / "t.html").string(), "x");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("t.html"), std::string::npos);
}

}  // namespace
}  // namespace entroserve
