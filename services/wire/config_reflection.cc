#include "services/wire/config_reflection.h"

#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
namespace pb = ::google::protobuf;
using FD = pb::FieldDescriptor;

// The proto field type each table type is carried in.
template <typename T>
std::string WireTypeOf() {
  return FieldType<T>::kProto;
}

// The same words for a proto field.
std::string WireTypeOf(const FD* f) {
  if (f->is_map()) {
    return absl::StrCat("map<", f->message_type()->map_key()->type_name(), ", ",
                        f->message_type()->map_value()->type_name(), ">");
  }
  const std::string type =
      f->type() == FD::TYPE_MESSAGE ? f->message_type()->name() : std::string(f->type_name());
  if (f->is_repeated()) return absl::StrCat("repeated ", type);
  return absl::StrCat(f->has_presence() ? "optional " : "", f->type_name());
}

// Proto -> table value (an unset optional field keeps `value`); `r` is
// m's reflection.
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, float* value) {
  if (r->HasField(m, f)) *value = r->GetFloat(m, f);
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, int32_t* value) {
  if (r->HasField(m, f)) *value = r->GetInt32(m, f);
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, bool* value) {
  if (r->HasField(m, f)) *value = r->GetBool(m, f);
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, TokenIdList* values) {
  const int n = r->FieldSize(m, f);
  values->clear();
  values->reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) values->push_back(r->GetRepeatedInt32(m, f, i));
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, TokenSequences* values) {
  values->clear();
  for (int i = 0, n = r->FieldSize(m, f); i < n; ++i) {
    const auto& sequence = static_cast<const v1::TokenSequence&>(r->GetRepeatedMessage(m, f, i));
    values->emplace_back(sequence.ids().begin(), sequence.ids().end());
  }
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, StageList* values) {
  const int n = r->FieldSize(m, f);
  values->clear();
  values->reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) values->push_back(r->GetRepeatedString(m, f, i));
}
void Read(const pb::Reflection* r, const pb::Message& m, const FD* f, LogitBias* values) {
  const FD* key = f->message_type()->map_key();
  const FD* bias = f->message_type()->map_value();
  values->clear();
  for (int i = 0, n = r->FieldSize(m, f); i < n; ++i) {
    const pb::Message& entry = r->GetRepeatedMessage(m, f, i);
    const pb::Reflection* e = entry.GetReflection();
    values->emplace(e->GetInt32(entry, key), e->GetFloat(entry, bias));
  }
}

// Table value -> proto.
void Write(float value, const FD* f, pb::Message* m) { m->GetReflection()->SetFloat(m, f, value); }
void Write(int32_t value, const FD* f, pb::Message* m) {
  m->GetReflection()->SetInt32(m, f, value);
}
void Write(bool value, const FD* f, pb::Message* m) { m->GetReflection()->SetBool(m, f, value); }
void Write(const TokenIdList& values, const FD* f, pb::Message* m) {
  const pb::Reflection* r = m->GetReflection();
  r->ClearField(m, f);
  for (int32_t id : values) r->AddInt32(m, f, id);
}
void Write(const TokenSequences& values, const FD* f, pb::Message* m) {
  const pb::Reflection* r = m->GetReflection();
  r->ClearField(m, f);
  for (const std::vector<int32_t>& ids : values) {
    auto* sequence = static_cast<v1::TokenSequence*>(r->AddMessage(m, f));
    sequence->mutable_ids()->Add(ids.begin(), ids.end());
  }
}
void Write(const StageList& values, const FD* f, pb::Message* m) {
  const pb::Reflection* r = m->GetReflection();
  r->ClearField(m, f);
  for (const std::string& name : values) r->AddString(m, f, name);
}
void Write(const LogitBias& values, const FD* f, pb::Message* m) {
  const pb::Reflection* r = m->GetReflection();
  const FD* key = f->message_type()->map_key();
  const FD* bias = f->message_type()->map_value();
  r->ClearField(m, f);
  for (const auto& [id, value] : values) {
    pb::Message* entry = r->AddMessage(m, f);
    entry->GetReflection()->SetInt32(entry, key, id);
    entry->GetReflection()->SetFloat(entry, bias, value);
  }
}

// Where Config lives in sampler.v1: its oneof member in SamplerSpec and, per
// table row in order, the proto field of the row's name and type (null when
// there is none: ConfigProtoMismatches reports it).
template <typename Config>
struct Binding {
  const FD* member = nullptr;
  std::vector<const FD*> fields;
};

template <typename Config>
const Binding<Config>& BindingOf() {
  static const Binding<Config>* const kBinding = [] {
    auto* binding = new Binding<Config>();
    binding->member = v1::SamplerSpec::descriptor()->FindFieldByName(Config::kName);
    const pb::Descriptor* message =
        binding->member != nullptr ? binding->member->message_type() : nullptr;
    const Config defaults;
    Config::VisitFields(defaults, [&](const FieldInfo& row, const auto& value) {
      using T = std::decay_t<decltype(value)>;
      const FD* f = message != nullptr ? message->FindFieldByName(row.name) : nullptr;
      binding->fields.push_back(f != nullptr && WireTypeOf(f) == WireTypeOf<T>() ? f : nullptr);
    });
    return binding;
  }();
  return *kBinding;
}

