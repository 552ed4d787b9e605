#include "clients/samplerctl/trace.h"

#include <google/protobuf/util/json_util.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sampler/base/utf8.h"
// Generated from trace_page.css and trace_page.js (clients/samplerctl/trace.cmake).
#include "clients/samplerctl/trace_page_assets.h"

namespace entroserve {
namespace {

using runner::v1::GeneratedToken;
using sampler::v1::Mode;

// How each mode looks: the terminal's colours (samplerctl_main.cc's ModeColor)
// as a solid colour for points and underlines and a tint for text backgrounds.
struct ModeStyle {
  Mode mode;
  const char* name;
  const char* color;
  const char* tint;
};
// In legend order.
constexpr std::array<ModeStyle, 9> kModeStyles = {{
    {sampler::v1::MODE_FLOWING, "flowing", "#22a05a", "#daf2e3"},    // green
    {sampler::v1::MODE_CLARIFY, "clarify", "#d9a300", "#fff0bf"},    // yellow
    {sampler::v1::MODE_EXPLORE, "explore", "#0ea5b7", "#d3f2f6"},    // cyan
    {sampler::v1::MODE_RESAMPLE, "resample", "#dc3c3c", "#fbdcdc"},  // red
    {sampler::v1::MODE_ADAPTIVE, "adaptive", "#c13fc1", "#f6dbf6"},  // magenta
    {sampler::v1::MODE_ALPHA, "alpha", "#3b6fd8", "#dce6fa"},        // blue
    {sampler::v1::MODE_SAMPLE, "sample", "#98a0ab", "#eceef1"},      // grey
    {sampler::v1::MODE_GREEDY, "greedy", "#6f7682", "#e4e6ea"},      // grey
    {sampler::v1::MODE_UNSPECIFIED, "unspecified", "#b4b9c1", "#f1f2f4"},
}};

const ModeStyle& StyleOf(Mode mode) {
  for (const ModeStyle& style : kModeStyles) {
    if (style.mode == mode) return style;
  }
  return kModeStyles.back();
}

// Text for HTML element content and quoted attribute values: & < > " '
// escaped, invalid UTF-8 replaced by U+FFFD.
std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = DecodeUtf8(s, &pos);
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        AppendUtf8(cp, &out);
    }
  }
  return out;
}

// A token's text inside its span: escaped; each newline shown as a "↵" mark
// before the line break, other C0 controls (but tab) and DEL as their Control
// Pictures (U+2400 + c), so that nothing generated is invisible.
std::string TokenTextHtml(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = DecodeUtf8(s, &pos);
    if (cp == '\n') {
      out += "<span class=\"nl\">\u21b5</span>\n";
    } else if (cp == '\r') {
      out += "<span class=\"cc\">\u240d</span>";
    } else if ((cp < 0x20 && cp != '\t') || cp == 0x7F) {
      out += "<span class=\"cc\">";
      AppendUtf8(cp == 0x7F ? 0x2421 : 0x2400 + cp, &out);
      out += "</span>";
    } else {
      std::string one;
      AppendUtf8(cp, &one);
      out += HtmlEscape(one);
    }
  }
  return out;
}

// A JSON string literal, safe inside an HTML <script> element: < > & and
// U+2028/U+2029 as \u escapes, invalid UTF-8 as U+FFFD.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const uint32_t cp = DecodeUtf8(s, &pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029) {
          out += absl::StrFormat("\\u%04x", cp);
        } else {
          AppendUtf8(cp, &out);
        }
    }
  }
  out += "\"";
  return out;
}

// A JSON number, the shortest decimal that reads back as `v` ("0.1" for
// 0.1f); null when not finite.
std::string JsonNumber(float v) {
  if (!std::isfinite(v)) return "null";
  std::string out;
  for (int digits = 6; digits <= 9; ++digits) {
    out = absl::StrFormat("%.*g", digits, v);
    if (std::strtof(out.c_str(), nullptr) == v) break;
  }
  return out;
}

