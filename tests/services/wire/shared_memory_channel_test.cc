// The shared-memory channel (services/wire/shared_memory_channel.h): bytes
// through it both ways, its doorbells and timeouts, and what the server end
// refuses or survives (a region that is not a channel, sizes beyond the
// areas, a region truncated under it).
#include "services/wire/shared_memory_channel.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kHeaderBytes = 4096;  // the layout's, as the header file says
constexpr size_t kRequestDoorbell = 64;

std::unique_ptr<ChannelClient> MustCreate(uint64_t capacity) {
  absl::StatusOr<std::unique_ptr<ChannelClient>> client = ChannelClient::Create(capacity);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::unique_ptr<ChannelServer> MustOpen(const std::string& name) {
  absl::StatusOr<std::unique_ptr<ChannelServer>> server = ChannelServer::Open(name, "channel");
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

void Post(ChannelClient& client, const std::string& bytes) {
  std::memcpy(client.request_area(), bytes.data(), bytes.size());
  client.Post(static_cast<uint32_t>(bytes.size()));
}

TEST(ShmChannelTest, ARequestAndItsAnswerCrossIntact) {
  std::unique_ptr<ChannelClient> client = MustCreate(100000);
  ASSERT_NE(client, nullptr);
  // 64 KiB at least, rounded to pages, then the areas take the whole MiB.
  EXPECT_EQ(client->capacity(), ((uint64_t{1} << 20) - kHeaderBytes) / 2 / 4096 * 4096);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->capacity(), client->capacity());

  std::string request(70000, '\0');
  for (size_t i = 0; i < request.size(); ++i) request[i] = static_cast<char>(i * 31 % 251);
  Post(*client, request);
  std::string got;
  absl::StatusOr<bool> took = server->Take(absl::Seconds(5), absl::ZeroDuration(), &got);
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_TRUE(*took);
  EXPECT_EQ(got, request);
  // Taken once: the next Take waits for a new request.
  took = server->Take(absl::Milliseconds(20), absl::ZeroDuration(), &got);
  ASSERT_TRUE(took.ok());
  EXPECT_FALSE(*took);

  EXPECT_FALSE(client->Wait(absl::Milliseconds(20), absl::Milliseconds(5)));  // not answered yet
  ASSERT_TRUE(server->Answer("the answer").ok());
  EXPECT_TRUE(client->Wait(absl::Seconds(5), absl::Microseconds(50)));
  absl::StatusOr<absl::string_view> answer = client->Answer();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, "the answer");
  // An empty answer is an answer too.
  Post(*client, "x");
  ASSERT_TRUE(server->Take(absl::Seconds(5), absl::ZeroDuration(), &got).ok());
  EXPECT_EQ(got, "x");
  ASSERT_TRUE(server->Answer("").ok());
  EXPECT_TRUE(client->Wait(absl::Seconds(5), absl::ZeroDuration()));
  EXPECT_EQ(*client->Answer(), "");
}

TEST(ShmChannelTest, ThousandsOfExchangesBetweenTwoThreadsKeepTheirOrder) {
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  constexpr int kExchanges = 3000;
  std::thread serving([&] {
    std::string request;
    for (int i = 0; i < kExchanges; ++i) {
      // The server spins on every third request, as samplerd's channel
      // threads may (--channel_spinners).
      absl::StatusOr<bool> took = server->Take(
          absl::Seconds(10), i % 3 == 0 ? absl::Microseconds(300) : absl::ZeroDuration(), &request);
      if (!took.ok() || !*took) {
        ADD_FAILURE() << "exchange " << i << ": "
                      << (took.ok() ? "timed out" : took.status().ToString());
        return;
      }
      ASSERT_TRUE(server->Answer(absl::StrCat("answer to ", request)).ok());
    }
  });
  for (int i = 0; i < kExchanges; ++i) {
    // Half the waits spin, half sleep on the doorbell at once.
    Post(*client, absl::StrCat(i));
    ASSERT_TRUE(
        client->Wait(absl::Seconds(10), i % 2 ? absl::Microseconds(200) : absl::ZeroDuration()))
        << "exchange " << i;
    ASSERT_EQ(*client->Answer(), absl::StrCat("answer to ", i));
  }
  serving.join();
}

TEST(ShmChannelTest, ASpinningTakeGetsARequestPostedDuringItAndEndsAtItsTimeout) {
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  std::string got;
  // Nothing posted: a spin as long as the timeout ends with it.
  const absl::Time start = absl::Now();
  absl::StatusOr<bool> took = server->Take(absl::Milliseconds(30), absl::Seconds(10), &got);
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_FALSE(*took);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // Posted 5 ms into a 10 s spin: taken then, not at the spin's end.
  std::thread posting([&] {
    absl::SleepFor(absl::Milliseconds(5));
    Post(*client, "while it spun");
  });
  const absl::Time spin_start = absl::Now();
  took = server->Take(absl::Seconds(20), absl::Seconds(10), &got);
  posting.join();
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_TRUE(*took);
  EXPECT_EQ(got, "while it spun");
  EXPECT_LT(absl::Now() - spin_start, absl::Seconds(5));
  // Interrupt ends a spin too.
  std::thread interrupting([&] {
    absl::SleepFor(absl::Milliseconds(5));
    server->Interrupt();
  });
  const absl::Time interrupted_at = absl::Now();
  took = server->Take(absl::Seconds(20), absl::Seconds(10), &got);
  interrupting.join();
  ASSERT_TRUE(took.ok());
  EXPECT_FALSE(*took);
  EXPECT_LT(absl::Now() - interrupted_at, absl::Seconds(5));
}

