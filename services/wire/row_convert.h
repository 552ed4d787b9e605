// sampler.v1 rows, tensors, states and results <-> the sampler library's Row
// and RowResult (sampler/core/row.h), both directions: samplerd decodes the
// rows it is sent and encodes its results; runnerd's remote backend encodes
// the engine's rows and decodes samplerd's results. Together with
// sampler_convert.h (specs, configs, signals, parameters) the one place
// where sampler.v1 messages are converted.
//
// What is checked here is the wire format alone: dtypes, shapes, data
// sizes, shared-memory references, the state's version. A decoded row's
// content (the step's range, the config's ranges, NaN logits, token ids,
// the state continuing its sampler) is checked by ValidateRow, which
// SampleRow runs, so that a row gets the same messages whichever way it
// came. Every error names the field's path ("rows[2].logits.dtype ...");
// `prefix` arguments are that path up to the message ("rows[2]." for a row
// of a batch).
//
// Thread-safety: every function here is a pure function of its arguments
// (a SharedMemoryReader is thread-safe).
#ifndef ENTROSERVE_SERVICES_WIRE_ROW_CONVERT_H_
#define ENTROSERVE_SERVICES_WIRE_ROW_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sampler/core/row.h"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.pb.h"
#include "services/wire/shared_memory.h"

namespace entroserve {

// The version of sampler.v1.SamplerState written here; this one and 0 (a
// state built by hand, with the version left unset) are read.
inline constexpr uint32_t kSamplerStateVersion = 1;

// Decodes `tensor` as logits: dtype known, shape [V] with 0 <= V < 2^31,
// data of exactly V elements. `field` names the tensor ("rows[0].logits").
// The bytes are `data`, or with `shared_memory` set (and `data` empty) read
// through `shm`; a null `shm` makes such a tensor FAILED_PRECONDITION (this
// server reads no shared memory from this client).
absl::Status DecodeLogits(const sampler::v1::Tensor& tensor, const std::string& field,
                          std::vector<float>* logits, SharedMemoryReader* shm = nullptr);

// Decodes `tensor` as attention scores: dtype known, shape [heads, keys]
// with both >= 1, data of exactly heads * keys elements. Bytes as for
// DecodeLogits.
absl::Status DecodeAttention(const sampler::v1::Tensor& tensor, const std::string& field,
                             std::vector<float>* scores, int32_t* heads, int32_t* keys,
                             SharedMemoryReader* shm = nullptr);

// sampler.v1.SamplerState -> SamplerState: the version (0 or 1), then the
// values (CheckStateValues: history tokens in a vocabulary of `vocab_size`,
// finite floats). `field` names the state ("rows[0].state").
absl::StatusOr<SamplerState> StateFromProto(const sampler::v1::SamplerState& proto,
                                            int64_t vocab_size, const std::string& field);

// SamplerState -> sampler.v1.SamplerState at kSamplerStateVersion.
void StateToProto(const SamplerState& state, sampler::v1::SamplerState* proto);

// sampler.v1.AllowedTokens -> a mask of MaskWords(vocab_size) words
// (sampler/core/token_mask.h): a bitmask of exactly ceil(V / 8) bytes, or
// ids ascending without repeats in [0, V) (CheckSortedIds); a message with
// neither allows nothing. Errors name `field` ("rows[0].allowed_tokens").
// Bits past V and a mask allowing nothing are left to ValidateRow.
absl::Status AllowedTokensFromProto(const sampler::v1::AllowedTokens& proto, int64_t vocab_size,
                                    const std::string& field, std::vector<uint64_t>* mask);

// A mask -> sampler.v1.AllowedTokens, in whichever form is smaller on the
// wire: the ids (packed varints) or the bitmask (ceil(V / 8) bytes).
void AllowedTokensToProto(absl::Span<const uint64_t> mask, int64_t vocab_size,
                          sampler::v1::AllowedTokens* proto);

// The row at `prefix` ("rows[3].") as an OwnedRow, its wire format checked
// (not its content: see the header comment). `seed_if_absent` is the seed
// of a row that sent none (the caller picks it at random). Tensors in
// shared memory are read through `shm` (see DecodeLogits).
absl::StatusOr<OwnedRow> DecodeRow(const sampler::v1::SampleRow& row, const std::string& prefix,
                                   uint64_t seed_if_absent, SharedMemoryReader* shm = nullptr);

// The same into `into`, whose vectors keep their storage: a thread that
// decodes row after row into one OwnedRow writes its half-megabyte of
// logits over the last row's, without fresh pages or a zero fill first.
// On an error `into` holds part of the row.
absl::Status DecodeRowInto(const sampler::v1::SampleRow& row, const std::string& prefix,
                           uint64_t seed_if_absent, SharedMemoryReader* shm, OwnedRow* into);

// Bytes of shared memory EncodeRows needs for `rows`' tensors as `dtype`.
uint64_t SharedMemoryBytes(absl::Span<const Row> rows, DType dtype);

// The wire form of `rows`, every field set (the spec with every config
// field, ConfigToSpec), logits and attention as `dtype`: their bytes in
// `data`, or, with a `region` of at least SharedMemoryBytes, written there
// and referenced.
void EncodeRows(absl::Span<const Row> rows, DType dtype, sampler::v1::SampleRequest* request,
                SharedMemoryRegion* region = nullptr);

// Fills `result` with `row`'s ids and what sampling it gave: the in-band
// error of a failed row (then nothing else), else token, mode, signals,
// parameters, inserted, logprob, the new state and the seed.
void EncodeResult(const Row& row, const RowResult& sampled, sampler::v1::SampleResult* result);

// A result from samplerd as a RowResult (a client of samplerd): its in-band
// error as the status (code and message kept), else the token (checked
// against `vocab_size`), mode, signals, parameters, inserted, logprob, the
// state (StateFromProto) and the seed. A malformed result is INTERNAL,
// naming `field` ("results[2]").
RowResult DecodeResult(const sampler::v1::SampleResult& result, int64_t vocab_size,
                       const std::string& field);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_WIRE_ROW_CONVERT_H_
