#include "model_runner/model/decode_graphs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>

#include "model_runner/model/device_graph.h"
#include "model_runner/model/fused_ops.h"

namespace entroserve {
namespace {

// Smallest key bucket of a graph.
constexpr int64_t kMinKeyBucket = 64;

// 1, 2, 4, 8, then multiples of 8: few graphs, at most 7 padded rows.
int64_t BatchBucket(int64_t batch) {
  if (batch <= 8) {
    int64_t bucket = 1;
    while (bucket < batch) bucket *= 2;
    return bucket;
  }
  return (batch + 7) / 8 * 8;
}

// A power of two from kMinKeyBucket, at most `limit` (which holds `keys`).
int64_t KeyBucket(int64_t keys, int64_t limit) {
  int64_t bucket = kMinKeyBucket;
  while (bucket < keys) bucket *= 2;
  return std::min(bucket, limit);
}

}  // namespace

KvRowLease::~KvRowLease() {
  std::lock_guard<std::mutex> lock(list->mu);
  list->free.push_back(row);
}

// One recorded step and its static inputs and outputs.
struct DecodeGraphs::Graph {
  int64_t batch = 0;        // rows of the graph (the step's batch, padded)
  int64_t keys = 0;         // keys attended to (the longest member's, padded)
  std::vector<int> layers;  // layers whose scores it captures, ascending
  at::Tensor inputs;        // int64 [3, batch] on the device: token ids, positions, rows
  at::Tensor host_inputs;   // the same on the host
  // [batch, vocab + layers * heads * keys] on the device, in the compute
  // dtype (the logits and scores are values of it: nothing is rounded).
  at::Tensor out;
  at::Tensor host_out;  // the same on the host (page-locked on CUDA)
  std::unique_ptr<DeviceGraph> recorded;
  std::atomic<bool> held{false};  // by a Launched (set under mu_)
};

DecodeGraphs::Launched::Launched(DecodeGraphs* owner, Graph* g) : owner_(owner), g_(g) {}

DecodeGraphs::Launched::~Launched() {
  if (fence_) fence_->Wait();  // the copy into g's host buffer is done
  owner_->Release(*g_);
}

DecodeGraphs::DecodeGraphs(const Model::Impl& m, int64_t rows, int64_t row_positions)
    : m_(m), rows_(rows), row_positions_(row_positions), free_(std::make_shared<KvRowList>()) {}

DecodeGraphs::~DecodeGraphs() = default;

bool DecodeGraphs::AllocateLocked() {
  if (pool_.defined()) return true;
  if (failed_) return false;
  try {
    pool_ = at::zeros(
        {rows_ + 1, m_.config.num_hidden_layers, 2, m_.kv_heads(), row_positions_, m_.head_dim()},
        at::TensorOptions().dtype(m_.dtype).device(m_.device));
  } catch (const std::exception& e) {
    failed_ = true;
    std::fprintf(stderr,
                 "decode graphs: cannot allocate the static KV cache (%lld rows of %lld "
                 "positions): %s; decode steps run without graphs\n",
                 static_cast<long long>(rows_), static_cast<long long>(row_positions_), e.what());
    return false;
  }
  std::lock_guard<std::mutex> lock(free_->mu);
  for (int64_t r = rows_ - 1; r >= 0; --r) free_->free.push_back(r);
  return true;
}

bool DecodeGraphs::Place(CacheState* state, int64_t needed) {
  if (state->row) return needed <= row_positions_;
  if (needed > row_positions_) return false;
  int64_t row = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!AllocateLocked()) return false;
    std::lock_guard<std::mutex> free_lock(free_->mu);
    if (free_->free.empty()) return false;
    row = free_->free.back();
    free_->free.pop_back();
  }
  auto lease = std::make_shared<KvRowLease>(free_, row);
  at::Tensor kv = pool_[row];  // [layers, 2, kv_heads, row_positions, head_dim]
  if (state->length > 0) {
    kv.narrow(3, 0, state->length).copy_(state->kv.narrow(3, 0, state->length));
  }
  state->kv = kv;
  state->row = std::move(lease);
  return true;
}

