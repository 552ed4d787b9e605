#include "services/wire/shared_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "sampler/base/status_macros.h"
#include "services/wire/bus_guard.h"

namespace entroserve {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// Mappings kept at most; past it, those whose name was unlinked go first,
// then the least recently used.
constexpr size_t kMaxMappings = 64;

std::string Errno(int error) { return std::strerror(error); }

// "/entroserve-" followed by 1..200 of [A-Za-z0-9._-].
bool ValidName(absl::string_view name) {
  if (!absl::StartsWith(name, kSharedMemoryPrefix)) return false;
  const absl::string_view rest = name.substr(kSharedMemoryPrefix.size());
  if (rest.empty() || rest.size() > 200) return false;
  for (char c : rest) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// --- Writer -----------------------------------------------------------------

int SharedMemoryRegion::RemoveAbandoned() {
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return 0;
  int removed = 0;
  const std::string prefix(kSharedMemoryPrefix.substr(1));  // without the '/'
  while (const dirent* entry = readdir(dir)) {
    const std::string file = entry->d_name;
    if (!absl::StartsWith(file, prefix)) continue;
    const std::string name = "/" + file;
    const int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) continue;  // not ours to open
    // A live writer holds LOCK_SH: then this fails and the region stays.
    // Size 0: a writer between shm_open and its flock (it sizes the region
    // only once it holds the lock).
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        shm_unlink(name.c_str()) == 0) {
      ++removed;
    }
    close(fd);
  }
  closedir(dir);
  return removed;
}

absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> SharedMemoryRegion::Create(uint64_t bytes) {
  static std::once_flag sweep;
  std::call_once(sweep, [] {
    if (const int removed = RemoveAbandoned(); removed > 0) {
      std::cerr << "entroserve: removed " << removed
                << " shared memory region(s) of processes that are gone from /dev/shm\n";
    }
  });
  static std::atomic<uint64_t> counter{0};
  const uint64_t size = std::max<uint64_t>(kMiB, (bytes + kMiB - 1) / kMiB * kMiB);
  absl::BitGen gen;
  const std::string name =
      absl::StrFormat("%s%d-%d-%08x", kSharedMemoryPrefix, static_cast<int>(getpid()),
                      counter.fetch_add(1), absl::Uniform<uint32_t>(gen));
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    return absl::UnavailableError(
        absl::StrCat("cannot create shared memory region ", name, ": ", Errno(error)));
  }
  auto fail = [&](absl::StatusCode code, absl::string_view what, int error) {
    close(fd);
    shm_unlink(name.c_str());
    return absl::Status(code, absl::StrCat("cannot ", what, " shared memory region ", name, " (",
                                           size, " bytes): ", Errno(error)));
  };
  if (flock(fd, LOCK_SH) != 0) return fail(absl::StatusCode::kUnavailable, "lock", errno);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return fail(absl::StatusCode::kUnavailable, "size", errno);
  }
  // Reserves the pages now: on a full tmpfs a write to a sparse page would
  // raise SIGBUS; here it is ENOSPC.
  if (const int error = posix_fallocate(fd, 0, static_cast<off_t>(size)); error != 0) {
    return fail(
        error == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kUnavailable,
        "reserve", error);
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return fail(absl::StatusCode::kUnavailable, "map", errno);
  return std::unique_ptr<SharedMemoryRegion>(
      new SharedMemoryRegion(name, fd, static_cast<char*>(data), size));
}

SharedMemoryRegion::~SharedMemoryRegion() {
  munmap(data_, size_);
  shm_unlink(name_.c_str());
  close(fd_);
}

// --- Reader -----------------------------------------------------------------

ForeignRegion::~ForeignRegion() {
  if (data != nullptr) munmap(data, size);
  if (fd >= 0) close(fd);
}

bool ForeignRegion::Linked() const {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_nlink > 0;
}

absl::Status CheckRegionName(absl::string_view name, absl::string_view field) {
  if (ValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ".region must be \"", kSharedMemoryPrefix,
                   "\" followed by 1 to 200 of [A-Za-z0-9._-], got \"", absl::CEscape(name), "\""));
}

