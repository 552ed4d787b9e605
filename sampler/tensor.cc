#include "sampler/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace entroserve {
namespace {

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Reads little-endian 16-bit words (the host is little-endian: x86-64 and
// aarch64 as built here).
template <typename Convert>
void Decode16(const char* data, int64_t numel, float* out, Convert convert) {
  for (int64_t i = 0; i < numel; ++i) {
    uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    out[i] = convert(bits);
  }
}

}  // namespace

int ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "FLOAT32";
    case DType::kFloat16: return "FLOAT16";
    case DType::kBFloat16: return "BFLOAT16";
  }
  return "UNKNOWN";
}

float BFloat16ToFloat(uint16_t bits) { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

uint16_t FloatToBFloat16(float value) {
  uint32_t u = FloatBits(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    // Zero or subnormal: value = mant * 2^-24.
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t FloatToHalf(float value) {
  uint32_t u = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return sign | 0x7e00u;          // NaN
  if (u >= 0x477ff000u) return sign | 0x7c00u;         // overflow -> inf (>= 65520)
  if (u < 0x38800000u) {                               // subnormal or zero
    if (u < 0x33000000u) return sign;                  // < 2^-25 rounds to 0
    const uint32_t exp = u >> 23;
    const uint32_t mant = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;                  // 14 + (112 - exp) + 1 - 1
    uint32_t half = mant >> (shift);
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t rounded = u + 0xfffu + ((u >> 13) & 1u);
  return sign | static_cast<uint16_t>(((rounded >> 13) - (112u << 10)) & 0xffffu);
}

absl::Status DecodeTensor(DType dtype, std::string_view bytes, int64_t numel,
                          std::string_view field, std::vector<float>* out) {
  const int64_t want = numel * ElementSize(dtype);
  if (static_cast<int64_t>(bytes.size()) != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(field), ".data has ", bytes.size(), " bytes, but shape holds ", numel,
        " elements of ", DTypeName(dtype), " (", want, " bytes)"));
  }
  out->resize(static_cast<size_t>(numel));
  switch (dtype) {
    case DType::kFloat32:
      if (numel > 0) std::memcpy(out->data(), bytes.data(), static_cast<size_t>(want));
      break;
    case DType::kFloat16:
      Decode16(bytes.data(), numel, out->data(), HalfToFloat);
      break;
    case DType::kBFloat16:
      Decode16(bytes.data(), numel, out->data(), BFloat16ToFloat);
      break;
  }
  return absl::OkStatus();
}

absl::Status CheckLogits(absl::Span<const float> logits, std::string_view field) {
  if (logits.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), " is empty"));
  }
  // Fast path: one branch-free pass detecting any NaN or +inf, and whether
  // any value is finite.
  bool bad = false;
  bool any_finite = false;
  for (float v : logits) {
    bad |= (v != v) | (v == std::numeric_limits<float>::infinity());
    any_finite |= (v > -std::numeric_limits<float>::infinity() &&
                   v < std::numeric_limits<float>::infinity());
  }
  if (bad) {
    for (size_t i = 0; i < logits.size(); ++i) {
      const float v = logits[i];
      if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) {
        return absl::InvalidArgumentError(absl::StrCat(
            std::string(field), "[", i, "] is ", std::isnan(v) ? "NaN" : "+inf",
            "; logits must be finite or -inf (a masked token)"));
      }
    }
  }
  if (!any_finite) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), " has no finite value: every token is masked"));
  }
  return absl::OkStatus();
}

absl::Status CheckAttention(absl::Span<const float> scores, std::string_view field) {
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(field), "[", i, "] is ", scores[i], "; attention scores must be finite"));
    }
  }
  return absl::OkStatus();
}

std::string EncodeTensor(DType dtype, absl::Span<const float> values) {
  std::string out;
  out.resize(values.size() * ElementSize(dtype));
  char* p = out.data();
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kFloat32:
        std::memcpy(p + 4 * i, &values[i], 4);
        break;
      case DType::kFloat16: {
        uint16_t h = FloatToHalf(values[i]);
        std::memcpy(p + 2 * i, &h, 2);
        break;
      }
      case DType::kBFloat16: {
        uint16_t b = FloatToBFloat16(values[i]);
        std::memcpy(p + 2 * i, &b, 2);
        break;
      }
    }
  }
  return out;
}

}  // namespace entroserve
