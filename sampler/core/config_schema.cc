#include "sampler/core/config_schema.h"

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace entroserve {
namespace {

template <typename T>
absl::Status Broken(const FieldPath& path, absl::string_view rule, T value) {
  return absl::InvalidArgumentError(absl::StrCat(path.ToString(), " must ", rule, ", got ", value));
}

// A bound as a value of the field's type prints ("0.001", "256").
template <typename T>
std::string BoundText(double bound) {
  return absl::StrCat(static_cast<T>(bound));
}

template <typename T>
std::string IntervalText(const FieldRule& r) {
  return absl::StrCat(r.lo.open ? "(" : "[", BoundText<T>(r.lo.value), ", ",
                      BoundText<T>(r.hi.value), r.hi.open ? ")" : "]");
}

// Whether `value` is on the allowed side of `bound` (NaN never is).
template <typename T>
bool Allows(const FieldRule::Bound& bound, bool upper, T value) {
  if (!bound.set) return true;
  const T b = static_cast<T>(bound.value);
  if (upper) return bound.open ? value < b : value <= b;
  return bound.open ? value > b : value >= b;
}

// Checks 1-5 of config_schema.h.
template <typename T>
absl::Status CheckNumber(const FieldPath& path, const FieldRule& r, T value) {
  constexpr bool kFloat = std::is_floating_point_v<T>;
  if constexpr (kFloat) {
    if (r.finite && std::isinf(value)) return Broken(path, "be finite", value);
  }
  for (const bool upper : {false, true}) {
    const FieldRule::Bound& bound = upper ? r.hi : r.lo;
    if (Allows(bound, upper, value)) continue;
    if (r.interval) return Broken(path, absl::StrCat("be in ", IntervalText<T>(r)), value);
    const char* op = upper ? (bound.open ? "be < " : "be <= ") : (bound.open ? "be > " : "be >= ");
    return Broken(path, absl::StrCat(op, BoundText<T>(bound.value)), value);
  }
  if constexpr (kFloat) {
    if (r.min_temperature && value < kMinTemperature) {
      return Broken(path, absl::StrCat("be >= ", kMinTemperature), value);
    }
    if (r.finite && std::isnan(value)) return Broken(path, "be finite", value);
  }
  return absl::OkStatus();
}

}  // namespace

std::string FieldPath::ToString() const {
  if (index < 0) return absl::StrCat(sampler, ".", field);
  return absl::StrCat(sampler, ".", field, "[", index, "]");
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, float value) {
  return CheckNumber(path, rule, value);
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, int32_t value) {
  return CheckNumber(path, rule, value);
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule,
                             const TokenIdList& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    const FieldPath element{path.sampler, path.field, static_cast<int64_t>(i)};
    if (absl::Status s = CheckNumber(element, rule, values[i]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule,
                             const TokenSequences& sequences) {
  for (size_t i = 0; i < sequences.size(); ++i) {
    const FieldPath sequence{path.sampler, path.field, static_cast<int64_t>(i)};
    if (sequences[i].empty() || sequences[i].size() > kMaxTokenSequenceLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(sequence.ToString(), " has ", sequences[i].size(),
                       " token ids; must be 1 to ", kMaxTokenSequenceLength));
    }
    for (int32_t id : sequences[i]) {
      if (absl::Status s = CheckNumber(sequence, rule, id); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule&, const LogitBias& values) {
  for (const auto& [id, bias] : values) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.ToString(), " token ids must be >= 0, got ", id));
    }
    if (std::isnan(bias) || (std::isinf(bias) && bias > 0)) {
      return Broken(FieldPath{path.sampler, path.field, id}, "not be NaN or +inf", bias);
    }
  }
  return absl::OkStatus();
}

absl::Status AtLeastFieldError(const FieldPath& path, const char* other, float bound, float value) {
  return Broken(path, absl::StrCat("be >= ", path.sampler, ".", other, " (", bound, ")"), value);
}

absl::Status AtLeastFieldError(const FieldPath& path, const char* other, int32_t bound,
                               int32_t value) {
  return Broken(path, absl::StrCat("be >= ", path.sampler, ".", other, " (", bound, ")"), value);
}

std::string RuleText(const FieldRule& r, bool integer) {
  const auto bound = [integer](double b) {
    return integer ? BoundText<int32_t>(b) : BoundText<float>(b);
  };
  std::vector<std::string> parts;
  if (r.lo.set && r.hi.set) {
    parts.push_back(integer ? IntervalText<int32_t>(r) : IntervalText<float>(r));
  } else if (r.min_temperature) {
    parts.push_back(absl::StrCat("≥ ", kMinTemperature));
  } else if (r.lo.set) {
    parts.push_back(absl::StrCat(r.lo.open ? "> " : "≥ ", bound(r.lo.value)));
  } else if (r.hi.set) {
    parts.push_back(absl::StrCat(r.hi.open ? "< " : "≤ ", bound(r.hi.value)));
  }
  if (r.at_least_field != nullptr) parts.push_back(absl::StrCat("≥ `", r.at_least_field, "`"));
  if (parts.empty()) return r.finite ? "finite" : "any";
  return absl::StrJoin(parts, ", ");
}

std::string ValueText(float value) { return absl::StrCat(value); }
std::string ValueText(int32_t value) { return absl::StrCat(value); }
std::string ValueText(bool value) { return value ? "true" : "false"; }

std::string ValueText(const TokenIdList& values) {
  return values.empty() ? "none" : absl::StrCat("[", absl::StrJoin(values, ", "), "]");
}

std::string ValueText(const TokenSequences& sequences) {
  if (sequences.empty()) return "none";
  std::vector<std::string> parts;
  for (const std::vector<int32_t>& ids : sequences) parts.push_back(ValueText(ids));
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

std::string ValueText(const LogitBias& values) {
  if (values.empty()) return "none";
  return absl::StrCat("{", absl::StrJoin(values, ", ", absl::PairFormatter(": ")), "}");
}

std::string ValueText(const StageList& stages) {
  return stages.empty() ? "the default order" : absl::StrJoin(stages, ", ");
}

}  // namespace entroserve
