#include "services/runnerd/runner_metrics.h"

#include "absl/strings/ascii.h"
#include "services/common/metrics.h"

namespace entroserve {
namespace {

prometheus::Histogram& SecondsHistogram(prometheus::Registry& registry, const char* name,
                                        const char* help, double smallest) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(
      {}, ExponentialBuckets(smallest, 2, 18));
}

prometheus::Counter& Counter(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Gauge& Gauge(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

RunnerMetrics::RunnerMetrics(prometheus::Registry& registry)
    : generated_tokens_(
          Counter(registry, "entroserve_runner_generated_tokens_total", "Tokens generated.")),
      tokens_(prometheus::BuildCounter()
                  .Name("entroserve_runner_tokens_total")
                  .Help("Tokens generated, by sampler and the mode it chose.")
                  .Register(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("entroserve_runner_requests_total")
                    .Help("Generations ended, by finish reason (error: ended by an error).")
                    .Register(registry)),
      running_(Gauge(registry, "entroserve_runner_running_sequences",
                     "Sequences in the running batch.")),
      waiting_(Gauge(registry, "entroserve_runner_waiting_requests",
                     "Requests waiting for a batch slot.")),
      kv_bytes_(Gauge(registry, "entroserve_runner_kv_cache_bytes",
                      "KV cache bytes of the running sequences.")),
      step_seconds_(SecondsHistogram(registry, "entroserve_runner_step_seconds",
                                     "One engine step: forward pass and sampler call.", 1e-4)),
      forward_seconds_(SecondsHistogram(registry, "entroserve_runner_forward_seconds",
                                        "The model's forward pass of one step.", 1e-4)),
      sampling_seconds_(SecondsHistogram(registry, "entroserve_runner_sampling_seconds",
                                         "The sampler call of one step.", 1e-5)),
      first_token_seconds_(SecondsHistogram(registry,
                                            "entroserve_runner_time_to_first_token_seconds",
                                            "From a request's arrival to its first token.", 1e-3)),
      between_tokens_seconds_(SecondsHistogram(registry,
                                               "entroserve_runner_time_between_tokens_seconds",
                                               "Between two tokens of a request.", 1e-4)),
      reconnects_(Counter(registry, "entroserve_runner_sampler_reconnects_total",
                          "Streams to samplerd opened again after one broke.")),
      fallbacks_(Counter(registry, "entroserve_runner_shared_memory_fallbacks_total",
                         "Streams that fell back from shared memory to bytes in the messages.")) {}

void RunnerMetrics::OnStep(absl::Duration step, absl::Duration forward, absl::Duration sampling) {
  step_seconds_.Observe(absl::ToDoubleSeconds(step));
  forward_seconds_.Observe(absl::ToDoubleSeconds(forward));
  if (sampling > absl::ZeroDuration()) sampling_seconds_.Observe(absl::ToDoubleSeconds(sampling));
}

void RunnerMetrics::OnToken(const std::string& sampler, const RowOutput& sample, bool first,
                            absl::Duration since_previous) {
  generated_tokens_.Increment();
  tokens_.Add({{"sampler", sampler}, {"mode", ModeName(sample.mode)}}).Increment();
  (first ? first_token_seconds_ : between_tokens_seconds_)
      .Observe(absl::ToDoubleSeconds(since_previous));
}

void RunnerMetrics::OnEnd(const GenerationEnd& end) {
  const std::string reason =
      end.status.ok() ? absl::AsciiStrToLower(FinishReasonName(end.reason)) : "error";
  requests_.Add({{"finish_reason", reason}}).Increment();
}

void RunnerMetrics::Refresh(const Engine* engine, const SamplerBackend* backend) {
  if (engine != nullptr) {
    const EngineStats stats = engine->Stats();
    running_.Set(stats.running);
    waiting_.Set(stats.waiting);
    kv_bytes_.Set(static_cast<double>(stats.kv_bytes));
  }
  if (backend == nullptr) return;
  const SamplerBackend::Counters now = backend->GetCounters();
  absl::MutexLock lock(&mu_);
  reconnects_.Increment(static_cast<double>(now.reconnects - seen_.reconnects));
  fallbacks_.Increment(
      static_cast<double>(now.shared_memory_fallbacks - seen_.shared_memory_fallbacks));
  seen_ = now;
}

}  // namespace entroserve
