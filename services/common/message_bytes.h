// Requests taken as raw bytes and parsed here, by every method of both
// services.
//
// Why: with gRPC's generated callback handlers gRPC parses the request
// itself, and bytes that do not parse (a truncated message, or a proto3
// string field that is not valid UTF-8, which a C++ client can send) end a
// unary call UNIMPLEMENTED with an empty message, as if the method did not
// exist, and end a bidirectional stream OK with every later message dropped.
// Registered as raw methods (WithRawCallbackMethod_*), the services get the
// bytes and answer INVALID_ARGUMENT saying what could not be parsed and,
// where the reason is a string that is not UTF-8, which field.
#ifndef ENTROSERVE_SERVICES_COMMON_MESSAGE_BYTES_H_
#define ENTROSERVE_SERVICES_COMMON_MESSAGE_BYTES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "services/common/status_util.h"

namespace entroserve {

// OK when `value` is valid UTF-8; otherwise INVALID_ARGUMENT naming `field`:
// "chat.messages[1].content is not valid UTF-8: ...".
absl::Status CheckUtf8Field(absl::string_view value, absl::string_view field);

// Parses `bytes` as `message`. When they are not one, INVALID_ARGUMENT
// "<what> could not be parsed as a <type>", followed by ": <field> is not
// valid UTF-8: ..." when the reason is a string field (found by path, e.g.
// "rows[0].sequence_id"). `what`: "the request", or "message 3" of a stream.
absl::Status ParseMessage(absl::string_view bytes, google::protobuf::Message* message,
                          absl::string_view what = "the request");
absl::Status ParseMessage(const grpc::ByteBuffer& bytes, google::protobuf::Message* message,
                          absl::string_view what = "the request");

// Serializes `message` into `bytes` (cleared first).
grpc::Status SerializeMessage(const google::protobuf::Message& message, grpc::ByteBuffer* bytes);

// A unary raw method answered at once: parses the request, runs
// `handler(const Request&, Response*) -> absl::Status` and finishes the call
// with its status, the response serialized when it is OK.
template <typename Request, typename Response, typename Handler>
grpc::ServerUnaryReactor* AnswerUnary(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request_bytes,
                                      grpc::ByteBuffer* response_bytes, Handler&& handler) {
  Request request;
  Response response;
  absl::Status status = ParseMessage(*request_bytes, &request);
  if (status.ok()) status = handler(request, &response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status.ok() ? SerializeMessage(response, response_bytes) : ToGrpcStatus(status));
  return reactor;
}

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_MESSAGE_BYTES_H_
