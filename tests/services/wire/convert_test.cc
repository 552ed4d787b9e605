// The edge of the sampler service (services/wire/sampler_convert.h,
// services/wire/row_convert.h, services/samplerd/row_sampling.h,
// services/common/status_util.h): every validation message names the field
// and the value it got, whether the wire decoding or the row's validation
// (sampler/core/row.h) finds it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "sampler/core/tensor.h"
#include "sampler/core/token_mask.h"
#include "sampler/registry.h"
#include "services/common/status_util.h"
#include "services/samplerd/row_sampling.h"
#include "services/wire/row_convert.h"
#include "services/wire/sampler_convert.h"
#include "services/wire/shared_memory.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;
using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

v1::Tensor Float32Tensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  v1::Tensor t;
  t.set_dtype(v1::DTYPE_FLOAT32);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(EncodeTensor(DType::kFloat32, values));
  return t;
}

// A valid row: greedy over 8 tokens.
v1::SampleRow GoodRow() {
  v1::SampleRow row;
  row.set_sequence_id("seq");
  row.set_step(0);
  row.mutable_spec()->set_name("greedy");
  row.set_seed(7);
  *row.mutable_logits() = Float32Tensor({8}, {0, 1, 2, 3, 4, 5, 6, 7});
  return row;
}

// What samplerd makes of `row` (as `prefix`) before sampling it: the wire
// decoding, then the row's validation. The decoded row in *parsed.
absl::Status Parse(const v1::SampleRow& row, OwnedRow* parsed = nullptr,
                   const std::string& prefix = "rows[0].") {
  absl::StatusOr<OwnedRow> decoded = DecodeRow(row, prefix, 0);
  if (!decoded.ok()) return decoded.status();
  absl::Status valid = ValidateRow(decoded->row, prefix);
  if (parsed != nullptr) *parsed = *std::move(decoded);
  return valid;
}

// Parse of a valid row whose logits are `logits`.
absl::Status ParseLogits(const v1::Tensor& logits, const std::string& prefix = "rows[0].") {
  v1::SampleRow row = GoodRow();
  *row.mutable_logits() = logits;
  return Parse(row, nullptr, prefix);
}

MATCHER_P2(StatusIs, code, message, "") {
  *result_listener << "status " << arg;
  return arg.code() == code && arg.message() == message;
}
MATCHER_P2(StatusHas, code, fragment, "") {
  *result_listener << "status " << arg;
  return arg.code() == code && std::string(arg.message()).find(fragment) != std::string::npos;
}

// ---------------------------------------------------------------------------
// SamplerSpec -> SamplerConfig

TEST(SpecToConfigTest, NameAloneGivesThatSamplersDefaults) {
  v1::SamplerSpec spec;
  spec.set_name("entropix");
  absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(std::holds_alternative<EntropixConfig>(*config));
  EXPECT_EQ(std::get<EntropixConfig>(*config).temperature, EntropixConfig().temperature);
  EXPECT_EQ(std::get<EntropixConfig>(*config).top_k, 27);
}

TEST(SpecToConfigTest, ConfigAloneSelectsItsSamplerAndUnsetFieldsKeepDefaults) {
  v1::SamplerSpec spec;
  spec.mutable_chain()->set_top_k(40);
  spec.mutable_chain()->set_temperature(0.5f);
  absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(std::holds_alternative<ChainConfig>(*config));
  const ChainConfig& chain = std::get<ChainConfig>(*config);
  EXPECT_EQ(chain.top_k, 40);
  EXPECT_EQ(chain.temperature, 0.5f);
  EXPECT_EQ(chain.top_p, ChainConfig().top_p);
  EXPECT_EQ(chain.penalty_last_n, 64);
}

TEST(SpecToConfigTest, ExplicitZeroIsKeptNotTakenForUnset) {
  v1::SamplerSpec spec;
  spec.mutable_entropix()->set_top_k(0);  // default 27; 0 is a value here
  spec.mutable_entropix()->set_min_p(0.0f);
  absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
  // Whether 0 is valid is the config's business; if it is, it must be kept.
  if (config.ok()) {
    EXPECT_EQ(std::get<EntropixConfig>(*config).top_k, 0);
    EXPECT_EQ(std::get<EntropixConfig>(*config).min_p, 0.0f);
  } else {
    EXPECT_THAT(std::string(config.status().message()), HasSubstr("got 0"));
  }
}

TEST(SpecToConfigTest, NameAndConfigThatAgreeAreAccepted) {
  v1::SamplerSpec spec;
  spec.set_name("alpha");
  spec.mutable_alpha()->set_window(3);
  absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(std::get<AlphaConfig>(*config).window, 3);
}

TEST(SpecToConfigTest, NameAndConfigThatDisagreeNameBoth) {
  v1::SamplerSpec spec;
  spec.set_name("alpha");
  spec.mutable_entropix();
  EXPECT_THAT(SpecToConfig(spec, "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "spec.name is \"alpha\" but spec.config is entropix"));
  EXPECT_THAT(SpecToConfig(spec, "rows[1].").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[1].spec.name is \"alpha\" but spec.config is entropix"));
}

TEST(SpecToConfigTest, NeitherNameNorConfigIsInvalidArgument) {
  EXPECT_THAT(SpecToConfig(v1::SamplerSpec(), "rows[0].").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].spec: sampler name or config is required"));
}

TEST(SpecToConfigTest, UnknownNameNamesTheFieldAndTheValue) {
  v1::SamplerSpec spec;
  spec.set_name("nucleus9000");
  absl::Status status = SpecToConfig(spec, "rows[4].").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), testing::StartsWith("rows[4].spec.name: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"nucleus9000\""));
  EXPECT_THAT(std::string(status.message()), HasSubstr("entropix"));  // lists known names
}

TEST(SpecToConfigTest, OutOfRangeFieldsArePrefixedWithTheRowPath) {
  v1::SamplerSpec spec;
  spec.mutable_chain()->set_temperature(-1.0f);
  EXPECT_THAT(SpecToConfig(spec, "rows[2].").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[2].spec.chain.temperature must be > 0, got -1"));

  v1::SamplerSpec xtc;
  xtc.mutable_xtc()->set_probability(1.5f);
  EXPECT_THAT(SpecToConfig(xtc, "rows[0].").status(),
              StatusHas(absl::StatusCode::kInvalidArgument,
                        "rows[0].spec.xtc.probability must be in [0, 1], got 1.5"));

  v1::SamplerSpec mirostat;
  mirostat.mutable_mirostat_v2()->set_tau(0.0f);
  EXPECT_THAT(SpecToConfig(mirostat, "rows[3].").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[3].spec.mirostat_v2.tau must be > 0, got 0"));
}

TEST(SpecToConfigTest, EntropixAndAlphaRangesAreCheckedToo) {
  v1::SamplerSpec entropix;
  entropix.mutable_entropix()->set_temperature(-1.0f);
  absl::Status status = SpecToConfig(entropix, "rows[2].").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              testing::StartsWith("rows[2].spec.entropix.temperature"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("-1"));

  v1::SamplerSpec alpha;
  alpha.mutable_alpha()->set_window(0);
  status = SpecToConfig(alpha, "rows[0].").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), testing::StartsWith("rows[0].spec.alpha.window"));
}

// Candidate values near `value` for a perturbation that stays in range.
std::vector<float> FloatNeighbours(float value) {
  return {value * 1.03125f, value * 0.96875f, value + 0.5f, value - 0.03125f, 0.5f};
}

