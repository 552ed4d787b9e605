// Traces of a generation that a person can look at: one JSON line per
// generated token (`samplerctl generate --trace FILE.jsonl`) and a
// self-contained HTML page (`--trace-html FILE.html`).
//
// The JSON line of a token is its runner.v1.GeneratedToken in the proto3 JSON
// mapping with the proto's field names (snake_case), every non-optional field
// printed even when zero, and the optional ones (attention signals, the
// parameters a sampler did not set) only when set:
//
//   {"id":1734,"text":" the","mode":"MODE_FLOWING",
//    "signals":{"entropy":0.04,"varentropy":0.01},
//    "params":{"temperature":0.666,"top_k":27,"top_p":0.9,"min_p":0.03},
//    "logprob":-0.012,"inserted":false,"index":0}
//
// so a line parses back into the same message with
// google::protobuf::util::JsonStringToMessage (or Python's json_format.Parse);
// non-finite floats are the strings "NaN", "Infinity", "-Infinity".
//
// The page needs no network: inline CSS, inline JS and SVG drawn by that JS
// from the data embedded as a JSON blob (<script type="application/json"
// id="trace-data">). The text is rendered in HTML (escaped; one
// <span class="tok ..." data-i="I"> per token, whitespace preserved) so that it
// reads without scripts; the scripts add the tooltips (signals and
// parameters), the entropy-varentropy scatter with the policy's threshold
// lines, the per-token timeline of temperature, top_k, top_p, min_p, entropy
// and varentropy, and link the three on hover. When drawn, the page's root
// element carries data-tokens="N" and data-points="N" (and data-errors="K"
// when a script failed), which the browser test reads; FILE.html#tip=I opens
// token I's tooltip on load.
//
// Mode colours are those of samplerctl's terminal output: flowing green,
// clarify yellow, explore cyan, resample red, adaptive magenta, alpha blue,
// sample and greedy grey.
//
// Thread-safety: pure functions.
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_TRACE_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_TRACE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "runner/v1/runner.pb.h"
#include "sampler/core/configs.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

// The entropix mode thresholds drawn on the scatter and the timeline, in bits
// (entropy) and bits^2 (varentropy). Defaults: EntropixConfig's.
struct TraceThresholds {
  float low_entropy = EntropixConfig{}.low_entropy;
  float low_varentropy = EntropixConfig{}.low_varentropy;
  float medium_entropy = EntropixConfig{}.medium_entropy;
  float high_entropy = EntropixConfig{}.high_entropy;
  float high_varentropy = EntropixConfig{}.high_varentropy;
};

// The thresholds of `config`.
TraceThresholds ThresholdsFromConfig(const EntropixConfig& config);

// The thresholds of the spec's entropix config: each field the spec sets,
// EntropixConfig's default for the others (and for a spec of another sampler,
// where the lines are drawn for reference).
TraceThresholds ThresholdsFromSpec(const sampler::v1::SamplerSpec& spec);

// What the page's header shows besides the tokens.
struct TraceMeta {
  std::string prompt;
  // The sampler's name, or its spec in text format.
  std::string sampler;
  // The seed used (GenerateResponse.seed); unset: shown as "-".
  std::optional<uint64_t> seed;
  // The model (ModelInfoResponse family and path, say).
  std::string model;
  TraceThresholds thresholds;
  // More header rows, in order, e.g. {"finish", "length"}, {"total", "812 ms"}.
  std::vector<std::pair<std::string, std::string>> extra;
};

// One JSON object, no newline at the end (see the file comment).
std::string TraceJsonLine(const runner::v1::GeneratedToken& token);

// The tokens' JSON lines, each ending in '\n': the contents of a .jsonl trace.
std::string TraceJsonLines(const std::vector<runner::v1::GeneratedToken>& tokens);

// The self-contained HTML page of the generation (see the file comment).
std::string RenderTraceHtml(const TraceMeta& meta,
                            const std::vector<runner::v1::GeneratedToken>& tokens);

// Writes `contents` to `path` (replacing it); NOT_FOUND / INTERNAL naming the
// path when it cannot be opened or written.
absl::Status WriteTraceFile(const std::string& path, absl::string_view contents);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_TRACE_H_
