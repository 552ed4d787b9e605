#include "services/runnerd/runner_service.h"

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "model_runner/model/transformer.h"
#include "sampler/base/seed.h"
#include "sampler/registry.h"
#include "services/common/message_bytes.h"
#include "services/common/status_util.h"
#include "services/runnerd/runner_convert.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;

constexpr char kLoading[] = "the model is still loading; wait for health status SERVING";

// The call's deadline; InfiniteFuture when it has none (gRPC gives
// time_point::max()).
absl::Time Deadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  const auto far = std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100);
  if (deadline >= far) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

class GenerateReactor;

// The shared state of one Generate call: the engine's sink, and the
// bookkeeping of the writes. Decisions are made under `mu_`; gRPC
// operations are started after it is released. The reactor is touched only
// until Finish() has been called on it.
class GenerateCall final : public GenerationSink {
 public:
  GenerateCall(GenerateReactor* reactor, const v1::GenerateRequest& request, uint64_t seed,
               int32_t prompt_tokens)
      : reactor_(reactor) {
    if (request.has_details()) details_ = request.details();
    choices_ = request.has_n() ? request.n() : 1;
    pending_.set_seed(seed);
    pending_.set_prompt_tokens(prompt_tokens);
  }

  void SetHandle(std::shared_ptr<GenerationHandle> handle) {
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      handle_ = std::move(handle);
      cancel = broken_;
    }
    if (cancel) handle_->Cancel();
  }

  void OnToken(TokenOutput token) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      TokenToProto(token, details_ ? &*details_ : nullptr, pending_.add_tokens());
      action = Next();
    }
    Run(action);
  }

  void OnChoiceEnd(const ChoiceEnd& end) override {
    if (choices_ <= 1) return;  // the last message's finish_reason says it
    absl::MutexLock lock(&mu_);
    v1::ChoiceEnd* proto = pending_.add_choices_ended();
    proto->set_choice(end.choice);
    proto->set_finish_reason(FinishReasonToProto(end.reason));
    proto->set_generated_tokens(end.generated_tokens);
  }

  void OnEnd(const GenerationEnd& end) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      status_ = ToGrpcStatus(end.status);
      if (end.status.ok()) {
        pending_.set_finish_reason(FinishReasonToProto(end.reason));
        v1::Usage* usage = pending_.mutable_usage();
        usage->set_prompt_tokens(end.prompt_tokens);
        usage->set_generated_tokens(end.generated_tokens);
        usage->set_time_to_first_token_ms(end.time_to_first_token_ms);
        usage->set_total_ms(end.total_ms);
        final_pending_ = true;
      }
      action = Next();
    }
    Run(action);
  }

  void OnWriteDone(bool ok) {
    std::shared_ptr<GenerationHandle> handle;
    Action action;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        broken_ = true;
        handle = handle_;
      }
      action = Next();
    }
    if (handle) handle->Cancel();
    Run(action);
  }

  void OnCancel() {
    std::shared_ptr<GenerationHandle> handle;
    Action action;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      handle = handle_;
      action = Next();
    }
    if (handle) handle->Cancel();
    Run(action);
  }

 private:
  // A gRPC operation decided under mu_ and started after it is released (a
  // reaction may run inline in the operation's start).
  struct Action {
    GenerateReactor* reactor = nullptr;
    const grpc::ByteBuffer* write = nullptr;
    bool finish = false;
    grpc::Status status;
  };
  Action Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Run(const Action& action);

  absl::Mutex mu_;
  GenerateReactor* reactor_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::TokenDetails> details_;  // the request's; unset: all details
  int32_t choices_ = 1;                      // the request's n
  std::shared_ptr<GenerationHandle> handle_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse pending_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse writing_message_;
  grpc::ByteBuffer writing_buffer_;  // writing_message_ serialized: the write in flight
  bool first_written_ ABSL_GUARDED_BY(mu_) = false;
  bool final_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class GenerateReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  void SetCall(std::shared_ptr<GenerateCall> call) { call_ = std::move(call); }
  void OnWriteDone(bool ok) override { call_->OnWriteDone(ok); }
  void OnCancel() override {
    if (call_) call_->OnCancel();
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<GenerateCall> call_;
};

