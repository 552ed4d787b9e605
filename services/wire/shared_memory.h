// Tensors through POSIX shared memory when runnerd and samplerd share a host
// (the same machine, or containers of one Kubernetes pod sharing /dev/shm):
// the bytes of a row's logits and attention are written once into a region
// that both map, and the SampleRequest carries only a reference
// (sampler.v1.SharedMemoryRef: region name and offset) instead of `data`.
// The same idea as Triton's system shared memory extension. It takes the
// tensor bytes (8 MB per 32-row step of a 128k vocabulary in BF16) out of
// gRPC's framing, copies and flow control; everything else of the stream
// (rows, answers, reconnection, states) is unchanged.
//
//   writer (runnerd)  SharedMemoryRegion::Create: shm_open a fresh name
//                     "/entroserve-<pid>-<n>-<random>", mode 0600 (samplerd
//                     must run as the same user, or root), space reserved up
//                     front, unlinked when the region is destroyed. The
//                     writer holds a shared flock() on it while it lives; a
//                     writer that died (SIGKILL, a crash) holds none, and the
//                     next Create in any process removes its regions;
//   reader (samplerd) SharedMemoryReader::Read: maps a named region read-only
//                     on first use, keeps it mapped while its name names the
//                     same file (checked by one stat of /dev/shm/<name> on
//                     every read: a region removed and created again under
//                     the same name is mapped afresh, never read with its
//                     old bytes; one that grew is mapped again), and copies
//                     the requested bytes out under a SIGBUS guard, so a
//                     region that shrinks under it (a broken or hostile
//                     writer) is an error for that row, never a crash.
//
// Only names starting with "/entroserve-" are opened. Anyone who can create
// such a region on samplerd's host and reach its port can have samplerd read
// it; samplerd --shared_memory=false turns reading off.
#ifndef ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_H_
#define ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace entroserve {

// The prefix of every region name samplerd accepts.
inline constexpr absl::string_view kSharedMemoryPrefix = "/entroserve-";

// A region this process created and writes. Not thread-safe.
class SharedMemoryRegion {
 public:
  // A new region of at least `bytes` (rounded up to whole MiB). Its space is
  // reserved (posix_fallocate), so writes cannot fault for want of room in
  // /dev/shm. Errors: RESOURCE_EXHAUSTED when /dev/shm is full, UNAVAILABLE
  // for anything else that stops it (no /dev/shm, permissions), each naming
  // the region and the system's reason.
  static absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> Create(uint64_t bytes);

  // Unmaps and unlinks: readers that mapped it keep their mapping.
  ~SharedMemoryRegion();

  // Removes the regions of writers that are gone: every /dev/shm/entroserve-*
  // that this process may open and on which no process holds a flock(). The
  // number removed. Create does this once per process.
  static int RemoveAbandoned();
  SharedMemoryRegion(const SharedMemoryRegion&) = delete;
  SharedMemoryRegion& operator=(const SharedMemoryRegion&) = delete;

  const std::string& name() const { return name_; }
  char* data() { return data_; }
  uint64_t size() const { return size_; }

 private:
  SharedMemoryRegion(std::string name, int fd, char* data, uint64_t size)
      : name_(std::move(name)), fd_(fd), data_(data), size_(size) {}

  const std::string name_;
  const int fd_;  // open, holding the shared flock
  char* const data_;
  const uint64_t size_;
};

// A region another process created, open and mapped whole (the reader's,
// and samplerd's end of a channel, shared_memory_channel.h). Unmapped and
// closed when destroyed.
struct ForeignRegion {
  ForeignRegion() = default;
  ~ForeignRegion();
  ForeignRegion(const ForeignRegion&) = delete;
  ForeignRegion& operator=(const ForeignRegion&) = delete;

  // Whether the name still exists (a writer unlinks a region it replaced).
  bool Linked() const;

  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  char* data = nullptr;
  uint64_t size = 0;  // when mapped
};

// INVALID_ARGUMENT naming `field`.region unless `name` is "/entroserve-"
// followed by 1 to 200 of [A-Za-z0-9._-].
absl::Status CheckRegionName(absl::string_view name, absl::string_view field);

// Opens and maps region `name` (read-only, or read-write) after checking
// it: a valid name, a regular file of this process's own user. Errors as
// SharedMemoryReader::Read's, naming `field`.
absl::StatusOr<std::unique_ptr<ForeignRegion>> MapForeignRegion(absl::string_view name,
                                                                bool writable,
                                                                absl::string_view field);

// Reads regions other processes created. Thread-safe.
class SharedMemoryReader {
 public:
  // Installs the process's SIGBUS guard (once; other SIGBUS go to the
  // handler that was there before, or kill the process as usual). A read of
  // more than `max_read_bytes` (samplerd: its largest message) is refused.
  explicit SharedMemoryReader(uint64_t max_read_bytes = uint64_t{1} << 31);
  ~SharedMemoryReader();
  SharedMemoryReader(const SharedMemoryReader&) = delete;
  SharedMemoryReader& operator=(const SharedMemoryReader&) = delete;

  // Copies `length` bytes at `offset` of region `name` into `out` (resized).
  // `field` names the reference in errors ("rows[0].logits.shared_memory").
  //   INVALID_ARGUMENT     a name without the "/entroserve-" prefix or with
  //                        another '/', a range outside the region, more
  //                        than max_read_bytes;
  //   FAILED_PRECONDITION  the region cannot be opened or mapped here (it
  //                        does not exist on this host, permissions), is not
  //                        a regular file of samplerd's own user, or shrank
  //                        while being read.
  absl::Status Read(absl::string_view name, uint64_t offset, uint64_t length,
                    absl::string_view field, std::string* out);

  // The same checks, then `use` on the bytes where they are mapped, without
  // a copy, under the SIGBUS guard (bus_guard.h): `use` may allocate before
  // it reads them, but a fault jumps out of it, so it must hold nothing that
  // needs destroying while it reads. Errors as Read's.
  absl::Status Visit(absl::string_view name, uint64_t offset, uint64_t length,
                     absl::string_view field, absl::FunctionRef<void(const char*)> use);

  // Regions mapped now (tests).
  int mapped() const;

 private:
  struct Mapping;
  absl::StatusOr<std::shared_ptr<const Mapping>> Map(const std::string& name,
                                                     absl::string_view field);

  const uint64_t max_read_bytes_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Mapping>, std::less<>> mappings_ ABSL_GUARDED_BY(mu_);
};

// Whether a gRPC target (or a call's peer, "ipv4:127.0.0.1:5", "ipv6:%5B::1%5D:5")
// names this host: localhost, 127.0.0.0/8, ::1 (also IPv4-mapped), or a Unix
// socket (with or without the ipv4:/ipv6:/dns:/// scheme).
bool IsLoopbackTarget(absl::string_view target);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_H_