std::vector<size_t> DecodeGraphs::Eligible(const std::vector<Slot>& slots) const {
  std::vector<size_t> members;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    if (s.count == 1 && s.cache->row && s.past + 1 <= row_positions_) members.push_back(i);
  }
  return members;
}

DecodeGraphs::Graph& DecodeGraphs::GraphFor(const Key& key) {
  std::vector<std::unique_ptr<Graph>>& instances = graphs_[key];
  for (std::unique_ptr<Graph>& g : instances) {
    if (!g->held.load()) {
      g->held.store(true);
      return *g;
    }
  }
  auto g = std::make_unique<Graph>();
  std::tie(g->batch, g->keys, g->layers) = key;
  const auto on_device = at::TensorOptions().device(m_.device);
  g->inputs = at::zeros({3, g->batch}, on_device.dtype(at::kLong));
  g->host_inputs = HostBuffer({3, g->batch}, at::kLong, m_.device);
  const int64_t width =
      m_.config.vocab_size + static_cast<int64_t>(g->layers.size()) * m_.heads() * g->keys;
  g->out = at::zeros({g->batch, width}, on_device.dtype(m_.dtype));
  g->host_out = HostBuffer({g->batch, width}, m_.dtype, m_.device);
  g->held.store(true);
  instances.push_back(std::move(g));
  return *instances.back();
}

void DecodeGraphs::Release(Graph& g) { g.held.store(false); }

// Token ids, positions and rows of the members; the padding reads token 0 at
// position 0 of the scratch row.
void DecodeGraphs::FillInputs(Graph& g, const std::vector<Slot>& slots,
                              const std::vector<size_t>& members) {
  int64_t* in = g.host_inputs.data_ptr<int64_t>();
  std::fill(in, in + 3 * g.batch, 0);
  for (int64_t b = 0; b < g.batch; ++b) in[2 * g.batch + b] = rows_;
  for (size_t b = 0; b < members.size(); ++b) {
    const Slot& s = slots[members[b]];
    in[b] = s.tokens[0];
    in[g.batch + b] = s.past;
    in[2 * g.batch + b] = s.cache->row->row;
  }
  g.inputs.copy_(g.host_inputs, /*non_blocking=*/true);
}

namespace {

// ENTROSERVE_PROFILE_GRAPHS=1: per batch bucket, the mean host time of
// Launch, of Finish's wait for the device and of its widening of the
// outputs, printed at exit (tools/gpu/profile.sh).
struct PhaseProfile {
  int64_t launches = 0, finishes = 0;
  double launch = 0, wait = 0, read = 0;
};

bool ProfileOn() {
  static const bool on = std::getenv("ENTROSERVE_PROFILE_GRAPHS") != nullptr;
  return on;
}

// Adds a Launch's time (finished false) or a Finish's wait and read times.
void AddProfile(int64_t batch, bool finished, double first, double second) {
  static std::mutex mu;
  static auto* profiles = new std::map<int64_t, PhaseProfile>();
  static const int registered = std::atexit([] {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [b, p] : *profiles) {
      const double l = static_cast<double>(std::max<int64_t>(1, p.launches));
      const double f = static_cast<double>(std::max<int64_t>(1, p.finishes));
      std::fprintf(stderr,
                   "graph profile batch %lld: %lld runs, ms launch %.3f wait %.3f read %.3f\n",
                   static_cast<long long>(b), static_cast<long long>(p.finishes), p.launch / l,
                   p.wait / f, p.read / f);
    }
  });
  (void)registered;
  std::lock_guard<std::mutex> lock(mu);
  PhaseProfile& p = (*profiles)[batch];
  if (finished) {
    ++p.finishes;
    p.wait += first;
    p.read += second;
  } else {
    ++p.launches;
    p.launch += first;
  }
}

double MsSince(std::chrono::steady_clock::time_point* t) {
  const auto now = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - *t).count();
  *t = now;
  return ms;
}

