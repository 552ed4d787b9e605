// Loading and the eager forward pass of the model runner (libtorch);
// decode_graphs.cc runs decode steps as recorded device graphs.
#include "model_runner/model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <new>
#include <optional>
#include <thread>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model_runner/checkpoint/checkpoint.h"
#include "model_runner/model/decode_graphs.h"
#include "model_runner/model/fused_ops.h"
#include "model_runner/model/transformer_internal.h"

// at::rms_norm (PyTorch >= 2.4; a fused CUDA kernel in recent releases).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ENTROSERVE_FUSED_RMS_NORM 1
#else
#define ENTROSERVE_FUSED_RMS_NORM 0
#endif

namespace entroserve {

// ---------------------------------------------------------------------------
// Weights and state.

namespace {

// Smallest cache allocation, in positions (growth doubles from here).
constexpr int64_t kMinCachePositions = 64;
// Alignment a mapped weight needs to be used in place (see MakeWeight).
constexpr uintptr_t kWeightAlignment = 64;
// Rows up to which float32 CPU projections run as matrix-vector products
// (see Apply).
constexpr int64_t kMatVecMaxRows = 4;
// Python's math.pi, as transformers' rope code uses it.
constexpr double kPi = 3.141592653589793;
// The static KV cache of the decode graphs (decode_graphs.h), by default:
// rows (sequences) and positions per row.
constexpr int64_t kDefaultStaticCacheRows = 64;
constexpr int64_t kDefaultStaticCachePositions = 4096;

}  // namespace

Model::Impl::Impl() = default;
Model::Impl::~Impl() = default;
double Model::Impl::scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim())); }

SequenceCache::State::State() = default;
SequenceCache::State::~State() = default;

SequenceCache::SequenceCache() : state_(std::make_unique<State>()) {}
SequenceCache::~SequenceCache() = default;
SequenceCache::SequenceCache(SequenceCache&&) noexcept = default;
SequenceCache& SequenceCache::operator=(SequenceCache&&) noexcept = default;