// Makes a JSON text safe inside <script>: < > & appear in JSON only inside
// strings, where their \u escapes mean the same.
std::string ScriptSafe(absl::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// A short number for the header ("0.1", "2.35", "1.2e-05").
std::string Short(double v) { return absl::StrFormat("%.3g", v); }

std::string ModeCss() {
  std::string css;
  for (const ModeStyle& style : kModeStyles) {
    absl::StrAppend(&css, ".m-", style.name, "{--c:", style.color, ";--t:", style.tint, "}\n");
  }
  return css;
}

std::string ModesJson() {
  std::vector<std::string> modes;
  for (const ModeStyle& style : kModeStyles) {
    modes.push_back(absl::StrCat("{\"key\":", JsonString(sampler::v1::Mode_Name(style.mode)),
                                 ",\"name\":", JsonString(style.name),
                                 ",\"color\":", JsonString(style.color), "}"));
  }
  return absl::StrCat("[", absl::StrJoin(modes, ","), "]");
}

std::string ThresholdsJson(const TraceThresholds& t) {
  return absl::StrCat("{\"low_entropy\":", JsonNumber(t.low_entropy),
                      ",\"low_varentropy\":", JsonNumber(t.low_varentropy),
                      ",\"medium_entropy\":", JsonNumber(t.medium_entropy),
                      ",\"high_entropy\":", JsonNumber(t.high_entropy),
                      ",\"high_varentropy\":", JsonNumber(t.high_varentropy), "}");
}

void AppendMetaRow(std::string_view name, absl::string_view value_html, std::string* out,
                   absl::string_view dd_class = "") {
  absl::StrAppend(out, "<dt>", HtmlEscape(name), "</dt><dd",
                  dd_class.empty() ? "" : absl::StrCat(" class=\"", dd_class, "\""), ">",
                  value_html, "</dd>\n");
}

std::string HeaderHtml(const TraceMeta& meta, const std::vector<GeneratedToken>& tokens) {
  const size_t n = tokens.size();
  size_t inserted = 0;
  double sum_entropy = 0, sum_varentropy = 0;
  size_t with_signals = 0;
  std::array<size_t, kModeStyles.size()> counts{};
  for (const GeneratedToken& t : tokens) {
    if (t.inserted()) ++inserted;
    if (t.has_signals() && std::isfinite(t.signals().entropy()) &&
        std::isfinite(t.signals().varentropy())) {
      sum_entropy += t.signals().entropy();
      sum_varentropy += t.signals().varentropy();
      ++with_signals;
    }
    const ModeStyle& style = StyleOf(t.mode());
    ++counts[&style - kModeStyles.data()];
  }

  std::string html = "<section class=\"card head\">\n<div>\n<dl class=\"meta\">\n";
  AppendMetaRow("prompt", HtmlEscape(meta.prompt), &html, "prompt");
  AppendMetaRow("sampler", absl::StrCat("<code>", HtmlEscape(meta.sampler), "</code>"), &html);
  AppendMetaRow("seed", meta.seed ? absl::StrCat(*meta.seed) : "-", &html);
  AppendMetaRow("model", HtmlEscape(meta.model.empty() ? "-" : meta.model), &html);
  std::string count = absl::StrCat(n, n == 1 ? " token" : " tokens");
  if (inserted > 0) absl::StrAppend(&count, " (", inserted, " inserted)");
  if (with_signals > 0) {
    absl::StrAppend(&count, " \u00b7 mean H ", Short(sum_entropy / with_signals),
                    " bits \u00b7 mean V ", Short(sum_varentropy / with_signals), " bits\u00b2");
  }
  AppendMetaRow("generated", HtmlEscape(count), &html);
  for (const auto& [name, value] : meta.extra) AppendMetaRow(name, HtmlEscape(value), &html);
  html += "</dl>\n</div>\n";

  // Mode histogram: a stacked bar and the legend with counts.
  html += "<div class=\"modes\">\n<h2>modes</h2>\n<div class=\"bar\">";
  for (size_t m = 0; m < kModeStyles.size(); ++m) {
    if (counts[m] == 0) continue;
    absl::StrAppend(&html, "<span class=\"m-", kModeStyles[m].name,
                    "\" style=\"width:", absl::StrFormat("%.4f", 100.0 * counts[m] / n),
                    "%\" title=\"", kModeStyles[m].name, ": ", counts[m], "\"></span>");
  }
  html += "</div>\n<ul>\n";
  for (size_t m = 0; m < kModeStyles.size(); ++m) {
    // Every mode is in the legend but `unspecified`, which only when present.
    if (kModeStyles[m].mode == sampler::v1::MODE_UNSPECIFIED && counts[m] == 0) continue;
    absl::StrAppend(&html, "<li class=\"m-", kModeStyles[m].name, counts[m] == 0 ? " zero" : "",
                    "\" data-mode=\"", kModeStyles[m].name, "\" data-count=\"", counts[m],
                    "\"><span class=\"sw\"></span><span>", kModeStyles[m].name,
                    "</span><span class=\"n\">", counts[m],
                    n > 0 ? absl::StrFormat(" \u00b7 %.0f%%", 100.0 * counts[m] / n) : "",
                    "</span></li>\n");
  }
  const TraceThresholds& t = meta.thresholds;
  absl::StrAppend(&html, "</ul>\n<div class=\"thr\">entropix thresholds: low H ",
                  Short(t.low_entropy), " \u00b7 low V ", Short(t.low_varentropy),
                  " \u00b7 medium H ", Short(t.medium_entropy), " \u00b7 high H ",
                  Short(t.high_entropy), " \u00b7 high V ", Short(t.high_varentropy),
                  " (bits, bits\u00b2)</div>\n</div>\n</section>\n");
  return html;
}

}  // namespace

