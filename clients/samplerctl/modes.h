// How samplerctl shows a sampler's mode: its label and its terminal colour
// (the colours of the HTML trace, trace.h: flowing green, clarify yellow,
// explore cyan, resample red, adaptive magenta, alpha blue, the rest plain).
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_MODES_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_MODES_H_

#include <string>

#include "sampler/v1/sampler.pb.h"

namespace entroserve {

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
