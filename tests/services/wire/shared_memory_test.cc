// POSIX shared-memory regions (services/wire/shared_memory.h): the writer's
// regions, the reader's checks, mapping cache and SIGBUS guard, loopback
// targets, and tensors read through shared memory at the edge
// (services/wire/sampler_convert.h).
#include "services/wire/shared_memory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sampler/core/tensor.h"
#include "services/wire/row_convert.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr char kField[] = "rows[0].logits.shared_memory";

MATCHER_P2(StatusIs, code, message, "") {
  *result_listener << "status " << arg;
  return arg.code() == code && arg.message() == message;
}
MATCHER_P2(StatusHas, code, fragment, "") {
  *result_listener << "status " << arg;
  return arg.code() == code && std::string(arg.message()).find(fragment) != std::string::npos;
}
MATCHER_P2(StatusStartsWith, code, prefix, "") {
  *result_listener << "status " << arg;
  return arg.code() == code && absl::StartsWith(arg.message(), prefix);
}

std::unique_ptr<SharedMemoryRegion> MustCreate(uint64_t bytes) {
  absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> region = SharedMemoryRegion::Create(bytes);
  EXPECT_TRUE(region.ok()) << region.status();
  return region.ok() ? *std::move(region) : nullptr;
}

// Whether shm_open finds `name` now; `error` gets errno when it does not.
bool Exists(const std::string& name, int* error) {
  const int fd = shm_open(name.c_str(), O_RDONLY, 0);
  if (fd < 0) {
    *error = errno;
    return false;
  }
  close(fd);
  *error = 0;
  return true;
}

// ---------------------------------------------------------------------------
// Writer and reader

TEST(SharedMemoryRegionTest, SizeIsRoundedUpToWholeMiB) {
  struct Case {
    uint64_t bytes;
    uint64_t size;
  };
  for (const Case& c : {Case{0, kMiB}, Case{1, kMiB}, Case{kMiB, kMiB}, Case{kMiB + 1, 2 * kMiB},
                        Case{kMiB + kMiB / 2, 2 * kMiB}, Case{3 * kMiB - 5, 3 * kMiB}}) {
    std::unique_ptr<SharedMemoryRegion> region = MustCreate(c.bytes);
    ASSERT_NE(region, nullptr);
    EXPECT_EQ(region->size(), c.size) << "Create(" << c.bytes << ")";
  }
}

TEST(SharedMemoryRegionTest, RoundTripThroughReader) {
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(3 * kMiB - 100);
  ASSERT_NE(region, nullptr);
  EXPECT_THAT(region->name(), StartsWith("/entroserve-"));
  EXPECT_THAT(region->name(), StartsWith(absl::StrCat("/entroserve-", getpid(), "-")));
  EXPECT_EQ(region->size(), 3 * kMiB);

  // Fresh regions are zero-filled.
  SharedMemoryReader reader;
  std::string out = "junk";
  ASSERT_TRUE(reader.Read(region->name(), 2 * kMiB, 16, kField, &out).ok());
  EXPECT_EQ(out, std::string(16, '\0'));

  std::string bytes(10000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7 + 3) & 0xff);
  const uint64_t offset = kMiB + 12345;
  std::memcpy(region->data() + offset, bytes.data(), bytes.size());
  // Writes after the reader mapped the region are seen by the reader.
  ASSERT_TRUE(reader.Read(region->name(), offset, bytes.size(), kField, &out).ok());
  EXPECT_EQ(out, bytes);
  EXPECT_EQ(reader.mapped(), 1);

  // The very end of the region, and an empty read at the end.
  std::memcpy(region->data() + region->size() - 3, "xyz", 3);
  ASSERT_TRUE(reader.Read(region->name(), region->size() - 3, 3, kField, &out).ok());
  EXPECT_EQ(out, "xyz");
  ASSERT_TRUE(reader.Read(region->name(), region->size(), 0, kField, &out).ok());
  EXPECT_EQ(out, "");
  EXPECT_EQ(reader.mapped(), 1);
}

TEST(SharedMemoryRegionTest, NamesAreDistinct) {
  std::unique_ptr<SharedMemoryRegion> a = MustCreate(1);
  std::unique_ptr<SharedMemoryRegion> b = MustCreate(1);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->name(), b->name());
}

