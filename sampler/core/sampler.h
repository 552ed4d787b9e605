// The sampler interface: one instance per configuration, one call per row.
//
// Contract: a Sampler is immutable after creation and thread-safe; Sample()
// is a pure function of (row, state in) -> (output, state out): the token is
// determined by the logits, attention, config, state, seed and step alone.
// Sample() pushes the chosen token onto state.recent_tokens and updates any
// policy state; the caller owns the state and sends it back next step.
#ifndef ENTROSERVE_SAMPLER_CORE_SAMPLER_H_
#define ENTROSERVE_SAMPLER_CORE_SAMPLER_H_

#include <string>

#include "absl/status/statusor.h"
#include "sampler/core/row.h"
#include "sampler/core/types.h"

namespace entroserve {

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string Name() const = 0;
  // True when a step after the first cannot be served without the state
  // returned by the previous step (penalty history, alpha window, mirostat mu).
  virtual bool NeedsState() const = 0;
  virtual absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const = 0;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_SAMPLER_H_
