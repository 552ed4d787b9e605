#include "services/wire/row_convert.h"

#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sampler/base/status_macros.h"
#include "sampler/core/token_mask.h"
#include "services/common/status_util.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;

// Largest dimension of a wire tensor: token ids, heads and keys are int32.
constexpr int64_t kMaxDimension = std::numeric_limits<int32_t>::max();

std::string ShapeString(const v1::Tensor& tensor) {
  return absl::StrCat("[", absl::StrJoin(tensor.shape(), ", "), "]");
}

// The dtype of `tensor`, which must be one this server decodes.
absl::StatusOr<DType> TensorDType(const v1::Tensor& tensor, const std::string& field) {
  const int dtype = tensor.dtype();
  if (dtype == v1::DTYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ".dtype is DTYPE_UNSPECIFIED; set DTYPE_FLOAT32, "
                     "DTYPE_FLOAT16 or DTYPE_BFLOAT16"));
  }
  if (!v1::DType_IsValid(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".dtype is ", dtype,
                     ", not a known dtype; set DTYPE_FLOAT32, DTYPE_FLOAT16 or "
                     "DTYPE_BFLOAT16"));
  }
  return static_cast<DType>(dtype);
}

// Every dimension in [0, kMaxDimension].
absl::Status CheckDimensions(const v1::Tensor& tensor, const std::string& field) {
  for (int i = 0; i < tensor.shape_size(); ++i) {
    const int64_t dim = tensor.shape(i);
    if (dim < 0 || dim > kMaxDimension) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".shape[", i, "] is ", dim, "; dimensions must be in [0, ", kMaxDimension, "]"));
    }
  }
  return absl::OkStatus();
}

// Decodes the `want` bytes of a tensor in shared memory, read through `shm`.
absl::Status DecodeShared(const v1::Tensor& tensor, DType dtype, uint64_t numel, uint64_t want,
                          const std::string& field, std::vector<float>* out,
                          SharedMemoryReader* shm) {
  const std::string ref = absl::StrCat(field, ".shared_memory");
  if (!tensor.data().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has both data (", tensor.data().size(),
                                                   " bytes) and shared_memory; send one"));
  }
  if (shm == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        ref,
        ": this server reads no shared memory from this client (samplerd "
        "--shared_memory=false, or a client not on samplerd's host); send the bytes in "
        "data"));
  }
  // Decoded where they are mapped (no copy); `out` is sized only once the
  // reader has checked that the region holds them.
  return shm->Visit(tensor.shared_memory().region(), tensor.shared_memory().offset(), want, ref,
                    [&](const char* bytes) {
                      out->resize(static_cast<size_t>(numel));
                      DecodeTensorTo(dtype, bytes, static_cast<int64_t>(numel), out->data());
                    });
}

// Decodes a tensor of `numel` elements (at most 2^62, so that the byte count
// fits in a uint64) after checking the data size; its bytes are `data` or,
// with `shared_memory` set, read through `shm`.
absl::Status DecodeChecked(const v1::Tensor& tensor, DType dtype, uint64_t numel,
                           const std::string& field, std::vector<float>* out,
                           SharedMemoryReader* shm) {
  const uint64_t want = numel * static_cast<uint64_t>(ElementSize(dtype));
  if (tensor.has_shared_memory()) return DecodeShared(tensor, dtype, numel, want, field, out, shm);
  if (tensor.data().size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".data has ", tensor.data().size(),
                                                   " bytes, but shape ", ShapeString(tensor),
                                                   " of ", DTypeName(dtype), " needs ", want));
  }
  return DecodeTensor(dtype, tensor.data(), static_cast<int64_t>(numel), field, out);
}

// The state as sent, its version checked; its values are ValidateRow's.
absl::StatusOr<SamplerState> ConvertState(const v1::SamplerState& proto, const std::string& field) {
  if (proto.version() > kSamplerStateVersion) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".version is ", proto.version(),
                                                   "; this server reads versions 0 and ",
                                                   kSamplerStateVersion));
  }
  SamplerState state;
  state.sampler = proto.sampler();
  state.next_step = proto.next_step();
  // Only the newest kMaxRecentTokens matter; PushToken keeps that bound.
  for (int32_t token : proto.recent_tokens()) state.PushToken(token);
  state.alpha_window.assign(proto.alpha_window().begin(), proto.alpha_window().end());
  state.last_inserted = proto.last_inserted();
  if (proto.has_mirostat_mu()) state.mirostat_mu = proto.mirostat_mu();
  return state;
}

SpecialTokens SpecialTokensFromProto(const v1::SpecialTokens& proto) {
  SpecialTokens special;
  if (proto.has_clarifying_question()) special.clarifying_question = proto.clarifying_question();
  if (proto.has_pause()) special.pause = proto.pause();
  if (proto.has_eos()) special.eos = proto.eos();
  return special;
}