int64_t SequenceCache::length() const { return state_ ? state_->length : 0; }
int64_t SequenceCache::capacity() const { return state_ ? state_->capacity() : 0; }
int64_t SequenceCache::allocated_bytes() const {
  return state_ && state_->kv.defined()
             ? state_->kv.numel() * static_cast<int64_t>(state_->kv.element_size())
             : 0;
}
void SequenceCache::Clear() {
  if (state_) state_->length = 0;
}
absl::Status SequenceCache::Truncate(int64_t length) {
  if (!state_ || length < 0 || length > state_->length) {
    return absl::InvalidArgumentError(
        absl::StrCat("Truncate(", length, ") out of range [0, ", this->length(), "]"));
  }
  state_->length = length;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Helpers.

namespace {

absl::Status StatusFromException(const std::exception& e, const std::string& context) {
  std::string message = e.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    message = c10_error->what_without_backtrace();
  }
  const bool out_of_memory = dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
                             dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                             message.find("out of memory") != std::string::npos ||
                             message.find("not enough memory") != std::string::npos;
  if (out_of_memory) return absl::ResourceExhaustedError(absl::StrCat(context, ": ", message));
  return absl::InternalError(absl::StrCat(context, ": ", message));
}

at::ScalarType ToScalarType(ComputeDType dtype) {
  switch (dtype) {
    case ComputeDType::kFloat32:
      return at::kFloat;
    case ComputeDType::kBFloat16:
      return at::kBFloat16;
    case ComputeDType::kFloat16:
      return at::kHalf;
  }
  return at::kFloat;
}

std::string ShapeString(at::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// at::set_num_threads covers ATen's OpenMP pool; OpenBLAS (Debian's BLAS
// alternative that libtorch's matrix products call) keeps its own pool.
void SetThreads(int threads) {
  at::set_num_threads(threads);
  using SetBlasThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
}

// rotate_half: cat(-x2, x1) over the last dimension.
at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

// RMSNorm as LlamaRMSNorm: in float32, then weight * x.to(input dtype).
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if ENTROSERVE_FUSED_RMS_NORM
  // On CUDA in 16-bit dtypes: the same float32 math in one kernel (fewer
  // launches per decode step) instead of six; float32 keeps the op-by-op
  // path, whose sums the conformance figures and F32 tokens were taken with.
  if (x.is_cuda() && x.scalar_type() != at::kFloat) {
    at::Tensor h = at::rms_norm(x.to(at::kFloat), {x.size(-1)}, c10::nullopt, eps);
    return weight * h.to(x.scalar_type());
  }
#endif
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor Apply(const Linear& linear, const at::Tensor& x, bool batch_invariant) {
  // Few rows in float32 on CPU (decode steps of small batches): one
  // matrix-vector product per row. libtorch 1.13 sends [rows, in] x [in, out]
  // to OpenBLAS sgemm, which packs the whole weight on every call; sgemv
  // does not. Measured here at 2048 x 8192, one thread: sgemm 6.5-12 ms for
  // 1 to 16 rows; per-row sgemv 2.6 ms for 1 row, 5.6 for 2, 7.8 for 4,
  // 20 for 8. bfloat16 stays on at::linear, whose oneDNN path beats its mv.
  // ModelOptions.batch_invariant: always row by row, so that each row sums
  // in the same order whatever else is in the batch.
  if (batch_invariant ||
      (x.size(0) <= kMatVecMaxRows && x.scalar_type() == at::kFloat && x.device().is_cpu())) {
    at::Tensor y;
    if (x.size(0) == 1) {
      y = at::mv(linear.weight, x.select(0, 0)).unsqueeze(0);
    } else {
      std::vector<at::Tensor> rows;
      rows.reserve(static_cast<size_t>(x.size(0)));
      for (int64_t r = 0; r < x.size(0); ++r) rows.push_back(at::mv(linear.weight, x.select(0, r)));
      y = at::stack(rows);
    }
    if (linear.bias.defined()) y.add_(linear.bias);
    return y;
  }
  return at::linear(x, linear.weight,
                    linear.bias.defined() ? c10::optional<at::Tensor>(linear.bias) : c10::nullopt);
}

Rotary RotaryTables(const Model::Impl& m, const at::Tensor& positions) {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(1) * m.inv_freq.unsqueeze(0);
  at::Tensor angles = at::cat({freqs, freqs}, -1);
  return {angles.cos().to(m.dtype).unsqueeze(1), angles.sin().to(m.dtype).unsqueeze(1)};
}

at::Tensor ApplyRotary(const at::Tensor& x, const Rotary& rotary) {
  return x * rotary.cos + RotateHalf(x) * rotary.sin;
}

QueryKeyValue ProjectQkv(const Model::Impl& m, const Layer& layer, const at::Tensor& h,
                         const Rotary& rotary) {
  const int64_t T = h.size(0), H = m.heads(), KVH = m.kv_heads(), Dh = m.head_dim();
  if (layer.qkv.weight.defined()) {
    // Queries and keys side by side: one rotation for both.
    at::Tensor qkv = Apply(layer.qkv, h, m.rowwise());
    at::Tensor qk = ApplyRotary(qkv.narrow(1, 0, (H + KVH) * Dh).view({T, H + KVH, Dh}), rotary);
    return {qk.narrow(1, 0, H), qk.narrow(1, H, KVH),
            qkv.narrow(1, (H + KVH) * Dh, KVH * Dh).view({T, KVH, Dh})};
  }
  at::Tensor q = Apply(layer.q, h, m.rowwise());
  at::Tensor k = Apply(layer.k, h, m.rowwise());
  at::Tensor v = Apply(layer.v, h, m.rowwise());
  return {ApplyRotary(q.view({T, H, Dh}), rotary), ApplyRotary(k.view({T, KVH, Dh}), rotary),
          v.view({T, KVH, Dh})};
}

at::Tensor FinishLayer(const Model::Impl& m, const Layer& layer, const at::Tensor& x,
                       const at::Tensor& attention) {
  const bool rowwise = m.rowwise();
  at::Tensor y = x + Apply(layer.o, attention, rowwise);
  at::Tensor h = RmsNorm(y, layer.post_norm, m.config.rms_norm_eps);
  at::Tensor gated;
  if (layer.gate_up.weight.defined()) {
    const int64_t I = m.config.intermediate_size;
    at::Tensor gate_up = Apply(layer.gate_up, h, rowwise);
    gated = at::silu(gate_up.narrow(1, 0, I)) * gate_up.narrow(1, I, I);
  } else {
    gated = at::silu(Apply(layer.gate, h, rowwise)) * Apply(layer.up, h, rowwise);
  }
  return y + Apply(layer.down, gated, rowwise);
}

at::Tensor Logits(const Model::Impl& m, const at::Tensor& last) {
  return Apply(Linear{m.lm_head, {}}, last, m.rowwise()).to(at::kFloat);
}

namespace {

at::Tensor InverseFrequencies(const ModelConfig& config) {
  // _compute_default_rope_parameters:
  //   1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
  const int64_t dim = config.head_dim;
  at::Tensor exponents =
      at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / dim;
  at::Tensor inv_freq = at::reciprocal(at::pow(config.rope_theta, exponents));
  if (!config.rope_scaling) return inv_freq;
  // _compute_llama3_parameters, operation for operation.
  const Llama3RopeScaling& s = *config.rope_scaling;
  const double factor = s.factor;
  const double low_freq_factor = s.low_freq_factor;
  const double high_freq_factor = s.high_freq_factor;
  const double old_context_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  // wavelen = 2 * math.pi / inv_freq (Python's __rtruediv__: reciprocal * scalar)
  at::Tensor wavelen = at::reciprocal(inv_freq) * (2 * kPi);
  at::Tensor inv_freq_llama = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
  at::Tensor smooth_factor = (at::reciprocal(wavelen) * old_context_len - low_freq_factor) /
                             (high_freq_factor - low_freq_factor);
  at::Tensor smoothed_inv_freq =
      (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
  at::Tensor is_medium_freq =
      at::logical_not(wavelen < high_freq_wavelen) * at::logical_not(wavelen > low_freq_wavelen);
  return at::where(is_medium_freq, smoothed_inv_freq, inv_freq_llama);
}

// A weight the config calls for.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  at::Tensor* slot;
  bool random_ones = false;  // norms start at 1 in random models
};

// The weights `c` calls for, each with its slot in `impl` (whose layers must
// already number c.num_hidden_layers).
std::vector<WeightSpec> ExpectedWeights(const ModelConfig& c, Model::Impl* impl) {
  const int64_t D = c.hidden_size;
  const int64_t I = c.intermediate_size;
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  std::vector<WeightSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, D}, &impl->embed});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    Layer& l = impl->layers[static_cast<size_t>(i)];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    specs.push_back({p + "input_layernorm.weight", {D}, &l.input_norm, true});
    auto linear = [&](const std::string& name, Linear* slot, int64_t out, int64_t in, bool bias) {
      specs.push_back({p + name + ".weight", {out, in}, &slot->weight});
      if (bias) specs.push_back({p + name + ".bias", {out}, &slot->bias});
    };
    linear("self_attn.q_proj", &l.q, q_out, D, c.qkv_bias);
    linear("self_attn.k_proj", &l.k, kv_out, D, c.qkv_bias);
    linear("self_attn.v_proj", &l.v, kv_out, D, c.qkv_bias);
    linear("self_attn.o_proj", &l.o, D, q_out, c.o_bias);
    specs.push_back({p + "post_attention_layernorm.weight", {D}, &l.post_norm, true});
    linear("mlp.gate_proj", &l.gate, I, D, c.mlp_bias);
    linear("mlp.up_proj", &l.up, I, D, c.mlp_bias);
    linear("mlp.down_proj", &l.down, D, I, c.mlp_bias);
  }
  specs.push_back({"model.norm.weight", {D}, &impl->final_norm, true});
  if (!c.tie_word_embeddings) {
    specs.push_back({"lm_head.weight", {c.vocab_size, D}, &impl->lm_head});
  }
  return specs;
}

