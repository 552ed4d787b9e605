// The fused kernels of fused_kernels.h. One thread block per row (norms,
// rotations) or per (member, head) (attention); every 16-bit intermediate of
// the ATen operations they replace is rounded here too (Round).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "model_runner/model/fused_kernels.h"

namespace entroserve {
namespace fused {
namespace {

template <typename T>
__device__ __forceinline__ float ToFloat(T v);
template <>
__device__ __forceinline__ float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);  // to nearest even, as c10::BFloat16
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half(v);  // to nearest even
}

// What a T-typed intermediate holds.
template <typename T>
__device__ __forceinline__ float Round(float v) {
  return ToFloat<T>(FromFloat<T>(v));
}

__device__ __forceinline__ float NegInf() { return -__int_as_float(0x7f800000); }

// Sum (or max) over the block, in every thread; blockDim.x a multiple of 32;
// `scratch` holds 32 floats.
template <bool kMax>
__device__ float BlockReduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? scratch[lane] : (kMax ? NegInf() : 0.f);
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  __syncthreads();  // scratch free again
  return v;
}

template <typename T>
__global__ void AddRmsNormKernel(const T* x, const T* add, const T* weight, T* sum, T* norm,
                                 int cols, float eps) {
  __shared__ float scratch[32];
  const size_t base = static_cast<size_t>(blockIdx.x) * cols;
  float squares = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    float v = ToFloat<T>(x[base + i]);
    if (add != nullptr) {
      const T s = FromFloat<T>(v + ToFloat<T>(add[base + i]));
      sum[base + i] = s;
      v = ToFloat<T>(s);
    }
    squares += v * v;
  }
  const float rstd = rsqrtf(BlockReduce<false>(squares, scratch) / cols + eps);
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    // The same thread wrote sum[base + i] above.
    const float v = ToFloat<T>(add != nullptr ? sum[base + i] : x[base + i]);
    norm[base + i] = FromFloat<T>(ToFloat<T>(weight[i]) * Round<T>(v * rstd));
  }
}

template <typename T>
__global__ void SiluMulKernel(const T* gate_up, T* out, int rows, int inter) {
  const size_t n = static_cast<size_t>(rows) * inter;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / inter, c = i % inter;
    const float g = ToFloat<T>(gate_up[r * 2 * inter + c]);
    const float u = ToFloat<T>(gate_up[r * 2 * inter + inter + c]);
    out[i] = FromFloat<T>(Round<T>(g / (1.0f + expf(-g))) * u);
  }
}

template <typename T>
__global__ void RopeStoreKernel(const T* qkv, const T* cos, const T* sin, T* pool,
                                const int64_t* key_rows, const int64_t* value_rows, T* q, int heads,
                                int kv_heads, int head_dim) {
  const int t = blockIdx.x;
  const int half = head_dim / 2;
  const int width = (heads + 2 * kv_heads) * head_dim;
  const T* in = qkv + static_cast<size_t>(t) * width;
  const T* c = cos + static_cast<size_t>(t) * head_dim;
  const T* s = sin + static_cast<size_t>(t) * head_dim;
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    const int head = i / head_dim, d = i % head_dim;
    if (head < heads + kv_heads) {
      // x * cos + rotate_half(x) * sin, each product and the sum in T.
      const float x = ToFloat<T>(in[i]);
      const float other = d < half ? -ToFloat<T>(in[i + half]) : ToFloat<T>(in[i - half]);
      const T y = FromFloat<T>(Round<T>(x * ToFloat<T>(c[d])) + Round<T>(other * ToFloat<T>(s[d])));
      if (head < heads) {
        q[(static_cast<size_t>(t) * heads + head) * head_dim + d] = y;
      } else {
        pool[key_rows[t * kv_heads + head - heads] * head_dim + d] = y;
      }
    } else {
      pool[value_rows[t * kv_heads + head - heads - kv_heads] * head_dim + d] = in[i];
    }
  }
}

struct AttentionArgs {
  CacheLayout layout;
  int heads, kv_heads, head_dim, keys, window;
  float scale;
  int64_t capture_stride;
};

// Block (b, h); shared: q [head_dim], scores [keys], scratch [32],
// partial sums [blockDim.x]. blockDim.x is a multiple of head_dim.
template <typename T>
__global__ void DecodeAttentionKernel(const T* q, const T* pool, const int64_t* rows,
                                      const int64_t* positions, T* out, T* capture,
                                      AttentionArgs a) {
  extern __shared__ float shared[];
  float* qs = shared;
  float* scores = qs + a.head_dim;
  float* scratch = scores + a.keys;
  float* partial = scratch + 32;
  const int b = blockIdx.x / a.heads, h = blockIdx.x % a.heads;
  const int kh = h / (a.heads / a.kv_heads);
  const int64_t pos = positions[b];
  const int64_t first = a.window > 0 && pos + 1 > a.window ? pos + 1 - a.window : 0;
  const T* key =
      pool + rows[b] * a.layout.row_stride + a.layout.layer_offset + kh * a.layout.head_stride;
  const T* value = key + a.layout.kv_stride;
  const size_t qh = (static_cast<size_t>(b) * a.heads + h) * a.head_dim;
  for (int d = threadIdx.x; d < a.head_dim; d += blockDim.x) qs[d] = ToFloat<T>(q[qh + d]);
  __syncthreads();
  float top = NegInf();
  for (int k = threadIdx.x; k < a.keys; k += blockDim.x) {
    float s = NegInf();
    if (k >= first && k <= pos) {
      const T* kr = key + static_cast<size_t>(k) * a.head_dim;
      float dot = 0.f;
      for (int d = 0; d < a.head_dim; ++d) dot += qs[d] * ToFloat<T>(kr[d]);
      const T scaled = FromFloat<T>(Round<T>(dot) * a.scale);
      if (capture != nullptr) {
        capture[static_cast<size_t>(b) * a.capture_stride + static_cast<size_t>(h) * a.keys + k] =
            scaled;
      }
      s = ToFloat<T>(scaled);
    }
    scores[k] = s;
    top = fmaxf(top, s);
  }
  top = BlockReduce<true>(top, scratch);
  float total = 0.f;
  for (int k = threadIdx.x; k < a.keys; k += blockDim.x) {
    const float e = k >= first && k <= pos ? expf(scores[k] - top) : 0.f;
    scores[k] = e;
    total += e;
  }
  total = BlockReduce<false>(total, scratch);
  for (int k = threadIdx.x; k < a.keys; k += blockDim.x) scores[k] = Round<T>(scores[k] / total);
  __syncthreads();
  const int groups = blockDim.x / a.head_dim;
  const int d = threadIdx.x % a.head_dim, group = threadIdx.x / a.head_dim;
  float acc = 0.f;
  for (int64_t k = first + group; k <= pos; k += groups) {
    acc += scores[k] * ToFloat<T>(value[k * a.head_dim + d]);
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.x < a.head_dim) {
    float sum = 0.f;
    for (int g = 0; g < groups; ++g) sum += partial[g * a.head_dim + threadIdx.x];
    out[qh + threadIdx.x] = FromFloat<T>(sum);
  }
}

