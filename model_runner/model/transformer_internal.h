// The model runner's internals shared by its libtorch translation units
// (transformer.cc: loading and the eager forward pass; decode_graphs.cc: the
// graphed decode steps over a static KV cache). Not part of the library's
// interface: include transformer.h instead.
#ifndef ENTROSERVE_MODEL_RUNNER_TRANSFORMER_INTERNAL_H_
#define ENTROSERVE_MODEL_RUNNER_TRANSFORMER_INTERNAL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/types/span.h"
#include "model_runner/checkpoint/model_config.h"
#include "model_runner/model/transformer.h"

namespace entroserve {

class DecodeGraphs;  // decode_graphs.h
struct KvRowLease;   // decode_graphs.h

struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out], or undefined
};

struct Layer {
  at::Tensor input_norm;  // [hidden]
  Linear q, k, v, o;
  at::Tensor post_norm;  // [hidden]
  Linear gate, up, down;
  // With ModelOptions.fuse_projections: q, k, v as one [q_out + 2 kv_out,
  // hidden] weight and gate, up as one [2 intermediate, hidden] weight
  // (q, k, v, gate and up are then views into these). Undefined otherwise.
  Linear qkv, gate_up;
};

// Logit vectors handed back through Model::Recycle, filled again by the next
// outputs instead of allocated (half a megabyte per sequence and step for a
// 128k vocabulary: fresh pages each time, which cost more than the copy).
struct OutputPool {
  // A vector to overwrite: empty, or one handed back, still at its size
  // and holding its old values.
  std::vector<float> Take();
  std::vector<uint16_t> TakeBf16();
  void Give(SequenceOutput&& output);

  std::mutex mu;
  std::vector<std::vector<float>> free;
  std::vector<std::vector<uint16_t>> free_bf16;
  size_t limit = 256;  // vectors kept at most, of each kind
};

struct Model::Impl {
  Impl();
  ~Impl();

  ModelConfig config;
  ModelOptions options;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  int threads = 1;
  int64_t max_sequence_length = 0;

  at::Tensor embed;  // [vocab, hidden]
  std::vector<Layer> layers;
  at::Tensor final_norm;
  at::Tensor lm_head;   // [vocab, hidden]; the embedding itself when tied
  at::Tensor inv_freq;  // float32 [head_dim / 2], on the device
  std::vector<WeightInfo> weight_infos;
  int64_t parameter_count = 0;
  // The graphed decode steps and their static KV cache; null when
  // ModelOptions.decode_graphs is off (decode_graphs.h).
  std::unique_ptr<DecodeGraphs> graphs;
  mutable OutputPool outputs;

  int64_t heads() const { return config.num_attention_heads; }
  int64_t kv_heads() const { return config.num_key_value_heads; }
  int64_t head_dim() const { return config.head_dim; }
  // head_dim ** -0.5, as transformers scales the scores.
  double scale() const;
  bool rowwise() const { return options.batch_invariant; }
};

// Keys and values of all layers in one tensor [layers, 2, kv_heads,
// capacity, head_dim] (index 0 keys, 1 values) of the compute dtype: memory
// of its own, or one row of the static KV cache (decode_graphs.h).
struct SequenceCache::State {
  State();
  ~State();

  const Model::Impl* owner = nullptr;
  at::Tensor kv;
  int64_t length = 0;
  // Set while `kv` is a row of the static KV cache.
  std::shared_ptr<KvRowLease> row;

  int64_t capacity() const { return kv.defined() ? kv.size(3) : 0; }
};

using CacheState = SequenceCache::State;

// The model's window into a cache's state.
struct SequenceCacheAccess {
  static CacheState* Get(const SequenceCache* cache) { return cache->state_.get(); }
};

// One sequence of a Forward() call, resolved (Validate in transformer.cc).
struct Slot {
  CacheState* cache;
  int64_t past;                     // tokens already cached
  int64_t count;                    // new tokens
  int64_t offset;                   // first row in the packed [tokens, ...] activations
  std::vector<int> capture_layers;  // resolved, non-negative
  absl::Span<const int32_t> tokens;
  bool bf16_logits = false;  // SequenceInput's
};

// The layer math both forward paths share (transformer.cc). Each follows
// transformers' eager LlamaForCausalLM.

// RMSNorm as LlamaRMSNorm: in float32, then weight * x.to(input dtype).
at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);
// x W^T + b, row by row where that is faster or asked for (see transformer.cc).
at::Tensor Apply(const Linear& linear, const at::Tensor& x, bool batch_invariant);

// Rotary tables of `positions` (int64 [tokens], on the device):
// float32 angles cast to the compute dtype, [tokens, 1, head_dim].
struct Rotary {
  at::Tensor cos, sin;
};
Rotary RotaryTables(const Model::Impl& m, const at::Tensor& positions);
// x * cos + rotate_half(x) * sin.
at::Tensor ApplyRotary(const at::Tensor& x, const Rotary& rotary);

// The rotated queries [tokens, heads, head_dim], keys and values
// [tokens, kv_heads, head_dim] of `h` (normed input), through the fused
// q/k/v weight when the layer has one.
struct QueryKeyValue {
  at::Tensor q, k, v;
};
QueryKeyValue ProjectQkv(const Model::Impl& m, const Layer& layer, const at::Tensor& h,
                         const Rotary& rotary);
// x + o_proj(attention), then the MLP block with its residual.
at::Tensor FinishLayer(const Model::Impl& m, const Layer& layer, const at::Tensor& x,
                       const at::Tensor& attention);
// float32 logits [rows, vocab] of the final hidden states `last` [rows, hidden].
at::Tensor Logits(const Model::Impl& m, const at::Tensor& last);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_TRANSFORMER_INTERNAL_H_
