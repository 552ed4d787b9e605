// Counter-based random numbers (Philox4x32-10, Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011). A draw is a pure function of
// (seed, step, draw index): no generator state is carried, so the token a row
// gets is independent of batch composition, replica and thread count.
#ifndef ENTROSERVE_SAMPLER_CORE_RNG_H_
#define ENTROSERVE_SAMPLER_CORE_RNG_H_

#include <array>
#include <cstdint>

namespace entroserve {

// The Philox4x32 block function with 10 rounds.
std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> counter,
                                   std::array<uint32_t, 2> key);

// Uniform numbers for one (seed, step): Uniform(i) is the i-th draw of that
// step. Cheap to construct; thread-compatible (const methods only).
class CounterRng {
 public:
  CounterRng(uint64_t seed, int64_t step) : seed_(seed), step_(step) {}

  // A double in [0, 1) with 53 random bits, for draw index `draw`.
  double Uniform(uint32_t draw) const;
  // A standard exponential variate (-log(1-u)) for draw index `draw`.
  double Exponential(uint32_t draw) const;

 private:
  uint64_t seed_;
  int64_t step_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_RNG_H_
