#include "services/samplerd/row_sampling.h"

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "sampler/base/guarded.h"
#include "sampler/base/seed.h"
#include "sampler/core/row.h"
#include "sampler/sample_row.h"
#include "services/common/status_util.h"
#include "services/wire/row_convert.h"

namespace entroserve {

namespace v1 = ::sampler::v1;

void SetRowFailure(const v1::SampleRow& row, const absl::Status& status, v1::SampleResult* result) {
  result->Clear();
  result->set_sequence_id(row.sequence_id());
  result->set_step(row.step());
  SetRowError(status, result->mutable_error());
}

void SampleOneRow(const v1::SampleRow& row, int index, v1::SampleResult* result,
                  SharedMemoryReader* shm) {
  const std::string prefix = RowPrefix(index);
  // Each pool thread decodes into its own row, reused from row to row.
  thread_local OwnedRow owned;
  // Decoding allocates (a bad_alloc on a huge row must not end the server).
  const absl::Status decoded = RunGuarded(prefix + "internal error", [&] {
    return DecodeRowInto(row, prefix, row.has_seed() ? 0 : PickSeed(), shm, &owned);
  });
  if (!decoded.ok()) {
    SetRowFailure(row, decoded, result);
    return;
  }
  EncodeResult(owned.row, SampleRow(owned.row, prefix), result);
}

}  // namespace entroserve
