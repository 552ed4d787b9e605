// Memory access to a shared mapping that survives the file shrinking under
// it. A read or write of a mapped page past the end of a file that another
// process truncated after it was mapped raises SIGBUS; these functions arm
// a per-thread jump buffer around the access, and the handler (installed
// once by InstallBusGuard) jumps back there and makes them return false. Any
// other SIGBUS takes its usual course. Used by the shared-memory reader and
// channel (shared_memory.h, shared_memory_channel.h), which map regions
// another process controls.
#ifndef ENTROSERVE_SERVICES_WIRE_BUS_GUARD_H_
#define ENTROSERVE_SERVICES_WIRE_BUS_GUARD_H_

#include <cstddef>
#include <cstdint>

namespace entroserve {

// Installs the process's SIGBUS handler (once; thread-safe).
void InstallBusGuard();

// memcpy that returns false instead of dying when `src` or `dst` faults.
bool GuardedCopy(char* dst, const char* src, size_t n);

// An acquire load / release store of an aligned 32-bit word of a mapping
// (the channel's doorbells); false when it faulted.
bool GuardedLoad(const uint32_t* word, uint32_t* value);
bool GuardedStore(uint32_t* word, uint32_t value);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_BUS_GUARD_H_
