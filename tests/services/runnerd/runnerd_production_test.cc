// runnerd and samplerd as production runs them, real processes on loopback
// serving models/tiny: TLS and tokens on both hops (client -> runnerd ->
// samplerd) with gRPC's traces on, the health port during a drain, flags
// refused with exit code 2, and samplerd replicas behind one target, one
// killed mid-generation and started again.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "runner/v1/runner.grpc.pb.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "tests/services/test_util/certificates.h"
#include "tests/services/test_util/runnerd_test_util.h"
#include "tests/services/test_util/server_process.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRunnerToken[] = "runner-tok-4d1c";
constexpr char kSamplerToken[] = "sampler-tok-9b2e";
constexpr char kTraces[] = "GRPC_TRACE=http,chttp2_hpack_parser,tcp,secure_endpoint";

// `binary` with gRPC's traces on, its stderr into `log`.
std::unique_ptr<ServerProcess> StartTraced(const std::string& binary, const std::string& name,
                                           const std::vector<std::string>& flags,
                                           const std::string& log) {
  std::vector<std::string> args = {kTraces, "GRPC_VERBOSITY=debug", binary};
  args.insert(args.end(), flags.begin(), flags.end());
  return ServerProcess::Start("/usr/bin/env", args, name, log);
}

std::string HexPairs(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    absl::StrAppend(&out, out.empty() ? "" : " ", absl::Hex(c, absl::kZeroPad2));
  }
  return out;
}

void ExpectNoToken(const std::string& log_text, const std::string& token) {
  EXPECT_THAT(log_text, Not(HasSubstr(token)));
  EXPECT_THAT(log_text, Not(HasSubstr(HexPairs(token))));
}

class RunnerdSecurityTest : public testing::Test {
 protected:
  void SetUp() override {
    certs_ = MakeTestCertificates();
    ASSERT_FALSE(certs_.dir.empty());
    WriteTestFile(certs_.dir + "/runner_tokens", absl::StrCat(kRunnerToken, "\n"));
    WriteTestFile(certs_.dir + "/sampler_tokens", absl::StrCat(kSamplerToken, "\n"));
  }
  void TearDown() override {
    if (!certs_.dir.empty()) std::filesystem::remove_all(certs_.dir);
  }

  // samplerd with mutual TLS and tokens.
  std::vector<std::string> SamplerdFlags() const {
    return {"--host=127.0.0.1",
            "--port=0",
            "--workers=1",
            "--tls_cert_file=" + certs_.server_cert,
            "--tls_key_file=" + certs_.server_key,
            "--tls_client_ca_file=" + certs_.ca,
            "--auth_token_file=" + certs_.dir + "/sampler_tokens"};
  }
  // runnerd with TLS and tokens, reaching samplerd at `address` with its
  // client certificate and token.
  std::vector<std::string> RunnerdFlags(const std::string& address) const {
    return {absl::StrCat("--model=", kTinyModel),
            "--host=127.0.0.1",
            "--port=0",
            "--threads=1",
            "--tls_cert_file=" + certs_.server_cert,
            "--tls_key_file=" + certs_.server_key,
            "--auth_token_file=" + certs_.dir + "/runner_tokens",
            "--sampler=" + address,
            "--sampler_tls_ca_file=" + certs_.ca,
            "--sampler_tls_cert_file=" + certs_.client_cert,
            "--sampler_tls_key_file=" + certs_.client_key,
            "--sampler_auth_token_file=" + certs_.dir + "/sampler_tokens"};
  }

  TestCertificates certs_;
};