// For every scalar field of every config: a spec that differs from the
// defaults in that field alone converts to a config and back to the same
// spec. Catches a field missing from either direction's field list.
TEST(ConfigToSpecTest, EveryFieldOfEveryConfigSurvivesARoundTrip) {
  int fields_checked = 0;
  for (const SamplerDescription& description : ListSamplers()) {
    v1::SamplerSpec defaults;
    ConfigToSpec(description.defaults, &defaults);
    const FieldDescriptor* member =
        v1::SamplerSpec::descriptor()->FindFieldByNumber(defaults.config_case());
    ASSERT_NE(member, nullptr) << description.name;
    const Descriptor* d = member->message_type();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) continue;
      SCOPED_TRACE(f->full_name());
      // Values to try, all different from the default.
      std::vector<v1::SamplerSpec> candidates;
      auto candidate = [&](auto set) {
        v1::SamplerSpec spec = defaults;
        Message* config = spec.GetReflection()->MutableMessage(&spec, member);
        set(config->GetReflection(), config);
        candidates.push_back(spec);
      };
      const Message& base = defaults.GetReflection()->GetMessage(defaults, member);
      const Reflection* r = base.GetReflection();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_FLOAT:
          for (float v : FloatNeighbours(r->GetFloat(base, f))) {
            if (v == r->GetFloat(base, f)) continue;
            candidate([&](const Reflection* cr, Message* m) { cr->SetFloat(m, f, v); });
          }
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          for (int32_t delta : {1, -1, 2}) {
            const int32_t v = r->GetInt32(base, f) + delta;
            candidate([&](const Reflection* cr, Message* m) { cr->SetInt32(m, f, v); });
          }
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          candidate(
              [&](const Reflection* cr, Message* m) { cr->SetBool(m, f, !r->GetBool(base, f)); });
          break;
        default:
          FAIL() << "unexpected field type";
      }
      bool any_valid = false;
      for (const v1::SamplerSpec& spec : candidates) {
        absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
        if (!config.ok()) continue;
        any_valid = true;
        v1::SamplerSpec back;
        ConfigToSpec(*config, &back);
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(spec, back))
            << "sent " << spec.ShortDebugString() << "\ngot  " << back.ShortDebugString();
        ++fields_checked;
        break;
      }
      EXPECT_TRUE(any_valid) << "no valid value near the default to try";
    }
  }
  // 23 chain + 40 entropix + 32 alpha + 3 + 3 + 2 + 4 + 5 scalar fields.
  EXPECT_EQ(fields_checked, 112);
}

TEST(ConfigToSpecTest, RepeatedAndMapFieldsSurviveARoundTrip) {
  v1::SamplerSpec chain;
  (*chain.mutable_chain()->mutable_logit_bias())[3] = -2.5f;
  (*chain.mutable_chain()->mutable_logit_bias())[9] = 1.0f;
  absl::StatusOr<SamplerConfig> config = SpecToConfig(chain, "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(std::get<ChainConfig>(*config).logit_bias,
            (std::map<int32_t, float>{{3, -2.5f}, {9, 1.0f}}));
  v1::SamplerSpec back;
  ConfigToSpec(*config, &back);
  EXPECT_EQ(back.chain().logit_bias().size(), 2u);
  EXPECT_EQ(back.chain().logit_bias().at(3), -2.5f);

  v1::SamplerSpec dry;
  dry.mutable_dry()->add_sequence_breaker_ids(11);
  dry.mutable_dry()->add_sequence_breaker_ids(4);
  config = SpecToConfig(dry, "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(std::get<DryConfig>(*config).sequence_breaker_ids, (std::vector<int32_t>{11, 4}));
  ConfigToSpec(*config, &back);
  EXPECT_THAT(back.dry().sequence_breaker_ids(), testing::ElementsAre(11, 4));
}

TEST(ConfigToSpecTest, DefaultsHaveEveryFieldSetAndMatchTheirName) {
  for (const SamplerDescription& description : ListSamplers()) {
    SCOPED_TRACE(description.name);
    v1::SamplerInfo info;
    DescriptionToInfo(description, &info);
    EXPECT_EQ(info.name(), description.name);
    EXPECT_EQ(info.defaults().name(), description.name);
    ASSERT_NE(info.defaults().config_case(), v1::SamplerSpec::CONFIG_NOT_SET);
    const FieldDescriptor* member =
        v1::SamplerSpec::descriptor()->FindFieldByNumber(info.defaults().config_case());
    EXPECT_EQ(member->name(), description.name);
    const Message& config = info.defaults().GetReflection()->GetMessage(info.defaults(), member);
    const Descriptor* d = config.GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->is_repeated()) continue;  // logit_bias, sequence_breaker_ids
      EXPECT_TRUE(config.GetReflection()->HasField(config, f)) << f->full_name() << " unset";
    }
    // And they convert back to the same config.
    absl::StatusOr<SamplerConfig> back = SpecToConfig(info.defaults(), "");
    ASSERT_TRUE(back.ok()) << back.status();
    v1::SamplerSpec again;
    ConfigToSpec(*back, &again);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(again, info.defaults()));
  }
}

TEST(ConfigToSpecTest, NonDefaultValuesSurviveSpecToConfig) {
  v1::SamplerSpec spec;
  v1::EntropixConfig* e = spec.mutable_entropix();
  e->set_temperature(0.9f);
  e->set_adaptive_samples(3);
  e->set_attn_varentropy_is_spread(true);
  e->set_explore_min_top_k(7);
  absl::StatusOr<SamplerConfig> config = SpecToConfig(spec, "");
  ASSERT_TRUE(config.ok()) << config.status();
  v1::SamplerSpec back;
  ConfigToSpec(*config, &back);
  EXPECT_EQ(back.name(), "entropix");
  EXPECT_EQ(back.entropix().temperature(), 0.9f);
  EXPECT_EQ(back.entropix().adaptive_samples(), 3);
  EXPECT_TRUE(back.entropix().attn_varentropy_is_spread());
  EXPECT_EQ(back.entropix().explore_min_top_k(), 7);
  EXPECT_EQ(back.entropix().top_k(), 27);  // default filled in
}

// ---------------------------------------------------------------------------
// Tensors

TEST(DecodeLogitsTest, DecodesEveryDtype) {
  const std::vector<float> values = {0.5f, -2.0f, -kInf, 3.0f};
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    v1::Tensor t;
    t.set_dtype(static_cast<v1::DType>(dtype));
    t.add_shape(4);
    t.set_data(EncodeTensor(dtype, values));
    std::vector<float> out;
    ASSERT_TRUE(DecodeLogits(t, "rows[0].logits", &out).ok()) << DTypeName(dtype);
    EXPECT_EQ(out, values) << DTypeName(dtype);  // exactly representable in all three
  }
}

TEST(DecodeLogitsTest, UnspecifiedDtypeNamesTheField) {
  v1::Tensor t = Float32Tensor({2}, {1, 2});
  t.set_dtype(v1::DTYPE_UNSPECIFIED);
  std::vector<float> out;
  EXPECT_THAT(
      DecodeLogits(t, "rows[0].logits", &out),
      StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].logits.dtype is DTYPE_UNSPECIFIED"));
}