// Resolves options into `impl`: device, dtype, threads, limits.
absl::Status Configure(const ModelConfig& config, const ModelOptions& options, Model::Impl* impl) {
  impl->config = config;
  impl->options = options;
  try {
    impl->device = at::Device(options.device);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("device \"", options.device, "\" is not a device (cpu, cuda, cuda:N)"));
  }
  if (impl->device.is_cuda() && !at::hasCUDA()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device \"", options.device, "\": this libtorch has no CUDA (Debian's is CPU-only)"));
  }
  if (!impl->device.is_cpu() && !impl->device.is_cuda()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device \"", options.device, "\" is not supported (cpu, cuda, cuda:N)"));
  }
  if (options.dtype == ComputeDType::kFloat16 && impl->device.is_cpu()) {
    return absl::InvalidArgumentError(
        "dtype float16 needs a CUDA device; on CPU use float32 or bfloat16");
  }
  impl->dtype = ToScalarType(options.dtype);
  impl->threads = options.threads > 0 ? options.threads : CoresAvailable();
  impl->options.threads = impl->threads;
  impl->max_sequence_length = options.max_sequence_length > 0 ? options.max_sequence_length
                                                              : config.max_position_embeddings;
  impl->options.max_sequence_length = impl->max_sequence_length;
  const bool cuda = impl->device.is_cuda();
  impl->options.fuse_projections = options.fuse_projections.value_or(cuda);
  impl->options.decode_graphs = options.decode_graphs.value_or(cuda) && !options.batch_invariant;
  impl->options.fused_kernels = options.fused_kernels.value_or(cuda && impl->dtype != at::kFloat) &&
                                FusedKernelsCompiledIn() && cuda && impl->dtype != at::kFloat;
  impl->layers.resize(static_cast<size_t>(config.num_hidden_layers));
  SetThreads(impl->threads);
  return absl::OkStatus();
}

// One weight for `parts` (stacked along the output dimension); each part
// becomes a view into it.
Linear FuseLinears(const std::vector<Linear*>& parts) {
  std::vector<at::Tensor> weights, biases;
  for (const Linear* p : parts) {
    weights.push_back(p->weight);
    if (p->bias.defined()) biases.push_back(p->bias);
  }
  Linear fused;
  fused.weight = at::cat(weights, 0);
  if (biases.size() == parts.size()) fused.bias = at::cat(biases, 0);
  int64_t row = 0;
  for (Linear* p : parts) {
    const int64_t n = p->weight.size(0);
    p->weight = fused.weight.narrow(0, row, n);
    if (fused.bias.defined()) p->bias = fused.bias.narrow(0, row, n);
    row += n;
  }
  return fused;
}

// The options that change the loaded weights' layout or add state: fused
// projections, the decode graphs and their static KV cache.
void PrepareForDecode(Model::Impl* impl) {
  const ModelOptions& o = impl->options;
  if (o.fuse_projections.value_or(false)) {
    for (Layer& l : impl->layers) {
      // Mixed biases (some parts with, some without) stay unfused.
      if (l.q.bias.defined() == l.k.bias.defined() && l.k.bias.defined() == l.v.bias.defined()) {
        l.qkv = FuseLinears({&l.q, &l.k, &l.v});
      }
      if (l.gate.bias.defined() == l.up.bias.defined()) l.gate_up = FuseLinears({&l.gate, &l.up});
    }
  }
  if (o.decode_graphs.value_or(false)) {
    const int64_t rows = o.static_cache_rows > 0 ? o.static_cache_rows : kDefaultStaticCacheRows;
    const int64_t positions = std::min(
        impl->max_sequence_length,
        o.static_cache_positions > 0 ? o.static_cache_positions : kDefaultStaticCachePositions);
    impl->graphs = std::make_unique<DecodeGraphs>(*impl, rows, positions);
  }
}

void Finish(Model::Impl* impl) {
  if (impl->config.tie_word_embeddings) impl->lm_head = impl->embed;
  impl->inv_freq = InverseFrequencies(impl->config).to(impl->device);
  PrepareForDecode(impl);
  int64_t count = 0;
  for (const WeightInfo& w : impl->weight_infos) {
    int64_t n = 1;
    for (int64_t d : w.shape) n *= d;
    count += n;
  }
  impl->parameter_count = count;
}

std::optional<at::ScalarType> ScalarTypeOf(SafetensorsDType dtype) {
  switch (dtype) {
    case SafetensorsDType::kF32:
      return at::kFloat;
    case SafetensorsDType::kF16:
      return at::kHalf;
    case SafetensorsDType::kBF16:
      return at::kBFloat16;
    default:
      return std::nullopt;
  }
}

// An uninitialised host tensor for a weight. Large ones go in transparent
// huge pages (2 MiB; Debian enables them on madvise): one page fault per
// 2 MiB instead of per 4 KiB when filled (libtorch 1.13's allocator does not
// ask for them), and fewer TLB misses as every decode step streams through
// all weights.
at::Tensor EmptyHostWeight(at::IntArrayRef shape, at::ScalarType dtype) {
  constexpr size_t kHugePage = size_t{2} << 20;
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * at::elementSize(dtype);
  if (bytes < kHugePage) return at::empty(shape, at::TensorOptions().dtype(dtype));
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* data = nullptr;
  if (posix_memalign(&data, kHugePage, rounded) != 0) throw std::bad_alloc();
  madvise(data, rounded, MADV_HUGEPAGE);  // advice only: failure is harmless
  return at::from_blob(
      data, shape, [](void* p) { free(p); }, at::TensorOptions().dtype(dtype));
}

