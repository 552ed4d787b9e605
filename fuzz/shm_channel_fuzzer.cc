// The shared-memory channel as samplerd's end meets it
// (services/wire/shared_memory_channel.h): a region whose header (magic,
// capacity) and request doorbell (size, sequence) say anything, then a
// request taken and an answer written back. Input: a flags byte (bit 0: a
// magic from the input; bit 1: a capacity from the input), 8 bytes of
// capacity, 4 of claimed request size, then the request's bytes (also the
// answer). A request taken must be the bytes written; an answer accepted
// must reach the client as written.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "services/wire/shared_memory_channel.h"

namespace {

constexpr size_t kHeaderBytes = 4096;  // the layout's (shared_memory_channel.h)

entroserve::ChannelClient& TheClient() {
  static entroserve::ChannelClient* const client = [] {
    auto made = entroserve::ChannelClient::Create(0);
    if (!made.ok()) abort();
    return made->release();
  }();
  return *client;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  entroserve::ChannelClient& client = TheClient();
  char* base = client.request_area() - kHeaderBytes;
  uint8_t flags = 0;
  uint64_t capacity = client.capacity();
  uint32_t claimed = 0;
  if (size >= 1) flags = data[0];
  if (size >= 9 && (flags & 2) != 0) std::memcpy(&capacity, data + 1, 8);
  if (size >= 13) std::memcpy(&claimed, data + 9, 4);
  const char* body = size > 13 ? reinterpret_cast<const char*>(data) + 13 : "";
  const size_t body_size = size > 13 ? size - 13 : 0;
  if ((flags & 1) != 0 && size >= 9) {
    std::memcpy(base, data + 1, 8);
  } else {
    std::memcpy(base, "esch0001", 8);
  }
  std::memcpy(base + 8, &capacity, 8);

  auto server = entroserve::ChannelServer::Open(client.name(), "channel");
  const uint64_t real = client.capacity();
  std::memcpy(base + 8, &real, 8);  // the header as the client made it
  if (!server.ok()) return 0;
  const size_t written = body_size < real ? body_size : real;
  std::memcpy(client.request_area(), body, written);
  client.Post(claimed);
  std::string got;
  absl::StatusOr<bool> took = (*server)->Take(absl::ZeroDuration(), absl::ZeroDuration(), &got);
  if (took.ok() && *took) {
    if (got.size() != claimed) abort();
    if (claimed <= written && std::memcmp(got.data(), body, claimed) != 0) abort();
  }
  if (!took.ok() && claimed <= (*server)->capacity()) abort();
  if (!took.ok() || !*took) return 0;
  const std::string answer(body, body_size);
  // The round trip holds when both ends agree on the areas (the server may
  // have read another capacity from the header).
  if ((*server)->Answer(answer).ok() && (*server)->capacity() == real) {
    if (!client.Wait(absl::ZeroDuration(), absl::ZeroDuration())) abort();
    absl::StatusOr<absl::string_view> back = client.Answer();
    if (!back.ok() || *back != answer) abort();
  }
  return 0;
}
