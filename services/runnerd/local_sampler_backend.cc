#include "services/runnerd/local_sampler_backend.h"

#include <utility>

#include "sampler/base/guarded.h"
#include "sampler/sample_row.h"

namespace entroserve {
namespace {

// Samples `row` from its values rounded through `wire_dtype`, as samplerd
// would decode them. Values that are bfloat16 already (`bfloat16_values`)
// are their own rounding: sampled in place, without the copies.
RowResult SampleRounded(const Row& row, DType wire_dtype, bool bfloat16_values,
                        const std::string& prefix) {
  if (wire_dtype == DType::kFloat32 || (wire_dtype == DType::kBFloat16 && bfloat16_values)) {
    return SampleRow(row, prefix);
  }
  OwnedRow rounded;
  rounded.row = row;
  std::vector<float> widened;
  RoundThroughWire(wire_dtype, FloatLogits(row, &widened), &rounded.logits);
  RoundThroughWire(wire_dtype, row.attention, &rounded.attention);
  rounded.appended_tokens.assign(row.appended_tokens.begin(), row.appended_tokens.end());
  rounded.allowed_tokens.assign(row.allowed_tokens.begin(), row.allowed_tokens.end());
  rounded.Bind();
  return SampleRow(rounded.row, prefix);
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

LocalSamplerBackend::LocalSamplerBackend(DType wire_dtype, int workers) : wire_dtype_(wire_dtype) {
  // The calling thread samples too: workers - 1 more.
  if (workers > 1) pool_ = std::make_unique<WorkerPool>(workers - 1);
}

LocalSamplerBackend::~LocalSamplerBackend() = default;

absl::StatusOr<std::vector<RowResult>> LocalSamplerBackend::Sample(absl::Span<const Row> rows,
                                                                   const SampleControl& control) {
  std::vector<RowResult> results(rows.size());
  // The pool's tasks must not throw (rounding allocates).
  auto sample_one = [&](int i) noexcept {
    const std::string prefix = RowPrefix(i);
    absl::Status status = RunGuarded(prefix + "internal error", [&] {
      results[i] = SampleRounded(rows[i], wire_dtype_, control.bfloat16_values, prefix);
      return absl::OkStatus();
    });
    if (!status.ok()) {
      results[i] = RowResult();
      results[i].status = std::move(status);
    }
  };
  if (pool_ == nullptr || rows.size() < 2) {
    for (size_t i = 0; i < rows.size(); ++i) sample_one(static_cast<int>(i));
  } else {
    pool_->ParallelFor(static_cast<int>(rows.size()), sample_one);
  }
  return results;
}

}  // namespace entroserve
