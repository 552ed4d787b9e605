// Seeds for rows and requests that sent none. Picked at the edge (samplerd
// for a row, runnerd for a request) and echoed back, so the draw that used
// it can be repeated; the samplers themselves never draw from a generator
// with hidden state (docs/SAMPLERS.md, "Deterministic draws").
#ifndef ENTROSERVE_SAMPLER_BASE_SEED_H_
#define ENTROSERVE_SAMPLER_BASE_SEED_H_

#include <cstdint>

namespace entroserve {

// A seed drawn from a non-deterministic source. Thread-safe.
uint64_t PickSeed();

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_BASE_SEED_H_
