// SamplerConfig <-> the oneof `config` of sampler.v1.SamplerSpec, generic
// over the config tables of sampler/core/configs.h: the config whose kName is
// "entropix" is the oneof member `entropix`, and each row of its table is the
// field of sampler.v1.EntropixConfig with the row's name, read and written
// through protobuf reflection. Adding a sampler or a field therefore changes
// nothing here; ConfigProtoMismatches (run by
// tests/services/wire/config_reflection_test.cc) checks that the tables and
// the proto agree.
//
// Field types: float <-> optional float, int32_t <-> optional int32, bool <->
// optional bool, TokenIdList <-> repeated int32, LogitBias <-> map<int32,
// float>, StageList <-> repeated string. An unset optional field keeps the table's default.
//
// Thread-safety: pure functions (the field lookups are built once, on first
// use, thread-safely).
#ifndef ENTROSERVE_SERVICES_WIRE_CONFIG_REFLECTION_H_
#define ENTROSERVE_SERVICES_WIRE_CONFIG_REFLECTION_H_

#include <string>
#include <vector>

#include "sampler/core/configs.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

// The config `spec`'s oneof holds, unset fields at their defaults; the
// caller checked that one is set (GreedyConfig otherwise). Not validated.
SamplerConfig ConfigFromSpecOneof(const sampler::v1::SamplerSpec& spec);

// Sets the oneof member of `spec` that matches `config`, with every field
// set (scalars always, even at their defaults).
void ConfigToSpecOneof(const SamplerConfig& config, sampler::v1::SamplerSpec* spec);

// Every disagreement between the config tables and sampler.v1, one line
// each ("entropix.top_k: table int32_t, proto float"): a table without a
// oneof member of its name, a row without a proto field, a proto field
// without a row, a type that differs, a scalar without presence (`optional`),
// a oneof member without a table. Empty when they agree.
std::vector<std::string> ConfigProtoMismatches();

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_CONFIG_REFLECTION_H_
