#include "services/runnerd/local_sampler_backend.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/samplerd/row_sampling.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

// Checks and samples one row, as samplerd's SampleOneRow does for a row
// decoded from the wire.
absl::Status SampleRow(const SamplerRow& row, DType wire_dtype, const std::string& prefix,
                       SamplerRowResult* result) {
  ParsedRow parsed;
  parsed.config = row.config;
  parsed.step = row.step;
  parsed.seed = row.seed;
  RoundThroughWire(wire_dtype, row.logits, &parsed.logits);
  if (!row.attention.empty()) RoundThroughWire(wire_dtype, row.attention, &parsed.attention);
  parsed.heads = row.heads;
  parsed.keys = row.keys;
  parsed.special_tokens = row.special_tokens;
  parsed.state = row.state;
  if (absl::Status s = CheckRow(prefix, row.appended_tokens, &parsed); !s.ok()) return s;
  absl::StatusOr<RowOutput> output = SampleParsedRow(parsed, prefix, &result->state);
  if (!output.ok()) return output.status();
  result->output = *std::move(output);
  result->seed = row.seed;
  return absl::OkStatus();
}

}  // namespace

void RoundThroughWire(DType dtype, absl::Span<const float> values, std::vector<float>* out) {
  if (dtype == DType::kFloat32) {
    out->assign(values.begin(), values.end());
    return;
  }
  const std::string bytes = EncodeTensor(dtype, values);
  // Cannot fail: the size matches by construction, and every value decodes.
  (void)DecodeTensor(dtype, bytes, static_cast<int64_t>(values.size()), "", out);
}

LocalSamplerBackend::LocalSamplerBackend(DType wire_dtype, int workers)
    : wire_dtype_(wire_dtype) {
  // The calling thread samples too: workers - 1 more.
  if (workers > 1) pool_ = std::make_unique<WorkerPool>(workers - 1);
}

LocalSamplerBackend::~LocalSamplerBackend() = default;

absl::StatusOr<std::vector<SamplerRowResult>> LocalSamplerBackend::Sample(
    absl::Span<const SamplerRow> rows, const SampleControl& control) {
  std::vector<SamplerRowResult> results(rows.size());
  // Never throws: the pool's tasks must not, and the stack frame the tasks
  // use must outlive them.
  auto sample_one = [&](size_t i) noexcept {
    absl::Status status;
    try {
      status = SampleRow(rows[i], wire_dtype_, RowPrefix(static_cast<int>(i)), &results[i]);
    } catch (const std::exception& e) {
      status = absl::InternalError(
          absl::StrCat(RowPrefix(static_cast<int>(i)), "internal error: ", e.what()));
    } catch (...) {
      status = absl::InternalError(
          absl::StrCat(RowPrefix(static_cast<int>(i)), "internal error"));
    }
    if (!status.ok()) {
      results[i] = SamplerRowResult();
      results[i].status = std::move(status);
    }
  };
  if (pool_ == nullptr || rows.size() < 2) {
    for (size_t i = 0; i < rows.size(); ++i) sample_one(i);
  } else {
    pool_->ParallelFor(static_cast<int>(rows.size()),
                       [&sample_one](int i) { sample_one(static_cast<size_t>(i)); });
  }
  return results;
}

}  // namespace entroserve