// `n` values of `dtype` at `src` as float32 (exact: every value of a
// 16-bit float is one of float32).
void Widen(const char* src, at::ScalarType dtype, int64_t n, float* dst) {
  if (dtype == at::kFloat) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (dtype == at::kBFloat16) {
    const uint16_t* in = reinterpret_cast<const uint16_t*>(src);
    uint32_t* out = reinterpret_cast<uint32_t*>(dst);  // bfloat16 is float32's top half
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint32_t>(in[i]) << 16;
  } else {
    const c10::Half* in = reinterpret_cast<const c10::Half*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(in[i]);
  }
}

}  // namespace

std::unique_ptr<DecodeGraphs::Launched> DecodeGraphs::Launch(const std::vector<Slot>& slots,
                                                             const std::vector<size_t>& members) {
  auto start = std::chrono::steady_clock::now();
  int64_t longest = 0;
  std::vector<int> layers;
  for (size_t i : members) {
    longest = std::max(longest, slots[i].past + 1);
    layers.insert(layers.end(), slots[i].capture_layers.begin(), slots[i].capture_layers.end());
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  const int64_t B = static_cast<int64_t>(members.size());
  std::lock_guard<std::mutex> lock(mu_);
  Graph& g = GraphFor(Key(BatchBucket(B), KeyBucket(longest, row_positions_), std::move(layers)));
  auto launched = std::make_unique<Launched>(this, &g);
  for (size_t i : members)
    launched->members_.push_back({i, slots[i].past, slots[i].capture_layers, slots[i].bf16_logits});
  FillInputs(g, slots, members);
  const bool fresh = !g.recorded;
  if (fresh) {
    const bool fused = Fused(g);
    g.recorded = DeviceGraph::Record(m_.device, [this, &g, fused] {
      if (fused) {
        FusedBody(g);
      } else {
        Body(g);
      }
    });
  }
  g.recorded->Replay();
  launched->fence_ = CopyToHostAsync(g.out.narrow(0, 0, B), g.host_out.narrow(0, 0, B));
  if (ProfileOn() && !fresh) AddProfile(B, /*finished=*/false, MsSince(&start), 0);
  return launched;
}

// One wait for the device, then each member's outputs, widened to float32 on
// up to 4 threads (megabytes of logits at large batches; intra-op threads
// spin a while after a parallel region: few of them).
void DecodeGraphs::Finish(Launched& launched, OutputPool& pool,
                          std::vector<SequenceOutput>* outputs) {
  auto start = std::chrono::steady_clock::now();
  launched.fence_->Wait();
  launched.fence_.reset();
  const double wait = ProfileOn() ? MsSince(&start) : 0;
  const Graph& g = *launched.g_;
  const int64_t B = static_cast<int64_t>(launched.members_.size());
  const int64_t row_bytes = g.host_out.size(1) * g.host_out.element_size();
  const char* data = static_cast<const char*>(g.host_out.data_ptr());
  at::parallel_for(0, B, std::max<int64_t>(4, (B + 3) / 4), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const Launched::Member& member = launched.members_[static_cast<size_t>(b)];
      ReadMember(g, member, data + b * row_bytes, pool, &(*outputs)[member.index]);
    }
  });
  if (ProfileOn()) AddProfile(B, /*finished=*/true, wait, MsSince(&start));
}

// The recorded step: reads g.inputs and the weights, writes the rows' new
// keys and values and g.out.
void DecodeGraphs::Body(Graph& g) const {
  const ModelConfig& c = m_.config;
  const at::Tensor positions = g.inputs[1];
  const at::Tensor rows = g.inputs[2];
  const auto index_options = at::TensorOptions().dtype(at::kLong).device(m_.device);
  const Rotary rotary = RotaryTables(m_, positions);
  // Padding keys (beyond each member's position, and before its sliding
  // window) are masked: [batch, 1, keys].
  const at::Tensor key_index = at::arange(g.keys, index_options).unsqueeze(0);
  at::Tensor masked = key_index > positions.unsqueeze(1);
  if (c.sliding_window) {
    masked = at::logical_or(masked, key_index <= positions.unsqueeze(1) - *c.sliding_window);
  }
  masked = masked.unsqueeze(1);
  const at::Tensor write_index = WriteIndex(rows, positions);
  at::Tensor x = m_.embed.index_select(0, g.inputs[0]);  // [batch, hidden]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    x = LayerStep(g, l, x, rotary, masked, write_index);
  }
  // The logits in the compute dtype (Logits() would widen them to float32
  // on the device): the host widens them, after a copy of half the bytes.
  const at::Tensor h = RmsNorm(x, m_.final_norm, c.rms_norm_eps);
  g.out.narrow(1, 0, c.vocab_size).copy_(Apply(Linear{m_.lm_head, {}}, h, false));
}