TEST_F(RunnerdSecurityTest, TlsAndTokensOnBothHopsGiveThePlaintextTokensAndLogNoToken) {
  const std::string samplerd_log = certs_.dir + "/samplerd.log";
  const std::string runnerd_log = certs_.dir + "/runnerd.log";
  auto samplerd = StartTraced(SAMPLERD_PATH, "samplerd", SamplerdFlags(), samplerd_log);
  ASSERT_NE(samplerd, nullptr);
  auto secure =
      StartTraced(RUNNERD_PATH, "runnerd", RunnerdFlags(samplerd->address()), runnerd_log);
  ASSERT_NE(secure, nullptr);
  ASSERT_TRUE(secure->WaitForOutput("runnerd serving", std::chrono::seconds(60)));
  auto plaintext = StartRunnerd();
  ASSERT_NE(plaintext, nullptr);

  auto secure_stub =
      v1::Runner::NewStub(TlsChannel(secure->address(), certs_.ca, "", "", kRunnerToken));
  auto plaintext_stub = RunnerStub(*plaintext);
  for (const v1::GenerateRequest& request :
       {TextRequest(kPrompt, 16, 5), WithSampler(TextRequest("In the morning", 16, 6), "chain")}) {
    const Generation want = Generate(plaintext_stub.get(), request);
    const Generation got = Generate(secure_stub.get(), request);
    ASSERT_TRUE(want.status.ok()) << Describe(want.status);
    ASSERT_TRUE(got.status.ok()) << Describe(got.status);
    ExpectSameTokens(want, got);
  }
  // The tensors still went through shared memory: samplerd is on this host.
  EXPECT_GE(RegionsOf(secure->pid()), 1);

  // Without a token, or in plaintext, runnerd refuses.
  auto no_token = v1::Runner::NewStub(TlsChannel(secure->address(), certs_.ca));
  EXPECT_EQ(Generate(no_token.get(), TextRequest(kPrompt, 2, 1)).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto refused = v1::Runner::NewStub(PlaintextChannel(secure->port()));
  EXPECT_EQ(Generate(refused.get(), TextRequest(kPrompt, 2, 1), std::chrono::seconds(5))
                .status.error_code(),
            grpc::StatusCode::UNAVAILABLE);

  secure_stub.reset();
  no_token.reset();
  EXPECT_EQ(secure->Stop(SIGTERM), 0);
  EXPECT_EQ(samplerd->Stop(SIGTERM), 0);
  for (const std::string& log : {runnerd_log, samplerd_log}) {
    SCOPED_TRACE(log);
    const std::string text = ReadTestFile(log);
    // The traces printed the headers, redacted (runnerd's outgoing ones to
    // samplerd too).
    EXPECT_THAT(text, HasSubstr("authorization: Bearer [redacted]"));
    ExpectNoToken(text, kRunnerToken);
    ExpectNoToken(text, kSamplerToken);
  }
}

TEST_F(RunnerdSecurityTest, AWrongSamplerTokenFailsTheRequestWithUnavailableNamingIt) {
  WriteTestFile(certs_.dir + "/wrong_tokens", "not-the-sampler-token\n");
  auto samplerd = StartSamplerd({"--auth_token_file=" + certs_.dir + "/sampler_tokens"});
  ASSERT_NE(samplerd, nullptr);
  auto runnerd = StartRunnerd({"--sampler=" + samplerd->address(),
                               "--sampler_auth_token_file=" + certs_.dir + "/wrong_tokens",
                               "--sampler_wait_s=1"});
  ASSERT_NE(runnerd, nullptr);
  auto stub = RunnerStub(*runnerd);
  const Generation g = Generate(stub.get(), TextRequest(kPrompt, 4, 1), std::chrono::seconds(20));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(g.status);
  EXPECT_THAT(g.status.error_message(),
              HasSubstr("invalid token: not one of this server's tokens"));
  EXPECT_TRUE(g.tokens.empty());
}

TEST(RunnerdDrainTest, SigtermTurnsTheHealthPortNotServingWhileAGenerationFinishes) {
  const int health_port = FreeTcpPort();
  auto runnerd =
      StartRunnerd({absl::StrCat("--health_port=", health_port), "--shutdown_grace_s=30"});
  ASSERT_NE(runnerd, nullptr);
  auto health = PlaintextChannel(health_port);
  ASSERT_EQ(HealthStatus(health, "runner.v1.Runner").value_or(-1), 1);
  absl::StatusOr<int> during = absl::UnknownError("not asked");
  Generation g;
  {
    auto stub = RunnerStub(*runnerd);
    g = Generate(stub.get(), TextRequest(kPrompt, 40, 1), std::chrono::seconds(120),
                 [&](grpc::ClientContext*, int i) {
                   if (i == 0) runnerd->Signal(SIGTERM);
                   if (i != 1) return;
                   const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
                   do {
                     during = HealthStatus(health, "runner.v1.Runner");
                   } while (during.value_or(-1) == 1 && std::chrono::steady_clock::now() < give_up);
                 });
  }
  EXPECT_EQ(during.value_or(-1), 2) << during.status();  // NOT_SERVING
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  EXPECT_EQ(g.tokens.size(), 40u);
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  const int status = runnerd->Stop(0, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RunnerdFlagsExitTest, BadSecurityFlagsExitWithCode2AndSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--sampler_tls_cert_file=/x.pem",
       "--sampler_tls_cert_file and --sampler_tls_key_file go together"},
      {"--sampler_auth_token_file=/nonexistent/t",
       "--sampler_auth_token_file=/nonexistent/t: cannot read it"},
      {"--tls_key_file=/x.key", "--tls_cert_file and --tls_key_file go together"},
      {"--log_format=yaml", "--log_format must be text or json, got \"yaml\""},
  };
  for (const auto& [flag, message] : cases) {
    const ProcessExit exit =
        RunToExit(RUNNERD_PATH, {absl::StrCat("--model=", kTinyModel), "--host=127.0.0.1",
                                 "--port=0", "--sampler=127.0.0.1:1", flag});
    ASSERT_TRUE(WIFEXITED(exit.status)) << flag;
    EXPECT_EQ(WEXITSTATUS(exit.status), 2) << flag << ": " << exit.output;
    EXPECT_THAT(exit.output, HasSubstr(message)) << flag;
  }
}

