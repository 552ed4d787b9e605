#include "model_runner/model/fused_ops.h"

#include <stdexcept>
#include <string>

#if defined(ENTROSERVE_FUSED_KERNELS)
#include <c10/cuda/CUDAStream.h>

#include "model_runner/model/fused_kernels.h"
#endif

namespace entroserve {

#if defined(ENTROSERVE_FUSED_KERNELS)
namespace {

fused::Half HalfOf(const at::Tensor& t) {
  if (t.scalar_type() == at::kBFloat16) return fused::Half::kBFloat16;
  if (t.scalar_type() == at::kHalf) return fused::Half::kFloat16;
  throw std::invalid_argument("fused kernels: a 16-bit tensor is needed");
}

void* Stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Throws the launch's error, if any (a bad launch configuration).
void Check(const char* what) {
  if (const char* error = fused::LastError()) {
    throw std::runtime_error(std::string("fused kernel ") + what + ": " + error);
  }
}

const int64_t* Indices(const at::Tensor& t) {
  if (t.scalar_type() != at::kLong || !t.is_contiguous()) {
    throw std::invalid_argument("fused kernels: contiguous int64 indices are needed");
  }
  return t.data_ptr<int64_t>();
}

}  // namespace

bool FusedKernelsCompiledIn() { return true; }

NormedSum FusedAddRmsNorm(const at::Tensor& x, const at::Tensor& add, const at::Tensor& weight,
                          double eps) {
  const at::Tensor input = x.contiguous();
  NormedSum out;
  out.sum = add.defined() ? at::empty_like(input) : input;
  out.normed = at::empty_like(input);
  const at::Tensor addend = add.defined() ? add.contiguous() : add;
  fused::AddRmsNorm(HalfOf(input), input.data_ptr(), add.defined() ? addend.data_ptr() : nullptr,
                    weight.data_ptr(), add.defined() ? out.sum.data_ptr() : nullptr,
                    out.normed.data_ptr(), static_cast<int>(input.size(0)),
                    static_cast<int>(input.size(1)), static_cast<float>(eps), Stream());
  Check("AddRmsNorm");
  return out;
}

at::Tensor FusedSiluMul(const at::Tensor& gate_up) {
  const at::Tensor in = gate_up.contiguous();
  const int64_t inter = in.size(1) / 2;
  at::Tensor out = at::empty({in.size(0), inter}, in.options());
  fused::SiluMul(HalfOf(in), in.data_ptr(), out.data_ptr(), static_cast<int>(in.size(0)),
                 static_cast<int>(inter), Stream());
  Check("SiluMul");
  return out;
}

at::Tensor FusedRopeStore(const Model::Impl& m, const at::Tensor& qkv, const Rotary& rotary,
                          const at::Tensor& pool, const at::Tensor& key_rows,
                          const at::Tensor& value_rows) {
  const at::Tensor in = qkv.contiguous();
  const at::Tensor cos = rotary.cos.contiguous(), sin = rotary.sin.contiguous();
  const int64_t T = in.size(0);
  at::Tensor q = at::empty({T, m.heads(), m.head_dim()}, in.options());
  fused::RopeStore(HalfOf(in), in.data_ptr(), cos.data_ptr(), sin.data_ptr(), pool.data_ptr(),
                   Indices(key_rows), Indices(value_rows), q.data_ptr(), static_cast<int>(T),
                   static_cast<int>(m.heads()), static_cast<int>(m.kv_heads()),
                   static_cast<int>(m.head_dim()), Stream());
  Check("RopeStore");
  return q;
}

at::Tensor FusedDecodeAttention(const Model::Impl& m, const at::Tensor& q, const at::Tensor& pool,
                                int64_t layer, const at::Tensor& rows, const at::Tensor& positions,
                                int64_t keys, const at::Tensor& capture) {
  const int64_t B = q.size(0), H = m.heads(), Dh = m.head_dim();
  // pool: [rows + 1, layers, 2, kv_heads, positions, head_dim], contiguous.
  fused::CacheLayout layout;
  layout.row_stride = pool.stride(0);
  layout.layer_offset = layer * pool.stride(1);
  layout.kv_stride = pool.stride(2);
  layout.head_stride = pool.stride(3);
  at::Tensor out = at::empty({B, H * Dh}, q.options());
  const int window = m.config.sliding_window ? static_cast<int>(*m.config.sliding_window) : 0;
  const bool launched = fused::DecodeAttention(
      HalfOf(q), q.contiguous().data_ptr(), pool.data_ptr(), Indices(rows), Indices(positions),
      out.data_ptr(), capture.defined() ? capture.data_ptr() : nullptr,
      capture.defined() ? capture.stride(0) : 0, layout, static_cast<int>(B), static_cast<int>(H),
      static_cast<int>(m.kv_heads()), static_cast<int>(Dh), static_cast<int>(keys),
      static_cast<float>(m.scale()), window, Stream());
  if (!launched) return at::Tensor();
  Check("DecodeAttention");
  return out;
}

#else  // no fused kernels in this build

namespace {
[[noreturn]] void Absent() {
  throw std::logic_error("fused kernels are not compiled into this build");
}
}  // namespace

bool FusedKernelsCompiledIn() { return false; }
NormedSum FusedAddRmsNorm(const at::Tensor&, const at::Tensor&, const at::Tensor&, double) {
  Absent();
}
at::Tensor FusedSiluMul(const at::Tensor&) { Absent(); }
at::Tensor FusedRopeStore(const Model::Impl&, const at::Tensor&, const Rotary&, const at::Tensor&,
                          const at::Tensor&, const at::Tensor&) {
  Absent();
}
at::Tensor FusedDecodeAttention(const Model::Impl&, const at::Tensor&, const at::Tensor&, int64_t,
                                const at::Tensor&, const at::Tensor&, int64_t, const at::Tensor&) {
  Absent();
}

#endif

}  // namespace entroserve
