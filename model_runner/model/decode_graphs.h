// Decode steps as recorded device graphs over a static KV cache
// (ModelOptions.decode_graphs; on by default on CUDA). On a GPU a decode step
// of a 1B model is ~16 x 30 small kernels whose launches, not their
// arithmetic, set its time: recorded once as a CUDA graph, the whole step is
// one launch (docs/GPU.md, docs/PERFORMANCE.md).
//
// A graph reads fixed addresses, so the keys and values of the sequences it
// serves live in one tensor the model owns, the static KV cache
//   [rows + 1, layers, 2, kv_heads, row_positions, head_dim]
// (the last row is scratch for the padding of a graph's batch). A cache that
// needs at most row_positions positions takes a free row when it is reserved
// (Model::ReserveCache, or its first Forward) and gives it back when it is
// destroyed or outgrows the row; its `kv` is then a view of that row, so the
// eager forward pass (prefills, the rest) works on it unchanged.
//
// A step's decoding sequences in rows run as one graph chosen by
// (batch bucket, key bucket, captured layers): the batch padded up to 1, 2,
// 4, 8, then a multiple of 8; the keys up to a power of two from 64 (at most
// row_positions). Each graph is recorded the first time its bucket comes up.
// Its inputs (token ids, positions, rows) go in with one host-to-device copy
// and its outputs (logits and captured pre-softmax scores, in the compute
// dtype: the values the model computed, half the bytes of float32 in
// bfloat16) come back with one copy into page-locked memory, on a stream of
// its own, and are widened to float32 on the host into recycled vectors
// (Model::Recycle). Inside: per layer, the new key and value go into the rows
// (index_copy_), the rows' keys are gathered (index_select) and attended with
// the padding masked, as DecodeGroup does in transformer.cc: the same
// operations, so the same values up to the reassociation of sums over the
// padded key range.
//
// Launch returns once the step is queued (on CUDA; on the CPU it has run):
// the next step of other sequences can be queued before this one's outputs
// are read (Model::Launch, the engine's pipelining). Each bucket has as many
// recorded instances (static inputs, outputs and host buffers) as launches of
// it are in flight at once, two for the engine's two cohorts.
//
// Thread-safety: Launch, Finish, Eligible and Place may be called
// concurrently; launches are serialised.
#ifndef ENTROSERVE_MODEL_RUNNER_DECODE_GRAPHS_H_
#define ENTROSERVE_MODEL_RUNNER_DECODE_GRAPHS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "model_runner/model/transformer.h"
#include "model_runner/model/transformer_internal.h"

namespace entroserve {

class DeviceFence;  // device_graph.h
struct OutputPool;  // transformer_internal.h

// The free rows of a static KV cache.
struct KvRowList {
  std::mutex mu;
  std::vector<int64_t> free;
};

// A cache's hold on a row: gives it back when the last holder goes.
struct KvRowLease {
  KvRowLease(std::shared_ptr<KvRowList> list, int64_t row) : list(std::move(list)), row(row) {}
  ~KvRowLease();
  std::shared_ptr<KvRowList> list;
  int64_t row;
};

class DecodeGraphs {
 public:
  // `rows` sequences of `row_positions` positions each; nothing is allocated
  // until the first Place().
  DecodeGraphs(const Model::Impl& m, int64_t rows, int64_t row_positions);
  ~DecodeGraphs();

  int64_t row_positions() const { return row_positions_; }

  // Puts `state` in a row (copying what it caches) if it needs at most
  // row_positions() and a row is free; true when it is in a row then. False
  // leaves it as it was (the caller gives it memory of its own).
  bool Place(CacheState* state, int64_t needed);

  // The slots (indices) that can run graphed: one new token, in a row.
  std::vector<size_t> Eligible(const std::vector<Slot>& slots) const;

  struct Graph;

  // A queued step: holds its graph instance until destroyed (which waits
  // for the device if Finish was not called).
  class Launched {
   public:
    Launched(DecodeGraphs* owner, Graph* g);
    ~Launched();
    Launched(const Launched&) = delete;
    Launched& operator=(const Launched&) = delete;

   private:
    friend class DecodeGraphs;
    // What Finish needs of a member once its slot is gone.
    struct Member {
      size_t index;  // in the launch's slots
      int64_t past;
      std::vector<int> capture_layers;
      bool bf16_logits;
    };
    DecodeGraphs* const owner_;
    Graph* const g_;
    std::vector<Member> members_;
    std::unique_ptr<DeviceFence> fence_;
  };

  // Queues the decode step of `members` (from Eligible): writes their new
  // keys and values into their rows (lengths are the caller's to commit) and
  // their outputs into host memory. Returns once queued.
  std::unique_ptr<Launched> Launch(const std::vector<Slot>& slots,
                                   const std::vector<size_t>& members);
  // Waits for `launched` and sets (*outputs)[i] for each member i (its index
  // in the slots it was launched with), logits from `pool`.
  void Finish(Launched& launched, OutputPool& pool, std::vector<SequenceOutput>* outputs);

 private:
  using Key = std::tuple<int64_t, int64_t, std::vector<int>>;  // batch, keys, layers

  bool AllocateLocked();
  // A recorded instance of `key` that no launch holds, marked held.
  Graph& GraphFor(const Key& key);
  void Release(Graph& g);
  void FillInputs(Graph& g, const std::vector<Slot>& slots, const std::vector<size_t>& members);
  void Body(Graph& g) const;
  // Whether g runs with the fused kernels (ModelOptions.fused_kernels, and
  // a model and bucket they handle), and that body.
  bool Fused(const Graph& g) const;
  void FusedBody(Graph& g) const;
  at::Tensor WriteIndex(const at::Tensor& rows, const at::Tensor& positions) const;
  at::Tensor LayerStep(Graph& g, int64_t l, const at::Tensor& x, const Rotary& rotary,
                       const at::Tensor& masked, const at::Tensor& write_index) const;
  at::Tensor Attend(Graph& g, int64_t l, const at::Tensor& q, const at::Tensor& masked) const;
  void ReadMember(const Graph& g, const Launched::Member& member, const char* row, OutputPool& pool,
                  SequenceOutput* out) const;

  const Model::Impl& m_;
  const int64_t rows_;
  const int64_t row_positions_;
  std::shared_ptr<KvRowList> free_;
  std::mutex mu_;        // the pool's allocation, the graphs, runs
  bool failed_ = false;  // the pool could not be allocated: no rows
  at::Tensor pool_;      // [rows + 1, layers, 2, kv_heads, row_positions, head_dim]
  std::map<Key, std::vector<std::unique_ptr<Graph>>> graphs_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_DECODE_GRAPHS_H_