void SpecialTokensToProto(const SpecialTokens& special, v1::SpecialTokens* proto) {
  if (special.clarifying_question) proto->set_clarifying_question(*special.clarifying_question);
  if (special.pause) proto->set_pause(*special.pause);
  if (special.eos) proto->set_eos(*special.eos);
}

v1::DType WireDType(DType dtype) { return static_cast<v1::DType>(static_cast<int>(dtype)); }

// Bytes a tensor of `n` values takes in a shared-memory region: tensors
// start on cache-line boundaries.
uint64_t SlotBytes(size_t n, DType dtype) {
  const uint64_t bytes = n * static_cast<uint64_t>(ElementSize(dtype));
  return (bytes + 63) / 64 * 64;
}

// `tensor` of `shape` (`n` values) as `dtype`, which `encode` writes (room
// for n elements): into `data`, or into `region` at *offset (then
// advanced) and referenced.
void EncodeTensorField(DType dtype, std::initializer_list<int64_t> shape, size_t n,
                       absl::FunctionRef<void(char*)> encode, SharedMemoryRegion* region,
                       uint64_t* offset, v1::Tensor* tensor) {
  tensor->set_dtype(WireDType(dtype));
  for (int64_t dim : shape) tensor->add_shape(dim);
  if (region == nullptr) {
    std::string* data = tensor->mutable_data();
    data->resize(n * static_cast<size_t>(ElementSize(dtype)));
    encode(data->data());
    return;
  }
  encode(region->data() + *offset);
  v1::SharedMemoryRef* ref = tensor->mutable_shared_memory();
  ref->set_region(region->name());
  ref->set_offset(*offset);
  *offset += SlotBytes(n, dtype);
}

// The row's logits as `dtype` at `out`. Logits that came as bfloat16 bits
// go into a bfloat16 tensor as they are (the bytes their widened values
// would encode to) and into a float32 one widened; float16 rounds them.
void EncodeLogitsTo(const Row& row, DType dtype, char* out) {
  const absl::Span<const uint16_t> bits = row.logits_bf16;
  if (!bits.empty() && dtype == DType::kBFloat16) {
    std::memcpy(out, bits.data(), bits.size() * sizeof(uint16_t));
  } else if (!bits.empty() && dtype == DType::kFloat32) {
    DecodeTensorTo(DType::kBFloat16, reinterpret_cast<const char*>(bits.data()),
                   static_cast<int64_t>(bits.size()), reinterpret_cast<float*>(out));
  } else {
    std::vector<float> widened;
    EncodeTensorTo(dtype, FloatLogits(row, &widened), out);
  }
}

void EncodeRow(const Row& row, DType dtype, SharedMemoryRegion* region, uint64_t* offset,
               v1::SampleRow* out) {
  out->set_sequence_id(row.sequence_id);
  out->set_step(row.step);
  ConfigToSpec(row.config, out->mutable_spec());
  out->set_seed(row.seed);
  if (!row.state.empty()) StateToProto(row.state, out->mutable_state());
  const int64_t vocab = row.vocab_size();
  EncodeTensorField(
      dtype, {vocab}, static_cast<size_t>(vocab), [&](char* at) { EncodeLogitsTo(row, dtype, at); },
      region, offset, out->mutable_logits());
  if (!row.attention.empty()) {
    EncodeTensorField(
        dtype, {row.heads, row.keys}, row.attention.size(),
        [&](char* at) { EncodeTensorTo(dtype, row.attention, at); }, region, offset,
        out->mutable_attention());
  }
  SpecialTokensToProto(row.special_tokens, out->mutable_special_tokens());
  out->mutable_appended_tokens()->Add(row.appended_tokens.begin(), row.appended_tokens.end());
  out->set_top_logprobs(row.top_logprobs);
  if (!row.allowed_tokens.empty()) {
    AllowedTokensToProto(row.allowed_tokens, row.vocab_size(), out->mutable_allowed_tokens());
  }
}

