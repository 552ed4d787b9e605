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

#include "absl/functional/function_ref.h"

namespace entroserve {

// Installs the process's SIGBUS handler (once; thread-safe).
void InstallBusGuard();

// Runs `access`, which reads or writes a shared mapping; false when it
// faulted with SIGBUS. A fault jumps out of `access` (its frames are not
// unwound): it must hold nothing that needs destroying while it touches
// the mapping.
bool RunBusGuarded(absl::FunctionRef<void()> access);

// memcpy that returns false instead of dying when `src` or `dst` faults.
bool GuardedCopy(char* dst, const char* src, size_t n);

// An acquire load / release store of an aligned 32-bit word of a mapping
// (the channel's doorbells); false when it faulted.
bool GuardedLoad(const uint32_t* word, uint32_t* value);
bool GuardedStore(uint32_t* word, uint32_t value);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_BUS_GUARD_H_
