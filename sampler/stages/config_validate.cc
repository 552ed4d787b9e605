// Validate() of the configs whose samplers live in stages/ (configs.h).
// Messages name the field with its sampler prefix and the value given:
// "chain.temperature must be > 0, got -1".
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sampler/core/configs.h"
#include "sampler/core/types.h"

namespace entroserve {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule, float value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must ", rule, ", got ", value));
}

absl::Status Invalid(absl::string_view field, absl::string_view rule, int64_t value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must ", rule, ", got ", value));
}

// Finite and > 0.
absl::Status CheckPositive(absl::string_view field, float value) {
  if (std::isinf(value)) return Invalid(field, "be finite", value);
  if (!(value > 0.0f)) return Invalid(field, "be > 0", value);
  return absl::OkStatus();
}

// Finite and >= kMinTemperature (configs.h); "> 0" for the non-positive.
absl::Status CheckTemperature(absl::string_view field, float value) {
  if (absl::Status s = CheckPositive(field, value); !s.ok()) return s;
  return CheckMinTemperature(field, value);
}

// Finite and >= bound.
absl::Status CheckAtLeast(absl::string_view field, float value, float bound) {
  if (std::isinf(value)) return Invalid(field, "be finite", value);
  if (!(value >= bound)) return Invalid(field, absl::StrCat("be >= ", bound), value);
  return absl::OkStatus();
}

absl::Status CheckFinite(absl::string_view field, float value) {
  if (!std::isfinite(value)) return Invalid(field, "be finite", value);
  return absl::OkStatus();
}

// value in the interval with the given open/closed ends; NaN fails.
absl::Status CheckInterval(absl::string_view field, float value, float lo, bool lo_open, float hi,
                           bool hi_open) {
  const bool ok = (lo_open ? value > lo : value >= lo) && (hi_open ? value < hi : value <= hi);
  if (ok) return absl::OkStatus();
  return Invalid(
      field, absl::StrCat("be in ", lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]"), value);
}

absl::Status CheckIntAtLeast(absl::string_view field, int64_t value, int64_t bound) {
  if (value < bound) return Invalid(field, absl::StrCat("be >= ", bound), value);
  return absl::OkStatus();
}

absl::Status CheckIntRange(absl::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return Invalid(field, absl::StrCat("be in [", lo, ", ", hi, "]"), value);
  }
  return absl::OkStatus();
}

// Local to this file (undefined at its end).
#define RETURN_IF_INVALID(expr)               \
  do {                                        \
    if (absl::Status _s = (expr); !_s.ok()) { \
      return _s;                              \
    }                                         \
  } while (0)

constexpr int64_t kMaxHistory = SamplerState::kMaxRecentTokens;

}  // namespace

absl::Status ChainConfig::Validate() const {
  RETURN_IF_INVALID(CheckTemperature("chain.temperature", temperature));
  RETURN_IF_INVALID(CheckIntAtLeast("chain.top_k", top_k, 0));
  RETURN_IF_INVALID(CheckInterval("chain.top_p", top_p, 0, true, 1, false));
  RETURN_IF_INVALID(CheckInterval("chain.min_p", min_p, 0, false, 1, true));
  RETURN_IF_INVALID(CheckInterval("chain.typical_p", typical_p, 0, true, 1, false));
  RETURN_IF_INVALID(CheckPositive("chain.repetition_penalty", repetition_penalty));
  RETURN_IF_INVALID(CheckFinite("chain.frequency_penalty", frequency_penalty));
  RETURN_IF_INVALID(CheckFinite("chain.presence_penalty", presence_penalty));
  RETURN_IF_INVALID(CheckIntRange("chain.penalty_last_n", penalty_last_n, 0, kMaxHistory));
  RETURN_IF_INVALID(
      CheckIntRange("chain.no_repeat_ngram_size", no_repeat_ngram_size, 0, kMaxHistory));
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("chain.logit_bias token ids must be >= 0, got ", id));
    }
    if (std::isnan(bias) || (std::isinf(bias) && bias > 0)) {
      return Invalid(absl::StrCat("chain.logit_bias[", id, "]"), "not be NaN or +inf", bias);
    }
  }
  return absl::OkStatus();
}

absl::Status MirostatV2Config::Validate() const {
  RETURN_IF_INVALID(CheckPositive("mirostat_v2.tau", tau));
  RETURN_IF_INVALID(CheckPositive("mirostat_v2.eta", eta));
  RETURN_IF_INVALID(CheckTemperature("mirostat_v2.temperature", temperature));
  return absl::OkStatus();
}

absl::Status DynaTempConfig::Validate() const {
  RETURN_IF_INVALID(CheckTemperature("dynatemp.min_temperature", min_temperature));
  RETURN_IF_INVALID(CheckFinite("dynatemp.max_temperature", max_temperature));
  if (!(max_temperature >= min_temperature)) {
    return Invalid("dynatemp.max_temperature",
                   absl::StrCat("be >= dynatemp.min_temperature (", min_temperature, ")"),
                   max_temperature);
  }
  RETURN_IF_INVALID(CheckAtLeast("dynatemp.exponent", exponent, 0));
  return absl::OkStatus();
}

absl::Status TopNSigmaConfig::Validate() const {
  RETURN_IF_INVALID(CheckPositive("top_n_sigma.n", n));
  RETURN_IF_INVALID(CheckTemperature("top_n_sigma.temperature", temperature));
  return absl::OkStatus();
}

absl::Status XtcConfig::Validate() const {
  RETURN_IF_INVALID(CheckInterval("xtc.threshold", threshold, 0, false, 1, false));
  RETURN_IF_INVALID(CheckInterval("xtc.probability", probability, 0, false, 1, false));
  RETURN_IF_INVALID(CheckIntAtLeast("xtc.min_keep", min_keep, 1));
  RETURN_IF_INVALID(CheckTemperature("xtc.temperature", temperature));
  return absl::OkStatus();
}

absl::Status DryConfig::Validate() const {
  RETURN_IF_INVALID(CheckAtLeast("dry.multiplier", multiplier, 0));
  RETURN_IF_INVALID(CheckAtLeast("dry.base", base, 1));
  RETURN_IF_INVALID(CheckIntAtLeast("dry.allowed_length", allowed_length, 1));
  RETURN_IF_INVALID(CheckIntRange("dry.penalty_last_n", penalty_last_n, 0, kMaxHistory));
  for (size_t i = 0; i < sequence_breaker_ids.size(); ++i) {
    RETURN_IF_INVALID(CheckIntAtLeast(absl::StrCat("dry.sequence_breaker_ids[", i, "]"),
                                      sequence_breaker_ids[i], 0));
  }
  RETURN_IF_INVALID(CheckTemperature("dry.temperature", temperature));
  return absl::OkStatus();
}

#undef RETURN_IF_INVALID

}  // namespace entroserve