// The result's token, mode and outputs, checked (see DecodeResult).
absl::Status DecodeOutput(const v1::SampleResult& result, int64_t vocab_size,
                          const std::string& field, RowOutput* output) {
  if (result.token_id() < 0 || result.token_id() >= vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".token_id is ", result.token_id(),
                                                   ", outside the vocabulary [0, ", vocab_size,
                                                   ")"));
  }
  const int mode = result.mode();
  if (mode < static_cast<int>(Mode::kGreedy) || mode > static_cast<int>(Mode::kAlpha)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".mode is ", mode, ", not a known mode"));
  }
  output->token = result.token_id();
  output->mode = static_cast<Mode>(mode);
  output->signals = SignalsFromProto(result.signals());
  output->params = ParamsFromProto(result.params());
  output->inserted = result.inserted();
  output->logprob = result.logprob();
  for (int i = 0; i < result.top_logprobs_size(); ++i) {
    const v1::TokenLogprob& top = result.top_logprobs(i);
    if (top.token_id() < 0 || top.token_id() >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".top_logprobs[", i, "].token_id is ", top.token_id(),
                       ", outside the vocabulary [0, ", vocab_size, ")"));
    }
    output->top_logprobs.push_back({top.token_id(), top.logprob()});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeLogits(const v1::Tensor& tensor, const std::string& field,
                          std::vector<float>* logits, SharedMemoryReader* shm) {
  ASSIGN_OR_RETURN(const DType dtype, TensorDType(tensor, field));
  if (tensor.shape_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must have shape [V], got ", ShapeString(tensor)));
  }
  RETURN_IF_ERROR(CheckDimensions(tensor, field));
  return DecodeChecked(tensor, dtype, tensor.shape(0), field, logits, shm);
}

absl::Status DecodeAttention(const v1::Tensor& tensor, const std::string& field,
                             std::vector<float>* scores, int32_t* heads, int32_t* keys,
                             SharedMemoryReader* shm) {
  ASSIGN_OR_RETURN(const DType dtype, TensorDType(tensor, field));
  if (tensor.shape_size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(field,
                                                   " must have shape [heads, keys], got rank ",
                                                   tensor.shape_size(), " ", ShapeString(tensor)));
  }
  RETURN_IF_ERROR(CheckDimensions(tensor, field));
  if (tensor.shape(0) == 0 || tensor.shape(1) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must have shape [heads, keys] with both >= 1, got ", ShapeString(tensor)));
  }
  const uint64_t numel =
      static_cast<uint64_t>(tensor.shape(0)) * static_cast<uint64_t>(tensor.shape(1));
  RETURN_IF_ERROR(DecodeChecked(tensor, dtype, numel, field, scores, shm));
  *heads = static_cast<int32_t>(tensor.shape(0));
  *keys = static_cast<int32_t>(tensor.shape(1));
  return absl::OkStatus();
}

absl::StatusOr<SamplerState> StateFromProto(const v1::SamplerState& proto, int64_t vocab_size,
                                            const std::string& field) {
  ASSIGN_OR_RETURN(SamplerState state, ConvertState(proto, field));
  RETURN_IF_ERROR(CheckStateValues(state, vocab_size, field));
  return state;
}

void StateToProto(const SamplerState& state, v1::SamplerState* proto) {
  proto->Clear();
  proto->set_version(kSamplerStateVersion);
  proto->set_sampler(state.sampler);
  proto->set_next_step(state.next_step);
  proto->mutable_recent_tokens()->Add(state.recent_tokens.begin(), state.recent_tokens.end());
  proto->mutable_alpha_window()->Add(state.alpha_window.begin(), state.alpha_window.end());
  proto->set_last_inserted(state.last_inserted);
  if (state.mirostat_mu.has_value()) proto->set_mirostat_mu(*state.mirostat_mu);
}

absl::Status AllowedTokensFromProto(const v1::AllowedTokens& proto, int64_t vocab_size,
                                    const std::string& field, std::vector<uint64_t>* mask) {
  mask->assign(MaskWords(vocab_size), 0);
  if (proto.has_ids()) {
    const auto& ids = proto.ids().ids();
    RETURN_IF_ERROR(CheckSortedIds(ids, vocab_size, absl::StrCat(field, ".ids.ids")));
    *mask = MaskFromIds(ids, vocab_size);
    return absl::OkStatus();
  }
  const std::string& bytes = proto.bitmask();  // empty when neither is set
  const size_t want = static_cast<size_t>((vocab_size + 7) / 8);
  if (proto.has_bitmask() && bytes.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".bitmask has ", bytes.size(),
                                                   " bytes; a vocabulary of ", vocab_size,
                                                   " tokens takes ", want));
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    (*mask)[i / 8] |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * (i % 8));
  }
  return absl::OkStatus();
}

void AllowedTokensToProto(absl::Span<const uint64_t> mask, int64_t vocab_size,
                          v1::AllowedTokens* proto) {
  const std::vector<int32_t> ids = MaskIds(mask);
  size_t id_bytes = 0;  // packed varints: 7 bits a byte
  for (int32_t id : ids)
    id_bytes += id < (1 << 7) ? 1 : id < (1 << 14) ? 2 : id < (1 << 21) ? 3 : 4;
  const size_t mask_bytes = static_cast<size_t>((vocab_size + 7) / 8);
  if (id_bytes < mask_bytes) {
    proto->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    return;
  }
  std::string* bytes = proto->mutable_bitmask();
  bytes->assign(mask_bytes, '\0');
  for (size_t i = 0; i < mask_bytes; ++i) {
    (*bytes)[i] = static_cast<char>(mask[i / 8] >> (8 * (i % 8)) & 0xFF);
  }
}

