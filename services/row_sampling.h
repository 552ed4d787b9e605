// One row of a SampleRequest, end to end: parse and check it at the edge
// (sampler_convert.h), create its sampler from the config, sample, and fill
// the result. The core call of the sampler service, free of gRPC so that it
// is tested without a server.
#ifndef ENTROSERVE_SERVICES_ROW_SAMPLING_H_
#define ENTROSERVE_SERVICES_ROW_SAMPLING_H_

#include <string>

#include "absl/status/status.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

// The path of row `index` in error messages: "rows[3].".
std::string RowPrefix(int index);

// Samples `row`, the `index`-th of its request, into `result`. A row without
// a seed gets one picked at random here, echoed in the result. Never throws:
// whatever goes wrong becomes `result->error` (and then only sequence_id and
// step are set besides). Thread-safe; deterministic given the row's seed.
void SampleOneRow(const sampler::v1::SampleRow& row, int index, sampler::v1::SampleResult* result);

// Makes `result` the in-band error of `row`: only sequence_id, step and error.
void SetRowFailure(const sampler::v1::SampleRow& row, const absl::Status& status,
                   sampler::v1::SampleResult* result);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_ROW_SAMPLING_H_
