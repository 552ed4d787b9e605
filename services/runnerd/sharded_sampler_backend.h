// A SamplerBackend that splits each step's rows over several backends and
// calls them at the same time: runnerd --sampler_streams=K runs K remote
// backends, each its own SampleStream on its own connection to samplerd, so
// that the bytes of a large batch (32 rows of 128k BF16 logits are 8 MB a
// step) move through K HTTP/2 connections in parallel instead of one.
//
// Rows are stateless for the sampler (each carries its SamplerState), so
// which stream carries a row changes nothing in its result. A step's rows
// are cut into contiguous shards of at least `min_rows_per_shard` rows
// (so one row goes out whole on the first backend); the results come back
// in the rows' order, with in-band row errors renamed from the shard's
// "rows[j]" (or "results[j]") to the batch's "rows[offset + j]". A shard
// that fails as a whole fails the call with its status; when several fail,
// one that resending cannot fix wins over UNAVAILABLE, CANCELLED or
// DEADLINE_EXCEEDED (which the engine waits on and retries).
//
// Thread-safety: Sample() is called by one thread at a time, as for every
// SamplerBackend; the shards run on threads of the backend's own pool.
#ifndef ENTROSERVE_SERVICES_RUNNERD_SHARDED_SAMPLER_BACKEND_H_
#define ENTROSERVE_SERVICES_RUNNERD_SHARDED_SAMPLER_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "model_runner/engine/sampler_backend.h"
#include "services/common/worker_pool.h"

namespace entroserve {

class ShardedSamplerBackend final : public SamplerBackend {
 public:
  // `shards` must not be empty.
  ShardedSamplerBackend(std::vector<std::unique_ptr<SamplerBackend>> shards,
                        int min_rows_per_shard = 2);

  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl& control) override;
  std::string Describe() const override;
  // The shards' counters added up.
  Counters GetCounters() const override;

  // How many shards `rows` rows are cut into.
  int ShardCount(size_t rows) const;

 private:
  std::vector<std::unique_ptr<SamplerBackend>> shards_;
  const int min_rows_per_shard_;
  std::unique_ptr<WorkerPool> pool_;  // shards beyond the first; null with one
};

// `status` with a leading "rows[j]" renamed "rows[j + offset]".
absl::Status OffsetRowIndex(const absl::Status& status, int offset);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_SHARDED_SAMPLER_BACKEND_H_