TraceThresholds ThresholdsFromConfig(const EntropixConfig& config) {
  TraceThresholds t;
  t.low_entropy = config.low_entropy;
  t.low_varentropy = config.low_varentropy;
  t.medium_entropy = config.medium_entropy;
  t.high_entropy = config.high_entropy;
  t.high_varentropy = config.high_varentropy;
  return t;
}

TraceThresholds ThresholdsFromSpec(const sampler::v1::SamplerSpec& spec) {
  TraceThresholds t;
  if (!spec.has_entropix()) return t;
  const sampler::v1::EntropixConfig& c = spec.entropix();
  if (c.has_low_entropy()) t.low_entropy = c.low_entropy();
  if (c.has_low_varentropy()) t.low_varentropy = c.low_varentropy();
  if (c.has_medium_entropy()) t.medium_entropy = c.medium_entropy();
  if (c.has_high_entropy()) t.high_entropy = c.high_entropy();
  if (c.has_high_varentropy()) t.high_varentropy = c.high_varentropy();
  return t;
}

// Leaves out `choice` and `top_logprobs` at their defaults (n = 1, none
// asked for), which always_print_primitive_fields prints: a trace line of
// such a generation stays what it was before runner.v1 had them.
std::string WithoutChoiceDefaults(std::string json) {
  for (const std::string field : {",\"choice\":0", ",\"top_logprobs\":[]"}) {
    const size_t at = json.rfind(field);
    if (at != std::string::npos) json.erase(at, field.size());
  }
  return json;
}

std::string TraceJsonLine(const GeneratedToken& token) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Every field without presence (id, text, mode, logprob, inserted, index,
  // entropy, varentropy) even when zero; optional fields only when set.
  options.always_print_primitive_fields = true;
  std::string json;
  // The printer cuts a string at invalid UTF-8 (which a token that came over
  // gRPC never has): print a copy with U+FFFD instead.
  if (!IsValidUtf8(token.text())) {
    GeneratedToken copy = token;
    copy.set_text(ToValidUtf8(token.text()));
    (void)google::protobuf::util::MessageToJsonString(copy, &json, options);
    return WithoutChoiceDefaults(std::move(json));
  }
  (void)google::protobuf::util::MessageToJsonString(token, &json, options);
  return WithoutChoiceDefaults(std::move(json));
}

