// A SampleStream's batches through shared memory, for a runnerd and a
// samplerd on one host: the step's SampleRequest is written into a region
// both map, a futex "doorbell" wakes samplerd's thread for the stream, and
// the SampleResponse comes back the same way. The gRPC stream stays open
// beside it (it set the channel up, says when either end goes away, and
// carries any batch too large for the channel); what the channel removes
// is gRPC's per-message work and its thread hand-offs on both sides, which
// at one row a step cost more than sampling the row (docs/PERFORMANCE.md,
// backend_bench).
//
// Layout of a channel region (host byte order: both ends are on one host):
//   [0, 8)      magic "esch0001"
//   [8, 16)     capacity C of each area, bytes
//   [64, 72)    request doorbell: uint32 sequence, uint32 bytes
//   [128, 136)  response doorbell: uint32 sequence, uint32 bytes
//   [4096, 4096 + C)        the request area
//   [4096 + C, 4096 + 2C)   the response area
// The client writes a request into its area, stores its size and then
// (release) the next sequence number, and wakes the futex on that word;
// samplerd copies the request out, answers into the response area and
// stores the size and then the request's sequence number in the response
// doorbell, and wakes that futex. One request in flight at a time.
//
//   client (runnerd)  ChannelClient::Create makes the region
//                     (SharedMemoryRegion: 0600, unlinked when destroyed);
//   server (samplerd) ChannelServer::Open maps it read-write after the
//                     reader's checks (shared_memory.h: the name, a regular
//                     file of samplerd's own user) and checks the header;
//                     every access to it is guarded (bus_guard.h), so a
//                     region truncated under samplerd is an error for that
//                     stream, never a crash. What the request bytes say is
//                     parsed and checked as a gRPC message's would be.
#ifndef ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_CHANNEL_H_
#define ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_CHANNEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/wire/shared_memory.h"

namespace entroserve {

// Largest capacity of each area a server accepts.
inline constexpr uint64_t kMaxChannelCapacity = uint64_t{256} << 20;

// runnerd's end. Not thread-safe (one stream's backend uses it).
class ChannelClient {
 public:
  // A new channel whose areas hold `capacity` bytes each (at least 64 KiB).
  // Errors: SharedMemoryRegion::Create's.
  static absl::StatusOr<std::unique_ptr<ChannelClient>> Create(uint64_t capacity);

  const std::string& name() const { return region_->name(); }
  uint64_t capacity() const { return capacity_; }

  // Where the caller writes the next request (capacity() bytes), then Post.
  char* request_area();
  // Rings the request doorbell for the `bytes` written.
  void Post(uint32_t bytes);
  // Waits at most `timeout` for the answer to the last Post: spins for up to
  // `spin` first (cheaper than sleeping when the answer is due soon), then
  // sleeps on the doorbell. True once the answer is there.
  bool Wait(absl::Duration timeout, absl::Duration spin);
  // The answer's bytes, valid until the next Post; INTERNAL when the server
  // claimed more than the area holds.
  absl::StatusOr<absl::string_view> Answer() const;

 private:
  ChannelClient(std::unique_ptr<SharedMemoryRegion> region, uint64_t capacity)
      : region_(std::move(region)), capacity_(capacity) {}

  std::unique_ptr<SharedMemoryRegion> region_;
  const uint64_t capacity_;
  uint32_t sequence_ = 0;  // of the last Post
};

// samplerd's end. Take and Answer are called by one thread; Interrupt by any.
class ChannelServer {
 public:
  // Maps channel `name`. Errors name `field`: MapForeignRegion's, and
  // FAILED_PRECONDITION for a region that is not a channel (its magic, a
  // capacity of 0 or beyond kMaxChannelCapacity, smaller than its layout).
  static absl::StatusOr<std::unique_ptr<ChannelServer>> Open(absl::string_view name,
                                                             absl::string_view field);

  // Waits at most `timeout` for a request newer than the last one taken
  // (or than what the region held when opened) and copies it into `out`:
  // true when one came, false on timeout or Interrupt. Spins for up to
  // `spin` of it first (a request due within it is taken without the
  // sleeping thread's wake-up), then sleeps on the doorbell.
  // FAILED_PRECONDITION when the region shrank or a request claims more
  // than the area holds.
  absl::StatusOr<bool> Take(absl::Duration timeout, absl::Duration spin, std::string* out);
  // Answers the request last taken with `bytes`. RESOURCE_EXHAUSTED when
  // they exceed the area (nothing is written); FAILED_PRECONDITION when the
  // region shrank.
  absl::Status Answer(absl::string_view bytes);
  // Makes Take return false, now (a Take in progress on another thread
  // wakes; at worst it sleeps out its timeout) and from then on.
  void Interrupt();

  uint64_t capacity() const { return capacity_; }

 private:
  ChannelServer(std::unique_ptr<ForeignRegion> region, uint64_t capacity, uint32_t taken)
      : region_(std::move(region)), capacity_(capacity), taken_(taken) {}

  std::unique_ptr<ForeignRegion> region_;
  const uint64_t capacity_;
  uint32_t taken_;  // sequence of the last request taken
  std::atomic<bool> interrupted_{false};
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_SHARED_MEMORY_CHANNEL_H_
