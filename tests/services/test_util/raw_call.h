// Calls of any gRPC method with bytes chosen by the test, through
// grpc::GenericStub: what a client with its own (or a broken) serializer
// sends, which the generated stubs cannot.
#ifndef ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RAW_CALL_H_
#define ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RAW_CALL_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace entroserve {

struct RawCallResult {
  grpc::Status status;
  std::vector<std::string> answers;  // the bytes of each message received
};

// Calls `method` ("/sampler.v1.Sampler/Sample") on `channel`: sends each of
// `messages` (one for a unary method), half-closes, reads every answer and
// the status. A write the server no longer takes ends the writing.
inline RawCallResult CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                             const std::string& method, const std::vector<std::string>& messages) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  // One operation in flight at a time: each is started, then waited for.
  auto wait = [&queue] {
    void* tag = nullptr;
    bool ok = false;
    return queue.Next(&tag, &ok) && ok;
  };
  void* const tag = &queue;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &queue);
  call->StartCall(tag);
  wait();
  for (const std::string& message : messages) {
    grpc::Slice slice(message);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, tag);
    if (!wait()) break;
  }
  call->WritesDone(tag);
  wait();
  RawCallResult result;
  for (;;) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, tag);
    if (!wait()) break;
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (buffer.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices)
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    result.answers.push_back(std::move(bytes));
  }
  call->Finish(&result.status, tag);
  wait();
  queue.Shutdown();
  void* ignored_tag = nullptr;
  bool ignored_ok = false;
  while (queue.Next(&ignored_tag, &ignored_ok)) {
  }
  return result;
}

// `bytes` with the first occurrence of `marker` given a byte that is never
// valid UTF-8 (0xFF) at its end: a string field the generated serializer
// would write only with a warning, and proto3 parsers refuse.
inline std::string BreakUtf8(std::string bytes, const std::string& marker) {
  const size_t at = bytes.find(marker);
  if (at != std::string::npos) bytes[at + marker.size() - 1] = static_cast<char>(0xff);
  return bytes;
}

}  // namespace entroserve

#endif  // ENTROSERVE_TESTS_SERVICES_TEST_UTIL_RAW_CALL_H_
