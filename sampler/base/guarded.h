// Exceptions turned into a status at a boundary that must never throw (a
// worker-pool task, a gRPC reaction, a row of a batch): the project's code
// returns absl::Status, but the standard library and libtorch can throw
// (std::bad_alloc, c10::Error).
#ifndef ENTROSERVE_SAMPLER_BASE_GUARDED_H_
#define ENTROSERVE_SAMPLER_BASE_GUARDED_H_

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace entroserve {

// Returns fn()'s status; an exception it throws becomes INTERNAL with the
// message "<context>: <what()>" ("<context>: unknown exception" for one that
// is not a std::exception).
template <typename Fn>
absl::Status RunGuarded(absl::string_view context, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": unknown exception"));
  }
}

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_BASE_GUARDED_H_
