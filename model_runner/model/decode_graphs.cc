#include "model_runner/model/decode_graphs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>

#include "model_runner/model/device_graph.h"

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
  at::Tensor out;           // float32 [batch, vocab + layers * heads * keys] on the device
  at::Tensor host_out;      // the same on the host (page-locked on CUDA)
  std::unique_ptr<DeviceGraph> recorded;
};

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
  std::unique_ptr<Graph>& slot = graphs_[key];
  if (slot) return *slot;
  auto g = std::make_unique<Graph>();
  std::tie(g->batch, g->keys, g->layers) = key;
  const auto on_device = at::TensorOptions().device(m_.device);
  g->inputs = at::zeros({3, g->batch}, on_device.dtype(at::kLong));
  g->host_inputs = HostBuffer({3, g->batch}, at::kLong, m_.device);
  const int64_t width =
      m_.config.vocab_size + static_cast<int64_t>(g->layers.size()) * m_.heads() * g->keys;
  g->out = at::zeros({g->batch, width}, on_device.dtype(at::kFloat));
  g->host_out = HostBuffer({g->batch, width}, at::kFloat, m_.device);
  slot = std::move(g);
  return *slot;
}

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
// ENTROSERVE_PROFILE_GRAPHS=1: per batch bucket, the mean host time of each
// phase of Run (synchronising after the replay), printed at exit.
struct PhaseProfile {
  int64_t runs = 0;
  double fill = 0, replay = 0, gpu = 0, d2h = 0, read = 0;
};
bool ProfileOn() {
  static const bool on = std::getenv("ENTROSERVE_PROFILE_GRAPHS") != nullptr;
  return on;
}
std::map<int64_t, PhaseProfile>& Profiles() {
  static auto* p = new std::map<int64_t, PhaseProfile>();
  static const int registered = std::atexit([] {
    for (const auto& [batch, p] : Profiles()) {
      const double n = static_cast<double>(std::max<int64_t>(1, p.runs));
      std::fprintf(stderr,
                   "graph profile batch %lld: %lld runs, ms fill %.3f replay %.3f gpu %.3f d2h "
                   "%.3f read %.3f\n",
                   static_cast<long long>(batch), static_cast<long long>(p.runs), p.fill / n,
                   p.replay / n, p.gpu / n, p.d2h / n, p.read / n);
    }
  });
  (void)registered;
  return *p;
}
double MsSince(std::chrono::steady_clock::time_point& t) {
  const auto now = std::chrono::steady_clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - t).count();
  t = now;
  return ms;
}
}  // namespace

void DecodeGraphs::Run(const std::vector<Slot>& slots, const std::vector<size_t>& members,
                       std::vector<SequenceOutput>* outputs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ProfileOn()) return ProfiledRun(slots, members, outputs);
  int64_t longest = 0;
  std::vector<int> layers;
  for (size_t i : members) {
    longest = std::max(longest, slots[i].past + 1);
    layers.insert(layers.end(), slots[i].capture_layers.begin(), slots[i].capture_layers.end());
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  Graph& g = GraphFor(Key(BatchBucket(static_cast<int64_t>(members.size())),
                          KeyBucket(longest, row_positions_), std::move(layers)));
  FillInputs(g, slots, members);
  if (!g.recorded) g.recorded = DeviceGraph::Record(m_.device, [this, &g] { Body(g); });
  g.recorded->Replay();
  ReadOutputs(g, slots, members, outputs);
}