std::string TraceJsonLines(const std::vector<GeneratedToken>& tokens) {
  std::string out;
  for (const GeneratedToken& token : tokens) absl::StrAppend(&out, TraceJsonLine(token), "\n");
  return out;
}

std::string RenderTraceHtml(const TraceMeta& meta, const std::vector<GeneratedToken>& tokens) {
  std::string html;
  html.reserve(64 * 1024 + tokens.size() * 600);
  const std::string title = absl::StrCat("entroserve trace \u00b7 ", meta.sampler.substr(0, 60),
                                         " \u00b7 ", tokens.size(), " tokens");
  absl::StrAppend(&html,
                  "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                  "<title>",
                  HtmlEscape(title), "</title>\n<style>\n", kTracePageCss, ModeCss(),
                  "</style>\n</head>\n<body>\n"
                  "<main id=\"trace\">\n<h1>entroserve trace<span class=\"sub\">",
                  HtmlEscape(meta.sampler.substr(0, 120)),
                  "</span></h1>\n"
                  "<div id=\"errors\" hidden></div>\n");
  html += HeaderHtml(meta, tokens);

  // The text, one span per token, whitespace preserved (CSS pre-wrap); no
  // whitespace between the spans.
  html +=
      "<section class=\"card\">\n<h2>text <span class=\"hint\">hover a token for its signals "
      "and parameters; dashed: inserted by the policy</span></h2>\n<div class=\"text\" "
      "id=\"text\">";
  for (size_t i = 0; i < tokens.size(); ++i) {
    const GeneratedToken& t = tokens[i];
    absl::StrAppend(&html, "<span class=\"tok m-", StyleOf(t.mode()).name,
                    t.inserted() ? " ins" : "", "\" data-i=\"", i, "\">", TokenTextHtml(t.text()),
                    "</span>");
  }
  html += "</div>\n</section>\n";

  html +=
      "<div class=\"charts\">\n"
      "<section class=\"card chart\">\n<h2>entropy \u2013 varentropy <span class=\"hint\">one "
      "point per token; shaded: the policy's regions</span><span class=\"seg\" "
      "id=\"scatter-scale\"><button type=\"button\" data-scale=\"sqrt\" "
      "aria-pressed=\"true\">\u221a</button><button type=\"button\" data-scale=\"linear\" "
      "aria-pressed=\"false\">linear</button></span></h2>\n<div id=\"scatter\"></div>\n"
      "</section>\n"
      "<section class=\"card chart\">\n<h2>timeline <span class=\"hint\">per token; dashed: "
      "thresholds</span></h2>\n<div id=\"timeline\"></div>\n</section>\n"
      "</div>\n"
      "<noscript><p>The scatter, the timeline and the tooltips need JavaScript.</p></noscript>\n"
      "<footer>entroserve samplerctl \u00b7 JSON of every token in #trace-data (runner.v1."
      "GeneratedToken, proto3 JSON)</footer>\n"
      "<div id=\"tooltip\" role=\"tooltip\" hidden></div>\n</main>\n";

  // The data.
  std::vector<std::string> lines;
  lines.reserve(tokens.size());
  for (const GeneratedToken& t : tokens) lines.push_back(ScriptSafe(TraceJsonLine(t)));
  absl::StrAppend(&html, "<script type=\"application/json\" id=\"trace-data\">{\"meta\":{",
                  "\"prompt\":", JsonString(meta.prompt), ",\"sampler\":", JsonString(meta.sampler),
                  ",\"seed\":", meta.seed ? JsonString(absl::StrCat(*meta.seed)) : "null",
                  ",\"model\":", JsonString(meta.model),
                  ",\"thresholds\":", ThresholdsJson(meta.thresholds), ",\"modes\":", ModesJson(),
                  "},\n\"tokens\":[\n", absl::StrJoin(lines, ",\n"), "\n]}</script>\n");
  absl::StrAppend(&html, "<script>\n", kTracePageJs, "</script>\n</body>\n</html>\n");
  return html;
}

absl::Status WriteTraceFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::NotFoundError(absl::StrCat("cannot open ", path, " for writing"));
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace entroserve