absl::StatusOr<std::unique_ptr<ForeignRegion>> MapForeignRegion(absl::string_view name,
                                                                bool writable,
                                                                absl::string_view field) {
  RETURN_IF_ERROR(CheckRegionName(name, field));
  const std::string path(name);
  auto region = std::make_unique<ForeignRegion>();
  // O_NONBLOCK: a FIFO of that name must not block a worker.
  region->fd = shm_open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK, 0);
  if (region->fd < 0) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        field, ".region: cannot open ", name, " on samplerd's host: ", Errno(error),
        error == ENOENT ? " (is the writer on another host, or in a container without this "
                          "/dev/shm?)"
                        : ""));
  }
  struct stat st;
  if (fstat(region->fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".region: cannot stat ", name, ": ", Errno(errno)));
  }
  // Only plain files of this process's own user (runnerd writes them 0600).
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ".region: ", name, " is not a regular file"));
  }
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(field, ".region: ", name, " belongs to user ",
                                                      st.st_uid, ", not to user ", geteuid(),
                                                      " that samplerd runs as"));
  }
  region->dev = st.st_dev;
  region->ino = st.st_ino;
  region->size = static_cast<uint64_t>(st.st_size);
  if (region->size > 0) {
    void* data = mmap(nullptr, region->size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                      MAP_SHARED, region->fd, 0);
    if (data == MAP_FAILED) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, ".region: cannot map ", name, ": ", Errno(errno)));
    }
    region->data = static_cast<char*>(data);
  }
  return region;
}

// --- Reader -----------------------------------------------------------------

struct SharedMemoryReader::Mapping {
  // Whether this mapping shows the file `now` describes, all of it: the same
  // file (a name removed and created again is another inode, whose bytes the
  // old mapping does not show) and no larger than mapped. A file that shrank
  // is still this one; reads past its end are caught by the SIGBUS guard.
  bool Shows(const struct stat& now) const {
    return now.st_dev == region->dev && now.st_ino == region->ino &&
           static_cast<uint64_t>(now.st_size) <= region->size;
  }

  std::unique_ptr<ForeignRegion> region;
  mutable std::atomic<uint64_t> last_use{0};
};

SharedMemoryReader::SharedMemoryReader(uint64_t max_read_bytes) : max_read_bytes_(max_read_bytes) {
  InstallBusGuard();
}

SharedMemoryReader::~SharedMemoryReader() = default;

int SharedMemoryReader::mapped() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(mappings_.size());
}

absl::StatusOr<std::shared_ptr<const SharedMemoryReader::Mapping>> SharedMemoryReader::Map(
    const std::string& name, absl::string_view field) {
  static std::atomic<uint64_t> clock{0};
  // The name is looked up on every read (one stat): a cached mapping is not
  // used once the name names another file. A name that is gone still reads
  // through its mapping (rows in flight when the writer dropped the region).
  struct stat now;
  const bool named = stat(absl::StrCat("/dev/shm", name).c_str(), &now) == 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = mappings_.find(name);
    if (it != mappings_.end() && (!named || it->second->Shows(now))) {
      it->second->last_use.store(clock.fetch_add(1), std::memory_order_relaxed);
      return it->second;
    }
  }
  auto mapping = std::make_shared<Mapping>();
  ASSIGN_OR_RETURN(mapping->region, MapForeignRegion(name, /*writable=*/false, field));
  struct stat st;
  st.st_dev = mapping->region->dev;
  st.st_ino = mapping->region->ino;
  st.st_size = static_cast<off_t>(mapping->region->size);
  mapping->last_use.store(clock.fetch_add(1), std::memory_order_relaxed);

  std::vector<std::shared_ptr<const Mapping>> dropped;  // unmapped outside the lock
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = mappings_.emplace(name, mapping);
  if (!inserted) {
    if (it->second->Shows(st)) return it->second;  // another thread mapped it first
    dropped.push_back(std::move(it->second));      // a stale mapping of the name
    it->second = mapping;
  }
  // A new region usually replaces an old one: drop mappings of unlinked
  // names, then the least recently used beyond the cap.
  for (auto i = mappings_.begin(); i != mappings_.end();) {
    if (i->first != name && !i->second->region->Linked()) {
      dropped.push_back(std::move(i->second));
      i = mappings_.erase(i);
    } else {
      ++i;
    }
  }
  while (mappings_.size() > kMaxMappings) {
    auto oldest = mappings_.end();
    for (auto i = mappings_.begin(); i != mappings_.end(); ++i) {
      if (i->first == name) continue;
      if (oldest == mappings_.end() || i->second->last_use < oldest->second->last_use) oldest = i;
    }
    dropped.push_back(std::move(oldest->second));
    mappings_.erase(oldest);
  }
  return mapping;
}

