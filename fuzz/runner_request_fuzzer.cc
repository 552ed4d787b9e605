// runner.v1 requests as runnerd receives them: any bytes parsed as each of
// the four request messages (services/common/message_bytes.h); a parse
// either succeeds or names what could not be parsed.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/logging.h"
#include "runner/v1/runner.pb.h"
#include "services/common/message_bytes.h"

namespace {

template <typename Message>
void Parse(absl::string_view bytes) {
  Message message;
  absl::Status status = entroserve::ParseMessage(bytes, &message);
  if (!status.ok() && !absl::StartsWith(status.message(), "the request could not be parsed as a")) {
    abort();
  }
}

}  // namespace

// protobuf logs every string that is not UTF-8 it refuses; at thousands of
// inputs a second that is all a run would print.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  Parse<runner::v1::GenerateRequest>(bytes);
  Parse<runner::v1::TokenizeRequest>(bytes);
  Parse<runner::v1::DetokenizeRequest>(bytes);
  Parse<runner::v1::ModelInfoRequest>(bytes);
  return 0;
}