// The OpenAI-compatible HTTP port takes --auth_token_file's tokens as
// "Authorization: Bearer TOKEN"; /health needs none.
TEST_F(RunnerdSecurityTest, TheHttpApiNeedsTheBearerTokenButHealthDoesNot) {
  const int http_port = FreeTcpPort();
  auto runnerd = StartRunnerd({absl::StrCat("--http_port=", http_port),
                               "--auth_token_file=" + certs_.dir + "/runner_tokens"});
  ASSERT_NE(runnerd, nullptr);
  httplib::Client http("127.0.0.1", http_port);
  const auto get = [&](const std::string& path, const std::string& authorization) {
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return http.Get(path.c_str(), headers);
  };
  for (const std::string authorization : {std::string(), std::string("Bearer wrong")}) {
    const httplib::Result refused = get("/v1/models", authorization);
    ASSERT_TRUE(refused) << authorization;
    EXPECT_EQ(refused->status, 401);
    EXPECT_EQ(refused->get_header_value("WWW-Authenticate"), "Bearer");
    const nlohmann::json error = nlohmann::json::parse(refused->body)["error"];
    EXPECT_EQ(error["type"], "authentication_error");
    EXPECT_EQ(error["code"], "invalid_api_key");
    EXPECT_EQ(error["message"], authorization.empty()
                                    ? "this server requires a token: send the metadata "
                                      "\"authorization: Bearer TOKEN\""
                                    : "invalid token: not one of this server's tokens");
  }
  const httplib::Result models = get("/v1/models", absl::StrCat("Bearer ", kRunnerToken));
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_EQ(nlohmann::json::parse(models->body)["data"][0]["id"], "tiny");
  httplib::Headers headers = {{"Authorization", absl::StrCat("Bearer ", kRunnerToken)}};
  const httplib::Result completion = http.Post(
      "/v1/completions", headers,
      R"({"model": "tiny", "prompt": "The jury said", "max_tokens": 3})", "application/json");
  ASSERT_TRUE(completion);
  EXPECT_EQ(completion->status, 200) << completion->body;
  const httplib::Result health = get("/health", "");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// ---------------------------------------------------------------------------
// The README's metrics table.

// name -> type of every "# TYPE name type" line of a /metrics page.
std::map<std::string, std::string> MetricTypes(const std::string& page) {
  std::map<std::string, std::string> types;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ")) continue;
    const std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() == 2) types[parts[0]] = parts[1];
  }
  return types;
}

// name -> type of every row "| `name` | type | ..." of README.md's section
// "Running in production".
std::map<std::string, std::string> ReadmeMetricTypes() {
  const std::string readme = ReadTestFile(ENTROSERVE_SOURCE_DIR "/README.md");
  const size_t start = readme.find("## Running in production");
  const size_t end = readme.find("\n## ", start + 1);
  std::map<std::string, std::string> types;
  if (start == std::string::npos) return types;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(readme).substr(start, end - start), '\n')) {
    if (!absl::ConsumePrefix(&line, "| `entroserve_")) continue;
    const std::vector<std::string> cells = absl::StrSplit(line, " | ");
    if (cells.size() < 2) continue;
    types["entroserve_" + cells[0].substr(0, cells[0].find('`'))] = cells[1];
  }
  return types;
}

// Every metric both daemons expose (after a generation and a bad row, so
// that every family has a series) is in the README's table with its type,
// and the table lists nothing else.
TEST(ReadmeMetricsTest, TheTableListsEveryMetricOfBothDaemonsWithItsType) {
  MeteredServers servers = StartMeteredServers();
  ASSERT_NE(servers.runnerd, nullptr);
  auto stub = RunnerStub(*servers.runnerd);
  ASSERT_TRUE(Generate(stub.get(), TextRequest(kPrompt, 3, 1)).status.ok());
  {
    auto sampler = ::sampler::v1::Sampler::NewStub(servers.samplerd->NewChannel());
    ::sampler::v1::SampleRequest request;
    request.add_rows()->mutable_spec()->set_name("greedy");  // no logits: an in-band error
    ::sampler::v1::SampleResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(sampler->Sample(&context, request, &response).ok());
    ASSERT_TRUE(response.results(0).has_error());
  }
  std::map<std::string, std::string> exposed;
  for (const int port : {servers.sampler_metrics, servers.runner_metrics}) {
    absl::StatusOr<std::string> page = HttpGet(port, "/metrics");
    ASSERT_TRUE(page.ok()) << page.status();
    exposed.merge(MetricTypes(*page));
  }
  EXPECT_EQ(ReadmeMetricTypes(), exposed);
}