absl::StatusOr<OwnedRow> DecodeRow(const v1::SampleRow& row, const std::string& prefix,
                                   uint64_t seed_if_absent, SharedMemoryReader* shm) {
  OwnedRow owned;
  RETURN_IF_ERROR(DecodeRowInto(row, prefix, seed_if_absent, shm, &owned));
  return owned;
}

absl::Status DecodeRowInto(const v1::SampleRow& row, const std::string& prefix,
                           uint64_t seed_if_absent, SharedMemoryReader* shm, OwnedRow* into) {
  OwnedRow& owned = *into;
  owned.row = Row();
  Row& out = owned.row;
  out.sequence_id = row.sequence_id();
  out.step = row.step();
  ASSIGN_OR_RETURN(out.config, SpecToConfig(row.spec(), prefix));
  if (!row.has_logits()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "logits is required"));
  }
  RETURN_IF_ERROR(DecodeLogits(row.logits(), absl::StrCat(prefix, "logits"), &owned.logits, shm));
  if (row.has_attention()) {
    RETURN_IF_ERROR(DecodeAttention(row.attention(), absl::StrCat(prefix, "attention"),
                                    &owned.attention, &out.heads, &out.keys, shm));
  } else {
    owned.attention.clear();
  }
  out.special_tokens = SpecialTokensFromProto(row.special_tokens());
  ASSIGN_OR_RETURN(out.state, ConvertState(row.state(), absl::StrCat(prefix, "state")));
  owned.appended_tokens.assign(row.appended_tokens().begin(), row.appended_tokens().end());
  out.seed = row.has_seed() ? row.seed() : seed_if_absent;
  out.top_logprobs = row.top_logprobs();
  if (row.has_allowed_tokens()) {
    RETURN_IF_ERROR(
        AllowedTokensFromProto(row.allowed_tokens(), static_cast<int64_t>(owned.logits.size()),
                               absl::StrCat(prefix, "allowed_tokens"), &owned.allowed_tokens));
  } else {
    owned.allowed_tokens.clear();
  }
  owned.Bind();
  return absl::OkStatus();
}

uint64_t SharedMemoryBytes(absl::Span<const Row> rows, DType dtype) {
  uint64_t bytes = 0;
  for (const Row& row : rows) {
    bytes += SlotBytes(static_cast<size_t>(row.vocab_size()), dtype) +
             SlotBytes(row.attention.size(), dtype);
  }
  return bytes;
}

void EncodeRows(absl::Span<const Row> rows, DType dtype, v1::SampleRequest* request,
                SharedMemoryRegion* region) {
  uint64_t offset = 0;
  request->Clear();
  request->mutable_rows()->Reserve(static_cast<int>(rows.size()));
  for (const Row& row : rows) EncodeRow(row, dtype, region, &offset, request->add_rows());
}

void EncodeResult(const Row& row, const RowResult& sampled, v1::SampleResult* result) {
  result->Clear();
  result->set_sequence_id(row.sequence_id);
  result->set_step(row.step);
  if (!sampled.status.ok()) {
    SetRowError(sampled.status, result->mutable_error());
    return;
  }
  const RowOutput& output = sampled.output;
  result->set_token_id(output.token);
  result->set_mode(static_cast<v1::Mode>(static_cast<int>(output.mode)));
  SignalsToProto(output.signals, result->mutable_signals());
  ParamsToProto(output.params, result->mutable_params());
  result->set_inserted(output.inserted);
  result->set_logprob(output.logprob);
  for (const TokenLogprob& top : output.top_logprobs) {
    v1::TokenLogprob* proto = result->add_top_logprobs();
    proto->set_token_id(top.token);
    proto->set_logprob(top.logprob);
  }
  StateToProto(sampled.state, result->mutable_state());
  result->set_seed(sampled.seed);
}

RowResult DecodeResult(const v1::SampleResult& result, int64_t vocab_size,
                       const std::string& field) {
  RowResult decoded;
  if (result.has_error()) {
    decoded.status = absl::Status(static_cast<absl::StatusCode>(result.error().code()),
                                  result.error().message());
    return decoded;
  }
  decoded.status = DecodeOutput(result, vocab_size, field, &decoded.output);
  if (!decoded.status.ok()) return decoded;
  absl::StatusOr<SamplerState> state =
      StateFromProto(result.state(), vocab_size, absl::StrCat(field, ".state"));
  if (!state.ok()) {
    decoded.status = absl::InternalError(
        absl::StrCat("samplerd returned a bad state: ", state.status().message()));
    return decoded;
  }
  decoded.state = *std::move(state);
  decoded.seed = result.seed();
  return decoded;
}

}  // namespace entroserve
