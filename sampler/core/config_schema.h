// The language every sampler config of configs.h is written in: a config is
// one table of fields,
//
//   FIELD(type, name, default, rule, "help")
//
// from which ENTROSERVE_CONFIG_BODY makes the struct's members (with their
// defaults), VisitFields (every field with its name, rule and help, in table
// order), Validate() (the rules, in table order) and kName (the sampler's
// registry name, also the name of its field in sampler.v1.SamplerSpec's
// oneof). The wire conversion (services/wire/config_reflection.h), the
// defaults ListSamplers returns and README.md's config table
// (ConfigMarkdown, configs.h) are all derived from the same tables.
//
// Types: float, int32_t, bool, TokenIdList (repeated token ids),
// TokenSequences (sequences of token ids), LogitBias (token id -> bias) and
// StageList (stage names in order); each matches one proto field type.
//
// Rules (namespace rule, below) say which values a field accepts; a value
// that breaks one is INVALID_ARGUMENT naming the field and the value:
// "entropix.temperature must be > 0, got -1". A rule's checks run in this
// order, the first that fails giving the message:
//   1. finite:          +-inf         -> "must be finite"
//   2. lower bound:     "must be > 0", "must be >= 1"     (NaN fails here)
//   3. upper bound:     "must be <= 1"
//      (an Interval words 2 and 3 as one: "must be in (0, 1]")
//   4. temperature:     < kMinTemperature -> "must be >= 0.001"
//   5. finite:          NaN not caught by a bound -> "must be finite"
//   6. at least field:  "must be >= alpha.min_top_k (5)" (the named field of
//                       the same config; cross-field relations live here)
// TokenIdList applies its rule to each element ("dry.sequence_breaker_ids[1]
// must be >= 0, got -5"), TokenSequences to each id of each sequence, which
// must hold 1 to kMaxTokenSequenceLength ids; LogitBias has its own fixed check (ids >= 0,
// biases not NaN or +inf; -inf bans a token); StageList has the chain's
// checks (CheckStageList, configs.h).
#ifndef ENTROSERVE_SAMPLER_CORE_CONFIG_SCHEMA_H_
#define ENTROSERVE_SAMPLER_CORE_CONFIG_SCHEMA_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace entroserve {

// The smallest temperature any config accepts (every rule::Temperature()
// field). Samplers multiply logits by 1 / T: at T = 1e-3 a logit gap of
// ~0.09 already makes exp underflow, so the draw is the argmax that T -> 0
// tends to, while 1 / T and the tempered logits stay finite. Smaller positive
// values are rejected rather than clamped, so that a request never silently
// runs with another temperature. (A choice of this library, not from a paper;
// vLLM likewise treats temperatures below its _SAMPLING_EPS = 1e-5 as greedy.)
inline constexpr float kMinTemperature = 1e-3f;

// Repeated token ids (sampler.v1: repeated int32).
using TokenIdList = std::vector<int32_t>;
// Sequences of token ids (sampler.v1: repeated TokenSequence), each of 1 to
// kMaxTokenSequenceLength ids.
using TokenSequences = std::vector<std::vector<int32_t>>;
inline constexpr size_t kMaxTokenSequenceLength = 8;
// Token id -> value (sampler.v1: map<int32, float>).
using LogitBias = std::map<int32_t, float>;
// Stage names in the order they run (sampler.v1: repeated string).
using StageList = std::vector<std::string>;

// Which values a field accepts; built with the functions of namespace rule.
struct FieldRule {
  struct Bound {
    bool set = false;
    bool open = false;  // > or < rather than >= or <=
    double value = 0.0;
  };
  bool finite = false;
  Bound lo;
  Bound hi;
  bool interval = false;  // word a broken bound as "must be in [lo, hi]"
  bool min_temperature = false;
  const char* at_least_field = nullptr;

  // Also >= bound (> with `open`): "must be >= bound".
  constexpr FieldRule AtLeast(double bound, bool open = false) const {
    FieldRule r = *this;
    r.lo = Bound{true, open, bound};
    return r;
  }
  // Also <= bound (< with `open`): "must be <= bound".
  constexpr FieldRule AtMost(double bound, bool open = false) const {
    FieldRule r = *this;
    r.hi = Bound{true, open, bound};
    return r;
  }
  // Also >= the field `name` of the same config (a min/max pair).
  constexpr FieldRule AtLeastField(const char* name) const {
    FieldRule r = *this;
    r.at_least_field = name;
    return r;
  }
};

namespace rule {

// Anything the type holds.
constexpr FieldRule Any() { return FieldRule(); }
// Not NaN or +-inf.
constexpr FieldRule Finite() {
  FieldRule r;
  r.finite = true;
  return r;
}
// Finite and >= bound.
constexpr FieldRule AtLeast(double bound) { return Finite().AtLeast(bound); }
// Finite and > 0.
constexpr FieldRule Positive() { return Finite().AtLeast(0.0, /*open=*/true); }
// Finite, > 0 and >= kMinTemperature.
constexpr FieldRule Temperature() {
  FieldRule r = Positive();
  r.min_temperature = true;
  return r;
}
// <= bound (no finiteness check of its own).
constexpr FieldRule AtMost(double bound) { return FieldRule().AtMost(bound); }
// lo <= value <= hi (< and > with the open flags), worded as one interval:
// "must be in [lo, hi]".
constexpr FieldRule Interval(double lo, double hi, bool lo_open, bool hi_open) {
  FieldRule r = FieldRule().AtLeast(lo, lo_open).AtMost(hi, hi_open);
  r.interval = true;
  return r;
}
// "[lo, hi]", "(lo, hi]" and "[lo, hi)".
constexpr FieldRule Closed(double lo, double hi) { return Interval(lo, hi, false, false); }
constexpr FieldRule OpenClosed(double lo, double hi) { return Interval(lo, hi, true, false); }
constexpr FieldRule ClosedOpen(double lo, double hi) { return Interval(lo, hi, false, true); }

}  // namespace rule

