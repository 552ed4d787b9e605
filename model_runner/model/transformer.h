// The decoder-only transformer of the Llama family, in libtorch, with a KV
// cache per sequence and capture of the attention scores the sampler reads.
//
//   Llama   : embeddings -> N x [RMSNorm -> GQA attention with RoPE (HF
//             rotate_half convention; Llama 3 rope scaling) -> residual ->
//             RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> lm_head
//   Qwen2   : Llama + biases on q/k/v_proj
//   Mistral : Llama, with a sliding attention window when the config has one
// The math follows transformers' eager implementation (LlamaForCausalLM):
// RMSNorm in float32 then cast back, softmax in float32, residuals in the
// compute dtype, rotary tables computed in float32.
//
// Usage:
//   ModelOptions options;                       // CPU, float32, all cores
//   auto model = Model::Load("models/tiny", options);
//   SequenceCache cache;
//   std::vector<int32_t> prompt = {...};
//   auto out = (*model)->Forward({SequenceInput{&cache, prompt}});   // prefill
//   ... pick token t from out->sequences[0].logits ...
//   out = (*model)->Forward({SequenceInput{&cache, {&t, 1}}});       // decode
//
// Batching: one Forward() takes any number of sequences, each with its own
// cache and any number of new tokens (a prefill of one and a decode step of
// another can share a call). Projections and the MLP run as one matrix
// product over all new tokens of the batch (no padding); attention runs per
// sequence over exactly its keys. Results do not depend on the batch a
// sequence is in beyond floating-point reassociation inside BLAS.
//
// Outputs (all float32 on the host, ready for the sampler's spans of floats):
// the logits [vocab] of the last new token of each sequence, and for each
// requested layer the pre-softmax scores q.K^T/sqrt(head_dim) of that token's
// query over exactly the keys it attends to: [num_attention_heads, keys],
// keys = position + 1 (or the sliding window), GQA key heads repeated to
// every query head (query head h reads key head h / (heads / kv_heads), as
// transformers' repeat_kv).
//
// Device: CPU by default. ModelOptions.device = "cuda" (or "cuda:N") works
// with the same code when built against a CUDA libtorch: weights, caches and
// activations live on that device, and each Forward() copies its outputs to
// the host in one transfer. Debian's libtorch 1.13 is CPU-only. On CUDA,
// decode steps run by default as CUDA graphs over a static KV cache, with
// fused projections (ModelOptions.decode_graphs, fuse_projections;
// decode_graphs.h, docs/GPU.md).
//
// Precision: float32 (default) or bfloat16 on CPU; float16 only on CUDA
// (libtorch 1.13 lacks CPU half matrix products). Checkpoint weights of F32,
// F16 or BF16 are converted to the compute dtype at load (or, with
// ModelOptions.map_weights, used in place from the memory mapping).
//
// Thread-safety: a Model is immutable after Load(); Forward() is const and
// may run concurrently on disjoint caches. A SequenceCache must not be used
// by two calls at once. Note that ModelOptions.threads sets libtorch's
// process-wide intra-op thread count (at::set_num_threads).
//
// Debian's libtorch 1.13 (what this is built and tested against; the same
// code also built and ran against PyTorch 2.11's CUDA libtorch):
//   - no public scaled_dot_product_attention: attention is written out
//     (matmul, mask, float32 softmax, matmul), as transformers' eager path;
//   - no half-precision CPU matrix products: float16 only on CUDA;
//   - float32 [rows, in] x [in, out] goes to OpenBLAS sgemm, which packs the
//     weight on every call: up to 4 rows run as sgemv instead (Apply in
//     transformer.cc); bfloat16 goes to oneDNN;
//   - its CPU allocator asks for no huge pages: copied weights are placed
//     in 2 MiB transparent huge pages by this file.
// On a CPU shared with other busy processes, keep threads at or below the
// idle cores: a parallel region waits for its slowest thread, and a thread
// that loses its core stalls each matrix product for a scheduler slice
// (seen here: every product of a decode step took ~8 ms).
//
// Errors: absl::Status, never an exception or a CHECK failure: bad input is
// INVALID_ARGUMENT (naming the sequence), exhausted memory RESOURCE_EXHAUSTED,
// any other libtorch error INTERNAL. A failed Forward() leaves every cache as
// it was.
#ifndef ENTROSERVE_MODEL_RUNNER_MODEL_TRANSFORMER_H_
#define ENTROSERVE_MODEL_RUNNER_MODEL_TRANSFORMER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model_runner/checkpoint/model_config.h"

