// Errors of the OpenAI-compatible HTTP API, in OpenAI's shape:
//   {"error": {"message": "...", "type": "invalid_request_error",
//              "param": "temperature", "code": null}}
// with the HTTP status that goes with them: 400 a bad or unknown field
// (`param` names it), 404 an unknown model or path, 413 a body past the
// server's limit, 429 a full queue, 503 loading or draining, 500 only for
// the server's own faults (never for bad input).
//
// Thread-safety: plain values and pure functions.
#ifndef ENTROSERVE_SERVICES_OPENAI_API_ERROR_H_
#define ENTROSERVE_SERVICES_OPENAI_API_ERROR_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace entroserve::openai {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::optional<std::string> param;
  std::optional<std::string> code;
};

// A result that is either fine (nullopt) or an error.
using MaybeError = std::optional<ApiError>;

// 400 invalid_request_error naming `param`.
ApiError BadField(const std::string& param, const std::string& message);

// {"error": {...}}: message, type, param and code (null when unset).
nlohmann::json ErrorJson(const ApiError& error);

// The error for a status of the engine or of the edge conversions:
// INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE 400 naming `param`,
// RESOURCE_EXHAUSTED 429 (queue full), UNAVAILABLE 503, DEADLINE_EXCEEDED
// 504, anything else 500.
ApiError FromStatus(const absl::Status& status, std::optional<std::string> param);

// JSON text without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string Dump(const nlohmann::json& value);

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_API_ERROR_H_
