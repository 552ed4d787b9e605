#include "services/wire/shared_memory_channel.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sampler/base/status_macros.h"
#include "services/wire/bus_guard.h"

namespace entroserve {
namespace {

constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kMinCapacity = uint64_t{64} << 10;
constexpr char kMagic[8] = {'e', 's', 'c', 'h', '0', '0', '0', '1'};
constexpr size_t kCapacityAt = 8;
constexpr size_t kRequestDoorbell = 64;
constexpr size_t kResponseDoorbell = 128;

// A doorbell's two words: the sequence number (the futex word) and the size.
uint32_t* SequenceWord(char* base, size_t doorbell) {
  return reinterpret_cast<uint32_t*>(base + doorbell);
}
uint32_t* BytesWord(char* base, size_t doorbell) {
  return reinterpret_cast<uint32_t*>(base + doorbell + 4);
}

// Sleeps while *word == expected, at most `timeout` (or until a wake). Not
// FUTEX_PRIVATE: the other end of the word is another process.
void FutexWait(uint32_t* word, uint32_t expected, absl::Duration timeout) {
  timespec ts = absl::ToTimespec(std::max(timeout, absl::ZeroDuration()));
  syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWake(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `done` (a load, no system call) until it holds or `until` has
// passed, reading the clock every 64 polls; whether it held.
bool SpinUntil(absl::Time until, absl::FunctionRef<bool()> done) {
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 63) == 63 && absl::Now() >= until) return false;
    CpuRelax();
  }
}

absl::Status Shrank(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("the shared-memory channel shrank while ", what,
                                                    " (bus error); was it truncated?"));
}

}  // namespace

// --- Client -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ChannelClient>> ChannelClient::Create(uint64_t capacity) {
  capacity = (std::max(capacity, kMinCapacity) + 4095) / 4096 * 4096;
  ASSIGN_OR_RETURN(std::unique_ptr<SharedMemoryRegion> region,
                   SharedMemoryRegion::Create(kHeaderBytes + 2 * capacity));
  // The region is rounded up to whole MiB: the areas take what there is.
  capacity = (region->size() - kHeaderBytes) / 2 / 4096 * 4096;
  std::memcpy(region->data(), kMagic, sizeof(kMagic));
  std::memcpy(region->data() + kCapacityAt, &capacity, sizeof(capacity));
  // Both sequences start at 0 (a new region reads as zeros).
  return std::unique_ptr<ChannelClient>(new ChannelClient(std::move(region), capacity));
}

char* ChannelClient::request_area() { return region_->data() + kHeaderBytes; }

void ChannelClient::Post(uint32_t bytes) {
  __atomic_store_n(BytesWord(region_->data(), kRequestDoorbell), bytes, __ATOMIC_RELAXED);
  ++sequence_;
  uint32_t* sequence = SequenceWord(region_->data(), kRequestDoorbell);
  __atomic_store_n(sequence, sequence_, __ATOMIC_RELEASE);
  FutexWake(sequence);
}

bool ChannelClient::Wait(absl::Duration timeout, absl::Duration spin) {
  uint32_t* sequence = SequenceWord(region_->data(), kResponseDoorbell);
  const absl::Time start = absl::Now();
  const absl::Time spin_until = start + std::min(spin, timeout);
  if (SpinUntil(spin_until,
                [&] { return __atomic_load_n(sequence, __ATOMIC_ACQUIRE) == sequence_; })) {
    return true;
  }
  const absl::Time deadline = start + timeout;
  while (true) {
    const uint32_t seen = __atomic_load_n(sequence, __ATOMIC_ACQUIRE);
    if (seen == sequence_) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    FutexWait(sequence, seen, left);
  }
}

absl::StatusOr<absl::string_view> ChannelClient::Answer() const {
  const uint32_t bytes =
      __atomic_load_n(BytesWord(region_->data(), kResponseDoorbell), __ATOMIC_RELAXED);
  if (bytes > capacity_) {
    return absl::InternalError(absl::StrCat(
        "samplerd answered ", bytes, " bytes through a channel whose area holds ", capacity_));
  }
  return absl::string_view(region_->data() + kHeaderBytes + capacity_, bytes);
}