namespace entroserve {

enum class ComputeDType { kFloat32, kBFloat16, kFloat16 };

// "float32", "bfloat16", "float16".
const char* ComputeDTypeName(ComputeDType dtype);
// Accepts float32/f32/fp32, bfloat16/bf16, float16/f16/fp16/half.
absl::StatusOr<ComputeDType> ParseComputeDType(absl::string_view name);

struct ModelOptions {
  ComputeDType dtype = ComputeDType::kFloat32;
  // "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  // libtorch intra-op threads (process-wide); <= 0: every core this process
  // may run on (sched_getaffinity). OpenBLAS, when it is the BLAS in use, is
  // given the same count.
  int threads = 0;
  // Longest sequence (cache + new tokens) accepted; <= 0: the config's
  // max_position_embeddings.
  int64_t max_sequence_length = 0;
  // true: use checkpoint tensors in place from the memory mapping when they
  // are in the compute dtype and 64-byte aligned (CPU only): loads in
  // milliseconds, and processes share the page cache. false (default): copy
  // every weight into memory of its own (2 MiB pages), which decoded a
  // bfloat16 Llama-3.2-1B ~20% faster on the development machine (172-182
  // against 219-223 ms/step, one thread) for ~5 s of loading.
  bool map_weights = false;
  // true: every projection runs one matrix-vector product per row (any dtype
  // and device), so that a sequence's logits do not depend on the other
  // sequences of its batch: a batched matrix product (sgemm, oneDNN) sums in
  // another order than a lone row's product, and a token sampled from logits
  // a rounding apart can differ. Costs throughput for batches of more than a
  // few rows (see Apply in transformer.cc). The serving engine's
  // --batch_invariant flag.
  bool batch_invariant = false;
  // Decode steps (one new token) of two or more sequences attend together
  // (a handful of kernels per layer for the batch, not ~10 per sequence):
  // unset means on CUDA, where kernel launches bound a decode step, and off
  // on the CPU, where gathering the caches into one padded tensor costs more
  // than it saves (measured in docs/PERFORMANCE.md). Ignored with
  // batch_invariant. Same results either way up to rounding.
  std::optional<bool> group_decode_attention;
  // Decode steps of sequences whose cache fits a row of a static KV cache
  // run as recorded device graphs (CUDA graphs: one launch per step instead
  // of ~500 kernels; decode_graphs.h, docs/GPU.md). Unset means on CUDA; on
  // the CPU (tests) the recorded step is run again instead of replayed. Off
  // with batch_invariant. Same results up to rounding.
  std::optional<bool> decode_graphs;
  // The static KV cache of the decode graphs, allocated at the first cache
  // that fits: rows (sequences at once; <= 0: 64) of static_cache_positions
  // positions each (<= 0: 4096; at most max_sequence_length). Longer
  // sequences, and those beyond the rows, keep caches of their own and run
  // eagerly.
  int64_t static_cache_rows = 0;
  int64_t static_cache_positions = 0;
  // q/k/v and gate/up projections as one matrix product each (their weights
  // concatenated at load). Unset means on CUDA.
  std::optional<bool> fuse_projections;
  // The decode graphs' element-wise work as fused CUDA kernels (sum and
  // RMSNorm, rotation and cache write, attention, silu * up: ~10 kernels a
  // layer instead of ~35; fused_kernels.h). Unset means on for CUDA decode
  // graphs in bfloat16 or float16 when the build has the kernels (a CUDA
  // libtorch and nvcc); float32 keeps the ATen operations. Same values up to
  // the order of sums.
  std::optional<bool> fused_kernels;
};

// The keys and values of one sequence, every layer. Cheap to construct;
// memory is taken by the first Forward() that uses it and grows by doubling.
// Movable, not copyable. Bound to the first model that uses it.
class SequenceCache {
 public:
  SequenceCache();
  ~SequenceCache();
  SequenceCache(SequenceCache&&) noexcept;
  SequenceCache& operator=(SequenceCache&&) noexcept;
  SequenceCache(const SequenceCache&) = delete;
  SequenceCache& operator=(const SequenceCache&) = delete;

