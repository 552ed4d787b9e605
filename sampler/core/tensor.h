// Decoding of wire tensors (raw little-endian bytes) into floats, with the
// checks made at the edge (docs/ARCHITECTURE.md "Tensors on the wire"):
// sizes, and no NaN or +Inf in logits.
#ifndef ENTROSERVE_SAMPLER_CORE_TENSOR_H_
#define ENTROSERVE_SAMPLER_CORE_TENSOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "sampler/base/float16.h"  // the codec of the 16-bit dtypes

namespace entroserve {

enum class DType { kFloat32 = 1, kFloat16 = 2, kBFloat16 = 3 };

// Bytes per element of `dtype`.
int ElementSize(DType dtype);
const char* DTypeName(DType dtype);

// Decodes `bytes` (numel elements of `dtype`, little-endian) into `out`,
// resizing it. `bytes.size()` must be numel * ElementSize(dtype); `field`
// names the tensor in the error ("rows[3].logits").
absl::Status DecodeTensor(DType dtype, std::string_view bytes, int64_t numel,
                          std::string_view field, std::vector<float>* out);

// The decoding itself, unchecked: `bytes` holds numel * ElementSize(dtype)
// bytes and `out` room for numel floats.
void DecodeTensorTo(DType dtype, const char* bytes, int64_t numel, float* out);

// Logits may hold -inf (a masked token) but no NaN and no +inf, and at least
// one finite value. The error names `field` and the first bad index.
absl::Status CheckLogits(absl::Span<const float> logits, std::string_view field);

// Attention scores must all be finite.
absl::Status CheckAttention(absl::Span<const float> scores, std::string_view field);

// Encodes floats as `dtype` bytes (used by clients, tests and benchmarks).
std::string EncodeTensor(DType dtype, absl::Span<const float> values);

// The same bytes written to `out`, which holds values.size() * ElementSize.
void EncodeTensorTo(DType dtype, absl::Span<const float> values, char* out);

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_TENSOR_H_
