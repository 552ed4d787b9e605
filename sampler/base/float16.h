// IEEE binary16 ("half") and bfloat16 bit patterns to float and back. The
// one codec of the project: wire tensors (sampler/core/tensor.h) and
// checkpoint tensors (model_runner/checkpoint/safetensors.h) both use it.
#ifndef ENTROSERVE_SAMPLER_BASE_FLOAT16_H_
#define ENTROSERVE_SAMPLER_BASE_FLOAT16_H_

#include <cstdint>
#include <cstring>

namespace entroserve {

// The bits of a float and back (memcpy: no aliasing, compiles to a move).
inline uint32_t FloatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}
inline float BitsFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// Half / bfloat16 bits to float: exact for every pattern (finite values,
// infinities, NaN with its payload).
float HalfToFloat(uint16_t bits);
inline float BFloat16ToFloat(uint16_t bits) { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

// Float to half / bfloat16, rounding to nearest even. Half overflows to
// infinity from 65520 up; a NaN stays a quiet NaN.
uint16_t FloatToHalf(float value);
inline uint16_t FloatToBFloat16(float value) {
  const uint32_t u = FloatBits(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_BASE_FLOAT16_H_
