#include "clients/samplerctl/generation_stats.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/samplerctl/modes.h"

namespace entroserve {

void GenerationStats::Add(const runner::v1::GeneratedToken& token) {
  ++tokens;
  ++modes[token.mode()];
  entropy_sum += token.signals().entropy();
  varentropy_sum += token.signals().varentropy();
}

std::string FormatModeCounts(const GenerationStats& stats) {
  std::vector<std::pair<sampler::v1::Mode, int32_t>> counts;
  for (sampler::v1::Mode mode : kLegendModes) {
    const auto it = stats.modes.find(mode);
    if (it != stats.modes.end() && it->second > 0) counts.emplace_back(mode, it->second);
  }
  // Modes outside the legend (unspecified) last.
  for (const auto& [mode, count] : stats.modes) {
    if (std::find(kLegendModes.begin(), kLegendModes.end(), mode) == kLegendModes.end() &&
        count > 0) {
      counts.emplace_back(mode, count);
    }
  }
  if (counts.empty()) return "-";
  std::stable_sort(counts.begin(), counts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return absl::StrJoin(counts, ", ", [&stats](std::string* out, const auto& entry) {
    absl::StrAppendFormat(out, "%s %d (%.0f%%)", ModeLabel(entry.first), entry.second,
                          100.0 * entry.second / std::max(stats.tokens, 1));
  });
}

std::string FormatSummary(const GenerationStats& stats) {
  return absl::StrFormat(
      "%d tokens, %.1f tokens/s; modes: %s; mean entropy %.3f bits, mean varentropy %.3f bits^2",
      stats.tokens, stats.TokensPerSecond(), FormatModeCounts(stats), stats.MeanEntropy(),
      stats.MeanVarentropy());
}

}  // namespace entroserve
