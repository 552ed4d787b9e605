// samplerd's Prometheus metrics (served with --metrics_port):
//   entroserve_sampler_rows_total{sampler,mode}      rows sampled, by the mode
//                                                    chosen (entropix: flowing,
//                                                    clarify, ...; others: greedy,
//                                                    sample, alpha)
//   entroserve_sampler_row_errors_total{code}        rows answered with an in-band
//                                                    error, by status code
//   entroserve_sampler_row_seconds{sampler}          time to sample a row (decode,
//                                                    check, sample, encode)
//   entroserve_sampler_entropy_bits{sampler}         the rows' entropy
//   entroserve_sampler_varentropy_bits2{sampler}     the rows' varentropy
//   entroserve_sampler_rows_per_message              rows per request message
//   entroserve_sampler_shared_memory_rows_total      rows whose tensors were read
//                                                    from shared memory
//   entroserve_sampler_shm_channels                  streams whose batches go
//                                                    through a shared-memory
//                                                    channel now
// plus entroserve_grpc_server_calls_total{method,code} (services/common/metrics.h).
//
// Thread-safe: rows of a batch are observed from the worker pool's threads.
#ifndef ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_METRICS_H_
#define ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_METRICS_H_

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

class SamplerMetrics {
 public:
  explicit SamplerMetrics(prometheus::Registry& registry);

  // One row's answer (`result`: its token and signals, or its in-band
  // error), which took `elapsed`; `shared_memory` when its tensors were read
  // from a shared-memory region.
  void ObserveRow(const sampler::v1::SampleRow& row, const sampler::v1::SampleResult& result,
                  absl::Duration elapsed);
  void ObserveMessage(int rows);
  // A batch of rows sampled, from its start to its last row's end (all its
  // rows, across the pool): beside runnerd's sampler call for the same
  // step, what the transport and runnerd's own work add.
  void ObserveBatch(absl::Duration elapsed) {
    batch_seconds_.Observe(absl::ToDoubleSeconds(elapsed));
  }
  // A stream's shared-memory channel started or stopped being served.
  void ChannelOpened() { shm_channels_.Increment(); }
  void ChannelClosed() { shm_channels_.Decrement(); }

 private:
  prometheus::Family<prometheus::Counter>& rows_;
  prometheus::Family<prometheus::Counter>& row_errors_;
  prometheus::Family<prometheus::Histogram>& row_seconds_;
  prometheus::Family<prometheus::Histogram>& entropy_;
  prometheus::Family<prometheus::Histogram>& varentropy_;
  prometheus::Histogram& rows_per_message_;
  prometheus::Histogram& batch_seconds_;
  prometheus::Counter& shared_memory_rows_;
  prometheus::Gauge& shm_channels_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_SAMPLERD_SAMPLER_METRICS_H_
