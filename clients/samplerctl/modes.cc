#include "clients/samplerctl/modes.h"

#include "absl/strings/str_cat.h"

namespace entroserve {

const char* ModeLabel(sampler::v1::Mode mode) {
  switch (mode) {
    case sampler::v1::MODE_GREEDY:
      return "greedy";
    case sampler::v1::MODE_SAMPLE:
      return "sample";
    case sampler::v1::MODE_FLOWING:
      return "flowing";
    case sampler::v1::MODE_CLARIFY:
      return "clarify";
    case sampler::v1::MODE_EXPLORE:
      return "explore";
    case sampler::v1::MODE_RESAMPLE:
      return "resample";
    case sampler::v1::MODE_ADAPTIVE:
      return "adaptive";
    case sampler::v1::MODE_ALPHA:
      return "alpha";
    default:
      return "unspecified";
  }
}

const char* ModeColor(sampler::v1::Mode mode) {
  switch (mode) {
    case sampler::v1::MODE_FLOWING:
      return "\033[32m";  // green
    case sampler::v1::MODE_CLARIFY:
      return "\033[33m";  // yellow
    case sampler::v1::MODE_EXPLORE:
      return "\033[36m";  // cyan
    case sampler::v1::MODE_RESAMPLE:
      return "\033[31m";  // red
    case sampler::v1::MODE_ADAPTIVE:
      return "\033[35m";  // magenta
    case sampler::v1::MODE_ALPHA:
      return "\033[34m";  // blue
    default:
      return "\033[0m";
  }
}

std::string ModeLegend() {
  std::string legend = "legend:";
  for (sampler::v1::Mode mode : kLegendModes) {
    absl::StrAppend(&legend, " ", ModeColor(mode), ModeLabel(mode), kColorReset);
  }
  return legend;
}

}  // namespace entroserve