// ---------------------------------------------------------------------------
// Replicas.

// The sum of a counter's series in a /metrics page (0 when absent).
double CounterSum(const std::string& page, const std::string& name) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, name + "{") && !absl::StartsWith(line, name + " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) sum += value;
  }
  return sum;
}

double RowsOf(int metrics_port) {
  absl::StatusOr<std::string> page = HttpGet(metrics_port, "/metrics");
  return page.ok() ? CounterSum(*page, "entroserve_sampler_rows_total") : -1;
}

struct Replica {
  int port = 0;
  int metrics_port = 0;
  std::unique_ptr<ServerProcess> process;

  void Start() {
    process = StartSamplerd(
        {absl::StrCat("--port=", port), absl::StrCat("--metrics_port=", metrics_port)});
  }
};

// Three samplerd behind one ipv4: target; one that serves rows is killed at
// the tenth token and started again on its ports at the sixtieth. Every generation
// succeeds with the local sampler's tokens, and every replica (the
// restarted one too, since streams are reopened each second) samples rows,
// as its /metrics shows.
TEST(RunnerdReplicasTest, ReplicasShareTheRowsAndOneKilledAndRestartedChangesNoToken) {
  std::vector<Replica> replicas(3);
  std::vector<std::string> addresses;
  for (Replica& r : replicas) {
    r.port = FreeTcpPort();
    r.metrics_port = FreeTcpPort();
    r.Start();
    ASSERT_NE(r.process, nullptr);
    addresses.push_back(absl::StrCat("127.0.0.1:", r.port));
  }
  auto runnerd = StartRunnerd({"--sampler=ipv4:" + absl::StrJoin(addresses, ","),
                               "--sampler_stream_max_age_s=1", "--sampler_streams=2"});
  auto local = StartRunnerd();
  ASSERT_NE(runnerd, nullptr);
  ASSERT_NE(local, nullptr);
  auto stub = RunnerStub(*runnerd);
  auto local_stub = RunnerStub(*local);

  const v1::GenerateRequest request = TextRequest(kPrompt, 200, 9);
  const Generation want = Generate(local_stub.get(), request);
  ASSERT_TRUE(want.status.ok()) << Describe(want.status);
  // The victim: a replica serving this generation's rows.
  size_t victim = replicas.size();
  const Generation disturbed =
      Generate(stub.get(), request, std::chrono::seconds(120), [&](grpc::ClientContext*, int i) {
        if (i == 10) {
          for (victim = 0; victim < replicas.size(); ++victim) {
            if (RowsOf(replicas[victim].metrics_port) > 0) break;
          }
          if (victim < replicas.size()) replicas[victim].process->Stop(SIGKILL);
        }
        if (i == 60 && victim < replicas.size()) replicas[victim].Start();
      });
  ASSERT_TRUE(disturbed.status.ok()) << Describe(disturbed.status);
  ASSERT_LT(victim, replicas.size()) << "no replica had served a row";
  ASSERT_NE(replicas[victim].process, nullptr);
  ExpectSameTokens(want, disturbed);

  // More generations until every replica, the restarted one too, has
  // served rows (streams older than a second reopen on the next address).
  const auto all_served = [&] {
    for (const Replica& r : replicas) {
      if (RowsOf(r.metrics_port) <= 0) return false;
    }
    return true;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (uint64_t seed = 100; !all_served() && std::chrono::steady_clock::now() < give_up; ++seed) {
    const v1::GenerateRequest more = TextRequest(kPrompt, 60, seed);
    const Generation a = Generate(local_stub.get(), more);
    const Generation b = Generate(stub.get(), more);
    ASSERT_TRUE(b.status.ok()) << Describe(b.status);
    ExpectSameTokens(a, b);
  }
  for (size_t i = 0; i < replicas.size(); ++i) {
    EXPECT_GT(RowsOf(replicas[i].metrics_port), 0) << "replica " << i;
  }
}

}  // namespace
}  // namespace entroserve
