#include "sampler/core/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "sampler/core/multiversion.h"

namespace entroserve {
namespace {

// The decoding and checking loops below run over every row at the edge
// (128k logits + 32 x 4096 attention scores per row), so they are written
// branch-free on integer bit patterns, which GCC vectorises: float
// comparisons in an early-exit or a select would keep them scalar
// (~1 ns per element, ~0.4 ms per row).

// IEEE binary16 bits to float, exact for every pattern (the same values as
// sampler/base/float16.h's HalfToFloat), with integer selects only.
inline float HalfBitsToFloat(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7fffu;  // exponent and mantissa
  // Normal: move the field into place and rebias the exponent by 127 - 15.
  const uint32_t normal = (magnitude << 13) + 0x38000000u;
  // Inf / NaN: exponent 31 becomes 255 (rebias by another 128 - 16),
  // mantissa (the NaN payload) kept.
  const uint32_t special = normal + 0x38000000u;
  // Zero / subnormal: mantissa * 2^-24, exact in float.
  const uint32_t subnormal =
      FloatBits(static_cast<float>(static_cast<int32_t>(magnitude)) * 5.9604644775390625e-8f);
  // Selects as bit masks: GCC moves the float multiply above into the arm
  // of a `?:` and then cannot vectorise the loop ("control flow in loop").
  const uint32_t is_special = 0u - static_cast<uint32_t>(magnitude >= 0x7c00u);
  const uint32_t is_subnormal = 0u - static_cast<uint32_t>(magnitude < 0x0400u);
  const uint32_t bits = (subnormal & is_subnormal) |
                        (~is_subnormal & ((special & is_special) | (normal & ~is_special)));
  return BitsFloat(bits | sign);
}

// Reads little-endian 16-bit words (the host is little-endian: x86-64 and
// aarch64 as built here).
inline uint32_t Load16(const char* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bits;
}

ENTROSERVE_MULTIVERSION void DecodeHalf(const char* data, int64_t numel, float* out) {
  for (int64_t i = 0; i < numel; ++i) out[i] = HalfBitsToFloat(Load16(data + 2 * i));
}

ENTROSERVE_MULTIVERSION void DecodeBFloat16(const char* data, int64_t numel, float* out) {
  for (int64_t i = 0; i < numel; ++i) out[i] = BitsFloat(Load16(data + 2 * i) << 16);
}

// FloatToBFloat16 on every element, branch-free (a NaN keeps its payload's
// top bits and is made quiet; everything else rounds to nearest even).
ENTROSERVE_MULTIVERSION void EncodeBFloat16(const float* x, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = FloatBits(x[i]);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    const uint32_t is_nan = 0u - static_cast<uint32_t>((u & 0x7fffffffu) > 0x7f800000u);
    const uint16_t bits = static_cast<uint16_t>((quiet & is_nan) | (rounded & ~is_nan));
    std::memcpy(out + 2 * i, &bits, 2);
  }
}

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;  // +inf; |x| above it is NaN

// Nonzero when x[0, n) holds a NaN or +inf; *any_finite nonzero when it
// holds a finite value.
ENTROSERVE_MULTIVERSION uint32_t ScanLogits(const float* x, size_t n, uint32_t* any_finite) {
  uint32_t bad = 0;
  uint32_t finite = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = FloatBits(x[i]);
    const uint32_t magnitude = u & kAbsMask;
    bad |= static_cast<uint32_t>(magnitude > kInfBits) | static_cast<uint32_t>(u == kInfBits);
    finite |= static_cast<uint32_t>(magnitude < kInfBits);
  }
  *any_finite = finite;
  return bad;
}

// Nonzero when x[0, n) holds a NaN or an infinity.
ENTROSERVE_MULTIVERSION uint32_t AnyNonFinite(const float* x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    bad |= static_cast<uint32_t>((FloatBits(x[i]) & kAbsMask) >= kInfBits);
  }
  return bad;
}

}  // namespace

int ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat16:
      return 2;
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "FLOAT32";
    case DType::kFloat16:
      return "FLOAT16";
    case DType::kBFloat16:
      return "BFLOAT16";
  }
  return "UNKNOWN";
}

absl::Status DecodeTensor(DType dtype, std::string_view bytes, int64_t numel,
                          std::string_view field, std::vector<float>* out) {
  if (numel < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), " has a negative number of elements (", numel, ")"));
  }
  // Checked before multiplying: a huge shape must not overflow into a size
  // that matches (and then resize `out` beyond memory).
  const int64_t have = static_cast<int64_t>(bytes.size());
  const int64_t want =
      numel <= have ? numel * ElementSize(dtype) : std::numeric_limits<int64_t>::max();
  if (have != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ".data has ", bytes.size(), " bytes, but shape holds ",
                     numel, " elements of ", DTypeName(dtype), " (",
                     numel <= have ? absl::StrCat(want) : std::string("more"), " bytes)"));
  }
  out->resize(static_cast<size_t>(numel));
  DecodeTensorTo(dtype, bytes.data(), numel, out->data());
  return absl::OkStatus();
}

void DecodeTensorTo(DType dtype, const char* bytes, int64_t numel, float* out) {
  if (numel <= 0) return;
  switch (dtype) {
    case DType::kFloat32:
      std::memcpy(out, bytes, static_cast<size_t>(numel) * sizeof(float));
      break;
    case DType::kFloat16:
      DecodeHalf(bytes, numel, out);
      break;
    case DType::kBFloat16:
      DecodeBFloat16(bytes, numel, out);
      break;
  }
}

absl::Status CheckLogits(absl::Span<const float> logits, std::string_view field) {
  if (logits.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(field), " is empty"));
  }
  // Fast path: one branch-free pass on the bit patterns detecting any NaN or
  // +inf, and whether any value is finite.
  uint32_t any_finite = 0;
  const uint32_t bad = ScanLogits(logits.data(), logits.size(), &any_finite);
  if (bad) {
    for (size_t i = 0; i < logits.size(); ++i) {
      const float v = logits[i];
      if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) {
        return absl::InvalidArgumentError(
            absl::StrCat(std::string(field), "[", i, "] is ", std::isnan(v) ? "NaN" : "+inf",
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
  if (!AnyNonFinite(scores.data(), scores.size())) return absl::OkStatus();
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(field), "[", i, "] is ", scores[i],
                                                     "; attention scores must be finite"));
    }
  }
  return absl::OkStatus();
}

void EncodeTensorTo(DType dtype, absl::Span<const float> values, char* out) {
  char* p = out;
  switch (dtype) {
    case DType::kFloat32:
      if (!values.empty()) std::memcpy(p, values.data(), 4 * values.size());
      break;
    case DType::kFloat16:
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = FloatToHalf(values[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case DType::kBFloat16:
      EncodeBFloat16(values.data(), values.size(), p);
      break;
  }
}

std::string EncodeTensor(DType dtype, absl::Span<const float> values) {
  std::string out;
  out.resize(values.size() * ElementSize(dtype));
  EncodeTensorTo(dtype, values, out.data());
  return out;
}

}  // namespace entroserve