// --- Server -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ChannelServer>> ChannelServer::Open(absl::string_view name,
                                                                   absl::string_view field) {
  InstallBusGuard();
  ASSIGN_OR_RETURN(std::unique_ptr<ForeignRegion> region,
                   MapForeignRegion(name, /*writable=*/true, field));
  auto not_a_channel = [&](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".region: ", name, " is not a sampler channel: ", why));
  };
  if (region->size < kHeaderBytes) {
    return not_a_channel(absl::StrCat("it has ", region->size, " bytes"));
  }
  char header[16];
  uint32_t taken = 0;
  if (!GuardedCopy(header, region->data, sizeof(header)) ||
      !GuardedLoad(SequenceWord(region->data, kRequestDoorbell), &taken)) {
    return Shrank("it was opened");
  }
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) return not_a_channel("no channel header");
  uint64_t capacity = 0;
  std::memcpy(&capacity, header + kCapacityAt, sizeof(capacity));
  if (capacity == 0 || capacity > kMaxChannelCapacity ||
      kHeaderBytes + 2 * capacity > region->size) {
    return not_a_channel(
        absl::StrCat("a capacity of ", capacity, " bytes in a region of ", region->size));
  }
  return std::unique_ptr<ChannelServer>(new ChannelServer(std::move(region), capacity, taken));
}

absl::StatusOr<bool> ChannelServer::Take(absl::Duration timeout, absl::Duration spin,
                                         std::string* out) {
  uint32_t* sequence = SequenceWord(region_->data, kRequestDoorbell);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  // One guarded access for the whole spin: each guard costs a system call.
  const absl::Time spin_until = start + std::min(spin, timeout);
  if (spin > absl::ZeroDuration() && !RunBusGuarded([&] {
        SpinUntil(spin_until, [&] {
          return __atomic_load_n(sequence, __ATOMIC_ACQUIRE) != taken_ ||
                 interrupted_.load(std::memory_order_relaxed);
        });
      })) {
    return Shrank("a request was awaited");
  }
  while (!interrupted_.load(std::memory_order_acquire)) {
    uint32_t seen = 0;
    if (!GuardedLoad(sequence, &seen)) return Shrank("a request was awaited");
    if (seen != taken_) {
      uint32_t bytes = 0;
      if (!GuardedLoad(BytesWord(region_->data, kRequestDoorbell), &bytes)) {
        return Shrank("a request was read");
      }
      if (bytes > capacity_) {
        return absl::FailedPreconditionError(
            absl::StrCat("a request through the shared-memory channel claims ", bytes,
                         " bytes; its area holds ", capacity_));
      }
      out->resize(bytes);
      if (bytes > 0 && !GuardedCopy(out->data(), region_->data + kHeaderBytes, bytes)) {
        return Shrank("a request was read");
      }
      taken_ = seen;
      return true;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    FutexWait(sequence, seen, left);
  }
  return false;
}

absl::Status ChannelServer::Answer(absl::string_view bytes) {
  if (bytes.size() > capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat("the answer (", bytes.size(),
                                                     " bytes) exceeds the shared-memory "
                                                     "channel's area (",
                                                     capacity_, " bytes)"));
  }
  char* area = region_->data + kHeaderBytes + capacity_;
  uint32_t* sequence = SequenceWord(region_->data, kResponseDoorbell);
  if ((!bytes.empty() && !GuardedCopy(area, bytes.data(), bytes.size())) ||
      !GuardedStore(BytesWord(region_->data, kResponseDoorbell),
                    static_cast<uint32_t>(bytes.size())) ||
      !GuardedStore(sequence, taken_)) {
    return Shrank("an answer was written");
  }
  FutexWake(sequence);
  return absl::OkStatus();
}

void ChannelServer::Interrupt() {
  interrupted_.store(true, std::memory_order_release);
  FutexWake(SequenceWord(region_->data, kRequestDoorbell));
}

}  // namespace entroserve
