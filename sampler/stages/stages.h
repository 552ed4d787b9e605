// Every stage of stages/ and the chain, for code that assembles its own
// chains (policies). See chain.h for the order stages are meant to run in.
#ifndef ENTROSERVE_SAMPLER_STAGES_STAGES_H_
#define ENTROSERVE_SAMPLER_STAGES_STAGES_H_

#include "sampler/stages/chain.h"               // IWYU pragma: export
#include "sampler/stages/penalty_stages.h"      // IWYU pragma: export
#include "sampler/stages/selection_stages.h"    // IWYU pragma: export
#include "sampler/stages/temperature_stages.h"  // IWYU pragma: export
#include "sampler/stages/truncation_stages.h"   // IWYU pragma: export

#endif  // ENTROSERVE_SAMPLER_STAGES_STAGES_H_
