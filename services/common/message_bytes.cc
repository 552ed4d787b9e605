#include "services/common/message_bytes.h"

#include <map>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"
#include "sampler/base/utf8.h"

namespace entroserve {
namespace {

namespace pb = ::google::protobuf;

// The first string field of `fields` (a message of type `descriptor`, at
// path `prefix`) that is not valid UTF-8, searched depth first. The bytes
// are walked as unknown fields because the typed parser stops at the bad
// string without saying where it is.
absl::Status FindInvalidUtf8(const pb::UnknownFieldSet& fields, const pb::Descriptor* descriptor,
                             const std::string& prefix) {
  std::map<int, int> occurrences;
  for (int i = 0; i < fields.field_count(); ++i) {
    const pb::UnknownField& field = fields.field(i);
    const pb::FieldDescriptor* known = descriptor->FindFieldByNumber(field.number());
    if (known == nullptr || field.type() != pb::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const int index = occurrences[field.number()]++;
    const std::string path = known->is_repeated()
                                 ? absl::StrCat(prefix, known->name(), "[", index, "]")
                                 : absl::StrCat(prefix, known->name());
    if (known->type() == pb::FieldDescriptor::TYPE_STRING) {
      if (absl::Status s = CheckUtf8Field(field.length_delimited(), path); !s.ok()) return s;
    } else if (known->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
      pb::UnknownFieldSet nested;
      if (nested.ParseFromString(field.length_delimited())) {
        if (absl::Status s = FindInvalidUtf8(nested, known->message_type(), path + "."); !s.ok()) {
          return s;
        }
      }
    }
  }
  return absl::OkStatus();
}

// The bytes of `buffer`, copied out of its slices.
std::string BufferBytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

}  // namespace

absl::Status CheckUtf8Field(absl::string_view value, absl::string_view field) {
  absl::Status status = ValidateUtf8(std::string_view(value.data(), value.size()));
  if (status.ok()) return status;
  std::string message(status.message());
  constexpr absl::string_view kSubject = "text is";
  if (absl::StartsWith(message, kSubject)) {
    message = absl::StrCat(field, " is", message.substr(kSubject.size()));
  } else {
    message = absl::StrCat(field, ": ", message);
  }
  return absl::InvalidArgumentError(message);
}

absl::Status ParseMessage(absl::string_view bytes, pb::Message* message, absl::string_view what) {
  if (message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::OkStatus();
  }
  std::string error = absl::StrCat(what, " could not be parsed as a ", message->GetTypeName());
  pb::UnknownFieldSet fields;
  if (fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    if (absl::Status s = FindInvalidUtf8(fields, message->GetDescriptor(), ""); !s.ok()) {
      absl::StrAppend(&error, ": ", s.message());
    }
  }
  return absl::InvalidArgumentError(error);
}

absl::Status ParseMessage(const grpc::ByteBuffer& bytes, pb::Message* message,
                          absl::string_view what) {
  // The copy shares the slices (a reference each): a request of megabytes of
  // logits is parsed where it lies, and copied out only to explain an error.
  grpc::ByteBuffer shared(bytes);
  grpc::ProtoBufferReader reader(&shared);
  if (message->ParseFromZeroCopyStream(&reader) && reader.status().ok()) {
    return absl::OkStatus();
  }
  return ParseMessage(BufferBytes(bytes), message, what);
}

grpc::Status SerializeMessage(const pb::Message& message, grpc::ByteBuffer* bytes) {
  bytes->Clear();
  bool own = false;
  return grpc::SerializationTraits<pb::Message>::Serialize(message, bytes, &own);
}

}  // namespace entroserve