TEST(DecodeLogitsTest, UnknownDtypeNamesTheFieldAndValue) {
  v1::Tensor t = Float32Tensor({2}, {1, 2});
  t.set_dtype(static_cast<v1::DType>(9));
  std::vector<float> out;
  EXPECT_THAT(DecodeLogits(t, "rows[0].logits", &out),
              StatusHas(absl::StatusCode::kInvalidArgument,
                        "rows[0].logits.dtype is 9, not a known dtype"));
}

TEST(DecodeLogitsTest, RankOtherThanOneIsRejectedWithTheShape) {
  std::vector<float> out;
  EXPECT_THAT(
      DecodeLogits(Float32Tensor({2, 3}, std::vector<float>(6, 0.0f)), "rows[0].logits", &out),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "rows[0].logits must have shape [V], got [2, 3]"));
  EXPECT_THAT(
      DecodeLogits(Float32Tensor({}, {1.0f}), "rows[0].logits", &out),
      StatusIs(absl::StatusCode::kInvalidArgument, "rows[0].logits must have shape [V], got []"));
}

TEST(DecodeLogitsTest, EmptyLogitsAreRejected) {
  EXPECT_THAT(ParseLogits(Float32Tensor({0}, {}), "rows[5]."),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[5].logits is empty: shape [0], but V must be >= 1"));
}

TEST(DecodeLogitsTest, NegativeOrHugeDimensionIsRejected) {
  std::vector<float> out;
  v1::Tensor t = Float32Tensor({-3}, {});
  EXPECT_THAT(DecodeLogits(t, "rows[0].logits", &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].logits.shape[0] is -3; dimensions must be in [0, 2147483647]"));
  t.set_shape(0, int64_t{1} << 40);
  EXPECT_THAT(
      DecodeLogits(t, "rows[0].logits", &out),
      StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].logits.shape[0] is 1099511627776"));
}

TEST(DecodeLogitsTest, DataSizeNotMatchingShapeNamesBothSizes) {
  v1::Tensor t = Float32Tensor({3}, {1, 2, 3});
  t.mutable_data()->pop_back();
  std::vector<float> out;
  EXPECT_THAT(DecodeLogits(t, "rows[1].logits", &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[1].logits.data has 11 bytes, but shape [3] of FLOAT32 needs 12"));
  v1::Tensor half = t;
  half.set_dtype(v1::DTYPE_BFLOAT16);
  half.set_data(std::string(4, '\0'));
  EXPECT_THAT(DecodeLogits(half, "rows[1].logits", &out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[1].logits.data has 4 bytes, but shape [3] of BFLOAT16 needs 6"));
}

TEST(DecodeLogitsTest, NaNAndPlusInfAreRejectedWithTheirIndex) {
  absl::Status nan = ParseLogits(Float32Tensor({3}, {1, kNaN, 2}));
  EXPECT_THAT(nan, StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].logits[1] is NaN"));
  absl::Status inf = ParseLogits(Float32Tensor({3}, {1, 2, kInf}));
  EXPECT_THAT(inf, StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].logits[2] is +inf"));
}

TEST(DecodeLogitsTest, MinusInfMasksButAllMaskedIsRejected) {
  EXPECT_TRUE(ParseLogits(Float32Tensor({2}, {-kInf, 0})).ok());
  EXPECT_THAT(ParseLogits(Float32Tensor({2}, {-kInf, -kInf})),
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].logits has no finite value"));
}

TEST(DecodeAttentionTest, DecodesHeadsAndKeys) {
  std::vector<float> out;
  int32_t heads = 0, keys = 0;
  ASSERT_TRUE(DecodeAttention(Float32Tensor({2, 3}, {1, 2, 3, 4, 5, 6}), "rows[0].attention", &out,
                              &heads, &keys)
                  .ok());
  EXPECT_EQ(heads, 2);
  EXPECT_EQ(keys, 3);
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(DecodeAttentionTest, WrongRankIsRejectedWithTheRank) {
  std::vector<float> out;
  int32_t heads = 0, keys = 0;
  EXPECT_THAT(DecodeAttention(Float32Tensor({1, 2, 3}, std::vector<float>(6, 0.0f)),
                              "rows[0].attention", &out, &heads, &keys),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].attention must have shape [heads, keys], got rank 3 [1, 2, 3]"));
  EXPECT_THAT(DecodeAttention(Float32Tensor({6}, std::vector<float>(6, 0.0f)), "rows[0].attention",
                              &out, &heads, &keys),
              StatusHas(absl::StatusCode::kInvalidArgument, "got rank 1 [6]"));
}

TEST(DecodeAttentionTest, ZeroHeadsOrKeysAreRejected) {
  std::vector<float> out;
  int32_t heads = 0, keys = 0;
  EXPECT_THAT(DecodeAttention(Float32Tensor({0, 4}, {}), "rows[0].attention", &out, &heads, &keys),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].attention must have shape [heads, keys] with both >= 1, "
                       "got [0, 4]"));
}

TEST(DecodeAttentionTest, HugeShapeDoesNotOverflowTheSizeCheck) {
  std::vector<float> out;
  int32_t heads = 0, keys = 0;
  EXPECT_THAT(DecodeAttention(Float32Tensor({2147483647, 2147483647}, {1, 2}), "rows[0].attention",
                              &out, &heads, &keys),
              StatusHas(absl::StatusCode::kInvalidArgument,
                        "rows[0].attention.data has 8 bytes, but shape "
                        "[2147483647, 2147483647] of FLOAT32 needs"));
}

TEST(DecodeAttentionTest, NonFiniteScoresAreRejected) {
  v1::SampleRow row = GoodRow();
  *row.mutable_attention() = Float32Tensor({1, 2}, {0, -kInf});
  EXPECT_THAT(Parse(row),
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].attention[1] is -inf"));
}

// ---------------------------------------------------------------------------
// State

// Logits that came as bfloat16 bits (Row::logits_bf16) go on the wire as
// the same bytes as their float32 values would, in every dtype, inline and
// in shared memory (as bfloat16: the bits copied as they are).
TEST(EncodeRowsTest, Bf16LogitsEncodeAsTheirFloatValues) {
  std::vector<uint16_t> bits(1000);
  for (size_t i = 0; i < bits.size(); ++i) {
    bits[i] = FloatToBFloat16(std::sin(static_cast<float>(i)) * 9.0f);
  }
  bits[7] = 0xff80;  // -inf
  std::vector<float> widened;
  WidenLogits(bits, &widened);
  const std::vector<float> attention = {0.5f, -1.25f};
  Row as_float;
  as_float.config = ListSamplers().front().defaults;
  as_float.logits = widened;
  as_float.attention = attention;
  as_float.heads = 1;
  as_float.keys = 2;
  Row as_bits = as_float;
  as_bits.logits = {};
  as_bits.logits_bf16 = bits;
  for (DType dtype : {DType::kBFloat16, DType::kFloat32, DType::kFloat16}) {
    const std::string name = DTypeName(dtype);
    EXPECT_EQ(SharedMemoryBytes({&as_bits, 1}, dtype), SharedMemoryBytes({&as_float, 1}, dtype));
    v1::SampleRequest a, b;
    EncodeRows({&as_float, 1}, dtype, &a);
    EncodeRows({&as_bits, 1}, dtype, &b);
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << name;
    EXPECT_EQ(b.rows(0).logits().data().size(), bits.size() * ElementSize(dtype)) << name;

    absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> ra =
        SharedMemoryRegion::Create(SharedMemoryBytes({&as_float, 1}, dtype));
    absl::StatusOr<std::unique_ptr<SharedMemoryRegion>> rb =
        SharedMemoryRegion::Create(SharedMemoryBytes({&as_bits, 1}, dtype));
    ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status() << rb.status();
    EncodeRows({&as_float, 1}, dtype, &a, ra->get());
    EncodeRows({&as_bits, 1}, dtype, &b, rb->get());
    EXPECT_EQ(std::string((*ra)->data(), SharedMemoryBytes({&as_float, 1}, dtype)),
              std::string((*rb)->data(), SharedMemoryBytes({&as_bits, 1}, dtype)))
        << name;
    EXPECT_EQ(a.rows(0).logits().shared_memory().offset(),
              b.rows(0).logits().shared_memory().offset());
    EXPECT_EQ(a.rows(0).attention().shared_memory().offset(),
              b.rows(0).attention().shared_memory().offset());
  }
}

// DecodeRowInto reuses one OwnedRow row after row: what a row does not
// carry (attention, an allowed set, a state) is not left over from the
// row before, and the spans point at the reused vectors.
TEST(DecodeRowIntoTest, ARowDecodedOverAnotherKeepsNothingOfIt) {
  v1::SampleRow full = GoodRow();
  full.mutable_spec()->set_name("entropix");
  *full.mutable_attention() = Float32Tensor({1, 3}, {0.5f, 1.5f, -2.0f});
  full.mutable_allowed_tokens()->mutable_ids()->add_ids(3);
  full.mutable_state()->set_sampler("entropix");
  full.mutable_state()->set_next_step(4);
  full.set_step(4);
  full.add_appended_tokens(2);
  const v1::SampleRow plain = GoodRow();
  OwnedRow reused;
  ASSERT_TRUE(DecodeRowInto(full, "rows[0].", 0, nullptr, &reused).ok());
  EXPECT_EQ(reused.row.heads, 1);
  EXPECT_EQ(reused.row.attention.size(), 3u);
  EXPECT_FALSE(reused.row.allowed_tokens.empty());
  const float* storage = reused.logits.data();
  ASSERT_TRUE(DecodeRowInto(plain, "rows[0].", 0, nullptr, &reused).ok());
  absl::StatusOr<OwnedRow> fresh = DecodeRow(plain, "rows[0].", 0);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(reused.logits.data(), storage);  // the same storage, overwritten
  EXPECT_EQ(reused.logits, fresh->logits);
  EXPECT_EQ(reused.row.logits.data(), reused.logits.data());
  EXPECT_TRUE(reused.row.attention.empty());
  EXPECT_EQ(reused.row.heads, 0);
  EXPECT_EQ(reused.row.keys, 0);
  EXPECT_TRUE(reused.row.allowed_tokens.empty());
  EXPECT_TRUE(reused.row.appended_tokens.empty());
  EXPECT_TRUE(reused.row.state.empty());
  EXPECT_EQ(reused.row.step, 0);
  EXPECT_EQ(reused.row.seed, 7u);
  EXPECT_EQ(SamplerName(reused.row.config), "greedy");
}

TEST(StateTest, RoundTripsThroughTheProto) {
  SamplerState state;
  state.sampler = "alpha";
  state.next_step = 12;
  state.recent_tokens = {3, 1, 4};
  state.alpha_window = {0.25f, 0.5f};
  state.last_inserted = true;
  state.mirostat_mu = 9.5f;
  v1::SamplerState proto;
  StateToProto(state, &proto);
  EXPECT_EQ(proto.version(), kSamplerStateVersion);
  absl::StatusOr<SamplerState> back = StateFromProto(proto, 5, "rows[0].state");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->sampler, "alpha");
  EXPECT_EQ(back->next_step, 12);
  EXPECT_EQ(back->recent_tokens, state.recent_tokens);
  EXPECT_EQ(back->alpha_window, state.alpha_window);
  EXPECT_TRUE(back->last_inserted);
  EXPECT_EQ(back->mirostat_mu, 9.5f);
}

TEST(StateTest, UnsetMirostatMuStaysUnset) {
  v1::SamplerState proto;
  StateToProto(SamplerState(), &proto);
  EXPECT_FALSE(proto.has_mirostat_mu());
  absl::StatusOr<SamplerState> back = StateFromProto(proto, 5, "rows[0].state");
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->mirostat_mu.has_value());
  EXPECT_TRUE(back->empty());
}

TEST(StateTest, UnknownVersionIsRejected) {
  v1::SamplerState proto;
  proto.set_version(2);
  EXPECT_THAT(StateFromProto(proto, 5, "rows[0].state").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].state.version is 2; this server reads versions 0 and 1"));
}

TEST(StateTest, HistoryTokensOutsideTheVocabularyAreRejected) {
  v1::SamplerState proto;
  proto.add_recent_tokens(1);
  proto.add_recent_tokens(5);
  EXPECT_THAT(StateFromProto(proto, 5, "rows[0].state").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].state.recent_tokens[1] is 5, outside the vocabulary [0, 5)"));
  proto.set_recent_tokens(1, -1);
  EXPECT_THAT(
      StateFromProto(proto, 5, "rows[0].state").status(),
      StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].state.recent_tokens[1] is -1"));
}

TEST(StateTest, HistoryLongerThanTheBoundKeepsTheNewestTokens) {
  v1::SamplerState proto;
  for (int i = 0; i < SamplerState::kMaxRecentTokens + 10; ++i) proto.add_recent_tokens(i % 7);
  absl::StatusOr<SamplerState> state = StateFromProto(proto, 7, "rows[0].state");
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->recent_tokens.size(), static_cast<size_t>(SamplerState::kMaxRecentTokens));
  EXPECT_EQ(state->recent_tokens.back(), (SamplerState::kMaxRecentTokens + 9) % 7);
}

TEST(StateTest, NonFiniteFloatsAreRejected) {
  v1::SamplerState proto;
  proto.add_alpha_window(0.5f);
  proto.add_alpha_window(kNaN);
  EXPECT_THAT(StateFromProto(proto, 5, "rows[0].state").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].state.alpha_window[1] is nan; must be finite"));
  v1::SamplerState mu;
  mu.set_mirostat_mu(kInf);
  EXPECT_THAT(StateFromProto(mu, 5, "rows[0].state").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].state.mirostat_mu is inf; must be finite"));
}

// ---------------------------------------------------------------------------
// Rows

TEST(ParseRowTest, GoodRowParses) {
  OwnedRow parsed;
  ASSERT_TRUE(Parse(GoodRow(), &parsed).ok());
  EXPECT_EQ(SamplerName(parsed.row.config), "greedy");
  EXPECT_EQ(parsed.row.sequence_id, "seq");
  EXPECT_EQ(parsed.row.seed, 7u);
  EXPECT_EQ(parsed.logits.size(), 8u);
  EXPECT_TRUE(parsed.attention.empty());
  EXPECT_TRUE(parsed.row.state.empty());
  EXPECT_EQ(parsed.row.logits.data(), parsed.logits.data());
  EXPECT_EQ(parsed.row.logits.size(), 8u);
}

TEST(ParseRowTest, MissingSeedTakesTheOnePickedAtTheEdge) {
  v1::SampleRow row = GoodRow();
  row.clear_seed();
  absl::StatusOr<OwnedRow> parsed = DecodeRow(row, "rows[0].", 12345);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->row.seed, 12345u);
  row.set_seed(0);  // present, even if zero
  parsed = DecodeRow(row, "rows[0].", 12345);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->row.seed, 0u);
}

