// services/wire/config_reflection.h: the config tables of
// sampler/core/configs.h and the sampler.v1 config messages agree field for
// field, and configs cross the wire unchanged.
#include "services/wire/config_reflection.h"

#include <cmath>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "sampler/core/configs.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
namespace pb = ::google::protobuf;

TEST(ConfigReflectionTest, EveryProtoFieldHasExactlyOneTableRowOfItsType) {
  EXPECT_THAT(ConfigProtoMismatches(), testing::IsEmpty());
}

// Each field's value as the docs print it, in table order.
template <typename Config>
std::vector<std::string> Values(const Config& config) {
  std::vector<std::string> values;
  Config::VisitFields(config, [&values](const FieldInfo& field, const auto& value) {
    values.push_back(absl::StrCat(field.name, "=", ValueText(value)));
  });
  return values;
}

// Every field moved away from its default.
template <typename Config>
Config AllChanged() {
  Config config;
  Config::VisitFields(config, [](const FieldInfo&, auto& value) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, bool>) {
      value = !value;
    } else if constexpr (std::is_same_v<T, TokenIdList>) {
      value = {7, 3, 7};
    } else if constexpr (std::is_same_v<T, TokenSequences>) {
      value = {{4, 2}, {7}, {1, 1, 1}};
    } else if constexpr (std::is_same_v<T, LogitBias>) {
      value = {{3, -1.5f}, {9, -INFINITY}};
    } else if constexpr (std::is_same_v<T, StageList>) {
      value = {"top_k", "dist"};
    } else {
      value += 3;
    }
  });
  return config;
}

TEST(ConfigReflectionTest, EveryFieldCrossesTheWireUnchanged) {
  ForEachSamplerConfig([](const auto& defaults) {
    using Config = std::decay_t<decltype(defaults)>;
    const Config changed = AllChanged<Config>();
    v1::SamplerSpec spec;
    ConfigToSpecOneof(changed, &spec);
    const SamplerConfig back = ConfigFromSpecOneof(spec);
    ASSERT_TRUE(std::holds_alternative<Config>(back)) << Config::kName;
    EXPECT_EQ(Values(std::get<Config>(back)), Values(changed)) << spec.DebugString();
    if (!Values(defaults).empty()) EXPECT_NE(Values(changed), Values(defaults)) << Config::kName;
  });
}

TEST(ConfigReflectionTest, UnsetFieldsKeepTheirDefaults) {
  v1::SamplerSpec spec;
  ASSERT_TRUE(pb::TextFormat::ParseFromString(
      "entropix { temperature: 0.7 adaptive_samples: 3 attn_varentropy_is_spread: true }", &spec));
  const SamplerConfig config = ConfigFromSpecOneof(spec);
  ASSERT_TRUE(std::holds_alternative<EntropixConfig>(config));
  EntropixConfig want;
  want.temperature = 0.7f;
  want.adaptive_samples = 3;
  want.attn_varentropy_is_spread = true;
  EXPECT_EQ(Values(std::get<EntropixConfig>(config)), Values(want));

  ASSERT_TRUE(
      pb::TextFormat::ParseFromString("dry { sequence_breaker_ids: [5, 2] } name: \"dry\"", &spec));
  DryConfig dry;
  dry.sequence_breaker_ids = {5, 2};
  EXPECT_EQ(Values(std::get<DryConfig>(ConfigFromSpecOneof(spec))), Values(dry));

  ASSERT_TRUE(pb::TextFormat::ParseFromString("chain { logit_bias { key: 4 value: -2 } }", &spec));
  ChainConfig chain;
  chain.logit_bias = {{4, -2.0f}};
  EXPECT_EQ(Values(std::get<ChainConfig>(ConfigFromSpecOneof(spec))), Values(chain));
}

// ListSamplers' defaults and configs echoed to clients carry every field.
TEST(ConfigReflectionTest, ToSpecSetsEveryScalarField) {
  ForEachSamplerConfig([](const auto& defaults) {
    v1::SamplerSpec spec;
    ConfigToSpecOneof(defaults, &spec);
    const pb::FieldDescriptor* member = spec.GetDescriptor()->FindFieldByName(defaults.kName);
    ASSERT_NE(member, nullptr) << defaults.kName;
    EXPECT_EQ(static_cast<int>(spec.config_case()), member->number()) << defaults.kName;
    const pb::Message& message = spec.GetReflection()->GetMessage(spec, member);
    for (int i = 0; i < message.GetDescriptor()->field_count(); ++i) {
      const pb::FieldDescriptor* field = message.GetDescriptor()->field(i);
      if (field->is_repeated()) continue;
      EXPECT_TRUE(message.GetReflection()->HasField(message, field)) << field->full_name();
    }
  });
}

}  // namespace
}  // namespace entroserve