TEST(ShmChannelTest, AServerOpenedAfterARequestWaitsForTheNextOne) {
  // A new stream's server must not answer what the client posted to the
  // last one: it takes only requests posted after it opened.
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  Post(*client, "for the old server");
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  std::string got;
  absl::StatusOr<bool> took = server->Take(absl::Milliseconds(20), absl::ZeroDuration(), &got);
  ASSERT_TRUE(took.ok());
  EXPECT_FALSE(*took);
  Post(*client, "for the new one");
  took = server->Take(absl::Seconds(5), absl::ZeroDuration(), &got);
  ASSERT_TRUE(took.ok());
  EXPECT_TRUE(*took);
  EXPECT_EQ(got, "for the new one");
}

TEST(ShmChannelTest, InterruptWakesATakeAndEndsEveryLaterOne) {
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  absl::StatusOr<bool> took = absl::InternalError("not run");
  const absl::Time start = absl::Now();
  std::thread waiting([&] {
    std::string got;
    took = server->Take(absl::Seconds(30), absl::ZeroDuration(), &got);
  });
  absl::SleepFor(absl::Milliseconds(50));
  server->Interrupt();
  waiting.join();
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_FALSE(*took);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  Post(*client, "too late");
  std::string got;
  took = server->Take(absl::Seconds(5), absl::ZeroDuration(), &got);
  ASSERT_TRUE(took.ok());
  EXPECT_FALSE(*took);
}

TEST(ShmChannelTest, AnAnswerLargerThanTheAreaIsRefusedAndNothingIsWritten) {
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  Post(*client, "q");
  std::string got;
  ASSERT_TRUE(server->Take(absl::Seconds(5), absl::ZeroDuration(), &got).ok());
  const absl::Status too_big = server->Answer(std::string(server->capacity() + 1, 'a'));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(too_big.message(), absl::StrCat("the answer (", server->capacity() + 1,
                                            " bytes) exceeds the shared-memory channel's area (",
                                            server->capacity(), " bytes)"));
  EXPECT_FALSE(client->Wait(absl::Milliseconds(20), absl::ZeroDuration()));
}

TEST(ShmChannelTest, ARequestClaimingMoreThanTheAreaIsAnError) {
  // A broken or hostile client writes a size past the area: the server
  // refuses it rather than read past the region.
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  client->Post(static_cast<uint32_t>(client->capacity() + 1));
  std::string got;
  absl::StatusOr<bool> took = server->Take(absl::Seconds(5), absl::ZeroDuration(), &got);
  EXPECT_EQ(took.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(took.status().message(),
            absl::StrCat("a request through the shared-memory channel claims ",
                         client->capacity() + 1, " bytes; its area holds ", client->capacity()));
}

TEST(ShmChannelTest, ARegionTruncatedUnderTheServerIsAnErrorNotACrash) {
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  std::unique_ptr<ChannelServer> server = MustOpen(client->name());
  ASSERT_NE(server, nullptr);
  const int fd = shm_open(client->name().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 0), 0);
  close(fd);
  std::string got;
  absl::StatusOr<bool> took = server->Take(absl::Seconds(5), absl::ZeroDuration(), &got);
  EXPECT_EQ(took.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(took.status().message(), HasSubstr("the shared-memory channel shrank"));
  // A spinning Take reads the region as well.
  took = server->Take(absl::Seconds(5), absl::Milliseconds(10), &got);
  EXPECT_EQ(took.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(took.status().message(), HasSubstr("shrank while a request was awaited"));
  const absl::Status answered = server->Answer("x");
  EXPECT_EQ(answered.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(answered.message(), HasSubstr("shrank while an answer was written"));
}

TEST(ShmChannelTest, OpenRefusesWhatIsNotAChannel) {
  // A bad name: the reader's rule, naming the field.
  absl::StatusOr<std::unique_ptr<ChannelServer>> bad = ChannelServer::Open("/tmp/x", "channel");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("channel.region must be \"/entroserve-\""));
  // A tensor region: no channel header.
  absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> tensors = SharedMemoryRegion::Create(1);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  bad = ChannelServer::Open((*tensors)->name(), "channel");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bad.status().message(), absl::StrCat("channel.region: ", (*tensors)->name(),
                                                 " is not a sampler channel: no channel header"));
  // A header whose capacity the region cannot hold.
  std::unique_ptr<ChannelClient> client = MustCreate(0);
  ASSERT_NE(client, nullptr);
  const int fd = shm_open(client->name().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  const uint64_t huge = uint64_t{1} << 20;
  ASSERT_EQ(pwrite(fd, &huge, sizeof(huge), 8), static_cast<ssize_t>(sizeof(huge)));
  close(fd);
  bad = ChannelServer::Open(client->name(), "channel");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bad.status().message(),
            absl::StrCat("channel.region: ", client->name(),
                         " is not a sampler channel: a capacity of 1048576 bytes in a region of ",
                         uint64_t{1} << 20));
  // A region that does not exist.
  bad = ChannelServer::Open("/entroserve-no-such-channel", "channel");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("channel.region: cannot open /entroserve-no-such-channel"));
}

}  // namespace
}  // namespace entroserve
