// The fused kernels of a graphed decode step (fused_kernels.h) on at::Tensor:
// what decode_graphs.cc calls when ModelOptions.fused_kernels is on. CUDA
// tensors of a 16-bit dtype, contiguous; each call launches one kernel on
// the current stream (so it is recorded into a graph being captured).
// Without the kernels compiled in (a CPU libtorch, or no nvcc) they are
// absent: FusedKernelsCompiledIn() is false and the calls throw.
#ifndef ENTROSERVE_MODEL_RUNNER_FUSED_OPS_H_
#define ENTROSERVE_MODEL_RUNNER_FUSED_OPS_H_

#include <ATen/ATen.h>

#include <cstdint>

#include "model_runner/model/transformer_internal.h"

namespace entroserve {

bool FusedKernelsCompiledIn();

// (x + add, weight * RMSNorm(x + add)); with `add` undefined, (x, weight *
// RMSNorm(x)). RmsNorm's math (transformer.cc) on the sum rounded as a
// tensor of x's dtype holds it.
struct NormedSum {
  at::Tensor sum, normed;
};
NormedSum FusedAddRmsNorm(const at::Tensor& x, const at::Tensor& add, const at::Tensor& weight,
                          double eps);

// silu(gate) * up of gate_up [rows, 2 * intermediate] (the fused gate/up
// projection): [rows, intermediate].
at::Tensor FusedSiluMul(const at::Tensor& gate_up);

// The rotated queries [tokens, heads, head_dim] of the fused projection
// `qkv`; its rotated keys and its values go into `pool` (any shape, seen as
// [*, head_dim]) at the rows key_rows, value_rows [tokens * kv_heads].
at::Tensor FusedRopeStore(const Model::Impl& m, const at::Tensor& qkv, const Rotary& rotary,
                          const at::Tensor& pool, const at::Tensor& key_rows,
                          const at::Tensor& value_rows);

// Decode attention of q [batch, heads, head_dim] over layer `layer` of the
// static KV cache `pool` (decode_graphs.h), rows `rows`, new positions
// `positions`, at most `keys` keys; pre-softmax scores into `capture`
// ([batch, heads * keys] view of a graph's output) when it is defined.
// Undefined when the shape is not one the kernel handles (the caller then
// runs the ATen operations).
at::Tensor FusedDecodeAttention(const Model::Impl& m, const at::Tensor& q, const at::Tensor& pool,
                                int64_t layer, const at::Tensor& rows, const at::Tensor& positions,
                                int64_t keys, const at::Tensor& capture);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_FUSED_OPS_H_
