#include "services/common/message_bytes.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runner/v1/runner.pb.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {
namespace {

using ::testing::StartsWith;

// `bytes` with the last byte of the first `marker` made 0xFF (never UTF-8).
std::string Break(std::string bytes, const std::string& marker) {
  const size_t at = bytes.find(marker);
  EXPECT_NE(at, std::string::npos);
  bytes[at + marker.size() - 1] = static_cast<char>(0xff);
  return bytes;
}

TEST(ParseMessageTest, AStringThatIsNotUtf8IsNamedByItsPath) {
  runner::v1::GenerateRequest request;
  runner::v1::ChatMessage* m = request.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("fine");
  m = request.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content("AB");
  runner::v1::GenerateRequest parsed;
  absl::Status status = ParseMessage(Break(request.SerializeAsString(), "AB"), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("the request could not be parsed as a runner.v1.GenerateRequest: "
                         "chat.messages[1].content is not valid UTF-8: "));
  EXPECT_TRUE(ParseMessage(request.SerializeAsString(), &parsed).ok());
}

TEST(ParseMessageTest, BytesThatAreNoMessageSaySoAndWhichMessage) {
  sampler::v1::SampleRequest parsed;
  absl::Status status =
      ParseMessage(std::string("\xff\xff\xff"), &parsed, "message 4 of the stream");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "message 4 of the stream could not be parsed as a sampler.v1.SampleRequest");
}

TEST(ParseMessageTest, AByteBufferParsesLikeItsBytes) {
  sampler::v1::SampleRequest request;
  request.add_rows()->set_sequence_id("seq-XY");
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  sampler::v1::SampleRequest parsed;
  ASSERT_TRUE(ParseMessage(buffer, &parsed).ok());
  EXPECT_EQ(parsed.rows(0).sequence_id(), "seq-XY");

  const std::string broken = Break(bytes, "seq-XY");
  grpc::Slice broken_slice(broken);
  grpc::ByteBuffer broken_buffer(&broken_slice, 1);
  EXPECT_THAT(std::string(ParseMessage(broken_buffer, &parsed).message()),
              StartsWith("the request could not be parsed as a sampler.v1.SampleRequest: "
                         "rows[0].sequence_id is not valid UTF-8"));

  grpc::ByteBuffer serialized;
  ASSERT_TRUE(SerializeMessage(request, &serialized).ok());
  sampler::v1::SampleRequest round_trip;
  ASSERT_TRUE(ParseMessage(serialized, &round_trip).ok());
  EXPECT_EQ(round_trip.SerializeAsString(), bytes);
}

}  // namespace
}  // namespace entroserve
