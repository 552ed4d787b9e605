// Status propagation in the Abseil style (as in Abseil's own internal
// macros, TensorFlow and Triton): an early return for the error path, so the
// success path reads straight down.
//
//   RETURN_IF_ERROR(CheckStep(step, prefix));
//   ASSIGN_OR_RETURN(SamplerConfig config, SpecToConfig(spec, prefix));
//   ASSIGN_OR_RETURN(parsed->logits, DecodeLogits(tensor, field));
#ifndef ENTROSERVE_SAMPLER_BASE_STATUS_MACROS_H_
#define ENTROSERVE_SAMPLER_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status); returns it from the enclosing function
// unless it is OK.
#define RETURN_IF_ERROR(expr)                                       \
  do {                                                              \
    ::absl::Status entroserve_status_macro_status = (expr);         \
    if (!entroserve_status_macro_status.ok()) {                     \
      return entroserve_status_macro_status;                        \
    }                                                               \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status from the
// enclosing function unless it is OK, else moves its value into `lhs` (a
// declaration or an existing lvalue). Several statements: in an if or a
// loop, put it inside braces.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ENTROSERVE_ASSIGN_OR_RETURN_IMPL(ENTROSERVE_STATUS_MACRO_CONCAT(statusor_, __LINE__), lhs, rexpr)

#define ENTROSERVE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = *std::move(statusor)

#define ENTROSERVE_STATUS_MACRO_CONCAT_INNER(x, y) x##y
#define ENTROSERVE_STATUS_MACRO_CONCAT(x, y) ENTROSERVE_STATUS_MACRO_CONCAT_INNER(x, y)

#endif  // ENTROSERVE_SAMPLER_BASE_STATUS_MACROS_H_