TEST(SharedMemoryRegionTest, DestroyUnlinksButMappingsSurvive) {
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(kMiB);
  ASSERT_NE(region, nullptr);
  const std::string name = region->name();
  std::memcpy(region->data() + 100, "before", 6);

  int error = 0;
  EXPECT_TRUE(Exists(name, &error)) << std::strerror(error);

  SharedMemoryReader reader;
  std::string out;
  ASSERT_TRUE(reader.Read(name, 100, 6, kField, &out).ok());
  EXPECT_EQ(out, "before");

  region.reset();
  EXPECT_FALSE(Exists(name, &error));
  EXPECT_EQ(error, ENOENT) << std::strerror(error);

  // The reader's mapping outlives the name.
  out.clear();
  ASSERT_TRUE(reader.Read(name, 100, 6, kField, &out).ok());
  EXPECT_EQ(out, "before");
  EXPECT_EQ(reader.mapped(), 1);

  // A reader that never mapped it cannot open it any more.
  SharedMemoryReader fresh;
  EXPECT_THAT(fresh.Read(name, 100, 6, kField, &out),
              StatusHas(absl::StatusCode::kFailedPrecondition, "cannot open"));
  EXPECT_EQ(fresh.mapped(), 0);
}

// ---------------------------------------------------------------------------
// Read errors

TEST(SharedMemoryRegionTest, RemoveAbandonedTakesOnlyRegionsNoWriterHolds) {
  // A region whose writer died: sized, no flock held.
  const std::string abandoned = absl::StrCat("/entroserve-test-", getpid(), "-abandoned");
  const int fd = shm_open(abandoned.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  close(fd);
  // A writer between shm_open and its flock: size 0, left alone.
  const std::string opening = absl::StrCat("/entroserve-test-", getpid(), "-opening");
  const int empty = shm_open(opening.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(empty, 0) << std::strerror(errno);
  close(empty);
  // A live writer's region (this process holds its flock).
  std::unique_ptr<SharedMemoryRegion> live = MustCreate(1);
  ASSERT_NE(live, nullptr);

  SharedMemoryRegion::RemoveAbandoned();  // (another process may have done it first)
  int error = 0;
  EXPECT_FALSE(Exists(abandoned, &error));
  EXPECT_EQ(error, ENOENT);
  EXPECT_TRUE(Exists(opening, &error));
  EXPECT_TRUE(Exists(live->name(), &error));
  shm_unlink(opening.c_str());
}

TEST(SharedMemoryReaderTest, BadNamesAreInvalidArgument) {
  SharedMemoryReader reader;
  std::string out;
  for (const char* name : {"/other", "/entroserve-", "/entroserve-a/b", "entroserve-x", "",
                           "/entroserve-a b", "/entroserve-..\x01", "/ENTROSERVE-x"}) {
    absl::Status status = reader.Read(name, 0, 1, kField, &out);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name << ": " << status;
    EXPECT_THAT(std::string(status.message()), StartsWith(absl::StrCat(kField, ".region must be")))
        << name;
  }
  EXPECT_THAT(
      reader.Read("/other", 0, 1, kField, &out),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "rows[0].logits.shared_memory.region must be \"/entroserve-\" followed by 1 to 200 "
               "of [A-Za-z0-9._-], got \"/other\""));
  // 200 characters after the prefix are a valid name (that does not exist);
  // 201 are not.
  EXPECT_THAT(reader.Read(absl::StrCat("/entroserve-", std::string(200, 'a')), 0, 1, kField, &out),
              StatusHas(absl::StatusCode::kFailedPrecondition, "cannot open"));
  EXPECT_THAT(reader.Read(absl::StrCat("/entroserve-", std::string(201, 'a')), 0, 1, kField, &out),
              StatusStartsWith(absl::StatusCode::kInvalidArgument,
                               "rows[0].logits.shared_memory.region must be"));
  EXPECT_EQ(reader.mapped(), 0);
}

TEST(SharedMemoryReaderTest, RangesPastTheEndAreInvalidArgument) {
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(1);
  ASSERT_NE(region, nullptr);
  const std::string& name = region->name();
  const uint64_t size = region->size();
  ASSERT_EQ(size, kMiB);
  SharedMemoryReader reader;
  std::string out;

  EXPECT_THAT(reader.Read(name, size, 1, kField, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat(kField,
                                    ": 1 bytes at offset 1048576 run past the end of "
                                    "region ",
                                    name, " (1048576 bytes)")));
  EXPECT_THAT(reader.Read(name, 0, size + 1, kField, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat(kField,
                                    ": 1048577 bytes at offset 0 run past the end of "
                                    "region ",
                                    name, " (1048576 bytes)")));
  // offset + length would wrap around to a small number.
  const uint64_t huge = std::numeric_limits<uint64_t>::max() - 10;
  EXPECT_THAT(reader.Read(name, huge, 20, kField, &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat(kField, ": 20 bytes at offset ", huge,
                                    " run past the end of region ", name, " (1048576 bytes)")));
  EXPECT_THAT(reader.Read(name, 16, std::numeric_limits<uint64_t>::max(), kField, &out),
              StatusHas(absl::StatusCode::kInvalidArgument, "run past the end"));
  EXPECT_THAT(reader.Read(name, size - 1, 2, "t", &out),
              StatusStartsWith(absl::StatusCode::kInvalidArgument, "t: 2 bytes at offset"));
}

TEST(SharedMemoryReaderTest, MissingRegionIsFailedPrecondition) {
  SharedMemoryReader reader;
  std::string out;
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-missing");
  absl::Status status = reader.Read(name, 0, 1, kField, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()),
              StartsWith(absl::StrCat(kField, ".region: cannot open ", name,
                                      " on samplerd's host: No such file or directory")));
  EXPECT_EQ(reader.mapped(), 0);
}