// The checkpoint tensor as a tensor of the compute dtype on the device:
// in place from the mapping where possible, else converted.
at::Tensor MakeWeight(const CheckpointTensor& source, at::ScalarType src_type,
                      const Model::Impl& impl, bool* mapped) {
  const SafetensorsTensorInfo& info = *source.info;
  void* data = const_cast<uint8_t*>(source.data());
  const auto element_size = static_cast<uintptr_t>(SafetensorsDTypeSize(info.dtype));
  const bool aligned = reinterpret_cast<uintptr_t>(data) % element_size == 0;
  const at::TensorOptions src_options = at::TensorOptions().dtype(src_type);
  *mapped = false;
  // In place only when 64-byte aligned: oneDNN's bfloat16 products ran a
  // Llama-3.2-1B step in 340 ms from 8-byte-aligned mapped weights against
  // 205 ms from 64-byte-aligned ones.
  const bool cache_line_aligned = reinterpret_cast<uintptr_t>(data) % kWeightAlignment == 0;
  if (impl.options.map_weights && impl.device.is_cpu() && src_type == impl.dtype &&
      cache_line_aligned) {
    // The deleter holds the mapping until the last tensor viewing it goes.
    // Weights are never written, so the read-only pages are safe.
    std::shared_ptr<MappedFile> keep = source.file->mapping();
    *mapped = true;
    return at::from_blob(
        data, info.shape, [keep](void*) mutable { keep.reset(); }, src_options);
  }
  at::Tensor view;
  if (aligned) {
    view = at::from_blob(data, info.shape, src_options);
  } else {  // an odd header length can misalign a tensor: copy its bytes first
    view = at::empty(info.shape, src_options);
    std::memcpy(view.data_ptr(), data, info.end - info.begin);
  }
  if (impl.device.is_cpu()) {
    at::Tensor weight = EmptyHostWeight(info.shape, impl.dtype);
    weight.copy_(view);
    return weight;
  }
  return view.to(impl.device, impl.dtype, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading.

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& dir,
                                                   const ModelOptions& options) {
  const std::string config_path =
      dir.empty() || dir.back() == '/' ? dir + kConfigFileName : dir + "/" + kConfigFileName;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(config_path);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  if (!checkpoint.ok()) return checkpoint.status();

  auto impl = std::make_unique<Impl>();
  absl::Status status = Configure(*config, options, impl.get());
  if (!status.ok()) return status;
  std::string current = "model";
  try {
    c10::InferenceMode inference_mode;
    for (const WeightSpec& spec : ExpectedWeights(*config, impl.get())) {
      current = spec.name;
      absl::StatusOr<CheckpointTensor> tensor = (*checkpoint)->Get(spec.name);
      if (!tensor.ok()) return tensor.status();
      const SafetensorsTensorInfo& info = *tensor->info;
      const std::string& file = tensor->file->path();
      std::optional<at::ScalarType> src_type = ScalarTypeOf(info.dtype);
      if (!src_type) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ": tensor \"", spec.name, "\" has dtype ",
                         SafetensorsDTypeName(info.dtype), "; supported: F32, F16, BF16"));
      }
      if (info.shape != spec.shape) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ": tensor \"", spec.name, "\" has shape ", ShapeString(info.shape),
                         " but config.json implies ", ShapeString(spec.shape)));
      }
      bool mapped = false;
      *spec.slot = MakeWeight(*tensor, *src_type, *impl, &mapped);
      impl->weight_infos.push_back(
          {spec.name, spec.shape, SafetensorsDTypeName(info.dtype), mapped});
    }
    current = "model";
    Finish(impl.get());
  } catch (const std::exception& e) {
    return StatusFromException(e, absl::StrCat(dir, ": loading ", current));
  }
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Model>> Model::CreateRandom(const ModelConfig& config,
                                                           const ModelOptions& options,
                                                           uint64_t seed) {
  // Standard deviation of transformers' initializer_range default.
  constexpr double kInitStd = 0.02;
  // The checks config.json gets, on a config made in code.
  absl::StatusOr<ModelConfig> checked = ParseModelConfig(ModelConfigToJson(config), "config");
  if (!checked.ok()) return checked.status();
  auto impl = std::make_unique<Impl>();
  absl::Status status = Configure(config, options, impl.get());
  if (!status.ok()) return status;
  try {
    c10::InferenceMode inference_mode;
    at::Generator generator = at::detail::createCPUGenerator(seed);
    for (const WeightSpec& spec : ExpectedWeights(config, impl.get())) {
      at::Tensor t;
      if (spec.random_ones) {
        t = at::ones(spec.shape, at::TensorOptions().dtype(impl->dtype));
      } else {
        // Drawn in float32 whatever the dtype, so that a bfloat16 model is
        // the float32 model of the same seed, rounded.
        t = at::empty(spec.shape, at::TensorOptions().dtype(at::kFloat));
        t.normal_(0.0, kInitStd, generator);
      }
      if (impl->device.is_cpu()) {
        *spec.slot = EmptyHostWeight(spec.shape, impl->dtype);
        spec.slot->copy_(t);
      } else {
        *spec.slot = t.to(impl->device, impl->dtype);
      }
      impl->weight_infos.push_back({spec.name, spec.shape, "random", false});
    }
    Finish(impl.get());
  } catch (const std::exception& e) {
    return StatusFromException(e, "creating a random model");
  }
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

absl::Status Model::Save(const std::string& dir) const {
  const Impl& m = *impl_;
  try {
    c10::InferenceMode inference_mode;
    // Every weight by name, in load order, as contiguous host tensors. The
    // specs' slots point into `m`; they are only read here.
    std::vector<WeightSpec> specs = ExpectedWeights(m.config, const_cast<Impl*>(&m));
    std::vector<at::Tensor> host;
    std::vector<SafetensorsTensorData> tensors;
    host.reserve(specs.size());
    const SafetensorsDType dtype = m.dtype == at::kBFloat16 ? SafetensorsDType::kBF16
                                   : m.dtype == at::kHalf   ? SafetensorsDType::kF16
                                                            : SafetensorsDType::kF32;
    for (const WeightSpec& spec : specs) {
      const at::Tensor* slot = spec.slot;
      host.push_back(slot->to(at::kCPU).contiguous());
      tensors.push_back({spec.name, dtype, spec.shape,
                         absl::string_view(static_cast<const char*>(host.back().data_ptr()),
                                           host.back().nbytes())});
    }
    {
      std::ofstream config(dir + "/" + kConfigFileName, std::ios::trunc);
      config << ModelConfigToJson(m.config) << "\n";
      if (!config) return absl::InternalError(absl::StrCat(dir, ": cannot write config.json"));
    }
    return WriteSafetensors(dir + "/" + kSafetensorsFileName, tensors, {{"format", "pt"}});
  } catch (const std::exception& e) {
    return StatusFromException(e, absl::StrCat("saving to ", dir));
  }
}

const ModelConfig& Model::config() const { return impl_->config; }
ComputeDType Model::dtype() const { return impl_->options.dtype; }
std::string Model::device() const { return impl_->device.str(); }
int Model::threads() const { return impl_->threads; }
int64_t Model::max_sequence_length() const { return impl_->max_sequence_length; }
const std::vector<WeightInfo>& Model::weights() const { return impl_->weight_infos; }
int64_t Model::parameter_count() const { return impl_->parameter_count; }

// ---------------------------------------------------------------------------
// Forward.

namespace {

// A capture waiting for the device-to-host copy.
struct PendingCapture {
  size_t sequence;
  int layer;
  int64_t keys;
  int64_t first_key;
  at::Tensor scores;  // float32 [heads, keys]
};

// The attention of a step's decoding sequences (one new token each), all
// at once: per layer a handful of kernels for the whole group instead of ~10
// per sequence (on a GPU the per-sequence launches, not the arithmetic, were
// the cost of a decode step). Their caches are gathered once per step into
// one zero-padded tensor [layers, 2, B, kv_heads, longest, head_dim]; each
// layer writes its new keys and values there, masks the padding (and what a
// sliding window leaves out), and attends; after the last layer the new
// positions go back to the sequences' own caches.
class DecodeGroup {
 public:
  DecodeGroup(const Model::Impl& m, const std::vector<Slot>& slots, std::vector<size_t> members)
      : members_(std::move(members)) {
    const ModelConfig& c = m.config;
    const int64_t B = static_cast<int64_t>(members_.size());
    longest_ = 0;
    for (size_t i : members_) longest_ = std::max(longest_, slots[i].past + 1);
    const auto on_device = at::TensorOptions().device(m.device);
    kv_ = at::zeros({c.num_hidden_layers, 2, B, m.kv_heads(), longest_, m.head_dim()},
                    on_device.dtype(m.dtype));
    at::Tensor rows = at::empty({B}, at::kLong);
    at::Tensor positions = at::empty({B}, at::kLong);
    at::Tensor masked = at::zeros({B, longest_}, at::kBool);
    for (int64_t b = 0; b < B; ++b) {
      const Slot& s = slots[members_[static_cast<size_t>(b)]];
      if (s.past > 0) {  // [layers, 2, kv_heads, past, head_dim]
        kv_.select(2, b).narrow(3, 0, s.past).copy_(s.cache->kv.narrow(3, 0, s.past));
      }
      rows.data_ptr<int64_t>()[b] = s.offset;
      positions.data_ptr<int64_t>()[b] = s.past;
      const int64_t keys = s.past + 1;
      const int64_t first_key =
          c.sliding_window ? std::max<int64_t>(0, keys - *c.sliding_window) : 0;
      bool* m_row = masked.data_ptr<bool>() + b * longest_;
      for (int64_t key = 0; key < longest_; ++key) m_row[key] = key < first_key || key >= keys;
      first_keys_.push_back(first_key);
    }
    rows_ = rows.to(m.device);
    positions_ = positions.to(m.device);
    batch_ = at::arange(B, on_device.dtype(at::kLong));
    masked_ = masked.to(m.device).unsqueeze(1);  // [B, 1, longest]
  }

  // Layer `l`: writes the group's new keys and values, attends, and sets
  // (*outputs)[i] ([1, heads * head_dim]) for each member i; records the
  // captures its members asked for at this layer.
  void Attend(const Model::Impl& m, int64_t l, const at::Tensor& q, const at::Tensor& k,
              const at::Tensor& v, double scale, const std::vector<Slot>& slots,
              std::vector<at::Tensor>* outputs, std::vector<PendingCapture>* captures) {
    using at::indexing::Slice;
    const int64_t B = static_cast<int64_t>(members_.size());
    const int64_t H = m.heads(), KVH = m.kv_heads(), Dh = m.head_dim();
    at::Tensor key = kv_[l][0];    // [B, KVH, longest, Dh]
    at::Tensor value = kv_[l][1];  // [B, KVH, longest, Dh]
    key.index_put_({batch_, Slice(), positions_}, k.index_select(0, rows_));
    value.index_put_({batch_, Slice(), positions_}, v.index_select(0, rows_));
    // Query heads grouped by the key head they read: [B, KVH, G, Dh].
    at::Tensor query = q.index_select(0, rows_).view({B, KVH, H / KVH, Dh});
    at::Tensor scores = (at::matmul(query, key.transpose(2, 3)) * scale).view({B, H, longest_});
    for (int64_t b = 0; b < B; ++b) {
      const size_t i = members_[static_cast<size_t>(b)];
      const int64_t keys = slots[i].past + 1;
      const int64_t first_key = first_keys_[static_cast<size_t>(b)];
      for (int capture_layer : slots[i].capture_layers) {
        if (capture_layer != l) continue;
        captures->push_back(
            {i, capture_layer, keys - first_key, first_key,
             scores[b].narrow(1, first_key, keys - first_key).to(at::kFloat).contiguous()});
      }
    }
    scores = scores.masked_fill(masked_, -std::numeric_limits<double>::infinity());
    at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(m.dtype);
    at::Tensor out = at::matmul(probs.view({B, KVH, H / KVH, longest_}), value);  // [B,KVH,G,Dh]
    out = out.reshape({B, H * Dh});
    for (int64_t b = 0; b < B; ++b)
      (*outputs)[members_[static_cast<size_t>(b)]] = out.narrow(0, b, 1);
  }

  // The new position of every layer back into each member's own cache.
  void WriteBack(const std::vector<Slot>& slots) {
    for (size_t b = 0; b < members_.size(); ++b) {
      const Slot& s = slots[members_[b]];
      s.cache->kv.narrow(3, s.past, 1)
          .copy_(kv_.select(2, static_cast<int64_t>(b)).narrow(3, s.past, 1));
    }
  }

 private:
  std::vector<size_t> members_;  // slot indices
  int64_t longest_;              // keys of the longest member
  std::vector<int64_t> first_keys_;
  at::Tensor kv_;         // [layers, 2, B, kv_heads, longest, head_dim]
  at::Tensor rows_;       // each member's row in the packed activations
  at::Tensor positions_;  // each member's new position
  at::Tensor batch_;      // 0..B-1
  at::Tensor masked_;     // [B, 1, longest]: padding and keys outside the window
};

absl::Status Validate(const Model::Impl& impl, absl::Span<const SequenceInput> inputs,
                      std::vector<Slot>* slots) {
  if (inputs.empty()) return absl::InvalidArgumentError("Forward: no sequences");
  const ModelConfig& c = impl.config;
  const int64_t layers = c.num_hidden_layers;
  std::unordered_set<const SequenceCache*> seen;
  int64_t offset = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SequenceInput& in = inputs[i];
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat("sequences[", i, "]: ", what));
    };
    CacheState* state = in.cache ? SequenceCacheAccess::Get(in.cache) : nullptr;
    if (state == nullptr) return error("no cache");
    if (!seen.insert(in.cache).second) return error("cache repeats an earlier sequence's");
    if (state->owner != nullptr && state->owner != &impl) {
      return error("cache belongs to another model");
    }
    if (in.tokens.empty()) return error("no tokens");
    for (size_t t = 0; t < in.tokens.size(); ++t) {
      if (in.tokens[t] < 0 || in.tokens[t] >= c.vocab_size) {
        return error(absl::StrCat("tokens[", t, "] = ", in.tokens[t], " is outside [0, ",
                                  c.vocab_size, ")"));
      }
    }
    const int64_t count = static_cast<int64_t>(in.tokens.size());
    if (state->length + count > impl.max_sequence_length) {
      return error(absl::StrCat(state->length, " cached + ", count,
                                " new tokens exceed max_sequence_length ",
                                impl.max_sequence_length));
    }
    Slot slot{state, state->length, count, offset, {}, in.tokens, in.bf16_logits};
    for (int layer : in.attention_layers) {
      int resolved = layer < 0 ? layer + static_cast<int>(layers) : layer;
      if (resolved < 0 || resolved >= layers) {
        return error(
            absl::StrCat("attention layer ", layer, " is outside [-", layers, ", ", layers, ")"));
      }
      slot.capture_layers.push_back(resolved);
    }
    offset += count;
    slots->push_back(std::move(slot));
  }
  return absl::OkStatus();
}