void DecodeGraphs::ProfiledRun(const std::vector<Slot>& slots, const std::vector<size_t>& members,
                               std::vector<SequenceOutput>* outputs) {
  auto t = std::chrono::steady_clock::now();
  int64_t longest = 0;
  std::vector<int> layers;
  for (size_t i : members) {
    longest = std::max(longest, slots[i].past + 1);
    layers.insert(layers.end(), slots[i].capture_layers.begin(), slots[i].capture_layers.end());
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  Graph& g = GraphFor(Key(BatchBucket(static_cast<int64_t>(members.size())),
                          KeyBucket(longest, row_positions_), std::move(layers)));
  FillInputs(g, slots, members);
  const bool fresh = !g.recorded;
  if (!g.recorded) g.recorded = DeviceGraph::Record(m_.device, [this, &g] { Body(g); });
  SynchronizeDevice(m_.device);
  PhaseProfile p;
  p.fill = MsSince(t);
  g.recorded->Replay();
  p.replay = MsSince(t);
  SynchronizeDevice(m_.device);
  p.gpu = MsSince(t);
  const int64_t B = static_cast<int64_t>(members.size());
  at::Tensor host = g.host_out.narrow(0, 0, B);
  host.copy_(g.out.narrow(0, 0, B));
  p.d2h = MsSince(t);
  ReadOutputs(g, slots, members, outputs);
  p.read = MsSince(t) - p.d2h;  // ReadOutputs copies to the host again
  if (fresh) return;
  PhaseProfile& total = Profiles()[B];
  ++total.runs;
  total.fill += p.fill;
  total.replay += p.replay;
  total.gpu += p.gpu;
  total.d2h += p.d2h;
  total.read += p.read;
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
  // Flat [*, head_dim] index, in the pool, of (row, layer l, keys or values,
  // head h, position) for every layer and kind: [layers * 2, batch * kv_heads].
  const int64_t per_row = c.num_hidden_layers * 2 * m_.kv_heads();
  const at::Tensor base =
      ((rows * per_row).unsqueeze(1) + at::arange(m_.kv_heads(), index_options).unsqueeze(0)) *
          row_positions_ +
      positions.unsqueeze(1);
  const at::Tensor write_index =
      base.view({1, -1}) + at::arange(2 * c.num_hidden_layers, index_options).unsqueeze(1) *
                               (m_.kv_heads() * row_positions_);
  at::Tensor x = m_.embed.index_select(0, g.inputs[0]);  // [batch, hidden]
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    x = LayerStep(g, l, x, rotary, masked, write_index);
  }
  const at::Tensor logits = Logits(m_, RmsNorm(x, m_.final_norm, c.rms_norm_eps));
  g.out.narrow(1, 0, c.vocab_size).copy_(logits);
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

// One copy of the members' rows to the host, then each member's outputs.
void DecodeGraphs::ReadOutputs(Graph& g, const std::vector<Slot>& slots,
                               const std::vector<size_t>& members,
                               std::vector<SequenceOutput>* outputs) const {
  const int64_t B = static_cast<int64_t>(members.size());
  const int64_t width = g.out.size(1);
  at::Tensor host = g.host_out.narrow(0, 0, B);
  host.copy_(g.out.narrow(0, 0, B));
  const float* data = host.data_ptr<float>();
  // Megabytes of logits at large batches: copied out on up to 4 threads
  // (intra-op threads spin a while after a parallel region: few of them).
  at::parallel_for(0, B, std::max<int64_t>(4, (B + 3) / 4), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      ReadMember(g, slots[members[static_cast<size_t>(b)]], data + b * width,
                 &(*outputs)[members[static_cast<size_t>(b)]]);
    }
  });
}

// A member's logits and the scores of the layers it asked for, over exactly
// its keys, from its row of g.out on the host.
void DecodeGraphs::ReadMember(const Graph& g, const Slot& s, const float* row,
                              SequenceOutput* out) const {
  const int64_t V = m_.config.vocab_size, H = m_.heads();
  out->logits.assign(row, row + V);
  const int64_t keys = s.past + 1;
  const int64_t first_key =
      m_.config.sliding_window ? std::max<int64_t>(0, keys - *m_.config.sliding_window) : 0;
  for (int layer : s.capture_layers) {
    const int64_t j = std::find(g.layers.begin(), g.layers.end(), layer) - g.layers.begin();
    AttentionScores a;
    a.layer = layer;
    a.heads = H;
    a.keys = keys - first_key;
    a.first_key = first_key;
    a.scores.resize(static_cast<size_t>(H * a.keys));
    const float* scores = row + V + j * H * g.keys;
    for (int64_t h = 0; h < H; ++h) {
      std::memcpy(a.scores.data() + h * a.keys, scores + h * g.keys + first_key,
                  static_cast<size_t>(a.keys) * sizeof(float));
    }
    out->attention.push_back(std::move(a));
  }
}

}  // namespace entroserve
