// The in-process SamplerBackend (runnerd --sampler=local): every row is
// checked and sampled by the call samplerd makes on a decoded row
// (sampler/sample_row.h's SampleRow), without any protobuf.
//
// Same tokens as through samplerd: before sampling, the logits and attention
// scores are rounded through `wire_dtype`, the dtype the remote backend
// would send them in (sampler/core/tensor.h's EncodeTensor then DecodeTensor:
// exactly the bytes samplerd would decode). runnerd passes its
// --sampler_dtype here, BF16 by default; FLOAT32 leaves the values as the
// model produced them, and so does BF16 when SampleControl.bfloat16_values
// says they are bfloat16 values already (a bfloat16 model): then rows are
// sampled in place, without copies.
//
// A batch's rows are sampled in parallel on `workers` threads of its own (as
// samplerd's worker pool does; 1: on the calling thread, one after another).
// Never blocks on anything else, so SampleControl is not consulted.
#ifndef ENTROSERVE_SERVICES_RUNNERD_LOCAL_SAMPLER_BACKEND_H_
#define ENTROSERVE_SERVICES_RUNNERD_LOCAL_SAMPLER_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "model_runner/engine/sampler_backend.h"
#include "sampler/core/tensor.h"
#include "services/common/worker_pool.h"

namespace entroserve {

class LocalSamplerBackend final : public SamplerBackend {
 public:
  explicit LocalSamplerBackend(DType wire_dtype, int workers = 1);
  ~LocalSamplerBackend() override;

  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl& control) override;
  std::string Describe() const override { return "local"; }

 private:
  const DType wire_dtype_;
  std::unique_ptr<WorkerPool> pool_;  // null with one worker
};

// `values` as the receiver of a `dtype` tensor of them decodes them:
// EncodeTensor then DecodeTensor (a copy for kFloat32).
void RoundThroughWire(DType dtype, absl::Span<const float> values, std::vector<float>* out);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_LOCAL_SAMPLER_BACKEND_H_
