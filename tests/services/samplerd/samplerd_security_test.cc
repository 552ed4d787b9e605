// samplerd as production runs it, a real process on loopback: TLS and mutual
// TLS with certificates made by openssl, bearer tokens (and their rotation,
// and their absence from the log even with gRPC's http trace on), the
// plaintext health port beside a TLS port, JSON logs, flags refused with
// exit code 2, and the drain on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "tests/services/test_util/certificates.h"
#include "tests/services/test_util/server_process.h"

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
using ::testing::HasSubstr;

constexpr char kToken[] = "tok-right-7f3a9c";
constexpr char kWrongToken[] = "tok-wrong-55e01b";
constexpr int kHealthServing = 1;
constexpr int kHealthNotServing = 2;

std::unique_ptr<ServerProcess> StartSamplerd(std::vector<std::string> flags,
                                             const std::string& stderr_path = "") {
  std::vector<std::string> args = {"--host=127.0.0.1", "--port=0", "--workers=1"};
  args.insert(args.end(), flags.begin(), flags.end());
  return ServerProcess::Start(SAMPLERD_PATH, args, "samplerd", stderr_path);
}

// One greedy row whose answer is token 3, the largest logit.
v1::SampleRequest GreedyRequest() {
  v1::SampleRequest request;
  v1::SampleRow* row = request.add_rows();
  row->set_sequence_id("s");
  row->mutable_spec()->set_name("greedy");
  row->mutable_logits()->set_dtype(v1::DTYPE_FLOAT32);
  row->mutable_logits()->add_shape(6);
  row->mutable_logits()->set_data(
      EncodeTensor(DType::kFloat32, std::vector<float>{0.5f, 1.f, 2.f, 9.f, 3.f, -1.f}));
  return request;
}

// Sample of GreedyRequest with `token` as bearer token (none when empty);
// an OK answer must be token 3.
grpc::Status SampleOnce(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& token = "") {
  auto stub = v1::Sampler::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  v1::SampleResponse response;
  const grpc::Status status = stub->Sample(&context, GreedyRequest(), &response);
  if (status.ok()) {
    EXPECT_EQ(response.results_size(), 1);
    if (response.results_size() == 1) EXPECT_EQ(response.results(0).token_id(), 3);
  }
  return status;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

class SamplerdSecurityTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new TestCertificates(MakeTestCertificates());
    token_file_ = new std::string(certs_->dir + "/tokens");
  }
  static void TearDownTestSuite() {
    if (!certs_->dir.empty()) std::filesystem::remove_all(certs_->dir);
    delete certs_;
    delete token_file_;
  }
  void SetUp() override {
    ASSERT_FALSE(certs_->dir.empty()) << "openssl could not make the certificates";
    WriteTestFile(*token_file_, absl::StrCat("# rotated by hand\n\n", kToken, "\n"));
  }

  static std::vector<std::string> TlsFlags() {
    return {"--tls_cert_file=" + certs_->server_cert, "--tls_key_file=" + certs_->server_key};
  }
  static std::string TokenFlag() { return "--auth_token_file=" + *token_file_; }
  static std::shared_ptr<grpc::Channel> Tls(const ServerProcess& server) {
    return TlsChannel(server.address(), certs_->ca);
  }

  static TestCertificates* certs_;
  static std::string* token_file_;
};
TestCertificates* SamplerdSecurityTest::certs_ = nullptr;
std::string* SamplerdSecurityTest::token_file_ = nullptr;