TEST(SharedMemoryReaderTest, OnlyRegularFilesOfSamplerdsUserAreRead) {
  // A FIFO of a valid name: refused, and opening it does not block.
  const std::string fifo = absl::StrCat("/entroserve-test-", getpid(), "-fifo");
  const std::string fifo_path = absl::StrCat("/dev/shm", fifo);
  unlink(fifo_path.c_str());
  ASSERT_EQ(mkfifo(fifo_path.c_str(), 0600), 0) << std::strerror(errno);
  SharedMemoryReader reader;
  std::string out;
  EXPECT_THAT(reader.Read(fifo, 0, 1, kField, &out),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat(kField, ".region: ", fifo, " is not a regular file")));
  unlink(fifo_path.c_str());

  // A region of another user: refused (needs the right to chown, i.e. root).
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(1);
  ASSERT_NE(region, nullptr);
  const std::string path = absl::StrCat("/dev/shm", region->name());
  const uid_t other = geteuid() == 65534 ? 65533 : 65534;
  if (chown(path.c_str(), other, static_cast<gid_t>(-1)) != 0) {
    GTEST_SKIP() << "cannot chown " << path << " (not root): " << std::strerror(errno);
  }
  EXPECT_THAT(reader.Read(region->name(), 0, 1, kField, &out),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat(kField, ".region: ", region->name(), " belongs to user ", other,
                                    ", not to user ", geteuid(), " that samplerd runs as")));
}

// ---------------------------------------------------------------------------
// SIGBUS guard

TEST(SharedMemoryReaderTest, RegionThatShrinksIsAnErrorNotACrash) {
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-shrink");
  shm_unlink(name.c_str());  // left over from a crashed run
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  // Held like a writer's, so that no RemoveAbandoned (other tests' runnerd)
  // takes it away.
  ASSERT_EQ(flock(fd, LOCK_SH), 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 2 * kMiB), 0) << std::strerror(errno);
  std::string first(4096, '\0');
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<char>(i % 251);
  ASSERT_EQ(pwrite(fd, first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
  const std::string middle(4096, 'm');
  ASSERT_EQ(pwrite(fd, middle.data(), middle.size(), kMiB), static_cast<ssize_t>(middle.size()));

  SharedMemoryReader reader;
  std::string out;
  ASSERT_TRUE(reader.Read(name, kMiB, 4096, kField, &out).ok());  // maps all 2 MiB
  EXPECT_EQ(out, middle);

  ASSERT_EQ(ftruncate(fd, 4096), 0) << std::strerror(errno);
  EXPECT_THAT(reader.Read(name, kMiB, 4096, kField, &out),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat(kField, ": region ", name,
                                    " shrank while it was read (bus error); was it truncated?")));
  // Twice: the guard is armed again for the next read.
  EXPECT_THAT(reader.Read(name, 2 * kMiB - 1, 1, kField, &out),
              StatusHas(absl::StatusCode::kFailedPrecondition, "shrank"));

  // What is left of the region still reads.
  out.clear();
  ASSERT_TRUE(reader.Read(name, 0, 4096, kField, &out).ok());
  EXPECT_EQ(out, first);

  close(fd);
  EXPECT_EQ(shm_unlink(name.c_str()), 0) << std::strerror(errno);
}

