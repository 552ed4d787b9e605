#include "services/openai/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sampler/base/seed.h"
#include "services/openai/api_error.h"
#include "services/openai/exchange.h"
#include "services/openai/generation.h"
#include "services/openai/request.h"
#include "services/openai/response.h"

namespace entroserve::openai {
namespace {

using nlohmann::json;

// How long a response's worker waits for the engine before it looks at its
// connection again.
constexpr absl::Duration kPoll = absl::Milliseconds(50);
// How often Stop() looks at the responses under way.
constexpr absl::Duration kStopPoll = absl::Milliseconds(20);

void Reply(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  if (error.status == 429) res.set_header("Retry-After", "1");
  if (error.status == 413) res.set_header("Connection", "close");
  res.set_content(Dump(ErrorJson(error)), "application/json");
}

ApiError Unavailable(const std::string& message, const std::string& code) {
  ApiError error;
  error.status = 503;
  error.type = "service_unavailable";
  error.message = message;
  error.code = code;
  return error;
}

ApiError NotFound(const std::string& message, const std::string& code,
                  std::optional<std::string> param) {
  ApiError error;
  error.status = 404;
  error.message = message;
  error.code = code;
  error.param = std::move(param);
  return error;
}

// The body, at most `limit` bytes whether sent with a Content-Length or
// chunked (httplib's own limit sees only the first: it fails the read and
// leaves 413 in `res`).
MaybeError ReadBody(const httplib::ContentReader& reader, const httplib::Response& res,
                    int64_t limit, std::string* body) {
  bool too_big = false;
  const bool ok = reader([&](const char* data, size_t size) {
    if (static_cast<int64_t>(body->size() + size) > limit) {
      too_big = true;
      return false;
    }
    body->append(data, size);
    return true;
  });
  if (too_big || (!ok && res.status == 413)) {
    ApiError error;
    error.status = 413;
    error.message = absl::StrCat("the request body is larger than ", limit,
                                 " bytes (runnerd --http_max_body_mb)");
    error.code = "request_too_large";
    return error;
  }
  if (!ok) return BadField("", "the request body could not be read");
  return std::nullopt;
}

// The bytes that end a stream for `end`: the usage chunk and [DONE], or an
// error event.
std::string StreamEnd(const GenerationEnd& end, bool client_gone, ChunkWriter* writer) {
  if (!end.status.ok()) return ChunkWriter::Error(FromStatus(end.status, std::nullopt));
  if (end.reason == FinishReason::kCancelled) {
    if (client_gone) return "";
    return ChunkWriter::Error(
        Unavailable("the server is shutting down; the generation was cut short", "draining"));
  }
  return writer->Finish(end);
}

}  // namespace

int DefaultHttpThreads(int max_batch, int max_queue) {
  return std::max(64, 2 * (max_batch + max_queue) + 16);
}

class HttpServer::Handlers {
 public:
  explicit Handlers(HttpServer* server) : s_(server) {}

  void Install(httplib::Server* http);

 private:
  // 503 while loading or draining; the attached model otherwise.
  const Attached* Serving(httplib::Response& res) const;
  void Generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader);
  void Stream(httplib::Response& res, std::shared_ptr<Exchange> exchange, ResponseContext context);
  void Whole(httplib::Response& res, std::shared_ptr<Exchange> exchange, ResponseContext context);
  void Models(const httplib::Request& req, httplib::Response& res);
  void Health(httplib::Response& res);
  httplib::Server::HandlerResponse OnError(const httplib::Request& req, httplib::Response& res);
  json ModelJson(const Attached& attached) const;

  HttpServer* const s_;
};

void HttpServer::Handlers::Install(httplib::Server* http) {
  http->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& reader) {
    Generate(Endpoint::kCompletions, req, res, reader);
  });
  http->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& reader) {
    Generate(Endpoint::kChat, req, res, reader);
  });
  http->Get("/v1/models",
            [this](const httplib::Request& req, httplib::Response& res) { Models(req, res); });
  http->Get(R"(/v1/models/(.+))",
            [this](const httplib::Request& req, httplib::Response& res) { Models(req, res); });
  http->Get("/health", [this](const httplib::Request&, httplib::Response& res) { Health(res); });
  // Before any route, as the gRPC port's check is before any handler.
  http->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (s_->options_.tokens == nullptr || req.path == "/health") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const absl::Status status = s_->options_.tokens->Check(req.get_header_value("Authorization"));
    if (status.ok()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError error;
    error.status = 401;
    error.type = "authentication_error";
    error.message = std::string(status.message());
    error.code = "invalid_api_key";
    res.set_header("WWW-Authenticate", "Bearer");
    Reply(res, error);
    return httplib::Server::HandlerResponse::Handled;
  });
  http->set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) { return OnError(req, res); }));
}