// The capacity Reserve() gives a cache of `capacity` positions that needs
// `needed`: doubling from kMinCachePositions, never beyond
// max_sequence_length unless `needed` is.
int64_t GrownCapacity(const Model::Impl& impl, int64_t capacity, int64_t needed) {
  if (capacity >= needed) return capacity;
  const int64_t grown = std::max({needed, 2 * capacity, kMinCachePositions});
  return std::min(grown, std::max(needed, impl.max_sequence_length));
}

// Makes room for `needed` positions, keeping what is cached. New memory only:
// the old tensor stays intact until replaced, so a failure changes nothing.
// With decode graphs, a cache that fits goes into a row of the static KV
// cache (decode_graphs.h) and one that outgrows its row leaves it.
void Reserve(const Model::Impl& impl, CacheState* state, int64_t needed) {
  if (impl.graphs && impl.graphs->Place(state, needed)) return;
  if (state->capacity() >= needed) return;
  const int64_t capacity = GrownCapacity(impl, state->capacity(), needed);
  at::Tensor kv =
      at::empty({impl.config.num_hidden_layers, 2, impl.kv_heads(), capacity, impl.head_dim()},
                at::TensorOptions().dtype(impl.dtype).device(impl.device));
  if (state->length > 0) {
    kv.narrow(3, 0, state->length).copy_(state->kv.narrow(3, 0, state->length));
  }
  state->kv = std::move(kv);
  state->row.reset();  // out of the static cache's row, if it was in one
}

