#include "services/runnerd/sharded_sampler_backend.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sampler/base/guarded.h"

namespace entroserve {

ShardedSamplerBackend::ShardedSamplerBackend(std::vector<std::unique_ptr<SamplerBackend>> shards,
                                             int min_rows_per_shard)
    : shards_(std::move(shards)), min_rows_per_shard_(std::max(1, min_rows_per_shard)) {
  if (shards_.size() > 1)
    pool_ = std::make_unique<WorkerPool>(static_cast<int>(shards_.size()) - 1);
}

int ShardedSamplerBackend::ShardCount(size_t rows) const {
  const size_t by_size = std::max<size_t>(1, rows / static_cast<size_t>(min_rows_per_shard_));
  return static_cast<int>(std::min(shards_.size(), by_size));
}

// What ModelInfo reports as the sampler: the address, as with one stream.
std::string ShardedSamplerBackend::Describe() const { return shards_[0]->Describe(); }

SamplerBackend::Counters ShardedSamplerBackend::GetCounters() const {
  Counters total;
  for (const auto& shard : shards_) {
    const Counters counters = shard->GetCounters();
    total.reconnects += counters.reconnects;
    total.shared_memory_fallbacks += counters.shared_memory_fallbacks;
  }
  return total;
}

absl::Status OffsetRowIndex(const absl::Status& status, int offset) {
  if (offset == 0) return status;
  const absl::string_view message = status.message();
  // samplerd's in-band errors start "rows[j]"; the remote backend's own
  // checks of an answer name "results[j]", after an optional lead-in.
  for (const absl::string_view name : {"rows[", "results["}) {
    const size_t at = message.find(name);
    if (at == absl::string_view::npos || (name == "rows[" && at != 0)) continue;
    const size_t first = at + name.size();
    const size_t close = message.find(']', first);
    int index = 0;
    if (close == absl::string_view::npos ||
        !absl::SimpleAtoi(message.substr(first, close - first), &index)) {
      continue;
    }
    return absl::Status(status.code(), absl::StrCat(message.substr(0, first), index + offset,
                                                    message.substr(close)));
  }
  return status;
}

namespace {

// Whether resending the step may succeed: the engine waits and retries on
// these; any other status ends the rows.
bool Retryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kCancelled ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::StatusOr<std::vector<RowResult>> ShardedSamplerBackend::Sample(absl::Span<const Row> rows,
                                                                     const SampleControl& control) {
  const int count = ShardCount(rows.size());
  if (count == 1) return shards_[0]->Sample(rows, control);
  // Shard s gets rows [begin[s], begin[s + 1]): sizes differ by at most one.
  std::vector<size_t> begin(count + 1);
  for (int s = 0; s <= count; ++s) begin[s] = rows.size() * s / count;
  std::vector<absl::StatusOr<std::vector<RowResult>>> outcomes(count);
  auto run = [&](int s) noexcept {
    absl::Status thrown = RunGuarded(absl::StrCat("sampler stream ", s), [&] {
      outcomes[s] = shards_[s]->Sample(rows.subspan(begin[s], begin[s + 1] - begin[s]), control);
      return absl::OkStatus();
    });
    if (!thrown.ok()) outcomes[s] = std::move(thrown);
  };
  pool_->ParallelFor(count, run);
  // A status that resending cannot fix wins over a retryable one.
  const absl::Status* failure = nullptr;
  for (const auto& outcome : outcomes) {
    if (!outcome.ok() &&
        (failure == nullptr || (Retryable(*failure) && !Retryable(outcome.status())))) {
      failure = &outcome.status();
    }
  }
  if (failure != nullptr) return *failure;
  std::vector<RowResult> results;
  results.reserve(rows.size());
  for (int s = 0; s < count; ++s) {
    if (outcomes[s]->size() != begin[s + 1] - begin[s]) {
      return absl::InternalError(absl::StrCat("sampler stream ", s, " answered ",
                                              outcomes[s]->size(), " rows for ",
                                              begin[s + 1] - begin[s]));
    }
    for (RowResult& result : *outcomes[s]) {
      if (!result.status.ok()) {
        result.status = OffsetRowIndex(result.status, static_cast<int>(begin[s]));
      }
      results.push_back(std::move(result));
    }
  }
  return results;
}

}  // namespace entroserve
