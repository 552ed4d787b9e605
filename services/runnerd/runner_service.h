// runner.v1.Runner over the gRPC callback API: thin handlers over the
// serving engine (model_runner/engine/engine.h). Each handler parses and checks its
// request (runner_convert.h), passes the deadline on, calls the core and
// converts the status in one helper (status_util.h).
//
// Generate: a ServerWriteReactor per call with one write in flight. Tokens
// the engine produces while a write is in flight are gathered into the next
// message; the first message carries the seed and the prompt's length, the
// last one the finish reason and usage. A client that goes away cancels its
// generation, which frees its batch slot at the engine's next step. An error
// after some tokens (deadline, unreachable sampler) ends the call with that
// status once the tokens already generated are written.
//
// With bearer tokens required (and not checked by the transport), a call
// without the right token ends UNAUTHENTICATED before anything else.
//
// Before the model is attached (runnerd loads it after it starts listening),
// every RPC answers UNAVAILABLE "the model is still loading".
//
// Thread-safety: thread-safe. The service must outlive the grpc::Server; the
// ServedModel and the Engine passed to Attach() must outlive the server's
// Wait() (their calls end with it).
#ifndef ENTROSERVE_SERVICES_RUNNERD_RUNNER_SERVICE_H_
#define ENTROSERVE_SERVICES_RUNNERD_RUNNER_SERVICE_H_

#include <atomic>
#include <string>

#include "grpcpp/grpcpp.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/served_model.h"
#include "runner/v1/runner.grpc.pb.h"
#include "sampler/core/configs.h"
#include "services/common/auth.h"

namespace entroserve {

// Every method takes its request as raw bytes and parses it itself
// (services/common/message_bytes.h), so that bytes that do not parse, or a
// prompt that is not valid UTF-8, get INVALID_ARGUMENT naming the field
// instead of gRPC's bare UNIMPLEMENTED.
using RunnerServiceBase = ::runner::v1::Runner::WithRawCallbackMethod_Generate<
    ::runner::v1::Runner::WithRawCallbackMethod_Tokenize<
        ::runner::v1::Runner::WithRawCallbackMethod_Detokenize<
            ::runner::v1::Runner::WithRawCallbackMethod_ModelInfo<::runner::v1::Runner::Service>>>>;

class RunnerService final : public RunnerServiceBase {
 public:
  // `default_sampler`: the sampler of requests that name none. `auth` (not
  // owned, may be null): the token check each call passes first
  // (services/common/auth.h).
  explicit RunnerService(SamplerConfig default_sampler, const AuthGate* auth = nullptr);

  // Makes the service answer with `model` and `engine` (not owned);
  // `sampler` is what ModelInfo reports ("local" or the samplerd address).
  void Attach(const ServedModel* model, Engine* engine, std::string sampler);

  // runner.v1.GenerateRequest in, runner.v1.GenerateResponse messages out.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;
  // runner.v1.TokenizeRequest in, runner.v1.TokenizeResponse out.
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  // runner.v1.DetokenizeRequest in, runner.v1.DetokenizeResponse out.
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  // runner.v1.ModelInfoRequest in, runner.v1.ModelInfoResponse out.
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;

 private:
  struct Attached {
    const ServedModel* model;
    Engine* engine;
    std::string sampler;
  };
  // Null until Attach().
  const Attached* attached() const { return attached_.load(std::memory_order_acquire); }

  // OK, or UNAUTHENTICATED: the call lacks the token this service checks.
  absl::Status CheckAuth(grpc::CallbackServerContext* context) const;

  // The answers of the unary methods, once the call passed its token check
  // and its request parsed.
  absl::Status AnswerTokenize(const Attached& attached,
                              const ::runner::v1::TokenizeRequest& request,
                              ::runner::v1::TokenizeResponse* response) const;
  absl::Status AnswerDetokenize(const Attached& attached,
                                const ::runner::v1::DetokenizeRequest& request,
                                ::runner::v1::DetokenizeResponse* response) const;
  void AnswerModelInfo(const Attached& attached, ::runner::v1::ModelInfoResponse* response) const;

  // Answers a unary method through `answer(const Attached&, const Request&,
  // Response*)` after the token check and once the model is attached.
  template <typename Request, typename Response, typename Answer>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request_bytes,
                                  grpc::ByteBuffer* response_bytes, Answer answer);

  const SamplerConfig default_sampler_;
  const AuthGate* const auth_;
  std::atomic<const Attached*> attached_{nullptr};
  // Owns what attached_ points to.
  std::unique_ptr<Attached> attached_storage_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_RUNNER_SERVICE_H_