// The packed token ids, last rows and rotary tables of an eager pass.
struct Packed {
  at::Tensor ids;        // [tokens] on the device
  at::Tensor last_rows;  // [sequences]: the row of each one's last new token
  Rotary rotary;
};

Packed PackInputs(const Model::Impl& m, const std::vector<Slot>& slots) {
  const auto index_options = at::TensorOptions().dtype(at::kLong);
  int64_t total = 0;
  for (const Slot& s : slots) total += s.count;
  at::Tensor ids = at::empty({total}, index_options);
  at::Tensor positions = at::empty({total}, index_options);
  at::Tensor last_rows = at::empty({static_cast<int64_t>(slots.size())}, index_options);
  int64_t* id = ids.data_ptr<int64_t>();
  int64_t* pos = positions.data_ptr<int64_t>();
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    for (int64_t t = 0; t < s.count; ++t) {
      id[s.offset + t] = s.tokens[static_cast<size_t>(t)];
      pos[s.offset + t] = s.past + t;
    }
    last_rows.data_ptr<int64_t>()[i] = s.offset + s.count - 1;
  }
  return {ids.to(m.device), last_rows.to(m.device), RotaryTables(m, positions.to(m.device))};
}

// Decode steps (one new token) of two or more sequences run their attention
// together (DecodeGroup), unless every sequence must be computed alone
// (batch_invariant). The others run one by one.
std::optional<DecodeGroup> MakeGroup(const Model::Impl& m, const std::vector<Slot>& slots) {
  std::vector<size_t> members;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].count == 1) members.push_back(i);
  }
  const bool grouped =
      m.options.group_decode_attention.value_or(m.device.is_cuda()) && !m.rowwise();
  std::optional<DecodeGroup> group;
  if (grouped && members.size() >= 2) group.emplace(m, slots, std::move(members));
  return group;
}

// Causal mask (and the sliding window) of queries at positions past...keys-1
// over keys 0...keys-1: query at position p attends to keys k <= p (and
// k > p - window). [queries, keys], true where masked.
at::Tensor CausalMask(const Model::Impl& m, int64_t past, int64_t keys) {
  const auto index_options = at::TensorOptions().dtype(at::kLong).device(m.device);
  at::Tensor key_pos = at::arange(keys, index_options).unsqueeze(0);
  at::Tensor query_pos = at::arange(past, keys, index_options).unsqueeze(1);
  at::Tensor masked = key_pos > query_pos;
  if (m.config.sliding_window) {
    masked = at::logical_or(masked, key_pos <= query_pos - *m.config.sliding_window);
  }
  return masked;
}

// Sequence i's attention at layer l over exactly its keys, after appending
// its new keys and values to its cache: [count, heads * head_dim].
at::Tensor AttendOne(const Model::Impl& m, int64_t l, const std::vector<Slot>& slots, size_t i,
                     const QueryKeyValue& qkv, std::vector<PendingCapture>* captures) {
  const int64_t H = m.heads(), KVH = m.kv_heads(), G = H / KVH, Dh = m.head_dim();
  const Slot& s = slots[i];
  const int64_t n = s.count;
  const int64_t keys = s.past + n;
  at::Tensor layer_kv = s.cache->kv[l];  // [2, KVH, capacity, Dh]
  layer_kv[0].narrow(1, s.past, n).copy_(qkv.k.narrow(0, s.offset, n).transpose(0, 1));
  layer_kv[1].narrow(1, s.past, n).copy_(qkv.v.narrow(0, s.offset, n).transpose(0, 1));
  at::Tensor key = layer_kv[0].narrow(1, 0, keys);    // [KVH, keys, Dh]
  at::Tensor value = layer_kv[1].narrow(1, 0, keys);  // [KVH, keys, Dh]
  // Query heads grouped by the key head they read: [KVH, G * n, Dh].
  at::Tensor query = qkv.q.narrow(0, s.offset, n).transpose(0, 1).reshape({KVH, G * n, Dh});
  at::Tensor scores = (at::matmul(query, key.transpose(1, 2)) * m.scale()).view({H, n, keys});

  int64_t first_key = 0;  // of the last query's window
  if (m.config.sliding_window) first_key = std::max<int64_t>(0, keys - *m.config.sliding_window);
  for (int capture_layer : s.capture_layers) {
    if (capture_layer != l) continue;
    captures->push_back({i, capture_layer, keys - first_key, first_key,
                         scores.select(1, n - 1)
                             .narrow(1, first_key, keys - first_key)
                             .to(at::kFloat)
                             .contiguous()});
  }
  if (n > 1 || first_key > 0) {
    scores = scores.masked_fill(CausalMask(m, s.past, keys).unsqueeze(0),
                                -std::numeric_limits<double>::infinity());
  }
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(m.dtype);
  at::Tensor out = at::matmul(probs.view({KVH, G * n, keys}), value);  // [KVH, G*n, Dh]
  return out.view({H, n, Dh}).transpose(0, 1).reshape({n, H * Dh});
}