// Every decision that starts an operation is made under mu_, so no
// operation is started twice, none after Finish, and at most one write is
// in flight; the reactor pointer is given up once Finish is decided.
GenerateCall::Action GenerateCall::Next() {
  Action action;
  if (finished_ || writing_) return action;
  if (broken_) {
    // Nothing more reaches the client; finish once the engine let go.
    if (ended_) {
      finished_ = true;
      action.reactor = std::exchange(reactor_, nullptr);
      action.finish = true;
      action.status = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    return action;
  }
  if (pending_.tokens_size() > 0 || final_pending_) {
    writing_message_.Clear();
    writing_message_.Swap(&pending_);
    if (first_written_) {
      writing_message_.clear_seed();
      writing_message_.clear_prompt_tokens();
    }
    first_written_ = true;
    final_pending_ = false;
    writing_ = true;
    action.reactor = reactor_;
    if (grpc::Status s = SerializeMessage(writing_message_, &writing_buffer_); !s.ok()) {
      // Cannot happen for a message this service built; end the call.
      writing_ = false;
      broken_ = true;
      status_ = s;
      return action;
    }
    action.write = &writing_buffer_;
    return action;
  }
  if (ended_) {
    finished_ = true;
    action.reactor = std::exchange(reactor_, nullptr);
    action.finish = true;
    action.status = status_;
  }
  return action;
}

void GenerateCall::Run(const Action& action) {
  if (action.write != nullptr) action.reactor->StartWrite(action.write);
  if (action.finish) action.reactor->Finish(action.status);
}

}  // namespace

RunnerService::RunnerService(SamplerConfig default_sampler, const AuthGate* auth)
    : default_sampler_(std::move(default_sampler)), auth_(auth) {}

absl::Status RunnerService::CheckAuth(grpc::CallbackServerContext* context) const {
  return auth_ == nullptr ? absl::OkStatus() : auth_->Check(*context);
}

void RunnerService::Attach(const ServedModel* model, Engine* engine, std::string sampler) {
  attached_storage_ = std::make_unique<Attached>(Attached{model, engine, std::move(sampler)});
  attached_.store(attached_storage_.get(), std::memory_order_release);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* RunnerService::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) {
  const absl::Time arrival = absl::Now();
  auto* reactor = new GenerateReactor();
  if (absl::Status auth = CheckAuth(context); !auth.ok()) {
    reactor->Finish(ToGrpcStatus(auth));
    return reactor;
  }
  const Attached* attached = this->attached();
  if (attached == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, kLoading));
    return reactor;
  }
  v1::GenerateRequest parsed;
  if (absl::Status s = ParseMessage(*request_bytes, &parsed); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  const v1::GenerateRequest* request = &parsed;
  const absl::Time deadline = Deadline(context);
  absl::StatusOr<GenerationRequest> generation = GenerationFromProto(
      *request, *attached->model, default_sampler_, PickSeed(), arrival, deadline);
  if (!generation.ok()) {
    reactor->Finish(ToGrpcStatus(generation.status()));
    return reactor;
  }
  const uint64_t seed = generation->seed;
  const auto prompt_tokens = static_cast<int32_t>(generation->prompt.size());
  auto call = std::make_shared<GenerateCall>(reactor, *request, seed, prompt_tokens);
  reactor->SetCall(call);
  absl::StatusOr<std::shared_ptr<GenerationHandle>> handle =
      attached->engine->Submit(*std::move(generation), call);
  if (!handle.ok()) {
    reactor->Finish(ToGrpcStatus(handle.status()));
    return reactor;
  }
  call->SetHandle(*std::move(handle));
  return reactor;
}

template <typename Request, typename Response, typename Answer>
grpc::ServerUnaryReactor* RunnerService::Unary(grpc::CallbackServerContext* context,
                                               const grpc::ByteBuffer* request_bytes,
                                               grpc::ByteBuffer* response_bytes, Answer answer) {
  if (absl::Status auth = CheckAuth(context); !auth.ok()) return FinishUnary(context, auth);
  const Attached* attached = this->attached();
  if (attached == nullptr) return FinishUnary(context, absl::UnavailableError(kLoading));
  return AnswerUnary<Request, Response>(context, request_bytes, response_bytes,
                                        [&](const Request& request, Response* response) {
                                          return answer(*attached, request, response);
                                        });
}

