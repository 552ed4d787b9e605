// One row of a SampleRequest, end to end: parse and check it at the edge
// (sampler_convert.h), create its sampler from the config, sample, and fill
// the result. The core call of the sampler service, free of gRPC so that it
// is tested without a server.
#ifndef ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_
#define ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sampler/core/types.h"
#include "sampler/v1/sampler.pb.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {

// The path of row `index` in error messages: "rows[3].".
std::string RowPrefix(int index);

// Samples `row`, the `index`-th of its request, into `result`. A row without
// a seed gets one picked at random here, echoed in the result. Never throws:
// whatever goes wrong becomes `result->error` (and then only sequence_id and
// step are set besides). Thread-safe; deterministic given the row's seed.
// Tensors in shared memory are read through `shm` (null: refused).
void SampleOneRow(const sampler::v1::SampleRow& row, int index, sampler::v1::SampleResult* result,
                  SharedMemoryReader* shm = nullptr);

// The proto-free core, shared by samplerd (SampleOneRow) and runnerd's
// in-process backend: creates the row's sampler, checks that a sampler that
// needs its state got it (CheckStateSent), samples, checks the token, and
// sets `state` to the sequence's new state (stamped with the sampler's name
// and next_step = step + 1). Errors name `prefix`. Thread-safe.
absl::StatusOr<RowOutput> SampleParsedRow(const ParsedRow& parsed, const std::string& prefix,
                                          SamplerState* state);

// Makes `result` the in-band error of `row`: only sequence_id, step and error.
void SetRowFailure(const sampler::v1::SampleRow& row, const absl::Status& status,
                   sampler::v1::SampleResult* result);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_SAMPLERD_ROW_SAMPLING_H_