// Layer l of an eager pass over every slot's new tokens.
at::Tensor EagerLayer(const Model::Impl& m, int64_t l, const at::Tensor& x, const Packed& packed,
                      const std::vector<Slot>& slots, DecodeGroup* group,
                      std::vector<PendingCapture>* captures) {
  const Layer& layer = m.layers[static_cast<size_t>(l)];
  const QueryKeyValue qkv =
      ProjectQkv(m, layer, RmsNorm(x, layer.input_norm, m.config.rms_norm_eps), packed.rotary);
  std::vector<at::Tensor> outputs(slots.size());
  if (group) group->Attend(m, l, qkv.q, qkv.k, qkv.v, m.scale(), slots, &outputs, captures);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!outputs[i].defined()) outputs[i] = AttendOne(m, l, slots, i, qkv, captures);
  }
  at::Tensor attention = outputs.size() == 1 ? outputs[0] : at::cat(outputs, 0);
  return FinishLayer(m, layer, x, attention);
}

// Captures were made layer by layer; give them in the order asked.
void OrderCaptures(const std::vector<Slot>& slots, std::vector<SequenceOutput>* outputs) {
  for (size_t i = 0; i < slots.size(); ++i) {
    std::vector<AttentionScores>& got = (*outputs)[i].attention;
    std::vector<AttentionScores> ordered;
    ordered.reserve(slots[i].capture_layers.size());
    for (int layer : slots[i].capture_layers) {
      for (const AttentionScores& a : got) {
        if (a.layer == layer) {
          ordered.push_back(a);
          break;
        }
      }
    }
    got = std::move(ordered);
  }
}

// One device-to-host copy of everything the caller reads.
std::vector<SequenceOutput> CopyOutputs(const Model::Impl& m, const at::Tensor& logits,
                                        const std::vector<PendingCapture>& captures,
                                        const std::vector<Slot>& slots) {
  std::vector<at::Tensor> parts = {logits.reshape({-1})};
  for (const PendingCapture& p : captures) parts.push_back(p.scores.reshape({-1}));
  at::Tensor host = (parts.size() == 1 ? parts[0] : at::cat(parts, 0)).to(at::kCPU).contiguous();
  const float* data = host.data_ptr<float>();
  std::vector<SequenceOutput> outputs(slots.size());
  const int64_t V = m.config.vocab_size;
  for (size_t i = 0; i < slots.size(); ++i) {
    outputs[i].logits = m.outputs.Take();
    outputs[i].logits.assign(data + i * V, data + (i + 1) * V);
  }
  data += slots.size() * V;
  for (const PendingCapture& p : captures) {
    AttentionScores a;
    a.layer = p.layer;
    a.heads = m.heads();
    a.keys = p.keys;
    a.first_key = p.first_key;
    a.scores.assign(data, data + m.heads() * p.keys);
    data += m.heads() * p.keys;
    outputs[p.sequence].attention.push_back(std::move(a));
  }
  OrderCaptures(slots, &outputs);
  return outputs;
}

// The forward pass op by op (every sequence's projections and MLP as one
// matrix product over the packed new tokens; attention per sequence or in a
// DecodeGroup), for `slots` whose offsets index their own packed tokens.
std::vector<SequenceOutput> EagerForward(const Model::Impl& m, const std::vector<Slot>& slots) {
  const Packed packed = PackInputs(m, slots);
  std::optional<DecodeGroup> group = MakeGroup(m, slots);
  std::vector<PendingCapture> captures;
  at::Tensor x = m.embed.index_select(0, packed.ids);  // [T, hidden]
  for (int64_t l = 0; l < m.config.num_hidden_layers; ++l) {
    x = EagerLayer(m, l, x, packed, slots, group ? &*group : nullptr, &captures);
  }
  at::Tensor last =
      RmsNorm(x.index_select(0, packed.last_rows), m.final_norm, m.config.rms_norm_eps);
  std::vector<SequenceOutput> outputs = CopyOutputs(m, Logits(m, last), captures, slots);
  if (group) group->WriteBack(slots);
  return outputs;
}

// The slots not in `taken` (ascending indices), with offsets into their own
// packed tokens; (*index)[k] is the k-th one's index in `slots`.
std::vector<Slot> OtherSlots(const std::vector<Slot>& slots, const std::vector<size_t>& taken,
                             std::vector<size_t>* index) {
  std::vector<bool> skip(slots.size(), false);
  for (size_t i : taken) skip[i] = true;
  std::vector<Slot> rest;
  int64_t offset = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (skip[i]) continue;
    rest.push_back(slots[i]);
    rest.back().offset = offset;
    offset += slots[i].count;
    index->push_back(i);
  }
  return rest;
}

}  // namespace

int64_t Model::CacheBytes(int64_t positions) const {
  const Impl& m = *impl_;
  const int64_t capacity = GrownCapacity(m, 0, std::max<int64_t>(positions, 1));
  return m.config.num_hidden_layers * 2 * m.kv_heads() * capacity * m.head_dim() *
         static_cast<int64_t>(c10::elementSize(m.dtype));
}

absl::Status Model::ReserveCache(SequenceCache* cache, int64_t positions) const {
  const Impl& m = *impl_;
  CacheState* state = cache ? SequenceCacheAccess::Get(cache) : nullptr;
  if (state == nullptr) return absl::InvalidArgumentError("ReserveCache: no cache");
  if (state->owner != nullptr && state->owner != &m) {
    return absl::InvalidArgumentError("ReserveCache: the cache belongs to another model");
  }
  if (positions < 1 || positions > m.max_sequence_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReserveCache: ", positions, " positions are outside [1, ", m.max_sequence_length, "]"));
  }
  try {
    c10::InferenceMode inference_mode;
    Reserve(m, state, positions);
    state->owner = &m;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return StatusFromException(e, "ReserveCache");
  }
}

struct PendingForward::State {
  const Model::Impl* m = nullptr;
  StepOutput output;                                // the eager sequences' outputs, filled
  std::unique_ptr<DecodeGraphs::Launched> graphed;  // the graphed ones', queued
  bool waited = false;
};