// Flat [*, head_dim] index, in the pool, of (row, layer l, keys or values,
// head h, position) for every layer and kind: [layers * 2, batch * kv_heads].
at::Tensor DecodeGraphs::WriteIndex(const at::Tensor& rows, const at::Tensor& positions) const {
  const ModelConfig& c = m_.config;
  const auto index_options = at::TensorOptions().dtype(at::kLong).device(m_.device);
  const int64_t per_row = c.num_hidden_layers * 2 * m_.kv_heads();
  const at::Tensor base =
      ((rows * per_row).unsqueeze(1) + at::arange(m_.kv_heads(), index_options).unsqueeze(0)) *
          row_positions_ +
      positions.unsqueeze(1);
  return base.view({1, -1}) + at::arange(2 * c.num_hidden_layers, index_options).unsqueeze(1) *
                                  (m_.kv_heads() * row_positions_);
}

bool DecodeGraphs::Fused(const Graph& g) const {
  const Layer& first = m_.layers.front();
  return m_.options.fused_kernels.value_or(false) && first.qkv.weight.defined() &&
         first.gate_up.weight.defined() && 256 % m_.head_dim() == 0 &&
         m_.heads() % m_.kv_heads() == 0 && g.keys <= 8192;
}

// Body with the fused kernels (fused_ops.h): per layer, the residual's sum
// and norm, the q/k/v product, the rotation and the cache write, the
// attention, the o product, the sum and norm, the gate/up product, silu * up
// and the down product: ~10 kernels instead of ~35. The residual stream is
// carried as x + add, the sum made by the next norm.
void DecodeGraphs::FusedBody(Graph& g) const {
  const ModelConfig& c = m_.config;
  const double eps = c.rms_norm_eps;
  const at::Tensor positions = g.inputs[1];
  const at::Tensor rows = g.inputs[2];
  const Rotary rotary = RotaryTables(m_, positions);
  const at::Tensor write_index = WriteIndex(rows, positions);
  at::Tensor x = m_.embed.index_select(0, g.inputs[0]);  // [batch, hidden]
  at::Tensor add;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& layer = m_.layers[static_cast<size_t>(l)];
    const NormedSum in = FusedAddRmsNorm(x, add, layer.input_norm, eps);
    const at::Tensor q = FusedRopeStore(m_, Apply(layer.qkv, in.normed, false), rotary, pool_,
                                        write_index[2 * l], write_index[2 * l + 1]);
    at::Tensor capture;
    const auto at_layer = std::find(g.layers.begin(), g.layers.end(), static_cast<int>(l));
    if (at_layer != g.layers.end()) {
      const int64_t j = at_layer - g.layers.begin(), width = m_.heads() * g.keys;
      capture = g.out.narrow(1, c.vocab_size + j * width, width);
    }
    const at::Tensor attention =
        FusedDecodeAttention(m_, q, pool_, l, rows, positions, g.keys, capture);
    const NormedSum post =
        FusedAddRmsNorm(in.sum, Apply(layer.o, attention, false), layer.post_norm, eps);
    add = Apply(layer.down, FusedSiluMul(Apply(layer.gate_up, post.normed, false)), false);
    x = post.sum;
  }
  const NormedSum last = FusedAddRmsNorm(x, add, m_.final_norm, eps);
  g.out.narrow(1, 0, c.vocab_size).copy_(Apply(Linear{m_.lm_head, {}}, last.normed, false));
}

