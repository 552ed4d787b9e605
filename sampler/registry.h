// The sampler registry: creates samplers from their typed config and lists
// them with their descriptions and defaults (for ListSamplers).
#ifndef ENTROSERVE_SAMPLER_REGISTRY_H_
#define ENTROSERVE_SAMPLER_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sampler/core/configs.h"
#include "sampler/core/sampler.h"

namespace entroserve {

struct SamplerDescription {
  std::string name;         // "entropix"
  std::string description;  // one sentence
  SamplerConfig defaults;   // the config with every default
  bool uses_attention = false;
  bool stateful = false;  // carries policy state beyond the token history
};

// Every sampler, in a fixed order.
const std::vector<SamplerDescription>& ListSamplers();

// The default config of the sampler called `name`; INVALID_ARGUMENT (listing the
// known names) for any other name.
absl::StatusOr<SamplerConfig> DefaultConfig(const std::string& name);

// Validates `config` and creates its sampler.
absl::StatusOr<std::unique_ptr<Sampler>> CreateSampler(const SamplerConfig& config);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_REGISTRY_H_
