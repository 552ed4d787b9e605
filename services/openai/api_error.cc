#include "services/openai/api_error.h"

#include <utility>

namespace entroserve::openai {

ApiError BadField(const std::string& param, const std::string& message) {
  ApiError error;
  error.status = 400;
  error.message = message;
  error.param = param;
  return error;
}

nlohmann::json ErrorJson(const ApiError& error) {
  nlohmann::json body = nlohmann::json::object();
  body["message"] = error.message;
  body["type"] = error.type;
  body["param"] = error.param ? nlohmann::json(*error.param) : nlohmann::json(nullptr);
  body["code"] = error.code ? nlohmann::json(*error.code) : nlohmann::json(nullptr);
  return nlohmann::json{{"error", std::move(body)}};
}

ApiError FromStatus(const absl::Status& status, std::optional<std::string> param) {
  ApiError error;
  error.message = std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      error.status = 400;
      error.param = std::move(param);
      break;
    case absl::StatusCode::kResourceExhausted:
      error.status = 429;
      error.type = "rate_limit_error";
      error.code = "queue_full";
      break;
    case absl::StatusCode::kUnavailable:
      error.status = 503;
      error.type = "service_unavailable";
      error.code = "unavailable";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      error.status = 504;
      error.type = "timeout";
      break;
    default:
      error.status = 500;
      error.type = "server_error";
      break;
  }
  return error;
}

std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace entroserve::openai