grpc::ServerUnaryReactor* RunnerService::Tokenize(grpc::CallbackServerContext* context,
                                                  const grpc::ByteBuffer* request_bytes,
                                                  grpc::ByteBuffer* response_bytes) {
  return Unary<v1::TokenizeRequest, v1::TokenizeResponse>(
      context, request_bytes, response_bytes,
      [this](const Attached& attached, const v1::TokenizeRequest& request,
             v1::TokenizeResponse* response) {
        return AnswerTokenize(attached, request, response);
      });
}

grpc::ServerUnaryReactor* RunnerService::Detokenize(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request_bytes,
                                                    grpc::ByteBuffer* response_bytes) {
  return Unary<v1::DetokenizeRequest, v1::DetokenizeResponse>(
      context, request_bytes, response_bytes,
      [this](const Attached& attached, const v1::DetokenizeRequest& request,
             v1::DetokenizeResponse* response) {
        return AnswerDetokenize(attached, request, response);
      });
}

grpc::ServerUnaryReactor* RunnerService::ModelInfo(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request_bytes,
                                                   grpc::ByteBuffer* response_bytes) {
  return Unary<v1::ModelInfoRequest, v1::ModelInfoResponse>(
      context, request_bytes, response_bytes,
      [this](const Attached& attached, const v1::ModelInfoRequest&,
             v1::ModelInfoResponse* response) {
        AnswerModelInfo(attached, response);
        return absl::OkStatus();
      });
}

absl::Status RunnerService::AnswerTokenize(const Attached& attached,
                                           const v1::TokenizeRequest& request,
                                           v1::TokenizeResponse* response) const {
  absl::StatusOr<std::vector<int32_t>> ids = TokenizeRequestTokens(request, *attached.model);
  if (!ids.ok()) return ids.status();
  const Tokenizer& tokenizer = attached.model->tokenizer();
  for (int32_t id : *ids) {
    response->add_ids(id);
    response->add_pieces(tokenizer.Decode({&id, 1}));
  }
  return absl::OkStatus();
}

absl::Status RunnerService::AnswerDetokenize(const Attached& attached,
                                             const v1::DetokenizeRequest& request,
                                             v1::DetokenizeResponse* response) const {
  if (absl::Status s = CheckTokenIds(request.ids(), attached.model->vocab_size(), "ids"); !s.ok()) {
    return s;
  }
  std::vector<int32_t> ids(request.ids().begin(), request.ids().end());
  response->set_text(attached.model->tokenizer().Decode(ids, request.skip_special_tokens()));
  return absl::OkStatus();
}

void RunnerService::AnswerModelInfo(const Attached& attached,
                                    v1::ModelInfoResponse* response) const {
  const ServedModel& served = *attached.model;
  const Model& model = served.model();
  const ModelConfig& config = model.config();
  response->set_family(ModelFamilyName(config.family));
  response->set_path(served.path());
  response->set_parameters(model.parameter_count());
  response->set_layers(static_cast<int32_t>(config.num_hidden_layers));
  response->set_hidden_size(static_cast<int32_t>(config.hidden_size));
  response->set_attention_heads(static_cast<int32_t>(config.num_attention_heads));
  response->set_kv_heads(static_cast<int32_t>(config.num_key_value_heads));
  response->set_vocab_size(served.vocab_size());
  response->set_context_length(static_cast<int32_t>(served.context_length()));
  response->set_dtype(ComputeDTypeName(model.dtype()));
  response->set_device(model.device());
  if (served.bos_token_id()) response->set_bos_token_id(*served.bos_token_id());
  for (int32_t id : served.eos_token_ids()) response->add_eos_token_ids(id);
  if (const ChatTemplate* chat = served.chat_template()) {
    response->set_chat_template(std::string(ChatTemplateFamilyName(chat->family())));
  }
  response->set_sampler(attached.sampler);
  const EngineOptions& options = attached.engine->options();
  response->set_max_batch(options.max_batch);
  response->set_max_queue(options.max_queue);
  response->set_max_kv_cache_bytes(options.max_kv_bytes);
  const EngineStats stats = attached.engine->Stats();
  response->set_running(stats.running);
  response->set_waiting(stats.waiting);
  response->set_kv_cache_bytes(stats.kv_bytes);
  response->set_steps(stats.steps);
  response->set_rows_sampled(stats.rows_sampled);
  response->set_forward_ms(absl::ToDoubleMilliseconds(stats.forward_time));
  response->set_sampling_ms(absl::ToDoubleMilliseconds(stats.sampling_time));
  response->set_default_sampler(SamplerName(default_sampler_));
}

}  // namespace entroserve
