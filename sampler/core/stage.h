// A sampling stage in the spirit of llama.cpp's sampler chain
// (src/llama-sampling.cpp): Apply() transforms the candidate set, Accept()
// records the token finally chosen. Unlike llama.cpp a stage holds only its
// configuration: everything that changes from step to step lives in the
// SamplerState passed in, so that any replica can continue any sequence.
//
// Thread-safety: a Stage is immutable after construction; Apply and Accept
// may run concurrently on different rows.
#ifndef ENTROSERVE_SAMPLER_CORE_STAGE_H_
#define ENTROSERVE_SAMPLER_CORE_STAGE_H_

#include <string>

#include "absl/status/status.h"
#include "sampler/core/candidates.h"
#include "sampler/core/rng.h"
#include "sampler/core/types.h"

namespace entroserve {

// What a stage sees of the current step besides the candidates.
struct StepContext {
  const SamplerState* state = nullptr;  // history, mirostat mu, ...
  const CounterRng* rng = nullptr;      // draws of this (seed, step)
  uint32_t next_draw = 0;               // next unused draw index
  SamplingParams* params = nullptr;     // stages record what they used
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string Name() const = 0;
  // Transforms `set`. Errors only for states the config cannot produce
  // (e.g. an empty set), never for normal input.
  virtual absl::Status Apply(CandidateSet& set, StepContext& ctx) const = 0;
  // Records the chosen token in `state` (default: nothing).
  virtual void Accept(int32_t token, const CandidateSet& set,
                      SamplerState& state) const {}
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_STAGE_H_