// ---------------------------------------------------------------------------
// Mapping cache

TEST(SharedMemoryReaderTest, ReplacedRegionsAreUnmapped) {
  SharedMemoryReader reader;
  std::string out;
  std::unique_ptr<SharedMemoryRegion> a = MustCreate(kMiB);
  ASSERT_NE(a, nullptr);
  const std::string a_name = a->name();
  std::memcpy(a->data(), "AAAA", 4);
  ASSERT_TRUE(reader.Read(a_name, 0, 4, kField, &out).ok());
  EXPECT_EQ(out, "AAAA");
  EXPECT_EQ(reader.mapped(), 1);

  // The writer replaces A by B.
  a.reset();
  std::unique_ptr<SharedMemoryRegion> b = MustCreate(2 * kMiB);
  ASSERT_NE(b, nullptr);
  std::memcpy(b->data() + kMiB, "BBBB", 4);
  ASSERT_TRUE(reader.Read(b->name(), kMiB, 4, kField, &out).ok());
  EXPECT_EQ(out, "BBBB");
  EXPECT_EQ(reader.mapped(), 1);

  // A is gone for good: not mapped, not openable.
  EXPECT_THAT(reader.Read(a_name, 0, 4, kField, &out),
              StatusHas(absl::StatusCode::kFailedPrecondition, "cannot open"));
  EXPECT_EQ(reader.mapped(), 1);
}

// A region of a fixed name, created (or created again) holding `bytes`,
// then closed: what a writer that reuses its names does.
void CreateNamedRegion(const std::string& name, const std::string& bytes) {
  shm_unlink(name.c_str());
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(bytes.size())), 0) << std::strerror(errno);
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  close(fd);
}

TEST(SharedMemoryReaderTest, ANameRemovedAndCreatedAgainIsReadWithItsNewBytes) {
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-reused");
  SharedMemoryReader reader;
  std::string out;
  CreateNamedRegion(name, "old bytes");
  ASSERT_TRUE(reader.Read(name, 0, 9, kField, &out).ok());
  EXPECT_EQ(out, "old bytes");

  // Same name, same size, another file.
  CreateNamedRegion(name, "new bytes");
  ASSERT_TRUE(reader.Read(name, 0, 9, kField, &out).ok());
  EXPECT_EQ(out, "new bytes");
  EXPECT_EQ(reader.mapped(), 1);

  // Same name, larger: all of it reads.
  CreateNamedRegion(name, "newer and longer bytes");
  ASSERT_TRUE(reader.Read(name, 10, 12, kField, &out).ok());
  EXPECT_EQ(out, "longer bytes");
  EXPECT_EQ(reader.mapped(), 1);
  EXPECT_EQ(shm_unlink(name.c_str()), 0) << std::strerror(errno);
}

