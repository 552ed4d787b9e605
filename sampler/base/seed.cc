#include "sampler/base/seed.h"

#include "absl/random/random.h"

namespace entroserve {

uint64_t PickSeed() {
  // absl::BitGen seeds itself from the OS's entropy; a generator per call
  // keeps this free of shared state.
  absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

}  // namespace entroserve