  // Tokens held (the position of the next token).
  int64_t length() const;
  // Positions held without growing.
  int64_t capacity() const;
  // Bytes of keys and values allocated.
  int64_t allocated_bytes() const;
  // Forgets every token; keeps the memory (and the binding to its model).
  void Clear();
  // Keeps the first `length` tokens (0 <= length <= length()).
  absl::Status Truncate(int64_t length);

  struct State;  // opaque: defined in transformer.cc

 private:
  friend struct SequenceCacheAccess;  // transformer.cc
  std::unique_ptr<State> state_;
};

// One sequence of a Forward() call.
struct SequenceInput {
  SequenceCache* cache = nullptr;
  // New tokens (at least one), appended at positions cache->length()...
  absl::Span<const int32_t> tokens;
  // Layers whose attention scores to capture for the last new token; a
  // negative index counts from the end (-1: the last layer). Empty: none.
  std::vector<int> attention_layers = {-1};
  // BF16 models: the logits in SequenceOutput::logits_bf16, as the model
  // computed them, when this step runs as a decode graph (a decode step on
  // CUDA): half the bytes of float32 and no widening on the host, for a
  // caller that hands them on (the engine: to the sampler, which widens
  // them on its own threads, or to samplerd as they are). Every other step
  // fills `logits`.
  bool bf16_logits = false;
};

// Pre-softmax attention scores of one layer, row-major [heads, keys].
struct AttentionScores {
  int layer = 0;          // 0-based, never negative
  int64_t heads = 0;      // num_attention_heads
  int64_t keys = 0;       // keys attended to
  int64_t first_key = 0;  // position of the first key (> 0 only with a sliding window)
  std::vector<float> scores;
};

struct SequenceOutput {
  // [vocab_size], of the last new token: float32 in `logits`, or bfloat16
  // bits in `logits_bf16` (SequenceInput::bf16_logits); one is empty.
  std::vector<float> logits;
  std::vector<uint16_t> logits_bf16;
  std::vector<AttentionScores> attention;  // in the order of attention_layers
};

struct StepOutput {
  std::vector<SequenceOutput> sequences;  // in the order of the inputs
};

// A Forward() whose device work may still be running (Model::Launch).
// Movable; destroying it without Wait() waits for the device and drops the
// outputs.
class PendingForward {
 public:
  PendingForward();
  ~PendingForward();
  PendingForward(PendingForward&&) noexcept;
  PendingForward& operator=(PendingForward&&) noexcept;

  // The outputs, once the device has them (Forward's). Once only: a second
  // call is FAILED_PRECONDITION.
  absl::StatusOr<StepOutput> Wait();

  struct State;  // opaque: defined in transformer.cc

 private:
  friend class Model;
  std::unique_ptr<State> state_;
};

// What a loaded weight is (model_tool and tests print and check these).
struct WeightInfo {
  std::string name;
  std::vector<int64_t> shape;
  std::string stored_dtype;  // checkpoint dtype ("BF16", ...), "random" when generated
  bool mapped = false;       // used in place from the file mapping
};

class Model {
 public:
  // Loads config.json and model.safetensors (or its sharded index) from
  // `dir`. Checks every weight's presence and shape against the config;
  // errors name the file and the tensor. Sets the thread count.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir,
                                                     const ModelOptions& options = {});

