// One row of a SampleRequest, end to end: decode it (services/wire), sample
// it (sampler/sample_row.h, which checks it), encode the result. The core
// call of the sampler service, free of gRPC so that it is tested without a
// server.
#ifndef ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_
#define ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_

#include "absl/status/status.h"
#include "sampler/v1/sampler.pb.h"
#include "services/wire/shared_memory.h"

namespace entroserve {

// Samples `row`, the `index`-th of its request, into `result`. A row without
// a seed gets one picked at random here, echoed in the result. Never throws:
// whatever goes wrong becomes `result->error` (and then only sequence_id and
// step are set besides). Thread-safe; deterministic given the row's seed.
// Tensors in shared memory are read through `shm` (null: refused).
void SampleOneRow(const sampler::v1::SampleRow& row, int index, sampler::v1::SampleResult* result,
                  SharedMemoryReader* shm = nullptr);

// Makes `result` the in-band error of `row`: only sequence_id, step and error.
void SetRowFailure(const sampler::v1::SampleRow& row, const absl::Status& status,
                   sampler::v1::SampleResult* result);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_