const HttpServer::Attached* HttpServer::Handlers::Serving(httplib::Response& res) const {
  const Attached* attached = s_->attached_.load(std::memory_order_acquire);
  if (attached == nullptr) {
    Reply(res,
          Unavailable("the model is still loading; wait for GET /health to answer 200", "loading"));
    return nullptr;
  }
  if (s_->draining_.load()) {
    Reply(res, Unavailable("the server is shutting down", "draining"));
    return nullptr;
  }
  return attached;
}

void HttpServer::Handlers::Generate(Endpoint endpoint, const httplib::Request& req,
                                    httplib::Response& res, const httplib::ContentReader& reader) {
  const absl::Time arrival = absl::Now();
  std::string body;
  if (MaybeError e = ReadBody(reader, res, s_->options_.max_body_bytes, &body))
    return Reply(res, *e);
  const Attached* attached = Serving(res);
  if (attached == nullptr) return;
  OpenAIRequest request;
  if (MaybeError e = ParseRequest(endpoint, body, &request)) return Reply(res, *e);
  if (request.model != s_->options_.model_name) {
    return Reply(res, NotFound(absl::StrCat("the model \"", request.model,
                                            "\" does not exist; this server serves \"",
                                            s_->options_.model_name, "\""),
                               "model_not_found", "model"));
  }
  GenerationRequest generation;
  if (MaybeError e = BuildGeneration(request, *attached->model, PickSeed(), &generation)) {
    return Reply(res, *e);
  }
  generation.arrival = arrival;
  ResponseContext context;
  context.endpoint = endpoint;
  context.created = absl::ToUnixSeconds(arrival);
  context.model = s_->options_.model_name;
  context.n = request.n;
  context.logprobs = request.logprobs;
  context.sampler_details = request.sampler_details;
  context.include_usage = request.include_usage;
  context.seed = generation.seed;
  context.tokenizer = &attached->model->tokenizer();
  auto exchange = std::make_shared<Exchange>();
  absl::StatusOr<std::shared_ptr<GenerationHandle>> handle =
      attached->engine->Submit(std::move(generation), exchange);
  if (!handle.ok()) return Reply(res, SubmitError(handle.status(), request));
  exchange->SetHandle(*handle);
  context.id = absl::StrCat(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-", (*handle)->id());
  s_->active_.fetch_add(1);
  if (request.stream) {
    Stream(res, std::move(exchange), std::move(context));
  } else {
    Whole(res, std::move(exchange), std::move(context));
  }
}

void HttpServer::Handlers::Stream(httplib::Response& res, std::shared_ptr<Exchange> exchange,
                                  ResponseContext context) {
  auto writer = std::make_shared<ChunkWriter>(std::move(context));
  auto started = std::make_shared<bool>(false);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [exchange, writer, started](size_t, httplib::DataSink& sink) {
        std::string out = *started ? "" : writer->Start();
        *started = true;
        bool done = false;
        for (Exchange::Event& event : exchange->Wait(kPoll)) {
          if (event.kind == Exchange::Event::Kind::kToken) {
            out += writer->Token(event.token);
          } else if (event.kind == Exchange::Event::Kind::kChoiceEnd) {
            out += writer->ChoiceEnded(event.choice_end);
          } else {
            out += StreamEnd(event.end, exchange->cancelled(), writer.get());
            done = true;
          }
        }
        if (out.empty() && !done) {
          if (sink.is_writable()) return true;
          exchange->Cancel();
          return false;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          exchange->Cancel();
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [this, exchange](bool) {
        exchange->Cancel();  // a no-op once the generation ended
        s_->active_.fetch_sub(1);
      });
}

void HttpServer::Handlers::Whole(httplib::Response& res, std::shared_ptr<Exchange> exchange,
                                 ResponseContext context) {
  auto builder = std::make_shared<ResponseBuilder>(std::move(context));
  res.set_chunked_content_provider(
      "application/json",
      [exchange, builder](size_t, httplib::DataSink& sink) {
        std::string out;
        for (Exchange::Event& event : exchange->Wait(kPoll)) {
          if (event.kind == Exchange::Event::Kind::kToken) {
            builder->AddToken(event.token);
          } else if (event.kind == Exchange::Event::Kind::kChoiceEnd) {
            builder->EndChoice(event.choice_end);
          } else if (!event.end.status.ok()) {
            out = Dump(ErrorJson(FromStatus(event.end.status, std::nullopt)));
          } else if (event.end.reason == FinishReason::kCancelled) {
            out = Dump(ErrorJson(Unavailable(
                "the server is shutting down; the generation was cut short", "draining")));
          } else {
            out = Dump(builder->Finish(event.end));
          }
        }
        if (out.empty()) {
          if (sink.is_writable()) return true;
          exchange->Cancel();
          return false;
        }
        if (!sink.write(out.data(), out.size())) return false;
        sink.done();
        return true;
      },
      [this, exchange](bool) {
        exchange->Cancel();
        s_->active_.fetch_sub(1);
      });
}

json HttpServer::Handlers::ModelJson(const Attached& attached) const {
  return {{"id", s_->options_.model_name},
          {"object", "model"},
          {"created", attached.created},
          {"owned_by", "entroserve"},
          {"max_model_len", attached.model->context_length()}};
}

void HttpServer::Handlers::Models(const httplib::Request& req, httplib::Response& res) {
  const Attached* attached = Serving(res);
  if (attached == nullptr) return;
  if (req.matches.size() > 1) {
    const std::string id = req.matches[1];
    if (id != s_->options_.model_name) {
      return Reply(res, NotFound(absl::StrCat("the model \"", id, "\" does not exist"),
                                 "model_not_found", "model"));
    }
    res.set_content(Dump(ModelJson(*attached)), "application/json");
    return;
  }
  json list = {{"object", "list"}, {"data", json::array({ModelJson(*attached)})}};
  res.set_content(Dump(list), "application/json");
}

void HttpServer::Handlers::Health(httplib::Response& res) {
  std::string status = "ok";
  if (s_->attached_.load() == nullptr) {
    status = "loading";
  } else if (s_->draining_.load()) {
    status = "draining";
  }
  res.status = status == "ok" ? 200 : 503;
  res.set_content(Dump(json{{"status", status}}), "application/json");
}

httplib::Server::HandlerResponse HttpServer::Handlers::OnError(const httplib::Request& req,
                                                               httplib::Response& res) {
  if (!res.body.empty() || res.content_provider_)
    return httplib::Server::HandlerResponse::Unhandled;
  ApiError error;
  error.status = res.status;
  if (res.status == 404) {
    error = NotFound(absl::StrCat("no route for ", req.method, " ", req.path), "unknown_url",
                     std::nullopt);
  } else if (res.status == 413) {
    error.message = absl::StrCat("the request body is larger than ", s_->options_.max_body_bytes,
                                 " bytes (runnerd --http_max_body_mb)");
    error.code = "request_too_large";
  } else {
    error.message = absl::StrCat("HTTP ", res.status, " for ", req.method, " ", req.path);
  }
  Reply(res, error);
  return httplib::Server::HandlerResponse::Handled;
}

HttpServer::HttpServer(HttpServerOptions options)
    : options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()),
      handlers_(std::make_unique<Handlers>(this)) {
  const int threads = std::max(1, options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_keep_alive_max_count(100000);
  server_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  server_->set_tcp_nodelay(true);
  handlers_->Install(server_.get());
}

HttpServer::~HttpServer() { Stop(absl::ZeroDuration()); }

absl::StatusOr<int> HttpServer::Start() {
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
    if (port < 0) port = 0;
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.host, ":", options_.port, " (HTTP)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void HttpServer::Attach(const ServedModel* model, Engine* engine) {
  attached_storage_ =
      std::make_unique<Attached>(Attached{model, engine, absl::ToUnixSeconds(absl::Now())});
  attached_.store(attached_storage_.get(), std::memory_order_release);
}

void HttpServer::Drain() { draining_.store(true); }

void HttpServer::Stop(absl::Duration wait) {
  if (stopped_.exchange(true)) return;
  Drain();
  const absl::Time deadline = absl::Now() + wait;
  while (active_.load() > 0 && absl::Now() < deadline) absl::SleepFor(kStopPoll);
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace entroserve::openai
