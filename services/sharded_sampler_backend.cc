#include "services/sharded_sampler_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"

namespace entroserve {

ShardedSamplerBackend::ShardedSamplerBackend(std::vector<std::unique_ptr<SamplerBackend>> shards,
                                             int min_rows_per_shard)
    : shards_(std::move(shards)), min_rows_per_shard_(std::max(1, min_rows_per_shard)) {
  if (shards_.size() > 1) pool_ = std::make_unique<WorkerPool>(static_cast<int>(shards_.size()) - 1);
}

int ShardedSamplerBackend::ShardCount(size_t rows) const {
  const size_t by_size = std::max<size_t>(1, rows / static_cast<size_t>(min_rows_per_shard_));
  return static_cast<int>(std::min(shards_.size(), by_size));
}

std::string ShardedSamplerBackend::Describe() const {
  return shards_.size() == 1 ? shards_[0]->Describe()
                             : absl::StrCat(shards_[0]->Describe(), " (", shards_.size(),
                                            " streams)");
}

absl::Status OffsetRowIndex(const absl::Status& status, int offset) {
  const absl::string_view message = status.message();
  if (offset == 0 || !absl::StartsWith(message, "rows[")) return status;
  const size_t close = message.find(']');
  int index = 0;
  if (close == absl::string_view::npos || !absl::SimpleAtoi(message.substr(5, close - 5), &index)) {
    return status;
  }
  return absl::Status(status.code(),
                      absl::StrCat("rows[", index + offset, message.substr(close)));
}

absl::StatusOr<std::vector<SamplerRowResult>> ShardedSamplerBackend::Sample(
    absl::Span<const SamplerRow> rows, const SampleControl& control) {
  const int count = ShardCount(rows.size());
  if (count == 1) return shards_[0]->Sample(rows, control);
  // Shard s gets rows [begin[s], begin[s + 1]): sizes differ by at most one.
  std::vector<size_t> begin(count + 1);
  for (int s = 0; s <= count; ++s) begin[s] = rows.size() * s / count;
  std::vector<absl::StatusOr<std::vector<SamplerRowResult>>> outcomes(count);
  auto run = [&](int s) {
    outcomes[s] = shards_[s]->Sample(rows.subspan(begin[s], begin[s + 1] - begin[s]), control);
  };
  absl::BlockingCounter done(count - 1);
  for (int s = 1; s < count; ++s) {
    pool_->Schedule([&run, &done, s] {
      run(s);
      done.DecrementCount();
    });
  }
  run(0);
  done.Wait();
  std::vector<SamplerRowResult> results;
  results.reserve(rows.size());
  for (int s = 0; s < count; ++s) {
    if (!outcomes[s].ok()) return outcomes[s].status();
    if (outcomes[s]->size() != begin[s + 1] - begin[s]) {
      return absl::InternalError(absl::StrCat("sampler stream ", s, " answered ",
                                              outcomes[s]->size(), " rows for ",
                                              begin[s + 1] - begin[s]));
    }
    for (SamplerRowResult& result : *outcomes[s]) {
      if (!result.status.ok()) {
        result.status = OffsetRowIndex(result.status, static_cast<int>(begin[s]));
      }
      results.push_back(std::move(result));
    }
  }
  return results;
}

}  // namespace entroserve
