// glibc malloc tuning for processes that move tens of MB of tensor bytes per
// call (samplerd, runnerd, samplerctl, the benchmarks).
#ifndef ENTROSERVE_SERVICES_COMMON_MALLOC_TUNING_H_
#define ENTROSERVE_SERVICES_COMMON_MALLOC_TUNING_H_

namespace entroserve {

// Keeps large freed blocks in the heap instead of returning them to the
// kernel, so that the next message does not page-fault its memory in again.
// Call once at the start of main().
void TuneMallocForLargeMessages();

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_MALLOC_TUNING_H_