TEST(SharedMemoryReaderTest, ARegionThatGrewIsReadToItsNewEnd) {
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-grows");
  SharedMemoryReader reader;
  std::string out;
  CreateNamedRegion(name, "0123");
  ASSERT_TRUE(reader.Read(name, 0, 4, kField, &out).ok());
  const int fd = shm_open(name.c_str(), O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(pwrite(fd, "4567", 4, 4), 4);  // the same file, grown to 8 bytes
  close(fd);
  ASSERT_TRUE(reader.Read(name, 0, 8, kField, &out).ok());
  EXPECT_EQ(out, "01234567");
  EXPECT_EQ(shm_unlink(name.c_str()), 0) << std::strerror(errno);
}

TEST(SharedMemoryReaderTest, LinkedRegionsStayMappedUpToTheCap) {
  // Small regions made by hand (not 1 MiB each): 65 of them, all linked.
  std::vector<std::string> names;
  std::vector<int> fds;  // open with a writer's flock until the end
  for (int i = 0; i < 65; ++i) {
    names.push_back(absl::StrCat("/entroserve-test-", getpid(), "-cap-", i));
    shm_unlink(names.back().c_str());
    const int fd = shm_open(names.back().c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    fds.push_back(fd);
    ASSERT_EQ(flock(fd, LOCK_SH), 0) << std::strerror(errno);
    ASSERT_EQ(ftruncate(fd, 4096), 0);
    const std::string tag = absl::StrCat(i);
    ASSERT_EQ(pwrite(fd, tag.data(), tag.size(), 0), static_cast<ssize_t>(tag.size()));
  }
  SharedMemoryReader reader;
  std::string out;
  for (int i = 0; i < 65; ++i) {
    const std::string tag = absl::StrCat(i);
    ASSERT_TRUE(reader.Read(names[i], 0, tag.size(), kField, &out).ok()) << i;
    EXPECT_EQ(out, tag);
    EXPECT_EQ(reader.mapped(), std::min(i + 1, 64)) << i;
  }
  for (const std::string& name : names) shm_unlink(name.c_str());
  for (int fd : fds) close(fd);
}

// ---------------------------------------------------------------------------
// Loopback targets

TEST(IsLoopbackTargetTest, LoopbackTargets) {
  for (const char* target :
       {"127.0.0.1:5", "localhost:50051", "LOCALHOST:1", "[::1]:80", "ipv4:127.0.0.1:9",
        "dns:///localhost:1", "unix:/tmp/s", "127.1.2.3:4", "localhost", "ipv6:[::1]:7",
        "unix-abstract:entroserve", "127.255.255.255:1"}) {
    EXPECT_TRUE(IsLoopbackTarget(target)) << target;
  }
}

TEST(IsLoopbackTargetTest, PeersOfLoopbackCalls) {
  // What grpc::ServerContext::peer() says for a client on this host.
  EXPECT_TRUE(IsLoopbackTarget("ipv4:127.0.0.1:41234"));
  EXPECT_TRUE(IsLoopbackTarget("ipv6:%5B::1%5D:41234"));
  EXPECT_TRUE(IsLoopbackTarget("ipv6:[::ffff:127.0.0.1]:41234"));
  EXPECT_TRUE(IsLoopbackTarget("unix:/tmp/samplerd.sock"));
  EXPECT_FALSE(IsLoopbackTarget("ipv4:10.1.2.3:41234"));
  EXPECT_FALSE(IsLoopbackTarget("ipv6:%5B2001:db8::1%5D:41234"));
  EXPECT_FALSE(IsLoopbackTarget("ipv6:[::ffff:10.0.0.1]:41234"));
}

TEST(SharedMemoryReaderTest, ReadsLargerThanTheMessageLimitAreRefused) {
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(kMiB);
  ASSERT_NE(region, nullptr);
  SharedMemoryReader reader(/*max_read_bytes=*/4096);
  std::string out;
  EXPECT_TRUE(reader.Read(region->name(), 0, 4096, kField, &out).ok());
  EXPECT_THAT(
      reader.Read(region->name(), 0, 4097, kField, &out),
      StatusIs(absl::StatusCode::kInvalidArgument,
               absl::StrCat(kField, ": 4097 bytes are more than a message may carry (4096)")));
}

TEST(IsLoopbackTargetTest, OtherTargets) {
  for (const char* target :
       {"10.0.0.1:5", "example.com:1", "[::]:5", "0.0.0.0:1", "127.0.0:1", "127.0.0.256:1",
        "128.0.0.1:2", "", "[::1", "dns:///example.com:1", "127.0.0.1.5:1", "localhost.evil:1"}) {
    EXPECT_FALSE(IsLoopbackTarget(target)) << target;
  }
}

// ---------------------------------------------------------------------------
// Tensors in shared memory at the edge (sampler_convert.h)

std::vector<float> Logits(int n) {
  std::vector<float> values(n);
  for (int i = 0; i < n; ++i) values[i] = static_cast<float>((i * 37) % 101) / 8.0f - 6.0f;
  return values;
}

v1::SampleRow RowWithLogits(const v1::Tensor& logits) {
  v1::SampleRow row;
  row.set_sequence_id("seq");
  row.set_step(0);
  row.mutable_spec()->set_name("greedy");
  row.set_seed(7);
  *row.mutable_logits() = logits;
  return row;
}

TEST(SharedMemoryConvertTest, LogitsInSharedMemoryDecodeLikeInlineData) {
  constexpr int kVocab = 1000;
  constexpr uint64_t kOffset = 4096 + 6;  // not aligned
  const std::vector<float> values = Logits(kVocab);
  const std::string bytes = EncodeTensor(DType::kBFloat16, values);
  ASSERT_EQ(bytes.size(), 2u * kVocab);

  std::unique_ptr<SharedMemoryRegion> region = MustCreate(kOffset + bytes.size());
  ASSERT_NE(region, nullptr);
  std::memcpy(region->data() + kOffset, bytes.data(), bytes.size());

  v1::Tensor inline_tensor;
  inline_tensor.set_dtype(v1::DTYPE_BFLOAT16);
  inline_tensor.add_shape(kVocab);
  inline_tensor.set_data(bytes);
  v1::Tensor shm_tensor;
  shm_tensor.set_dtype(v1::DTYPE_BFLOAT16);
  shm_tensor.add_shape(kVocab);
  shm_tensor.mutable_shared_memory()->set_region(region->name());
  shm_tensor.mutable_shared_memory()->set_offset(kOffset);

  SharedMemoryReader reader;
  std::vector<float> from_inline, from_shm;
  ASSERT_TRUE(DecodeLogits(inline_tensor, "logits", &from_inline).ok());
  ASSERT_TRUE(DecodeLogits(shm_tensor, "logits", &from_shm, &reader).ok());
  ASSERT_EQ(from_shm.size(), static_cast<size_t>(kVocab));
  EXPECT_THAT(from_shm, ElementsAreArray(from_inline));
  // BF16 of these values (multiples of 1/8 in [-6, 6.5]) is exact.
  EXPECT_THAT(from_shm, ElementsAreArray(values));

  absl::StatusOr<OwnedRow> by_inline = DecodeRow(RowWithLogits(inline_tensor), "rows[0].", 0);
  ASSERT_TRUE(by_inline.ok()) << by_inline.status();
  absl::StatusOr<OwnedRow> by_shm = DecodeRow(RowWithLogits(shm_tensor), "rows[0].", 0, &reader);
  ASSERT_TRUE(by_shm.ok()) << by_shm.status();
  EXPECT_THAT(by_shm->logits, ElementsAreArray(by_inline->logits));
  EXPECT_EQ(SamplerName(by_shm->row.config), "greedy");
  EXPECT_EQ(by_shm->row.seed, 7u);
}

TEST(SharedMemoryConvertTest, AttentionInSharedMemory) {
  const std::vector<float> scores = {0.5f, -1.25f, 2.0f, 0.0f, 3.5f, -0.125f};
  const std::string bytes = EncodeTensor(DType::kFloat32, scores);
  std::unique_ptr<SharedMemoryRegion> region = MustCreate(1);
  ASSERT_NE(region, nullptr);
  std::memcpy(region->data() + 64, bytes.data(), bytes.size());

  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_FLOAT32);
  tensor.add_shape(2);
  tensor.add_shape(3);
  tensor.mutable_shared_memory()->set_region(region->name());
  tensor.mutable_shared_memory()->set_offset(64);

  SharedMemoryReader reader;
  std::vector<float> out;
  int32_t heads = 0, keys = 0;
  ASSERT_TRUE(DecodeAttention(tensor, "rows[0].attention", &out, &heads, &keys, &reader).ok());
  EXPECT_THAT(out, ElementsAreArray(scores));
  EXPECT_EQ(heads, 2);
  EXPECT_EQ(keys, 3);

  // 6 floats at the last 20 bytes of the region run past its end.
  tensor.mutable_shared_memory()->set_offset(region->size() - 20);
  EXPECT_THAT(
      DecodeAttention(tensor, "rows[0].attention", &out, &heads, &keys, &reader),
      StatusIs(absl::StatusCode::kInvalidArgument,
               absl::StrCat("rows[0].attention.shared_memory: 24 bytes at offset 1048556 run past "
                            "the end of region ",
                            region->name(), " (1048576 bytes)")));
}

TEST(SharedMemoryConvertTest, ARegionTruncatedUnderADecodedRowIsAnErrorNotACrash) {
  // A row's tensor is decoded where it is mapped (no copy first): a region
  // that shrank since it was mapped faults inside the decoding itself.
  constexpr int kVocab = 4096;
  const std::string bytes = EncodeTensor(DType::kBFloat16, Logits(kVocab));
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-decode-shrink");
  shm_unlink(name.c_str());
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(flock(fd, LOCK_SH), 0) << std::strerror(errno);
  ASSERT_EQ(ftruncate(fd, 2 * kMiB), 0) << std::strerror(errno);
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), kMiB), static_cast<ssize_t>(bytes.size()));
  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_BFLOAT16);
  tensor.add_shape(kVocab);
  tensor.mutable_shared_memory()->set_region(name);
  tensor.mutable_shared_memory()->set_offset(kMiB);
  SharedMemoryReader reader;
  absl::StatusOr<OwnedRow> whole = DecodeRow(RowWithLogits(tensor), "rows[0].", 0, &reader);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_THAT(whole->logits, ElementsAreArray(Logits(kVocab)));

  ASSERT_EQ(ftruncate(fd, kMiB + 4096), 0) << std::strerror(errno);  // half the tensor left
  EXPECT_THAT(DecodeRow(RowWithLogits(tensor), "rows[0].", 0, &reader).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("rows[0].logits.shared_memory: region ", name,
                                    " shrank while it was read (bus error); was it truncated?")));
  close(fd);
  shm_unlink(name.c_str());
}

