#include "services/common/metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"

namespace entroserve {
namespace {

namespace experimental = ::grpc::experimental;

const char* StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

// The counters of one method, looked up once per call.
class CallCounter final : public experimental::Interceptor {
 public:
  // `method` is the server's name of the method (ServerRpcInfo::method()),
  // which outlives every call: kept as it is, nothing to copy or free per
  // call (the call's end frees the interceptor on another core thread than
  // its last interception, a hand-over ThreadSanitizer cannot see).
  CallCounter(prometheus::Family<prometheus::Counter>* family, const char* method)
      : family_(family), method_(method) {}

  void Intercept(experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const char* code = StatusCodeName(methods->GetSendStatus().error_code());
      family_->Add({{"method", method_}, {"code", code}}).Increment();
    }
    methods->Proceed();
  }

 private:
  prometheus::Family<prometheus::Counter>* family_;
  const char* method_;
};

class CallCounterFactory final : public experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(prometheus::Registry& registry)
      : family_(&prometheus::BuildCounter()
                     .Name("entroserve_grpc_server_calls_total")
                     .Help("gRPC calls answered, by method and status code.")
                     .Register(registry)) {}

  experimental::Interceptor* CreateServerInterceptor(experimental::ServerRpcInfo* info) override {
    return new CallCounter(family_, info->method() == nullptr ? "" : info->method());
  }

 private:
  prometheus::Family<prometheus::Counter>* family_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry,
    std::function<void()> before_scrape) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = std::move(registry);
  server->before_scrape_ = std::move(before_scrape);
  server->http_ = std::make_unique<httplib::Server>();
  MetricsServer* self = server.get();
  server->http_->Get("/metrics", [self](const httplib::Request&, httplib::Response& response) {
    if (self->before_scrape_) self->before_scrape_();
    response.set_content(prometheus::TextSerializer().Serialize(self->registry_->Collect()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  // httplib resolves the host itself: "[::]" is written "::" there.
  const std::string bind_host(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  server->port_ = port == 0 ? server->http_->bind_to_any_port(bind_host)
                            : (server->http_->bind_to_port(bind_host, port) ? port : -1);
  if (server->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_port: cannot listen on ", host, ":", port));
  }
  server->thread_ = std::thread([self] { self->http_->listen_after_bind(); });
  return server;
}

MetricsServer::~MetricsServer() {
  // stop() does nothing before listen_after_bind() has started: give the
  // thread a moment to get there.
  for (int i = 0; http_ && !http_->is_running() && i < 100; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeCallCounter(
    prometheus::Registry& registry) {
  return std::make_unique<CallCounterFactory>(registry);
}

prometheus::Histogram::BucketBoundaries ExponentialBuckets(double start, double factor, int count) {
  prometheus::Histogram::BucketBoundaries bounds;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

prometheus::Histogram::BucketBoundaries LinearBuckets(double start, double width, int count) {
  prometheus::Histogram::BucketBoundaries bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return bounds;
}

}  // namespace entroserve