cudaStream_t Stream(void* stream) { return static_cast<cudaStream_t>(stream); }

template <typename T>
void LaunchAttention(const void* q, const void* pool, const int64_t* rows, const int64_t* positions,
                     void* out, void* capture, const AttentionArgs& a, int batch, int threads,
                     size_t shared, void* stream) {
  DecodeAttentionKernel<T><<<batch * a.heads, threads, shared, Stream(stream)>>>(
      static_cast<const T*>(q), static_cast<const T*>(pool), rows, positions, static_cast<T*>(out),
      static_cast<T*>(capture), a);
}

}  // namespace

void AddRmsNorm(Half type, const void* x, const void* add, const void* weight, void* sum,
                void* norm, int rows, int cols, float eps, void* stream) {
  if (type == Half::kBFloat16) {
    using T = __nv_bfloat16;
    AddRmsNormKernel<T><<<rows, 256, 0, Stream(stream)>>>(
        static_cast<const T*>(x), static_cast<const T*>(add), static_cast<const T*>(weight),
        static_cast<T*>(sum), static_cast<T*>(norm), cols, eps);
  } else {
    using T = __half;
    AddRmsNormKernel<T><<<rows, 256, 0, Stream(stream)>>>(
        static_cast<const T*>(x), static_cast<const T*>(add), static_cast<const T*>(weight),
        static_cast<T*>(sum), static_cast<T*>(norm), cols, eps);
  }
}

void SiluMul(Half type, const void* gate_up, void* out, int rows, int inter, void* stream) {
  const size_t n = static_cast<size_t>(rows) * inter;
  const int blocks = static_cast<int>(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096);
  if (type == Half::kBFloat16) {
    using T = __nv_bfloat16;
    SiluMulKernel<T><<<blocks, 256, 0, Stream(stream)>>>(static_cast<const T*>(gate_up),
                                                         static_cast<T*>(out), rows, inter);
  } else {
    using T = __half;
    SiluMulKernel<T><<<blocks, 256, 0, Stream(stream)>>>(static_cast<const T*>(gate_up),
                                                         static_cast<T*>(out), rows, inter);
  }
}

void RopeStore(Half type, const void* qkv, const void* cos, const void* sin, void* pool,
               const int64_t* key_rows, const int64_t* value_rows, void* q, int tokens, int heads,
               int kv_heads, int head_dim, void* stream) {
  if (type == Half::kBFloat16) {
    using T = __nv_bfloat16;
    RopeStoreKernel<T><<<tokens, 256, 0, Stream(stream)>>>(
        static_cast<const T*>(qkv), static_cast<const T*>(cos), static_cast<const T*>(sin),
        static_cast<T*>(pool), key_rows, value_rows, static_cast<T*>(q), heads, kv_heads, head_dim);
  } else {
    using T = __half;
    RopeStoreKernel<T><<<tokens, 256, 0, Stream(stream)>>>(
        static_cast<const T*>(qkv), static_cast<const T*>(cos), static_cast<const T*>(sin),
        static_cast<T*>(pool), key_rows, value_rows, static_cast<T*>(q), heads, kv_heads, head_dim);
  }
}

bool DecodeAttention(Half type, const void* q, const void* pool, const int64_t* rows,
                     const int64_t* positions, void* out, void* capture, int64_t capture_stride,
                     const CacheLayout& layout, int batch, int heads, int kv_heads, int head_dim,
                     int keys, float scale, int window, void* stream) {
  if (head_dim <= 0 || 256 % head_dim != 0 || keys > 8192 || heads % kv_heads != 0) return false;
  const int threads = 256;
  const size_t shared = sizeof(float) * (head_dim + keys + 32 + threads);
  const AttentionArgs a{layout, heads, kv_heads, head_dim, keys, window, scale, capture_stride};
  if (type == Half::kBFloat16) {
    LaunchAttention<__nv_bfloat16>(q, pool, rows, positions, out, capture, a, batch, threads,
                                   shared, stream);
  } else {
    LaunchAttention<__half>(q, pool, rows, positions, out, capture, a, batch, threads, shared,
                            stream);
  }
  return true;
}

const char* LastError() {
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace fused
}  // namespace entroserve
