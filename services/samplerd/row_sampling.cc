#include "services/samplerd/row_sampling.h"

#include <exception>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sampler/base/seed.h"
#include "sampler/registry.h"
#include "sampler/core/sampler.h"
#include "services/wire/sampler_convert.h"
#include "services/common/status_util.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

absl::Status SampleWireRow(const v1::SampleRow& row, const std::string& prefix,
                           v1::SampleResult* result, SharedMemoryReader* shm) {
  ParsedRow parsed;
  const uint64_t seed_if_absent = row.has_seed() ? 0 : PickSeed();
  if (absl::Status s = ParseRow(row, prefix, seed_if_absent, &parsed, shm); !s.ok()) return s;
  SamplerState state;
  absl::StatusOr<RowOutput> output = SampleParsedRow(parsed, prefix, &state);
  if (!output.ok()) return output.status();
  OutputToResult(*output, parsed, state, result);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RowOutput> SampleParsedRow(const ParsedRow& parsed, const std::string& prefix,
                                          SamplerState* state) {
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = CreateSampler(parsed.config);
  if (!sampler.ok()) {
    return absl::Status(sampler.status().code(),
                        absl::StrCat(prefix, "spec: ", sampler.status().message()));
  }
  if (absl::Status s = CheckStateSent(parsed, (*sampler)->NeedsState(), prefix); !s.ok()) {
    return s;
  }
  *state = parsed.state;
  absl::StatusOr<RowOutput> output = (*sampler)->Sample(parsed.input(), *state);
  if (!output.ok()) {
    return absl::Status(
        output.status().code(),
        absl::StrCat(prefix, "sampler ", parsed.sampler_name, ": ", output.status().message()));
  }
  const int64_t vocab_size = static_cast<int64_t>(parsed.logits.size());
  if (output->token < 0 || output->token >= vocab_size) {
    return absl::InternalError(absl::StrCat(prefix, "sampler ", parsed.sampler_name,
                                            " returned token ", output->token,
                                            ", outside the vocabulary [0, ", vocab_size, ")"));
  }
  state->sampler = parsed.sampler_name;
  state->next_step = parsed.step + 1;
  return output;
}

std::string RowPrefix(int index) { return absl::StrCat("rows[", index, "]."); }

void SetRowFailure(const v1::SampleRow& row, const absl::Status& status, v1::SampleResult* result) {
  result->Clear();
  result->set_sequence_id(row.sequence_id());
  result->set_step(row.step());
  SetRowError(status, result->mutable_error());
}

void SampleOneRow(const v1::SampleRow& row, int index, v1::SampleResult* result,
                  SharedMemoryReader* shm) {
  const std::string prefix = RowPrefix(index);
  absl::Status status;
  try {
    result->Clear();
    result->set_sequence_id(row.sequence_id());
    result->set_step(row.step());
    status = SampleWireRow(row, prefix, result, shm);
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat(prefix, "internal error: ", e.what()));
  } catch (...) {
    status = absl::InternalError(absl::StrCat(prefix, "internal error"));
  }
  if (!status.ok()) SetRowFailure(row, status, result);
}

}  // namespace entroserve
