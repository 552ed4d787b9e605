// Shared-memory references (sampler.v1.SharedMemoryRef) as samplerd reads
// them: a region this process created, then any name, offset and length
// (the name is the input after 16 bytes of offset and length), and the
// peer addresses that decide whether a call may use shared memory.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "services/wire/shared_memory.h"

namespace {

struct Fixture {
  std::unique_ptr<entroserve::SharedMemoryRegion> region;
  entroserve::SharedMemoryReader reader{uint64_t{1} << 20};
};

Fixture& TheFixture() {
  static Fixture* const fixture = [] {
    auto* f = new Fixture;
    auto region = entroserve::SharedMemoryRegion::Create(1);
    if (!region.ok()) abort();
    f->region = *std::move(region);
    std::memset(f->region->data(), 'x', f->region->size());
    return f;
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& fixture = TheFixture();
  uint64_t offset_length[2] = {0, 0};
  const size_t head = std::min(size, sizeof(offset_length));
  std::memcpy(offset_length, data, head);
  std::string name(reinterpret_cast<const char*>(data) + head, size - head);
  // Half of the inputs name the real region, so that ranges are exercised.
  if ((offset_length[0] & 1) != 0) name = fixture.region->name();
  std::string out;
  absl::Status status =
      fixture.reader.Read(name, offset_length[0] >> 1, offset_length[1] % (uint64_t{2} << 20),
                          "rows[0].logits.shared_memory", &out);
  if (status.ok() && out.find_first_not_of('x') != std::string::npos) abort();
  (void)entroserve::IsLoopbackTarget(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
