// Fused CUDA kernels of a graphed decode step (fused_kernels.cu; built only
// with a CUDA libtorch and nvcc: ENTROSERVE_FUSED_KERNELS, set by
// model_runner/model/CMakeLists.txt). Each replaces a handful of ATen kernels
// with one and computes what they compute, rounding every intermediate to the
// 16-bit type where the ATen operations would (transformers' order of
// operations, as in transformer.cc); only sums run in another order. No CUDA
// types here: pointers are device memory, `stream` a cudaStream_t.
// fused_ops.h holds the at::Tensor interface.
#ifndef ENTROSERVE_MODEL_RUNNER_FUSED_KERNELS_H_
#define ENTROSERVE_MODEL_RUNNER_FUSED_KERNELS_H_

#include <cstdint>

namespace entroserve {
namespace fused {

enum class Half { kBFloat16, kFloat16 };

// sum = x + add (rounded; skipped when add is null), then
// norm = weight * T(sum * rsqrt(mean(sum^2) + eps)), per row of `cols`.
void AddRmsNorm(Half type, const void* x, const void* add, const void* weight, void* sum,
                void* norm, int rows, int cols, float eps, void* stream);

// out [rows, inter] = T(silu(gate)) * up, gate_up [rows, 2 * inter].
void SiluMul(Half type, const void* gate_up, void* out, int rows, int inter, void* stream);

// From qkv [tokens, (heads + 2 kv_heads) * head_dim] and the rotary tables
// cos, sin [tokens, head_dim]: the rotated queries into q [tokens, heads,
// head_dim], the rotated keys and the values into rows key_rows[t * kv_heads
// + h] and value_rows[...] of `pool` seen as [*, head_dim].
void RopeStore(Half type, const void* qkv, const void* cos, const void* sin, void* pool,
               const int64_t* key_rows, const int64_t* value_rows, void* q, int tokens, int heads,
               int kv_heads, int head_dim, void* stream);

// Where a layer's keys are in the static KV cache
// [rows + 1, layers, 2, kv_heads, positions, head_dim].
struct CacheLayout {
  int64_t row_stride;    // elements of one row
  int64_t layer_offset;  // of layer l's keys in a row
  int64_t kv_stride;     // from keys to values
  int64_t head_stride;   // from one kv head to the next
};

// Attention of one new token per batch member b over the keys of cache row
// rows[b] at positions [first, positions[b]] (first: 0, or the start of the
// sliding window when window > 0), for q [batch, heads, head_dim]:
// scores T(T(q.k) * scale) (written to capture[b * capture_stride + h * keys
// + k] when capture is not null), softmax in float32 rounded to T, values
// summed in float32: out [batch, heads * head_dim]. `keys` (the graph's key
// bucket) bounds the positions. False (nothing launched) for shapes it does
// not handle: head_dim not dividing 256, keys beyond 8192.
bool DecodeAttention(Half type, const void* q, const void* pool, const int64_t* rows,
                     const int64_t* positions, void* out, void* capture, int64_t capture_stride,
                     const CacheLayout& layout, int batch, int heads, int kv_heads, int head_dim,
                     int keys, float scale, int window, void* stream);

// The last launch's error (cudaGetLastError), or null.
const char* LastError();

}  // namespace fused
}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_FUSED_KERNELS_H_
