// A real Prometheus server (Debian's `prometheus`) scrapes samplerd's and
// runnerd's /metrics while the test generates greedily through them; its
// query API then returns exactly the tokens, rows and calls the test made.
// Skipped when the prometheus binary is absent (CTest label "prometheus").
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runner/v1/runner.grpc.pb.h"
#include "tests/services/test_util/certificates.h"
#include "tests/services/test_util/runnerd_test_util.h"
#include "tests/services/test_util/server_process.h"

extern char** environ;

namespace entroserve {
namespace {

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr int kTokens = 24;

// Prometheus, its output into `log`; stopped (SIGTERM) when destroyed.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& dir, int port, const std::vector<int>& targets) {
    std::string config =
        "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n"
        "scrape_configs:\n  - job_name: entroserve\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) {
      absl::StrAppend(&config, i ? ", " : "", "'127.0.0.1:", targets[i], "'");
    }
    config += "]\n";
    WriteTestFile(dir + "/prometheus.yml", config);
    std::vector<std::string> args = {kPrometheus, "--config.file=" + dir + "/prometheus.yml",
                                     "--storage.tsdb.path=" + dir + "/data",
                                     absl::StrCat("--web.listen-address=127.0.0.1:", port)};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir + "/prometheus.log";
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    if (posix_spawn(&pid_, kPrometheus, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~PrometheusProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// The value of an instant query that returns one series, or -1.
double QueryValue(int port, const std::string& promql) {
  std::string encoded;
  for (const unsigned char c : promql) {
    if (std::isalnum(c) || c == '_') {
      encoded += static_cast<char>(c);
    } else {
      absl::StrAppend(&encoded, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  absl::StatusOr<std::string> body = HttpGet(port, "/api/v1/query?query=" + encoded);
  if (!body.ok()) return -1;
  const nlohmann::json answer = nlohmann::json::parse(*body, nullptr, false);
  if (!answer.is_object() || answer.value("status", "") != "success") return -1;
  const nlohmann::json& result = answer["data"]["result"];
  if (!result.is_array() || result.size() != 1) return -1;
  return std::stod(result[0]["value"][1].get<std::string>());
}

// Polls until every query returns its expected value (the scrapes lag the
// generation by an interval or two); then the last values, for the report.
std::vector<double> AwaitValues(int port,
                                const std::vector<std::pair<std::string, double>>& expected) {
  std::vector<double> values(expected.size(), -1);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < give_up) {
    bool all = true;
    for (size_t i = 0; i < expected.size(); ++i) {
      values[i] = QueryValue(port, expected[i].first);
      all = all && values[i] == expected[i].second;
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return values;
}

TEST(PrometheusScrapeTest, QueriesReturnTheTokensRowsAndCallsOfAGreedyGeneration) {
  if (access(kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << kPrometheus << " is not installed (Debian package prometheus)";
  }
  char dir_template[] = "/tmp/entroserve_prometheus_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  MeteredServers servers = StartMeteredServers();
  ASSERT_NE(servers.runnerd, nullptr);
  const int port = FreeTcpPort();
  {
    PrometheusProcess prometheus(dir, port, {servers.sampler_metrics, servers.runner_metrics});
    ASSERT_TRUE(prometheus.started());

    auto stub = RunnerStub(*servers.runnerd);
    const Generation g =
        Generate(stub.get(), WithSampler(TextRequest(kPrompt, kTokens, 3), "greedy"));
    ASSERT_TRUE(g.status.ok()) << Describe(g.status);
    ASSERT_EQ(g.tokens.size(), static_cast<size_t>(kTokens));

    const std::vector<std::pair<std::string, double>> expected = {
        {"sum(entroserve_runner_generated_tokens_total)", kTokens},
        {"sum(entroserve_runner_tokens_total{sampler=\"greedy\"})", kTokens},
        {"sum(entroserve_runner_requests_total{finish_reason=\"length\"})", 1},
        {"sum(entroserve_sampler_rows_total{sampler=\"greedy\"})", kTokens},
        {"sum(entroserve_sampler_row_seconds_count{sampler=\"greedy\"})", kTokens},
        {"sum(entroserve_grpc_server_calls_total{method=\"/runner.v1.Runner/Generate\","
         "code=\"OK\"})",
         1},
        {"count(up == 1)", 2},
    };
    const std::vector<double> values = AwaitValues(port, expected);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(values[i], expected[i].second) << expected[i].first;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace entroserve
