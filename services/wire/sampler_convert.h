// sampler.v1 specs, configs, signals, parameters and sampler descriptions
// <-> the sampler library's types, both directions. With row_convert.h (rows,
// tensors, states, results) the one place where sampler.v1 messages are
// converted; configs are range-checked here as they arrive (Validate()).
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
#include "sampler/core/row.h"
#include "sampler/core/types.h"
#include "sampler/registry.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

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

// Fills `spec` with the sampler's name and its config with EVERY field set
// (ListSamplers' defaults, clients echoing a config).
void ConfigToSpec(const SamplerConfig& config, sampler::v1::SamplerSpec* spec);

// Signals and SamplingParams to the wire and back (unset optional fields
// stay unset both ways; attention signals are set only with has_attention).
void SignalsToProto(const Signals& signals, sampler::v1::Signals* proto);
Signals SignalsFromProto(const sampler::v1::Signals& proto);
void ParamsToProto(const SamplingParams& params, sampler::v1::SamplingParams* proto);
SamplingParams ParamsFromProto(const sampler::v1::SamplingParams& proto);

// SamplerDescription -> SamplerInfo, `defaults` with every field set.
void DescriptionToInfo(const SamplerDescription& description, sampler::v1::SamplerInfo* info);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_SAMPLER_CONVERT_H_