TEST(ParseRowTest, NegativeStepIsRejected) {
  v1::SampleRow row = GoodRow();
  row.set_step(-1);
  EXPECT_THAT(Parse(row),
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].step is -1; must be in [0, "));
}

TEST(ParseRowTest, MissingLogitsAreRejected) {
  v1::SampleRow row = GoodRow();
  row.clear_logits();
  EXPECT_THAT(Parse(row),
              StatusIs(absl::StatusCode::kInvalidArgument, "rows[0].logits is required"));
}

TEST(ParseRowTest, AttentionIsDecodedWhenSent) {
  v1::SampleRow row = GoodRow();
  *row.mutable_attention() = Float32Tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  OwnedRow parsed;
  ASSERT_TRUE(Parse(row, &parsed).ok());
  EXPECT_EQ(parsed.row.heads, 2);
  EXPECT_EQ(parsed.row.keys, 3);
  EXPECT_EQ(parsed.row.attention.size(), 6u);
}

TEST(ParseRowTest, AttentionOfTheWrongRankIsRejected) {
  v1::SampleRow row = GoodRow();
  *row.mutable_attention() = Float32Tensor({6}, {1, 2, 3, 4, 5, 6});
  EXPECT_THAT(Parse(row), StatusHas(absl::StatusCode::kInvalidArgument,
                                    "rows[0].attention must have shape [heads, keys], got rank 1"));
}

TEST(ParseRowTest, StateForAnotherStepIsFailedPrecondition) {
  v1::SampleRow row = GoodRow();
  row.set_step(7);
  row.mutable_state()->set_version(1);
  row.mutable_state()->set_sampler("greedy");
  row.mutable_state()->set_next_step(4);
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   "rows[0].state is for step 4 but the row is step 7"));
}