TEST_F(SamplerdSecurityTest, TlsRefusesPlaintextClientsAndServersOfAnotherCa) {
  std::unique_ptr<ServerProcess> server = StartSamplerd(TlsFlags());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(SampleOnce(PlaintextChannel(server->port())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(SampleOnce(TlsChannel(server->address(), certs_->other_ca)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  const grpc::Status ok = SampleOnce(Tls(*server));
  EXPECT_TRUE(ok.ok()) << Describe(ok);
}

TEST_F(SamplerdSecurityTest, MutualTlsNeedsAClientCertificateOfItsCa) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls_client_ca_file=" + certs_->ca);
  std::unique_ptr<ServerProcess> server = StartSamplerd(flags);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(SampleOnce(Tls(*server)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(SampleOnce(TlsChannel(server->address(), certs_->ca, certs_->other_client_cert,
                                  certs_->other_client_key))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  const grpc::Status ok = SampleOnce(
      TlsChannel(server->address(), certs_->ca, certs_->client_cert, certs_->client_key));
  EXPECT_TRUE(ok.ok()) << Describe(ok);
}

// Missing and wrong tokens, the right one, and health without one, through
// `channel` to a server that requires tokens.
void ExpectTokensChecked(const std::shared_ptr<grpc::Channel>& channel) {
  const grpc::Status none = SampleOnce(channel);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(none.error_message(),
            "this server requires a token: send the metadata \"authorization: Bearer "
            "TOKEN\"");
  const grpc::Status wrong = SampleOnce(channel, kWrongToken);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "invalid token: not one of this server's tokens");
  const grpc::Status right = SampleOnce(channel, kToken);
  EXPECT_TRUE(right.ok()) << Describe(right);
  EXPECT_EQ(HealthStatus(channel, "sampler.v1.Sampler").value_or(-1), kHealthServing);
  EXPECT_EQ(HealthStatus(channel, "").value_or(-1), kHealthServing);
}

TEST_F(SamplerdSecurityTest, TokensOverTlsAreCheckedBeforeAnyHandlerReflectionIncluded) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back(TokenFlag());
  std::unique_ptr<ServerProcess> server = StartSamplerd(flags);
  ASSERT_NE(server, nullptr);
  ExpectTokensChecked(Tls(*server));
  const absl::StatusOr<std::string> reflection =
      GenericUnary(Tls(*server), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   ShortBytesField(7, ""));
  EXPECT_EQ(reflection.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(SamplerdSecurityTest, TokensWithoutTlsAreCheckedAndReflectionIsOff) {
  std::unique_ptr<ServerProcess> server = StartSamplerd({TokenFlag()});
  ASSERT_NE(server, nullptr);
  ExpectTokensChecked(PlaintextChannel(server->port()));
  const absl::StatusOr<std::string> reflection = GenericUnary(
      PlaintextChannel(server->port()),
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ShortBytesField(7, ""));
  EXPECT_EQ(reflection.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(SamplerdSecurityTest, ARewrittenTokenFileTakesEffectWithoutARestart) {
  std::unique_ptr<ServerProcess> server = StartSamplerd({TokenFlag()});
  ASSERT_NE(server, nullptr);
  auto channel = PlaintextChannel(server->port());
  ASSERT_TRUE(SampleOnce(channel, kToken).ok());
  WriteTestFile(*token_file_, absl::StrCat(kWrongToken, "\n"));
  // Looked at once a second at most.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!SampleOnce(channel, kWrongToken).ok() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(SampleOnce(channel, kWrongToken).ok());
  EXPECT_EQ(SampleOnce(channel, kToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // An emptied file keeps the tokens it had (a half-written rotation).
  WriteTestFile(*token_file_, "");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(SampleOnce(channel, kWrongToken).ok());
}

// `text` as gRPC's byte dumps print it: "74 6f 6b".
std::string HexPairs(const std::string& text) {
  std::string out;
  for (const unsigned char c : text)
    absl::StrAppend(&out, out.empty() ? "" : " ", absl::Hex(c, absl::kZeroPad2));
  return out;
}

// gRPC's traces print the headers it receives (chttp2_hpack_parser) and the
// bytes it reads (tcp, and secure_endpoint once decrypted): the token must
// not reach the log anyway, with or without TLS.
TEST_F(SamplerdSecurityTest, TokensNeverReachTheLogEvenWithGrpcTracesOn) {
  for (const bool tls : {false, true}) {
    SCOPED_TRACE(tls ? "TLS" : "plaintext");
    const std::string log = absl::StrCat(certs_->dir, "/trace_", tls, ".log");
    std::vector<std::string> args = {"GRPC_TRACE=http,chttp2_hpack_parser,tcp,secure_endpoint",
                                     "GRPC_VERBOSITY=debug",
                                     SAMPLERD_PATH,
                                     "--host=127.0.0.1",
                                     "--port=0",
                                     TokenFlag()};
    if (tls) {
      for (const std::string& flag : TlsFlags()) args.push_back(flag);
    }
    auto server = ServerProcess::Start("/usr/bin/env", args, "samplerd", log);
    ASSERT_NE(server, nullptr);
    {
      auto channel = tls ? Tls(*server) : PlaintextChannel(server->port());
      EXPECT_TRUE(SampleOnce(channel, kToken).ok());
      EXPECT_EQ(SampleOnce(channel, kWrongToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    }
    EXPECT_EQ(server->Stop(SIGTERM), 0);
    const std::string text = ReadTestFile(log);
    // The traces did print the header, redacted, and the bytes' dumps, cut.
    EXPECT_THAT(text, HasSubstr("authorization: Bearer [redacted]"));
    EXPECT_THAT(text, HasSubstr("READ DATA: [bytes not logged]"));
    for (const std::string token : {kToken, kWrongToken}) {
      EXPECT_THAT(text, ::testing::Not(HasSubstr(token)));
      EXPECT_THAT(text, ::testing::Not(HasSubstr(HexPairs(token))));
    }
  }
}

TEST_F(SamplerdSecurityTest, TheHealthPortSpeaksPlaintextHealthAloneBesideTls) {
  const int health_port = FreeTcpPort();
  std::vector<std::string> flags = TlsFlags();
  flags.push_back(TokenFlag());
  flags.push_back(absl::StrCat("--health_port=", health_port));
  std::unique_ptr<ServerProcess> server = StartSamplerd(flags);
  ASSERT_NE(server, nullptr);
  auto health = PlaintextChannel(health_port);
  EXPECT_EQ(HealthStatus(health, "").value_or(-1), kHealthServing);
  EXPECT_EQ(HealthStatus(health, "sampler.v1.Sampler").value_or(-1), kHealthServing);
  // Nothing else: not the sampler, even with the right token.
  EXPECT_EQ(SampleOnce(health, kToken).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(ReflectedServices(health).empty());
}

TEST_F(SamplerdSecurityTest, JsonLogsAreOneObjectPerLine) {
  const std::string log = certs_->dir + "/json.log";
  std::unique_ptr<ServerProcess> server = StartSamplerd({"--log_format=json", TokenFlag()}, log);
  ASSERT_NE(server, nullptr);
  WriteTestFile(*token_file_, "\n");  // a warning: "keeping the previous tokens"
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(SampleOnce(PlaintextChannel(server->port()), kToken).ok());
  EXPECT_EQ(server->Stop(SIGTERM), 0);
  std::istringstream lines(ReadTestFile(log));
  std::vector<std::string> messages;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(object.is_object()) << line;
    EXPECT_EQ(object.value("program", ""), "samplerd") << line;
    EXPECT_THAT(object.value("time", ""),
                ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z"));
    EXPECT_THAT(object.value("level", ""), ::testing::AnyOf("info", "warning", "error"));
    messages.push_back(object.value("level", "") + " " + object.value("message", ""));
  }
  EXPECT_THAT(messages, ::testing::Contains(HasSubstr("warning keeping the previous tokens: "
                                                      "--auth_token_file=")));
  EXPECT_THAT(messages, ::testing::Contains("info signal 15, shutting down"));
}

// samplerctl's connection flags: mutual TLS and a token, and a token in
// plaintext.
TEST_F(SamplerdSecurityTest, SamplerctlConnectsWithTlsAClientCertificateAndAToken) {
  std::vector<std::string> flags = TlsFlags();
  flags.push_back("--tls_client_ca_file=" + certs_->ca);
  flags.push_back(TokenFlag());
  std::unique_ptr<ServerProcess> tls = StartSamplerd(flags);
  std::unique_ptr<ServerProcess> plaintext = StartSamplerd({TokenFlag()});
  ASSERT_NE(tls, nullptr);
  ASSERT_NE(plaintext, nullptr);
  const std::vector<std::string> client = {"--tls_ca_file=" + certs_->ca,
                                           "--tls_cert_file=" + certs_->client_cert,
                                           "--tls_key_file=" + certs_->client_key};
  std::vector<std::string> args = {"samplers", "--json", "--server=" + tls->address()};
  args.insert(args.end(), client.begin(), client.end());
  const ProcessExit refused = RunToExit(SAMPLERCTL_PATH, args);
  EXPECT_EQ(WEXITSTATUS(refused.status), 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("this server requires a token"));
  args.push_back(TokenFlag());
  const ProcessExit ok = RunToExit(SAMPLERCTL_PATH, args);
  EXPECT_EQ(WEXITSTATUS(ok.status), 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("\"greedy\""));
  const ProcessExit in_plaintext = RunToExit(
      SAMPLERCTL_PATH, {"samplers", "--json", "--server=" + plaintext->address(), TokenFlag()});
  EXPECT_EQ(WEXITSTATUS(in_plaintext.status), 0) << in_plaintext.output;
  EXPECT_THAT(in_plaintext.output, HasSubstr("\"greedy\""));
  const ProcessExit half = RunToExit(
      SAMPLERCTL_PATH, {"samplers", "--server=" + tls->address(), "--tls_key_file=/k.pem"});
  EXPECT_EQ(WEXITSTATUS(half.status), 2);
  EXPECT_THAT(half.output, HasSubstr("--tls_cert_file and --tls_key_file go together"));
}

TEST(SamplerdFlagsExitTest, BadSecurityFlagsExitWithCode2AndSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--tls_cert_file=/x.pem", "--tls_cert_file and --tls_key_file go together"},
      {"--tls_client_ca_file=/x.pem", "--tls_client_ca_file needs --tls_cert_file"},
      {"--log_format=xml", "--log_format must be text or json, got \"xml\""},
      {"--health_port=70000", "--health_port must be in [0, 65535], got 70000"},
      {"--metrics_port=-1", "--metrics_port must be in [0, 65535], got -1"},
      {"--auth_token_file=/nonexistent/tokens",
       "--auth_token_file=/nonexistent/tokens: cannot "
       "read it"},
  };
  for (const auto& [flag, message] : cases) {
    const ProcessExit exit = RunToExit(SAMPLERD_PATH, {"--host=127.0.0.1", "--port=0", flag});
    ASSERT_TRUE(WIFEXITED(exit.status)) << flag;
    EXPECT_EQ(WEXITSTATUS(exit.status), 2) << flag;
    EXPECT_THAT(exit.output, HasSubstr(message)) << flag;
  }
}

// SIGTERM: the health port answers NOT_SERVING at once, while a stream in
// flight goes on within --shutdown_grace_s and ends OK; then exit 0.
TEST_F(SamplerdSecurityTest, SigtermTurnsHealthNotServingWhileACallInFlightCompletes) {
  const int health_port = FreeTcpPort();
  std::unique_ptr<ServerProcess> server =
      StartSamplerd({absl::StrCat("--health_port=", health_port), "--shutdown_grace_s=20"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  grpc::ClientContext context;
  auto stream = stub->SampleStream(&context);
  v1::SampleResponse response;
  ASSERT_TRUE(stream->Write(GreedyRequest()) && stream->Read(&response));
  auto health = PlaintextChannel(health_port);
  ASSERT_EQ(HealthStatus(health, "").value_or(-1), kHealthServing);

  const auto start = std::chrono::steady_clock::now();
  server->Signal(SIGTERM);
  absl::StatusOr<int> status = HealthStatus(health, "sampler.v1.Sampler");
  while (status.value_or(-1) == kHealthServing &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    status = HealthStatus(health, "sampler.v1.Sampler");
  }
  EXPECT_EQ(status.value_or(-1), kHealthNotServing) << status.status();
  EXPECT_EQ(HealthStatus(health, "").value_or(-1), kHealthNotServing);
  // A new connection to the main port is refused; the open stream goes on.
  EXPECT_EQ(SampleOnce(PlaintextChannel(server->port())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(GreedyRequest()) && stream->Read(&response)) << i;
    EXPECT_EQ(response.results(0).token_id(), 3);
  }
  stream->WritesDone();
  const grpc::Status finish = stream->Finish();
  EXPECT_TRUE(finish.ok()) << Describe(finish);
  EXPECT_EQ(server->Stop(SIGTERM), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace entroserve