template <typename Config>
Config FromMessage(const pb::Message& message) {
  const Binding<Config>& binding = BindingOf<Config>();
  const pb::Reflection* reflection = message.GetReflection();
  Config config;
  size_t i = 0;
  Config::VisitFields(config, [&](const FieldInfo&, auto& value) {
    if (const FD* f = binding.fields[i++]; f != nullptr) Read(reflection, message, f, &value);
  });
  return config;
}

template <typename Config>
void ToMessage(const Config& config, pb::Message* message) {
  const Binding<Config>& binding = BindingOf<Config>();
  size_t i = 0;
  Config::VisitFields(config, [&](const FieldInfo&, const auto& value) {
    if (const FD* f = binding.fields[i++]; f != nullptr) Write(value, f, message);
  });
}

// Reads the config of one oneof member.
struct OneofReader {
  const FD* member;
  SamplerConfig (*read)(const pb::Message& message);
};

// One reader per config that has a oneof member, built once.
const std::vector<OneofReader>& OneofReaders() {
  static const std::vector<OneofReader>* const kReaders = [] {
    auto* readers = new std::vector<OneofReader>();
    ForEachSamplerConfig([readers](const auto& defaults) {
      using Config = std::decay_t<decltype(defaults)>;
      const FD* member = BindingOf<Config>().member;
      if (member == nullptr) return;
      readers->push_back({member, [](const pb::Message& message) -> SamplerConfig {
                            return FromMessage<Config>(message);
                          }});
    });
    return readers;
  }();
  return *kReaders;
}

// The mismatches of one config's table (see ConfigProtoMismatches).
template <typename Config>
void AddMismatches(std::vector<std::string>* out) {
  const FD* member = BindingOf<Config>().member;
  if (member == nullptr || member->message_type() == nullptr ||
      member->containing_oneof() == nullptr) {
    out->push_back(absl::StrCat(Config::kName, ": no message field \"", Config::kName,
                                "\" in SamplerSpec's oneof"));
    return;
  }
  const pb::Descriptor* message = member->message_type();
  std::set<std::string> rows;
  const Config defaults;
  Config::VisitFields(defaults, [&](const FieldInfo& row, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    rows.insert(row.name);
    const FD* f = message->FindFieldByName(row.name);
    if (f == nullptr) {
      out->push_back(
          absl::StrCat(Config::kName, ".", row.name, ": no field in ", message->full_name()));
    } else if (WireTypeOf(f) != WireTypeOf<T>()) {
      out->push_back(absl::StrCat(Config::kName, ".", row.name, ": table ", WireTypeOf<T>(),
                                  ", proto ", WireTypeOf(f)));
    }
  });
  for (int i = 0; i < message->field_count(); ++i) {
    if (rows.count(message->field(i)->name()) == 0) {
      out->push_back(absl::StrCat(Config::kName, ".", message->field(i)->name(),
                                  ": no row in the table of configs.h"));
    }
  }
}

}  // namespace

SamplerConfig ConfigFromSpecOneof(const v1::SamplerSpec& spec) {
  const int member = static_cast<int>(spec.config_case());
  for (const OneofReader& reader : OneofReaders()) {
    if (reader.member->number() == member) {
      return reader.read(spec.GetReflection()->GetMessage(spec, reader.member));
    }
  }
  return GreedyConfig();
}

void ConfigToSpecOneof(const SamplerConfig& config, v1::SamplerSpec* spec) {
  std::visit(
      [spec](const auto& c) {
        using Config = std::decay_t<decltype(c)>;
        const FD* member = BindingOf<Config>().member;
        if (member == nullptr) return;
        ToMessage(c, spec->GetReflection()->MutableMessage(spec, member));
      },
      config);
}

std::vector<std::string> ConfigProtoMismatches() {
  std::vector<std::string> out;
  std::set<std::string> names;
  ForEachSamplerConfig([&](const auto& defaults) {
    using Config = std::decay_t<decltype(defaults)>;
    names.insert(Config::kName);
    AddMismatches<Config>(&out);
  });
  const pb::OneofDescriptor* oneof = v1::SamplerSpec::descriptor()->FindOneofByName("config");
  for (int i = 0; oneof != nullptr && i < oneof->field_count(); ++i) {
    if (names.count(oneof->field(i)->name()) == 0) {
      out.push_back(absl::StrCat("SamplerSpec.", oneof->field(i)->name(),
                                 ": no config in SamplerConfig (configs.h) of that kName"));
    }
  }
  return out;
}

}  // namespace entroserve