TEST(ParseRowTest, StateOfAnotherSamplerIsFailedPrecondition) {
  v1::SampleRow row = GoodRow();
  row.set_step(1);
  row.mutable_state()->set_sampler("chain");
  row.mutable_state()->set_next_step(1);
  EXPECT_THAT(Parse(row),
              StatusHas(absl::StatusCode::kFailedPrecondition,
                        "rows[0].state.sampler is \"chain\" but the row's sampler is greedy"));
}

TEST(ParseRowTest, MatchingStateIsAcceptedAndAppendedTokensJoinTheHistory) {
  v1::SampleRow row = GoodRow();
  row.set_step(3);
  row.mutable_state()->set_version(1);
  row.mutable_state()->set_sampler("greedy");
  row.mutable_state()->set_next_step(3);
  row.mutable_state()->add_recent_tokens(2);
  row.add_appended_tokens(5);
  row.add_appended_tokens(6);
  ASSERT_TRUE(Parse(row).ok());
  // The history the sampler saw: the state's, then the appended tokens; then
  // greedy's token, the argmax 7.
  v1::SampleResult result;
  SampleOneRow(row, 0, &result);
  ASSERT_FALSE(result.has_error()) << result.error().message();
  EXPECT_THAT(result.state().recent_tokens(), testing::ElementsAre(2, 5, 6, 7));
}

TEST(ParseRowTest, AppendedTokensOutsideTheVocabularyAreRejected) {
  v1::SampleRow row = GoodRow();
  row.add_appended_tokens(1);
  row.add_appended_tokens(2);
  row.add_appended_tokens(8);
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].appended_tokens[2] is 8, outside the vocabulary "
                                   "[0, 8)"));
  row.set_appended_tokens(2, -1);
  EXPECT_THAT(Parse(row),
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].appended_tokens[2] is -1"));
}

TEST(ParseRowTest, SpecialTokensOutsideTheVocabularyAreRejected) {
  v1::SampleRow row = GoodRow();
  row.mutable_special_tokens()->set_eos(8);
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].special_tokens.eos is 8, outside the vocabulary "
                                   "[0, 8)"));
  row = GoodRow();
  row.mutable_special_tokens()->set_clarifying_question(-2);
  EXPECT_THAT(Parse(row), StatusHas(absl::StatusCode::kInvalidArgument,
                                    "rows[0].special_tokens.clarifying_question is -2"));
  row = GoodRow();
  row.mutable_special_tokens()->set_pause(100);
  EXPECT_THAT(Parse(row),
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].special_tokens.pause is 100"));
  row = GoodRow();
  row.mutable_special_tokens()->set_pause(0);
  row.mutable_special_tokens()->set_eos(7);
  OwnedRow parsed;
  ASSERT_TRUE(Parse(row, &parsed).ok());
  EXPECT_EQ(parsed.row.special_tokens.pause, 0);
  EXPECT_EQ(parsed.row.special_tokens.eos, 7);
  EXPECT_FALSE(parsed.row.special_tokens.clarifying_question.has_value());
}

TEST(ParseRowTest, LogitBiasForTokensOutsideTheVocabularyIsRejected) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->clear_name();
  (*row.mutable_spec()->mutable_chain()->mutable_logit_bias())[8] = 1.0f;
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].spec.chain.logit_bias has token 8, outside the "
                                   "vocabulary [0, 8)"));
}

TEST(ParseRowTest, LogitBiasOfPlusInfOrNaNIsRejected) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->clear_name();
  (*row.mutable_spec()->mutable_chain()->mutable_logit_bias())[2] = kInf;
  absl::Status status = Parse(row);
  EXPECT_THAT(status,
              StatusHas(absl::StatusCode::kInvalidArgument, "rows[0].spec.chain.logit_bias[2]"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("inf"));
  (*row.mutable_spec()->mutable_chain()->mutable_logit_bias())[2] = -kInf;  // a ban: fine
  EXPECT_TRUE(Parse(row).ok());
}

TEST(ParseRowTest, DrySequenceBreakersOutsideTheVocabularyAreRejected) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->clear_name();
  row.mutable_spec()->mutable_dry()->add_sequence_breaker_ids(3);
  row.mutable_spec()->mutable_dry()->add_sequence_breaker_ids(9);
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].spec.dry.sequence_breaker_ids[1] is 9, outside the "
                                   "vocabulary [0, 8)"));
}

TEST(ParseRowTest, DryBreakerSequencesOutsideTheVocabularyAreRejected) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->clear_name();
  v1::ChainConfig* chain = row.mutable_spec()->mutable_chain();
  chain->add_dry_sequence_breaker_sequences()->add_ids(3);
  v1::TokenSequence* second = chain->add_dry_sequence_breaker_sequences();
  second->add_ids(2);
  second->add_ids(8);
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].spec.chain.dry_sequence_breaker_sequences[1][1] is 8, "
                                   "outside the vocabulary [0, 8)"));
}