  // A model of `config` with random weights (normal, std 0.02; norms 1),
  // deterministic in `seed`: for benchmarks of real shapes without a
  // checkpoint, and tests.
  static absl::StatusOr<std::unique_ptr<Model>> CreateRandom(const ModelConfig& config,
                                                             const ModelOptions& options,
                                                             uint64_t seed);

  // Writes config.json and model.safetensors (weights in the compute dtype)
  // into folder `dir`, which must exist: a checkpoint Load() reads back to
  // the same model. For random models of real shapes (benchmarks of the
  // loading path) and fixtures.
  absl::Status Save(const std::string& dir) const;

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const;
  ComputeDType dtype() const;
  std::string device() const;
  int threads() const;
  int64_t max_sequence_length() const;
  const std::vector<WeightInfo>& weights() const;
  // Parameters (a tied embedding counted once).
  int64_t parameter_count() const;

  // Bytes of keys and values a cache holds when it has room for `positions`
  // tokens and was reserved with ReserveCache (allocations are at least 64
  // positions): what a serving engine counts against its memory budget.
  int64_t CacheBytes(int64_t positions) const;
  // Allocates room for `positions` tokens in `cache` at once (keeping what
  // it holds), so that Forward() never grows it while length <= positions,
  // and binds it to this model. INVALID_ARGUMENT beyond
  // max_sequence_length() or for a cache of another model;
  // RESOURCE_EXHAUSTED when the memory cannot be had.
  absl::Status ReserveCache(SequenceCache* cache, int64_t positions) const;
  // Makes `to` hold the keys and values of `from`'s positions (reserving
  // what it lacks): a prefix computed once continues in several caches
  // (the choices of a request with n > 1). `from` is left as it is.
  absl::Status CopyCache(const SequenceCache& from, SequenceCache* to) const;

  // Runs the new tokens of every input through the model, appends their keys
  // and values to the inputs' caches, and returns the last-token logits and
  // captured attention of each. INVALID_ARGUMENT for an empty token list, a
  // token id outside [0, vocab_size), a null or repeated cache, a cache of
  // another model, a layer index out of range, or a sequence that would
  // exceed max_sequence_length().
  absl::StatusOr<StepOutput> Forward(absl::Span<const SequenceInput> inputs) const;

  // Forward() in two halves, for pipelining: Launch() checks the inputs as
  // Forward() does, runs what cannot wait (prefills and other eager work),
  // queues the decode graphs' steps (decode_graphs.h) and returns; the
  // outputs come from PendingForward::Wait(). On CUDA with decode graphs the
  // device is still working when Launch() returns, so the caller can queue
  // the next step of other sequences, or sample, meanwhile; elsewhere the
  // work is done by then. The caches' lengths count the new tokens from
  // Launch() on; a cache must not be used by another call, nor destroyed,
  // before Wait() returned. Same values as Forward().
  absl::StatusOr<PendingForward> Launch(absl::Span<const SequenceInput> inputs) const;

  // True when Launch() returns before the device has done the decode steps
  // (CUDA with decode graphs): what pipelining needs to gain anything.
  bool asynchronous_launch() const;

  // Hands a step's logit vectors back to be filled by a later Forward()
  // instead of allocated (optional; saves the fresh pages of ~0.5 MB a
  // sequence a step for a 128k vocabulary). Thread-safe.
  void Recycle(StepOutput&& output) const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The rotary inverse frequencies [head_dim / 2] of `config` (Llama 3 scaling
// applied), computed in float32 with the operations of transformers'
// _compute_default_rope_parameters / _compute_llama3_parameters.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

// The cores this process may run on (sched_getaffinity; the hardware's
// count where that fails).
int CoresAvailable();

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_MODEL_TRANSFORMER_H_