absl::Status SharedMemoryReader::Visit(absl::string_view name, uint64_t offset, uint64_t length,
                                       absl::string_view field,
                                       absl::FunctionRef<void(const char*)> use) {
  RETURN_IF_ERROR(CheckRegionName(name, field));
  absl::StatusOr<std::shared_ptr<const Mapping>> mapping = Map(std::string(name), field);
  if (!mapping.ok()) return mapping.status();
  const uint64_t size = (*mapping)->region->size;
  if (offset > size || length > size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", length, " bytes at offset ", offset,
                                                   " run past the end of region ", name, " (", size,
                                                   " bytes)"));
  }
  if (length > max_read_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", length, " bytes are more than a message may carry (", max_read_bytes_, ")"));
  }
  const char* bytes = (*mapping)->region->data + offset;
  if (!RunBusGuarded([&] { use(bytes); })) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, ": region ", name, " shrank while it was read (bus error); was it truncated?"));
  }
  return absl::OkStatus();
}

absl::Status SharedMemoryReader::Read(absl::string_view name, uint64_t offset, uint64_t length,
                                      absl::string_view field, std::string* out) {
  return Visit(name, offset, length, field, [&](const char* bytes) {
    out->resize(length);
    if (length > 0) std::memcpy(out->data(), bytes, length);
  });
}

// --- Addresses --------------------------------------------------------------

bool IsLoopbackTarget(absl::string_view target) {
  if (absl::StartsWith(target, "unix:") || absl::StartsWith(target, "unix-abstract:")) {
    return true;
  }
  for (absl::string_view scheme : {"ipv4:", "ipv6:", "dns:///", "dns:"}) {
    if (absl::StartsWith(target, scheme)) {
      target.remove_prefix(scheme.size());
      break;
    }
  }
  // A list of addresses (ipv4:127.0.0.1:5001,127.0.0.1:5002): all of them.
  if (absl::StrContains(target, ',')) {
    for (absl::string_view address : absl::StrSplit(target, ',')) {
      if (!IsLoopbackTarget(address)) return false;
    }
    return true;
  }
  absl::string_view host;
  // Peers of IPv6 connections come URI-escaped: ipv6:%5B::1%5D:port.
  std::string unescaped;
  if (absl::StrContains(target, "%5B") || absl::StrContains(target, "%5b")) {
    unescaped =
        absl::StrReplaceAll(target, {{"%5B", "["}, {"%5b", "["}, {"%5D", "]"}, {"%5d", "]"}});
    target = unescaped;
  }
  if (absl::StartsWith(target, "[")) {
    const size_t close = target.find(']');
    if (close == absl::string_view::npos) return false;
    host = target.substr(1, close - 1);
  } else {
    const size_t colon = target.rfind(':');
    host = colon == absl::string_view::npos ? target : target.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  // An IPv4 address mapped into IPv6 (a peer of a server on [::]).
  if (absl::StartsWithIgnoreCase(host, "::ffff:")) host.remove_prefix(7);
  // 127.0.0.0/8, four decimal octets.
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (absl::string_view octet : octets) {
    int value = 0;
    if (!absl::SimpleAtoi(octet, &value) || value < 0 || value > 255) return false;
  }
  return true;
}

}  // namespace entroserve