TEST(EncodeResultTest, FillsEveryField) {
  Row row;
  row.sequence_id = "s";
  row.step = 4;
  RowResult sampled;
  sampled.seed = 99;
  RowOutput& output = sampled.output;
  output.token = 3;
  output.mode = Mode::kExplore;
  output.signals.entropy = 1.5f;
  output.signals.varentropy = 0.25f;
  output.signals.has_attention = true;
  output.signals.attn_entropy = 2.0f;
  output.signals.agreement = 0.125f;
  output.params.temperature = 0.7f;
  output.params.top_k = 12;
  output.inserted = true;
  output.logprob = -0.5f;
  SamplerState& state = sampled.state;
  state.sampler = "entropix";
  state.next_step = 5;
  state.recent_tokens = {1, 3};
  state.last_inserted = true;

  v1::SampleResult result;
  EncodeResult(row, sampled, &result);
  EXPECT_FALSE(result.has_error());
  EXPECT_EQ(result.sequence_id(), "s");
  EXPECT_EQ(result.step(), 4);
  EXPECT_EQ(result.token_id(), 3);
  EXPECT_EQ(result.mode(), v1::MODE_EXPLORE);
  EXPECT_EQ(result.signals().entropy(), 1.5f);
  EXPECT_EQ(result.signals().varentropy(), 0.25f);
  EXPECT_TRUE(result.signals().has_attn_entropy());
  EXPECT_EQ(result.signals().attn_entropy(), 2.0f);
  EXPECT_EQ(result.signals().agreement(), 0.125f);
  EXPECT_TRUE(result.params().has_temperature());
  EXPECT_EQ(result.params().temperature(), 0.7f);
  EXPECT_EQ(result.params().top_k(), 12);
  EXPECT_FALSE(result.params().has_top_p());
  EXPECT_FALSE(result.params().has_mirostat_mu());
  EXPECT_TRUE(result.inserted());
  EXPECT_EQ(result.logprob(), -0.5f);
  EXPECT_EQ(result.seed(), 99u);
  EXPECT_EQ(result.state().version(), 1u);
  EXPECT_EQ(result.state().sampler(), "entropix");
  EXPECT_EQ(result.state().next_step(), 5);
  EXPECT_THAT(result.state().recent_tokens(), testing::ElementsAre(1, 3));
  EXPECT_TRUE(result.state().last_inserted());
}

TEST(EncodeResultTest, EveryParameterAndSignalIsCopied) {
  RowResult sampled;
  RowOutput& output = sampled.output;
  output.token = 1;
  output.mode = Mode::kAlpha;
  output.signals.has_attention = true;
  output.signals.attn_varentropy = 0.5f;
  output.signals.attn_entropy_spread = 0.25f;
  output.signals.interaction_strength = 2.0f;
  SamplingParams& p = output.params;
  p.temperature = 1;
  p.top_k = 2;
  p.top_p = 3;
  p.min_p = 4;
  p.typical_p = 5;
  p.repetition_penalty = 6;
  p.frequency_penalty = 7;
  p.presence_penalty = 8;
  p.candidate_size = 9;
  p.samples = 10;
  p.mirostat_mu = 11;
  p.top_n_sigma = 12;
  p.xtc_threshold = 13;
  p.xtc_probability = 14;
  p.dry_multiplier = 15;
  p.alpha = 16;
  p.smoothed_alpha = 17;
  p.candidates = 18;
  v1::SampleResult result;
  EncodeResult(Row(), sampled, &result);
  // Each proto field carries the value of its field number.
  const Descriptor* d = v1::SamplingParams::descriptor();
  const Reflection* r = result.params().GetReflection();
  ASSERT_EQ(d->field_count(), 18);
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    ASSERT_TRUE(r->HasField(result.params(), f)) << f->name();
    const double value = f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT
                             ? r->GetFloat(result.params(), f)
                             : r->GetInt32(result.params(), f);
    EXPECT_EQ(value, f->number()) << f->name();
  }
  EXPECT_EQ(result.signals().attn_varentropy(), 0.5f);
  EXPECT_EQ(result.signals().attn_entropy_spread(), 0.25f);
  EXPECT_EQ(result.signals().interaction_strength(), 2.0f);
  EXPECT_EQ(result.mode(), v1::MODE_ALPHA);
}

TEST(EncodeResultTest, AttentionSignalsAreUnsetWithoutAttention) {
  RowResult sampled;
  sampled.output.token = 0;
  sampled.output.mode = Mode::kGreedy;
  v1::SampleResult result;
  EncodeResult(Row(), sampled, &result);
  EXPECT_EQ(result.mode(), v1::MODE_GREEDY);
  EXPECT_FALSE(result.signals().has_attn_entropy());
  EXPECT_FALSE(result.signals().has_interaction_strength());
}

TEST(EncodeResultTest, AFailedRowGetsItsIdsAndTheErrorOnly) {
  Row row;
  row.sequence_id = "s";
  row.step = 2;
  RowResult sampled;
  sampled.status = absl::FailedPreconditionError("rows[0].state is for step 4");
  sampled.output.token = 3;
  v1::SampleResult result;
  EncodeResult(row, sampled, &result);
  EXPECT_EQ(result.sequence_id(), "s");
  EXPECT_EQ(result.step(), 2);
  EXPECT_EQ(result.error().code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(result.error().message(), "rows[0].state is for step 4");
  EXPECT_EQ(result.token_id(), 0);
  EXPECT_FALSE(result.has_state());
}

TEST(ModeTest, DomainModesHaveTheWireNumbers) {
  EXPECT_EQ(static_cast<int>(Mode::kGreedy), v1::MODE_GREEDY);
  EXPECT_EQ(static_cast<int>(Mode::kSample), v1::MODE_SAMPLE);
  EXPECT_EQ(static_cast<int>(Mode::kFlowing), v1::MODE_FLOWING);
  EXPECT_EQ(static_cast<int>(Mode::kClarify), v1::MODE_CLARIFY);
  EXPECT_EQ(static_cast<int>(Mode::kExplore), v1::MODE_EXPLORE);
  EXPECT_EQ(static_cast<int>(Mode::kResample), v1::MODE_RESAMPLE);
  EXPECT_EQ(static_cast<int>(Mode::kAdaptive), v1::MODE_ADAPTIVE);
  EXPECT_EQ(static_cast<int>(Mode::kAlpha), v1::MODE_ALPHA);
}

TEST(DTypeTest, DomainDtypesHaveTheWireNumbers) {
  EXPECT_EQ(static_cast<int>(DType::kFloat32), v1::DTYPE_FLOAT32);
  EXPECT_EQ(static_cast<int>(DType::kFloat16), v1::DTYPE_FLOAT16);
  EXPECT_EQ(static_cast<int>(DType::kBFloat16), v1::DTYPE_BFLOAT16);
}

// ---------------------------------------------------------------------------
// Allowed tokens

void SetAllowedIds(v1::SampleRow* row, const std::vector<int32_t>& ids) {
  auto* list = row->mutable_allowed_tokens()->mutable_ids()->mutable_ids();
  list->Clear();
  list->Add(ids.begin(), ids.end());
}

TEST(AllowedTokensTest, FewIdsTravelAsIdsManyAsABitmaskAndBothDecodeAlike) {
  const int64_t vocab = 1000;
  const std::vector<int32_t> few = {3, 64, 999};
  v1::AllowedTokens proto;
  AllowedTokensToProto(MaskFromIds(few, vocab), vocab, &proto);
  ASSERT_TRUE(proto.has_ids());  // 1 + 1 + 2 bytes of varints < 125 bytes of bitmask
  EXPECT_THAT(proto.ids().ids(), testing::ElementsAre(3, 64, 999));
  std::vector<int32_t> many(200);
  for (int i = 0; i < 200; ++i) many[i] = i * 5;
  AllowedTokensToProto(MaskFromIds(many, vocab), vocab, &proto);
  ASSERT_TRUE(proto.has_bitmask());  // 72 + 128 * 2 bytes > 125
  EXPECT_EQ(proto.bitmask().size(), 125u);
  EXPECT_EQ(proto.bitmask()[0], '\x21');  // tokens 0 and 5
  std::vector<uint64_t> mask;
  ASSERT_TRUE(AllowedTokensFromProto(proto, vocab, "f", &mask).ok());
  EXPECT_EQ(MaskIds(mask), many);
  proto.mutable_ids()->mutable_ids()->Add(few.begin(), few.end());
  ASSERT_TRUE(AllowedTokensFromProto(proto, vocab, "f", &mask).ok());
  EXPECT_EQ(MaskIds(mask), few);
}

TEST(AllowedTokensTest, BadSetsNameTheField) {
  v1::SampleRow row = GoodRow();  // V = 8
  row.mutable_allowed_tokens()->set_bitmask(std::string(2, '\x01'));
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].allowed_tokens.bitmask has 2 bytes; a vocabulary of 8 "
                                   "tokens takes 1"));
  SetAllowedIds(&row, {1, 4, 4});
  EXPECT_THAT(Parse(row),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rows[0].allowed_tokens.ids.ids[2] is 4, not above "
                       "rows[0].allowed_tokens.ids.ids[1] (4); the list must be ascending without "
                       "repeats"));
  SetAllowedIds(&row, {1, 8});
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].allowed_tokens.ids.ids[1] is 8, outside the vocabulary "
                                   "[0, 8)"));
  *row.mutable_logits() = Float32Tensor({5}, {0, 1, 2, 3, 4});
  row.mutable_allowed_tokens()->set_bitmask("\x41");  // bit 6 of a vocabulary of 5
  EXPECT_THAT(Parse(row), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "rows[0].allowed_tokens allows token 6, outside the vocabulary "
                                   "[0, 5)"));
}