at::Tensor DecodeGraphs::LayerStep(Graph& g, int64_t l, const at::Tensor& x, const Rotary& rotary,
                                   const at::Tensor& masked, const at::Tensor& write_index) const {
  const Layer& layer = m_.layers[static_cast<size_t>(l)];
  const QueryKeyValue qkv =
      ProjectQkv(m_, layer, RmsNorm(x, layer.input_norm, m_.config.rms_norm_eps), rotary);
  // The new key and value of every member into its row.
  const int64_t Dh = m_.head_dim();
  at::Tensor flat = pool_.view({-1, Dh});
  flat.index_copy_(0, write_index[2 * l], qkv.k.reshape({-1, Dh}));
  flat.index_copy_(0, write_index[2 * l + 1], qkv.v.reshape({-1, Dh}));
  return FinishLayer(m_, layer, x, Attend(g, l, qkv.q, masked));
}

// As DecodeGroup::Attend (transformer.cc), over the rows' first g.keys keys.
at::Tensor DecodeGraphs::Attend(Graph& g, int64_t l, const at::Tensor& q,
                                const at::Tensor& masked) const {
  const int64_t B = g.batch, H = m_.heads(), KVH = m_.kv_heads(), Dh = m_.head_dim();
  const at::Tensor rows = g.inputs[2];
  // The members' keys and values in one gather: [2, B, KVH, keys, Dh].
  const at::Tensor kv =
      pool_.select(1, l).narrow(3, 0, g.keys).transpose(0, 1).index_select(1, rows);
  const at::Tensor key = kv[0];
  const at::Tensor value = kv[1];
  // Query heads grouped by the key head they read: [B, KVH, G, Dh].
  const at::Tensor query = q.reshape({B, KVH, H / KVH, Dh});
  at::Tensor scores = (at::matmul(query, key.transpose(2, 3)) * m_.scale()).view({B, H, g.keys});
  const auto at_layer = std::find(g.layers.begin(), g.layers.end(), static_cast<int>(l));
  if (at_layer != g.layers.end()) {
    const int64_t j = at_layer - g.layers.begin();
    g.out.narrow(1, m_.config.vocab_size + j * H * g.keys, H * g.keys)
        .copy_(scores.reshape({B, H * g.keys}));
  }
  scores = scores.masked_fill(masked, -std::numeric_limits<double>::infinity());
  const at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(m_.dtype);
  return at::matmul(probs.view({B, KVH, H / KVH, g.keys}), value).reshape({B, H * Dh});
}

// A member's logits and the scores of the layers it asked for, over exactly
// its keys, from its row of g.host_out.
void DecodeGraphs::ReadMember(const Graph& g, const Launched::Member& member, const char* row,
                              OutputPool& pool, SequenceOutput* out) const {
  const int64_t V = m_.config.vocab_size, H = m_.heads();
  const at::ScalarType dtype = g.host_out.scalar_type();
  const int64_t size = g.host_out.element_size();
  if (member.bf16_logits && dtype == at::kBFloat16) {
    out->logits_bf16 = pool.TakeBf16();
    out->logits_bf16.resize(static_cast<size_t>(V));
    std::memcpy(out->logits_bf16.data(), row, static_cast<size_t>(V) * sizeof(uint16_t));
  } else {
    out->logits = pool.Take();
    out->logits.resize(static_cast<size_t>(V));
    Widen(row, dtype, V, out->logits.data());
  }
  const int64_t keys = member.past + 1;
  const int64_t first_key =
      m_.config.sliding_window ? std::max<int64_t>(0, keys - *m_.config.sliding_window) : 0;
  for (int layer : member.capture_layers) {
    const int64_t j = std::find(g.layers.begin(), g.layers.end(), layer) - g.layers.begin();
    AttentionScores a;
    a.layer = layer;
    a.heads = H;
    a.keys = keys - first_key;
    a.first_key = first_key;
    a.scores.resize(static_cast<size_t>(H * a.keys));
    const char* scores = row + (V + j * H * g.keys) * size;
    for (int64_t h = 0; h < H; ++h) {
      Widen(scores + (h * g.keys + first_key) * size, dtype, a.keys, a.scores.data() + h * a.keys);
    }
    out->attention.push_back(std::move(a));
  }
}

}  // namespace entroserve
