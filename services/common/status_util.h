// The one place where absl::Status becomes a gRPC status or an in-band row
// error (docs/ARCHITECTURE.md "Errors"). The canonical codes are the same numbers in
// both worlds, so the conversion keeps the code and the message as they are.
#ifndef ENTROSERVE_SERVICES_COMMON_STATUS_UTIL_H_
#define ENTROSERVE_SERVICES_COMMON_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

// absl::Status -> grpc::Status, same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, same code and message (for clients).
absl::Status FromGrpcStatus(const grpc::Status& status);

// Fills `error` with the code and message of a failed `status`.
void SetRowError(const absl::Status& status, sampler::v1::RowError* error);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_STATUS_UTIL_H_