TEST(AllowedTokensTest, ASetAllowingNothingIsAnInBandError) {
  v1::SampleRow row = GoodRow();
  row.mutable_allowed_tokens()->mutable_ids();  // present, empty
  v1::SampleResult result;
  SampleOneRow(row, 2, &result);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(result.error().message(),
            "rows[2].allowed_tokens allows no token: there is nothing to sample");
  *row.mutable_logits() = Float32Tensor({8}, {0, 1, -kInf, 3, 4, 5, 6, 7});
  row.mutable_allowed_tokens()->mutable_ids()->add_ids(2);
  SampleOneRow(row, 2, &result);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().message(),
            "rows[2].allowed_tokens allows only tokens whose logits are -inf");
}

TEST(AllowedTokensTest, GreedyTakesTheBestAllowedTokenWithItsMaskedLogprob) {
  v1::SampleRow row = GoodRow();  // logits 0..7
  SetAllowedIds(&row, {2, 5});
  row.set_top_logprobs(3);
  v1::SampleResult result;
  SampleOneRow(row, 0, &result);
  ASSERT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(result.token_id(), 5);
  const double log_norm = std::log(std::exp(2.0) + std::exp(5.0));
  EXPECT_NEAR(result.logprob(), 5.0 - log_norm, 1e-6);
  ASSERT_EQ(result.top_logprobs_size(), 2);  // only two tokens are allowed
  EXPECT_EQ(result.top_logprobs(1).token_id(), 2);
  EXPECT_NEAR(result.top_logprobs(1).logprob(), 2.0 - log_norm, 1e-6);
}

// ---------------------------------------------------------------------------
// SampleOneRow: parse -> create -> sample -> convert, errors in-band.

TEST(SampleOneRowTest, GreedyPicksTheArgmaxAndReturnsTheNextState) {
  v1::SampleRow row = GoodRow();
  row.set_step(0);
  v1::SampleResult result;
  SampleOneRow(row, 0, &result);
  ASSERT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(result.sequence_id(), "seq");
  EXPECT_EQ(result.step(), 0);
  EXPECT_EQ(result.token_id(), 7);
  EXPECT_EQ(result.mode(), v1::MODE_GREEDY);
  EXPECT_EQ(result.seed(), 7u);
  EXPECT_EQ(result.state().sampler(), "greedy");
  EXPECT_EQ(result.state().next_step(), 1);
  EXPECT_THAT(result.state().recent_tokens(), testing::ElementsAre(7));
  // log softmax(0..7)[7]
  double norm = 0;
  for (int i = 0; i < 8; ++i) norm += std::exp(i - 7.0);
  EXPECT_NEAR(result.logprob(), -std::log(norm), 1e-5);
}

TEST(SampleOneRowTest, ABadRowGetsOnlyIdsAndTheError) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->set_name("nope");
  v1::SampleResult result;
  SampleOneRow(row, 3, &result);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(result.error().message(), testing::StartsWith("rows[3].spec.name: "));
  EXPECT_EQ(result.sequence_id(), "seq");
  EXPECT_EQ(result.token_id(), 0);
  EXPECT_FALSE(result.has_state());
  EXPECT_FALSE(result.has_signals());
}

TEST(SampleOneRowTest, MissingStateOfAStatefulSamplerIsFailedPrecondition) {
  v1::SampleRow row = GoodRow();
  row.mutable_spec()->set_name("mirostat_v2");
  row.set_step(3);
  v1::SampleResult result;
  SampleOneRow(row, 0, &result);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(result.error().message(),
            "rows[0].state is required at step 3 for sampler mirostat_v2: send back the state "
            "returned with step 2");
}

TEST(SampleOneRowTest, UnseededRowsGetASeedEchoed) {
  v1::SampleRow row = GoodRow();
  row.clear_seed();
  row.mutable_spec()->set_name("chain");
  v1::SampleResult a, b;
  SampleOneRow(row, 0, &a);
  SampleOneRow(row, 0, &b);
  ASSERT_FALSE(a.has_error()) << a.error().message();
  // Two picks of 64 random bits colliding would be a bug, not luck.
  EXPECT_NE(a.seed(), b.seed());
  // Replaying with the echoed seed gives the same token.
  row.set_seed(a.seed());
  v1::SampleResult replay;
  SampleOneRow(row, 0, &replay);
  EXPECT_EQ(replay.token_id(), a.token_id());
  EXPECT_EQ(replay.seed(), a.seed());
}

// ---------------------------------------------------------------------------
// Status conversion

TEST(StatusUtilTest, KeepsCodeAndMessage) {
  grpc::Status g = ToGrpcStatus(absl::FailedPreconditionError("rows[0].state is for step 4"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(g.error_message(), "rows[0].state is for step 4");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  absl::Status back = FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "big"));
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(back.message(), "big");
  v1::RowError error;
  SetRowError(absl::InvalidArgumentError("x"), &error);
  EXPECT_EQ(error.code(), 3);
  EXPECT_EQ(error.message(), "x");
}

TEST(StatusUtilTest, EveryCanonicalCodeHasTheSameNumberInGrpc) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), "m");
    EXPECT_EQ(static_cast<int>(ToGrpcStatus(s).error_code()), code);
  }
}

// ---------------------------------------------------------------------------
// Nothing bad input does may crash the server: random rows built from edge
// values either sample a token in range or get an in-band error.