PendingForward::PendingForward() = default;
PendingForward::~PendingForward() = default;
PendingForward::PendingForward(PendingForward&&) noexcept = default;
PendingForward& PendingForward::operator=(PendingForward&&) noexcept = default;

absl::StatusOr<StepOutput> PendingForward::Wait() {
  if (state_ == nullptr || state_->waited) {
    return absl::FailedPreconditionError("PendingForward::Wait: nothing to wait for");
  }
  state_->waited = true;
  try {
    if (state_->graphed) {
      state_->m->graphs->Finish(*state_->graphed, state_->m->outputs, &state_->output.sequences);
      state_->graphed.reset();
    }
    return std::move(state_->output);
  } catch (const std::exception& e) {
    state_->graphed.reset();
    return StatusFromException(e, "Forward");
  }
}

absl::Status Model::CopyCache(const SequenceCache& from, SequenceCache* to) const {
  const Impl& m = *impl_;
  const CacheState* source = SequenceCacheAccess::Get(&from);
  CacheState* target = to ? SequenceCacheAccess::Get(to) : nullptr;
  if (source == nullptr || target == nullptr)
    return absl::InvalidArgumentError("CopyCache: no cache");
  if ((source->owner != nullptr && source->owner != &m) ||
      (target->owner != nullptr && target->owner != &m)) {
    return absl::InvalidArgumentError("CopyCache: a cache belongs to another model");
  }
  if (source->length == 0) {
    target->length = 0;
    return absl::OkStatus();
  }
  try {
    c10::InferenceMode inference_mode;
    target->length = 0;  // nothing of the old content needs keeping
    Reserve(m, target, source->length);
    target->kv.narrow(3, 0, source->length).copy_(source->kv.narrow(3, 0, source->length));
    target->length = source->length;
    target->owner = &m;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return StatusFromException(e, "CopyCache");
  }
}

absl::StatusOr<PendingForward> Model::Launch(absl::Span<const SequenceInput> inputs) const {
  const Impl& m = *impl_;
  std::vector<Slot> slots;
  slots.reserve(inputs.size());
  absl::Status status = Validate(m, inputs, &slots);
  if (!status.ok()) return status;

  auto state = std::make_unique<PendingForward::State>();
  state->m = &m;
  try {
    c10::InferenceMode inference_mode;
    // Room in every cache before any is written.
    for (const Slot& s : slots) Reserve(m, s.cache, s.past + s.count);
    state->output.sequences.resize(slots.size());
    // Decode steps in rows of the static KV cache: one recorded graph
    // (decode_graphs.h), queued. Everything else: the eager pass, now.
    const std::vector<size_t> graphed =
        m.graphs ? m.graphs->Eligible(slots) : std::vector<size_t>{};
    if (!graphed.empty()) state->graphed = m.graphs->Launch(slots, graphed);
    std::vector<size_t> index;
    const std::vector<Slot> rest = OtherSlots(slots, graphed, &index);
    if (!rest.empty()) {
      std::vector<SequenceOutput> eager = EagerForward(m, rest);
      for (size_t k = 0; k < rest.size(); ++k) {
        state->output.sequences[index[k]] = std::move(eager[k]);
      }
    }
  } catch (const std::exception& e) {
    return StatusFromException(e, "Forward");
  }
  // Commit: only now do the caches grow.
  for (const Slot& s : slots) {
    s.cache->owner = &m;
    s.cache->length = s.past + s.count;
  }
  PendingForward pending;
  pending.state_ = std::move(state);
  return pending;
}

absl::StatusOr<StepOutput> Model::Forward(absl::Span<const SequenceInput> inputs) const {
  absl::StatusOr<PendingForward> pending = Launch(inputs);
  if (!pending.ok()) return pending.status();
  return pending->Wait();
}

bool Model::asynchronous_launch() const { return impl_->graphs && impl_->device.is_cuda(); }

void Model::Recycle(StepOutput&& output) const {
  for (SequenceOutput& s : output.sequences) impl_->outputs.Give(std::move(s));
}

namespace {

template <typename T>
std::vector<T> TakeFrom(std::mutex& mu, std::vector<std::vector<T>>& free) {
  std::lock_guard<std::mutex> lock(mu);
  if (free.empty()) return {};
  std::vector<T> logits = std::move(free.back());
  free.pop_back();
  return logits;
}

// Kept at its size: a later resize to the same vocabulary writes nothing,
// and the caller overwrites every value (a zero fill first would cost as
// much as the copy itself).
template <typename T>
void GiveTo(std::mutex& mu, std::vector<std::vector<T>>& free, size_t limit,
            std::vector<T>&& logits) {
  if (logits.capacity() == 0) return;
  std::lock_guard<std::mutex> lock(mu);
  if (free.size() < limit) free.push_back(std::move(logits));
}

}  // namespace

std::vector<float> OutputPool::Take() { return TakeFrom(mu, free); }

std::vector<uint16_t> OutputPool::TakeBf16() { return TakeFrom(mu, free_bf16); }

void OutputPool::Give(SequenceOutput&& output) {
  GiveTo(mu, free, limit, std::move(output.logits));
  GiveTo(mu, free_bf16, limit, std::move(output.logits_bf16));
}

// ---------------------------------------------------------------------------
// Free functions.

const char* ComputeDTypeName(ComputeDType dtype) {
  switch (dtype) {
    case ComputeDType::kFloat32:
      return "float32";
    case ComputeDType::kBFloat16:
      return "bfloat16";
    case ComputeDType::kFloat16:
      return "float16";
  }
  return "unknown";
}

absl::StatusOr<ComputeDType> ParseComputeDType(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "float32" || lower == "f32" || lower == "fp32") return ComputeDType::kFloat32;
  if (lower == "bfloat16" || lower == "bf16") return ComputeDType::kBFloat16;
  if (lower == "float16" || lower == "f16" || lower == "fp16" || lower == "half") {
    return ComputeDType::kFloat16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dtype \"", name, "\" is not one of float32, bfloat16, float16"));
}

std::vector<float> RopeInverseFrequencies(const ModelConfig& config) {
  c10::InferenceMode inference_mode;
  at::Tensor inv_freq = InverseFrequencies(config).contiguous();
  const float* data = inv_freq.data_ptr<float>();
  return std::vector<float>(data, data + inv_freq.numel());
}

int CoresAvailable() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

}  // namespace entroserve