TEST(SharedMemoryConvertTest, SharedMemoryWithoutReaderIsFailedPrecondition) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_BFLOAT16);
  tensor.add_shape(8);
  tensor.mutable_shared_memory()->set_region("/entroserve-anything");
  absl::Status status = DecodeRow(RowWithLogits(tensor), "rows[0].", 0, nullptr).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()),
              StartsWith("rows[0].logits.shared_memory: this server reads no shared memory"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                               "rows[0].logits.shared_memory: this server reads no shared memory "
                               "from this client (samplerd --shared_memory=false, or a client not "
                               "on samplerd's host); send the bytes in data"));
}

TEST(SharedMemoryConvertTest, DataAndSharedMemoryTogetherAreInvalidArgument) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_BFLOAT16);
  tensor.add_shape(8);
  tensor.set_data(EncodeTensor(DType::kBFloat16, Logits(8)));
  tensor.mutable_shared_memory()->set_region("/entroserve-anything");
  SharedMemoryReader reader;
  // With or without a reader: the request is malformed either way.
  for (SharedMemoryReader* shm : {&reader, static_cast<SharedMemoryReader*>(nullptr)}) {
    EXPECT_THAT(DecodeRow(RowWithLogits(tensor), "rows[0].", 0, shm).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "rows[0].logits has both data (16 bytes) and shared_memory; send one"));
  }
}

TEST(SharedMemoryConvertTest, MissingRegionNamesTheField) {
  v1::Tensor tensor;
  tensor.set_dtype(v1::DTYPE_BFLOAT16);
  tensor.add_shape(8);
  const std::string name = absl::StrCat("/entroserve-test-", getpid(), "-absent");
  tensor.mutable_shared_memory()->set_region(name);
  SharedMemoryReader reader;
  EXPECT_THAT(
      DecodeRow(RowWithLogits(tensor), "rows[0].", 0, &reader).status(),
      StatusStartsWith(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("rows[0].logits.shared_memory.region: cannot open ", name)));
}

}  // namespace
}  // namespace entroserve
