// runnerd's Prometheus metrics (served with --metrics_port):
//   entroserve_runner_generated_tokens_total          tokens generated
//   entroserve_runner_tokens_total{sampler,mode}      the same, by sampler and the
//                                                     mode it chose
//   entroserve_runner_requests_total{finish_reason}   generations ended: length,
//                                                     eos, stop, cancelled, context,
//                                                     or error
//   entroserve_runner_running_sequences               sequences in the batch
//   entroserve_runner_waiting_requests                requests queued for a slot
//   entroserve_runner_kv_cache_bytes                  KV cache of the running
//                                                     sequences
//   entroserve_runner_step_seconds                    one engine step (forward
//   entroserve_runner_forward_seconds                 pass, sampler call)
//   entroserve_runner_sampling_seconds
//   entroserve_runner_time_to_first_token_seconds     arrival to first token
//   entroserve_runner_time_between_tokens_seconds     between a request's tokens
//   entroserve_runner_sampler_reconnects_total        streams to samplerd opened
//                                                     again after one broke
//   entroserve_runner_shared_memory_fallbacks_total   streams that fell back from
//                                                     shared memory to inline bytes
// plus entroserve_grpc_server_calls_total{method,code} (services/common/metrics.h).
//
// The engine reports steps, tokens and ends as they happen (EngineObserver,
// on its scheduler thread); gauges and the backend's counters are read
// before each scrape (Refresh).
#ifndef ENTROSERVE_SERVICES_RUNNERD_RUNNER_METRICS_H_
#define ENTROSERVE_SERVICES_RUNNERD_RUNNER_METRICS_H_

#include <atomic>
#include <string>

#include "absl/synchronization/mutex.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/sampler_backend.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace entroserve {

class RunnerMetrics final : public EngineObserver {
 public:
  explicit RunnerMetrics(prometheus::Registry& registry);

  void OnStep(absl::Duration step, absl::Duration forward, absl::Duration sampling) override;
  void OnToken(const std::string& sampler, const RowOutput& sample, bool first,
               absl::Duration since_previous) override;
  void OnEnd(const GenerationEnd& end) override;

  // Sets the gauges from `engine` and the counters from `backend` (either
  // may be null while the model loads). Thread-safe.
  void Refresh(const Engine* engine, const SamplerBackend* backend);

 private:
  prometheus::Counter& generated_tokens_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Gauge& running_;
  prometheus::Gauge& waiting_;
  prometheus::Gauge& kv_bytes_;
  prometheus::Histogram& step_seconds_;
  prometheus::Histogram& forward_seconds_;
  prometheus::Histogram& sampling_seconds_;
  prometheus::Histogram& first_token_seconds_;
  prometheus::Histogram& between_tokens_seconds_;
  prometheus::Counter& reconnects_;
  prometheus::Counter& fallbacks_;

  absl::Mutex mu_;
  // The backend's counters at the last Refresh: counters only go up, by the
  // difference.
  SamplerBackend::Counters seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_RUNNER_METRICS_H_