namespace fuzz {

constexpr float kFloatEdges[] = {0.0f,   -0.0f,   1.0f,     -1.0f, 0.5f,  2.0f, 1e-30f, 1e30f,
                                 -1e30f, 3.4e38f, -3.4e38f, kInf,  -kInf, kNaN, 100.0f, 0.999f};
constexpr int32_t kIntEdges[] = {0,
                                 1,
                                 -1,
                                 2,
                                 5,
                                 100,
                                 255,
                                 256,
                                 257,
                                 100000,
                                 std::numeric_limits<int32_t>::max(),
                                 std::numeric_limits<int32_t>::min()};

template <typename T, size_t N>
T Pick(std::mt19937_64& rng, const T (&values)[N]) {
  return values[rng() % N];
}

void RandomizeConfig(std::mt19937_64& rng, Message* config) {
  const Descriptor* d = config->GetDescriptor();
  const Reflection* r = config->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    // About two fields a config leave their defaults.
    if (rng() % static_cast<uint64_t>(d->field_count()) >= 2) continue;
    if (f->is_map()) {  // logit_bias of chain, entropix or alpha
      Message* entry = r->AddMessage(config, f);
      const Reflection* e = entry->GetReflection();
      e->SetInt32(entry, f->message_type()->map_key(), Pick(rng, kIntEdges) % 8);
      e->SetFloat(entry, f->message_type()->map_value(), Pick(rng, kFloatEdges));
      continue;
    }
    if (f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      // Stage names, valid and not, in any order.
      static constexpr const char* kNames[] = {"top_k", "dist",  "greedy", "dry",
                                               "xtc",   "min_p", "nope",   "mirostat_v2"};
      for (int n = static_cast<int>(rng() % 4); n >= 0; --n) {
        r->AddString(config, f, Pick(rng, kNames));
      }
      continue;
    }
    if (f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      // DRY's breaker sequences: empty, too long, ids in and out of range.
      Message* sequence = r->AddMessage(config, f);
      const FieldDescriptor* ids = f->message_type()->FindFieldByName("ids");
      for (int n = static_cast<int>(rng() % 10); n > 0; --n) {
        sequence->GetReflection()->AddInt32(sequence, ids, Pick(rng, kIntEdges) % 8);
      }
      continue;
    }
    if (f->is_repeated()) {
      r->AddInt32(config, f, Pick(rng, kIntEdges) % 8);
      continue;
    }
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(config, f, Pick(rng, kFloatEdges));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(config, f, Pick(rng, kIntEdges));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(config, f, rng() % 2);
        break;
      default:
        break;
    }
  }
}

v1::Tensor RandomTensor(std::mt19937_64& rng, int rank, int64_t max_dim, bool allow_bad) {
  v1::Tensor t;
  t.set_dtype(static_cast<v1::DType>(allow_bad && rng() % 20 == 0 ? rng() % 5 : 1 + rng() % 3));
  int64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    const int64_t dim =
        allow_bad && rng() % 30 == 0 ? -1 : 1 + static_cast<int64_t>(rng() % max_dim);
    t.add_shape(dim);
    numel *= std::max<int64_t>(dim, 0);
  }
  std::vector<float> values(static_cast<size_t>(numel));
  for (float& v : values) {
    v = rng() % 64 == 0 ? Pick(rng, kFloatEdges)
                        : static_cast<float>(static_cast<int64_t>(rng() % 2001) - 1000) / 100.0f;
  }
  const DType dtype = v1::DType_IsValid(t.dtype()) && t.dtype() != v1::DTYPE_UNSPECIFIED
                          ? static_cast<DType>(t.dtype())
                          : DType::kFloat32;
  t.set_data(EncodeTensor(dtype, values));
  if (allow_bad && rng() % 30 == 0) t.mutable_data()->push_back('x');
  return t;
}

// A token id of a vocabulary of `vocab` tokens, now and then out of range.
int32_t RandomToken(std::mt19937_64& rng, int64_t vocab) {
  if (rng() % 50 == 0) return Pick(rng, kIntEdges);
  return static_cast<int32_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(vocab, 1)));
}

v1::SampleRow RandomRow(std::mt19937_64& rng) {
  v1::SampleRow row;
  row.set_sequence_id("fuzz");
  row.set_step(static_cast<int64_t>(rng() % 4));
  const std::vector<SamplerDescription>& samplers = ListSamplers();
  const SamplerDescription& sampler = samplers[rng() % samplers.size()];
  const int spec_kind = static_cast<int>(rng() % 16);  // 0: neither; odd: name too
  if (spec_kind % 2 == 1) row.mutable_spec()->set_name(sampler.name);
  if (spec_kind >= 4) {
    const FieldDescriptor* member = v1::SamplerSpec::descriptor()->FindFieldByName(sampler.name);
    Message* config =
        row.mutable_spec()->GetReflection()->MutableMessage(row.mutable_spec(), member);
    RandomizeConfig(rng, config);
  }
  row.set_seed(rng());
  *row.mutable_logits() = RandomTensor(rng, 1, 8, /*allow_bad=*/true);
  const int64_t vocab = row.logits().shape(0);
  if (rng() % 2) *row.mutable_attention() = RandomTensor(rng, 2, 6, /*allow_bad=*/true);
  if (rng() % 3 == 0)
    row.mutable_special_tokens()->set_clarifying_question(RandomToken(rng, vocab));
  if (rng() % 3 == 0) row.mutable_special_tokens()->set_pause(RandomToken(rng, vocab));
  if (rng() % 3 == 0) row.mutable_special_tokens()->set_eos(RandomToken(rng, vocab));
  for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
    row.add_appended_tokens(RandomToken(rng, vocab));
  }
  if (row.step() > 0 && rng() % 4 != 0) {
    v1::SamplerState* state = row.mutable_state();
    state->set_version(1);
    state->set_sampler(rng() % 16 == 0 ? "chain" : sampler.name);
    state->set_next_step(rng() % 16 == 0 ? row.step() + 1 : row.step());
    for (int i = static_cast<int>(rng() % 300); i > 0; --i) {
      state->add_recent_tokens(rng() % 200 == 0 ? -1 : RandomToken(rng, vocab) & 0x7fffffff);
    }
    for (int i = static_cast<int>(rng() % 12); i > 0; --i) {
      state->add_alpha_window(rng() % 3 == 0 ? Pick(rng, kFloatEdges) : 0.5f);
    }
    state->set_last_inserted(rng() % 2);
    if (rng() % 2) state->set_mirostat_mu(Pick(rng, kFloatEdges));
  }
  return row;
}

}  // namespace fuzz

TEST(SampleOneRowTest, RandomRowsOfEdgeValuesNeverCrashAndAlwaysAnswer) {
  std::mt19937_64 rng(20240611);
  int sampled = 0;
  int failed = 0;
  for (int i = 0; i < 4000; ++i) {
    const v1::SampleRow row = fuzz::RandomRow(rng);
    v1::SampleResult result;
    SampleOneRow(row, 0, &result);
    if (result.has_error()) {
      ++failed;
      EXPECT_NE(result.error().code(), 0) << row.ShortDebugString();
      EXPECT_NE(result.error().code(), static_cast<int>(absl::StatusCode::kInternal))
          << result.error().message() << "\n"
          << row.ShortDebugString();
      EXPECT_THAT(result.error().message(), testing::StartsWith("rows[0]."));
    } else {
      ++sampled;
      const int64_t vocab = row.logits().shape(0);
      EXPECT_GE(result.token_id(), 0) << row.ShortDebugString();
      EXPECT_LT(result.token_id(), vocab) << row.ShortDebugString();
      EXPECT_FALSE(std::isnan(result.logprob())) << row.ShortDebugString();
      EXPECT_EQ(result.state().next_step(), row.step() + 1);
    }
  }
  // Both outcomes are exercised.
  EXPECT_GT(sampled, 400);
  EXPECT_GT(failed, 400);
}

}  // namespace
}  // namespace entroserve
