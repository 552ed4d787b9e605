// How samplerctl shows a sampler's mode: its label and its terminal colour
// (the colours of the HTML trace, trace.h: flowing green, clarify yellow,
// explore cyan, resample red, adaptive magenta, alpha blue, the rest plain).
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_MODES_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_MODES_H_

#include <array>
#include <string>

#include "sampler/v1/sampler.pb.h"

namespace entroserve {

// The modes in the order of the legend.
inline constexpr std::array<sampler::v1::Mode, 8> kLegendModes = {
    sampler::v1::MODE_FLOWING,  sampler::v1::MODE_CLARIFY, sampler::v1::MODE_EXPLORE,
    sampler::v1::MODE_RESAMPLE, sampler::v1::MODE_ADAPTIVE, sampler::v1::MODE_ALPHA,
    sampler::v1::MODE_SAMPLE,   sampler::v1::MODE_GREEDY};

// "flowing", "clarify", ...; "unspecified" for MODE_UNSPECIFIED.
const char* ModeLabel(sampler::v1::Mode mode);

// The ANSI escape that starts the mode's colour.
const char* ModeColor(sampler::v1::Mode mode);

// Ends a colour.
inline constexpr char kColorReset[] = "\033[0m";

// "legend: flowing clarify ..." with each label in its colour.
std::string ModeLegend();

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_MODES_H_