// One row of a config's table.
struct FieldInfo {
  const char* name;
  FieldRule rule;
  const char* help;
};

// Where a value sits, for messages: "<sampler>.<field>" or
// "<sampler>.<field>[<index>]" (index >= 0).
struct FieldPath {
  const char* sampler;
  const char* field;
  int64_t index = -1;
  std::string ToString() const;
};

// Checks 1-5 of the header comment for one value.
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, float value);
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, int32_t value);
inline absl::Status CheckFieldValue(const FieldPath&, const FieldRule&, bool) {
  return absl::OkStatus();
}
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule,
                             const TokenIdList& values);
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule,
                             const TokenSequences& sequences);
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, const LogitBias& values);
// Defined in configs.cc, next to the stage names it checks against.
absl::Status CheckFieldValue(const FieldPath& path, const FieldRule& rule, const StageList& stages);

// Check 6: "<sampler>.<field> must be >= <sampler>.<other> (<bound>), got <value>".
absl::Status AtLeastFieldError(const FieldPath& path, const char* other, float bound, float value);
absl::Status AtLeastFieldError(const FieldPath& path, const char* other, int32_t bound,
                               int32_t value);

// The field types a table may use: the sampler.v1 field type each is
// carried in (services/wire/config_reflection.cc checks the proto against
// it) and, for the types a FieldRule does not describe, the values accepted.
template <typename T>
struct FieldType;
template <>
struct FieldType<float> {
  static constexpr const char* kProto = "optional float";
  static constexpr const char* kAccepts = nullptr;
};
template <>
struct FieldType<int32_t> {
  static constexpr const char* kProto = "optional int32";
  static constexpr const char* kAccepts = nullptr;
};
template <>
struct FieldType<bool> {
  static constexpr const char* kProto = "optional bool";
  static constexpr const char* kAccepts = "true, false";
};
template <>
struct FieldType<TokenIdList> {
  static constexpr const char* kProto = "repeated int32";
  static constexpr const char* kAccepts = "token ids";
};
template <>
struct FieldType<TokenSequences> {
  static constexpr const char* kProto = "repeated TokenSequence";
  static constexpr const char* kAccepts = "sequences of 1 to 8 token ids";
};
template <>
struct FieldType<LogitBias> {
  static constexpr const char* kProto = "map<int32, float>";
  static constexpr const char* kAccepts = "token id: bias, not NaN or +inf";
};
template <>
struct FieldType<StageList> {
  static constexpr const char* kProto = "repeated string";
  static constexpr const char* kAccepts = "stage names, one selector last";
};

// For docs: the accepted values ("> 0", "(0, 1]", "[1, 256]",
// ">= `min_top_k`") and a value as the table shows it.
std::string RuleText(const FieldRule& rule, bool integer);
template <typename T>
std::string RuleTextFor(const FieldRule& rule) {
  if (FieldType<T>::kAccepts != nullptr) return FieldType<T>::kAccepts;
  return RuleText(rule, std::is_same_v<T, int32_t>);
}
std::string ValueText(float value);
std::string ValueText(int32_t value);
std::string ValueText(bool value);
std::string ValueText(const TokenIdList& values);
std::string ValueText(const TokenSequences& sequences);
std::string ValueText(const LogitBias& values);
std::string ValueText(const StageList& stages);

// The value of the field `name` of type T of `config` (T() if none).
template <typename T, typename Config>
T FieldValue(const Config& config, const char* name) {
  T found{};
  Config::VisitFields(config, [&](const FieldInfo& field, const auto& value) {
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, T>) {
      if (std::strcmp(field.name, name) == 0) found = value;
    }
  });
  return found;
}

// Validate() of every config: each field's rule, in table order.
template <typename Config>
absl::Status ValidateFields(const Config& config) {
  absl::Status status;
  Config::VisitFields(config, [&](const FieldInfo& field, const auto& value) {
    if (!status.ok()) return;
    const FieldPath path{Config::kName, field.name};
    status = CheckFieldValue(path, field.rule, value);
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, int32_t>) {
      if (status.ok() && field.rule.at_least_field != nullptr) {
        const T bound = FieldValue<T>(config, field.rule.at_least_field);
        if (!(value >= bound)) {
          status = AtLeastFieldError(path, field.rule.at_least_field, bound, value);
        }
      }
    }
  });
  return status;
}

// The pieces of a config struct made from its table:
//   struct ChainConfig { ENTROSERVE_CONFIG_BODY("chain", ENTROSERVE_CHAIN_FIELDS) };
#define ENTROSERVE_CONFIG_MEMBER(type, name, value, rule_expr, help) type name = value;
#define ENTROSERVE_CONFIG_VISIT(type, name, value, rule_expr, help) \
  visit(::entroserve::FieldInfo{#name, ::entroserve::rule::rule_expr, help}, config.name);
#define ENTROSERVE_CONFIG_BODY(sampler_name, FIELDS)                                   \
  static constexpr const char kName[] = sampler_name;                                  \
  FIELDS(ENTROSERVE_CONFIG_MEMBER)                                                     \
  /* visit(const FieldInfo&, value) for every field, in table order. */                \
  template <typename Config, typename Visit>                                           \
  static void VisitFields(Config& config,                                              \
                          Visit&& visit){FIELDS(ENTROSERVE_CONFIG_VISIT)} absl::Status \
  Validate() const {                                                                   \
    return ::entroserve::ValidateFields(*this);                                        \
  }

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_CORE_CONFIG_SCHEMA_H_
