// The edge of the sampler service: the ONE place that turns sampler.v1 wire
// messages into the sampler library's domain objects and back, and checks
// every range a request can get wrong (DESIGN.md "Validation at the edge").
//
// Every error is an absl::Status whose message starts with the path of the
// field at fault and says the value it got ("rows[2].spec.entropix.temperature
// must be > 0, got -1"). `prefix` arguments are that path up to the message
// being converted ("rows[2]." for a row of a batch, "" for a lone message).
//
// Thread-safety: every function here is a pure function of its arguments.
#ifndef ENTROSERVE_SERVICES_WIRE_SAMPLER_CONVERT_H_
#define ENTROSERVE_SERVICES_WIRE_SAMPLER_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sampler/core/configs.h"
#include "sampler/registry.h"
#include "sampler/core/types.h"
#include "sampler/v1/sampler.pb.h"
#include "services/wire/shared_memory.h"

namespace entroserve {

// The version of sampler.v1.SamplerState this server writes; it reads this
// one and 0 (a state built by hand, with the version left unset).
inline constexpr uint32_t kSamplerStateVersion = 1;

// SamplerSpec -> the config of the sampler it selects. `name` alone selects
// that sampler's defaults; a config alone selects its sampler (unset optional
// fields keep the C++ defaults); both must agree; neither is an error. The
// config is then range-checked by its Validate().
absl::StatusOr<SamplerConfig> SpecToConfig(const sampler::v1::SamplerSpec& spec,
                                           const std::string& prefix);

// SpecToConfig for a spec at the path `field` ("sampler" in runner.v1's
// GenerateRequest): messages start with `field` ("sampler.name: ...",
// "sampler.entropix.temperature must be > 0, got -1").
absl::StatusOr<SamplerConfig> SpecFieldToConfig(const sampler::v1::SamplerSpec& spec,
                                                const std::string& field);

// The config's Validate(), its message prefixed with `field` and a dot.
absl::Status ValidateConfig(const SamplerConfig& config, const std::string& field);

// The token ids a config names (chain.logit_bias, dry.sequence_breaker_ids)
// must be in [0, vocab_size); `field` is the spec's path ("rows[0].spec").
absl::Status CheckConfigTokens(const SamplerConfig& config, int64_t vocab_size,
                               const std::string& field);

// Every id in [0, vocab_size); the error names `field`[i].
absl::Status CheckTokenIds(absl::Span<const int32_t> ids, int64_t vocab_size,
                           const std::string& field);

// Fills `spec` with the sampler's name and its config with EVERY field set
// (ListSamplers' defaults, clients echoing a config).
void ConfigToSpec(const SamplerConfig& config, sampler::v1::SamplerSpec* spec);

// Decodes `tensor` as logits: dtype known, shape [V] with 1 <= V < 2^31, data
// of exactly V elements, no NaN or +inf and at least one finite value.
// `field` names the tensor ("rows[0].logits").
//
// The bytes are `data`, or with `shared_memory` set (and `data` empty) read
// through `shm` (services/wire/shared_memory.h); a null `shm` makes such a tensor
// FAILED_PRECONDITION (this server reads no shared memory).
absl::Status DecodeLogits(const sampler::v1::Tensor& tensor, const std::string& field,
                          std::vector<float>* logits, SharedMemoryReader* shm = nullptr);

// Decodes `tensor` as attention scores: dtype known, shape [heads, keys] with
// both >= 1, data of exactly heads * keys elements, all finite. Bytes as for
// DecodeLogits.
absl::Status DecodeAttention(const sampler::v1::Tensor& tensor, const std::string& field,
                             std::vector<float>* scores, int32_t* heads, int32_t* keys,
                             SharedMemoryReader* shm = nullptr);

// sampler.v1.SamplerState -> SamplerState. Checks the version (0 or 1), that
// every history token is a token id of a vocabulary of `vocab_size` and that
// the floats are finite. `field` names the state ("rows[0].state").
absl::StatusOr<SamplerState> StateFromProto(const sampler::v1::SamplerState& proto,
                                            int64_t vocab_size, const std::string& field);

// SamplerState -> sampler.v1.SamplerState at kSamplerStateVersion.
void StateToProto(const SamplerState& state, sampler::v1::SamplerState* proto);

// One row of a SampleRequest as domain objects, checked. Owns the decoded
// floats that input() points into, so it must outlive any use of input().
struct ParsedRow {
  SamplerConfig config;
  std::string sampler_name;  // SamplerName(config)
  int64_t step = 0;
  uint64_t seed = 0;
  std::vector<float> logits;     // [V]
  std::vector<float> attention;  // [heads, keys] row-major; empty if absent
  int32_t heads = 0;
  int32_t keys = 0;
  SpecialTokens special_tokens;
  // The state the row sent (empty if none), with appended_tokens pushed.
  SamplerState state;
  bool state_sent = false;  // whether the row carried a non-empty state

  RowInput input() const;
};

// Converts and checks the row at `prefix` ("rows[3]."). `seed_if_absent` is
// the seed used when the row has none (the caller picks it at random).
// Tensors in shared memory are read through `shm` (see DecodeLogits).
// Everything that does not depend on the sampler instance is checked here;
// CheckStateSent below checks the rest.
absl::Status ParseRow(const sampler::v1::SampleRow& row, const std::string& prefix,
                      uint64_t seed_if_absent, ParsedRow* parsed,
                      SharedMemoryReader* shm = nullptr);

// ParseRow for a row built in process (runnerd's local sampler backend)
// rather than decoded from the wire: `parsed` holds the row's config, step,
// seed, logits, attention (heads, keys), special tokens and the state it
// sends; this makes every check ParseRow makes on the decoded values, with
// the same messages, sets sampler_name and state_sent, and pushes `appended`
// (the row's appended_tokens) onto the state.
absl::Status CheckRow(const std::string& prefix, absl::Span<const int32_t> appended,
                      ParsedRow* parsed);

// FAILED_PRECONDITION when a sampler that `needs_state` gets a row past
// step 0 without the state returned by the previous step.
absl::Status CheckStateSent(const ParsedRow& row, bool needs_state, const std::string& prefix);

// Fills `result` (whose sequence_id and step the caller sets) with what the
// sampler returned: token, mode, signals, parameters, the new `state` stamped
// with the sampler's name and next_step = step + 1, and the seed used.
void OutputToResult(const RowOutput& output, const ParsedRow& row, const SamplerState& state,
                    sampler::v1::SampleResult* result);

// Signals and SamplingParams to the wire and back (unset optional fields
// stay unset both ways; attention signals are set only with has_attention).
void SignalsToProto(const Signals& signals, sampler::v1::Signals* proto);
Signals SignalsFromProto(const sampler::v1::Signals& proto);
void ParamsToProto(const SamplingParams& params, sampler::v1::SamplingParams* proto);
SamplingParams ParamsFromProto(const sampler::v1::SamplingParams& proto);

// A SampleResult as the sampler's output (a client of samplerd): its in-band
// error as a status (code and message kept), else the token (checked against
// `vocab_size`), mode, signals, params, inserted and logprob. `field` names
// the result in errors ("results[2]").
absl::StatusOr<RowOutput> ResultToOutput(const sampler::v1::SampleResult& result,
                                         int64_t vocab_size, const std::string& field);

// SamplerDescription -> SamplerInfo, `defaults` with every field set.
void DescriptionToInfo(const SamplerDescription& description, sampler::v1::SamplerInfo* info);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_SAMPLER_CONVERT_H_
