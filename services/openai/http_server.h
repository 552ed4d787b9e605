// The OpenAI-compatible HTTP API of runnerd (cpp-httplib): GET /v1/models
// (and /v1/models/{id}), POST /v1/completions, POST /v1/chat/completions
// (whole responses, or server-sent events with "stream": true), GET
// /health (the one route that needs no token when tokens are required),
// all over the same Engine as the gRPC service (no gRPC inside the
// process). Requests, responses and errors: request.h, generation.h,
// response.h, api_error.h.
//
// Connections: HTTP/1.1 with keep-alive; each connection holds one worker of
// a pool of `threads` while it is open (an event stream for its whole
// length), so the pool is sized for the engine's batch and queue plus idle
// keep-alive connections. A response is written from the worker, which
// waits for the engine's events 50 ms at a time and looks at its socket in
// between: a client that went away (during the queue wait, the prefill or
// the decode) cancels its generation, which frees the slot at the engine's
// next step. Whole (non-stream) responses are sent chunked for the same
// reason: the status line goes out when the request is admitted, so an
// error after that (the sampler unreachable, a model error) comes as an
// {"error": ...} body with status 200. Bodies past max_body_bytes are 413,
// whether sent with a Content-Length or chunked.
//
// Life: Start() listens (before the model is loaded: /health and every
// route answer 503 "loading" until Attach()); Drain() makes /health and new
// requests 503 while the engine finishes what it has; Stop() waits for the
// responses under way to be written (the engine's Shutdown ended them) and
// closes the listener.
//
// Thread-safety: Attach, Drain and Stop may be called from any thread; the
// ServedModel and the Engine must outlive Stop().
#ifndef ENTROSERVE_SERVICES_OPENAI_HTTP_SERVER_H_
#define ENTROSERVE_SERVICES_OPENAI_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/served_model.h"
#include "services/common/auth.h"

namespace httplib {
class Server;
}

namespace entroserve::openai {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  // 0: a free port (Start() returns it).
  int port = 0;
  int64_t max_body_bytes = 8 << 20;
  // Worker threads (connections open at once).
  int threads = 128;
  // The model's id in /v1/models and in requests' "model".
  std::string model_name;
  // runnerd's --auth_token_file: every route but /health needs the header
  // "Authorization: Bearer TOKEN" with one of its tokens, else 401
  // (authentication_error). Null: no token required.
  std::shared_ptr<TokenFile> tokens;
};

// Workers for an engine of `max_batch` running and `max_queue` waiting
// requests: every one of them may hold a stream, and as many idle
// keep-alive connections again, plus headroom for /health.
int DefaultHttpThreads(int max_batch, int max_queue);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop(absl::ZeroDuration())
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a thread of its own; the port bound.
  absl::StatusOr<int> Start();
  // Serves `model` through `engine` from now on (not owned).
  void Attach(const ServedModel* model, Engine* engine);
  // /health and new requests answer 503 "draining" from now on.
  void Drain();
  // Drain(), waits up to `wait` for the responses under way, then closes
  // every connection and returns once the listener's thread has ended.
  // Idempotent.
  void Stop(absl::Duration wait);

  // Responses being written now (for tests and the drain).
  int active() const { return active_.load(); }

 private:
  struct Attached {
    const ServedModel* model;
    Engine* engine;
    int64_t created;
  };
  class Handlers;

  HttpServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<Handlers> handlers_;
  std::thread thread_;
  std::unique_ptr<Attached> attached_storage_;
  std::atomic<const Attached*> attached_{nullptr};
  std::atomic<bool> draining_{false};
  std::atomic<int> active_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace entroserve::openai

#endif  // ENTROSERVE_SERVICES_OPENAI_HTTP_SERVER_H_
