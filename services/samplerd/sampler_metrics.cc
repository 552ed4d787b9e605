#include "services/samplerd/sampler_metrics.h"

#include <string>

#include "absl/time/time.h"
#include "sampler/core/types.h"
#include "services/common/metrics.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// The sampler a result's state names, else the spec's name, else the
// config the spec carries (a failed row has no state).
std::string SamplerLabel(const v1::SampleRow& row, const v1::SampleResult& result) {
  if (!result.state().sampler().empty()) return result.state().sampler();
  if (!row.spec().name().empty()) return row.spec().name();
  return "unknown";
}

}  // namespace

SamplerMetrics::SamplerMetrics(prometheus::Registry& registry)
    : rows_(prometheus::BuildCounter()
                .Name("entroserve_sampler_rows_total")
                .Help("Rows sampled, by sampler and the mode it chose.")
                .Register(registry)),
      row_errors_(prometheus::BuildCounter()
                      .Name("entroserve_sampler_row_errors_total")
                      .Help("Rows answered with an in-band error, by status code.")
                      .Register(registry)),
      row_seconds_(prometheus::BuildHistogram()
                       .Name("entroserve_sampler_row_seconds")
                       .Help("Seconds to decode, check, sample and encode one row.")
                       .Register(registry)),
      entropy_(prometheus::BuildHistogram()
                   .Name("entroserve_sampler_entropy_bits")
                   .Help("Entropy of the rows' next-token distributions, bits.")
                   .Register(registry)),
      varentropy_(prometheus::BuildHistogram()
                      .Name("entroserve_sampler_varentropy_bits2")
                      .Help("Varentropy of the rows' next-token distributions, bits^2.")
                      .Register(registry)),
      rows_per_message_(prometheus::BuildHistogram()
                            .Name("entroserve_sampler_rows_per_message")
                            .Help("Rows in each request message (batch size).")
                            .Register(registry)
                            .Add({}, ExponentialBuckets(1, 2, 10))),
      batch_seconds_(prometheus::BuildHistogram()
                         .Name("entroserve_sampler_batch_seconds")
                         .Help("Seconds from a batch's start to its last row sampled (all its "
                               "rows, across the workers).")
                         .Register(registry)
                         .Add({}, ExponentialBuckets(1e-5, 2, 18))),
      shared_memory_rows_(prometheus::BuildCounter()
                              .Name("entroserve_sampler_shared_memory_rows_total")
                              .Help("Rows whose tensors were read from shared memory.")
                              .Register(registry)
                              .Add({})),
      shm_channels_(prometheus::BuildGauge()
                        .Name("entroserve_sampler_shm_channels")
                        .Help("Streams whose batches go through a shared-memory channel now.")
                        .Register(registry)
                        .Add({})) {}

void SamplerMetrics::ObserveRow(const v1::SampleRow& row, const v1::SampleResult& result,
                                absl::Duration elapsed) {
  const std::string sampler = SamplerLabel(row, result);
  row_seconds_.Add({{"sampler", sampler}}, ExponentialBuckets(1e-5, 2, 16))
      .Observe(absl::ToDoubleSeconds(elapsed));
  if (row.logits().has_shared_memory()) shared_memory_rows_.Increment();
  if (result.has_error()) {
    row_errors_
        .Add({{"code",
               absl::StatusCodeToString(static_cast<absl::StatusCode>(result.error().code()))}})
        .Increment();
    return;
  }
  const char* mode = ModeName(static_cast<Mode>(result.mode()));
  rows_.Add({{"sampler", sampler}, {"mode", mode}}).Increment();
  entropy_.Add({{"sampler", sampler}}, LinearBuckets(0.5, 0.5, 24))
      .Observe(result.signals().entropy());
  varentropy_.Add({{"sampler", sampler}}, ExponentialBuckets(0.0625, 2, 12))
      .Observe(result.signals().varentropy());
}

void SamplerMetrics::ObserveMessage(int rows) { rows_per_message_.Observe(rows); }

}  // namespace entroserve
