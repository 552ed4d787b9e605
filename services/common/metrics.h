// Prometheus metrics of the daemons (--metrics_port): a registry of metric
// families (prometheus-cpp), served in the text exposition format at
// http://HOST:PORT/metrics by an HTTP server of its own, plus the one metric
// both daemons have: their gRPC calls by method and status code.
//
// The metric names and what each means are listed in README.md's "Running in
// production" section; each daemon defines its own in its folder
// (services/samplerd/sampler_metrics.h, services/runnerd/runner_metrics.h).
#ifndef ENTROSERVE_SERVICES_COMMON_METRICS_H_
#define ENTROSERVE_SERVICES_COMMON_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace httplib {
class Server;
}

namespace entroserve {

class MetricsServer {
 public:
  // Serves `registry` at /metrics on host:port (port 0: a free one; host as
  // the daemons' --host, "[::]" for every interface). `before_scrape` runs
  // before each scrape, to set gauges from live state. The registry must
  // outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry,
      std::function<void()> before_scrape = {});
  ~MetricsServer();  // stops serving

  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::function<void()> before_scrape_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

// Counts every gRPC call a server answers, by method and status code:
// entroserve_grpc_server_calls_total{method="/sampler.v1.Sampler/Sample",
// code="OK"}. Added to a ServerBuilder's interceptors.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeCallCounter(
    prometheus::Registry& registry);

// Exponential histogram bucket bounds: `count` bounds from `start`, each
// `factor` times the last (seconds, entropies, ...).
prometheus::Histogram::BucketBoundaries ExponentialBuckets(double start, double factor, int count);

// Evenly spaced bounds: `count` bounds from `start`, `width` apart.
prometheus::Histogram::BucketBoundaries LinearBuckets(double start, double width, int count);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_METRICS_H_
