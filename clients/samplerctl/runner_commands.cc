#include "clients/samplerctl/runner_commands.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/samplerctl/modes.h"
#include "clients/samplerctl/trace.h"
#include "runner/v1/runner.grpc.pb.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;

std::unique_ptr<v1::Runner::Stub> ConnectRunner(const std::string& server) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return v1::Runner::NewStub(
      grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
}

void SetDeadline(grpc::ClientContext* context, int64_t timeout_ms) {
  if (timeout_ms > 0) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

int RpcFailed(const std::string& what, const std::string& server, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (status.error_message().find("failed to connect") != std::string::npos ||
       status.error_message().find("Connection refused") != std::string::npos ||
       status.error_message().find("connections to all backends failing") != std::string::npos)) {
    std::fprintf(stderr, "samplerctl: cannot reach runnerd at %s (is it running? --server): %s\n",
                 server.c_str(), status.error_message().c_str());
  } else {
    std::fprintf(stderr, "samplerctl: %s failed: %s: %s\n", what.c_str(),
                 CodeName(status.error_code()), status.error_message().c_str());
  }
  return 1;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

const char* FinishLabel(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_EOS:
      return "eos";
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    case v1::FINISH_REASON_CONTEXT:
      return "context";
    default:
      return "unspecified";
  }
}

v1::GenerateRequest BuildRequest(const GenerateOptions& options) {
  v1::GenerateRequest request;
  if (options.prompt) {
    request.set_text(*options.prompt);
  } else {
    v1::ChatMessages* chat = request.mutable_chat();
    if (!options.system.empty()) {
      v1::ChatMessage* system = chat->add_messages();
      system->set_role("system");
      system->set_content(options.system);
    }
    v1::ChatMessage* user = chat->add_messages();
    user->set_role("user");
    user->set_content(options.chat.value_or(""));
  }
  if (options.spec) *request.mutable_sampler() = *options.spec;
  if (options.seed) request.set_seed(*options.seed);
  if (options.max_new_tokens) request.set_max_new_tokens(*options.max_new_tokens);
  for (const std::string& stop : options.stop) request.add_stop(stop);
  request.set_ignore_eos(options.ignore_eos);
  return request;
}

std::string SamplerLabel(const GenerateOptions& options) {
  if (!options.spec) return "(runnerd's default)";
  if (options.spec->config_case() == sampler::v1::SamplerSpec::CONFIG_NOT_SET) {
    return options.spec->name();
  }
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(*options.spec, &text);
  return text;
}

}  // namespace

int RunGenerate(const GenerateOptions& options) {
  const v1::GenerateRequest request = BuildRequest(options);
  auto stub = ConnectRunner(options.server);
  grpc::ClientContext context;
  SetDeadline(&context, options.timeout_ms);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->Generate(&context, request);

  const bool keep_tokens = !options.trace_path.empty() || !options.trace_html_path.empty();
  std::vector<v1::GeneratedToken> tokens;
  v1::GenerateResponse response;
  v1::GenerateResponse last;
  std::optional<uint64_t> seed;
  int32_t prompt_tokens = 0;
  bool legend_printed = false;
  while (reader->Read(&response)) {
    if (!seed && (response.seed() != 0 || response.prompt_tokens() != 0)) {
      seed = response.seed();
      prompt_tokens = response.prompt_tokens();
    }
    if (options.show_modes && !options.json && !legend_printed) {
      std::printf("%s\n", ModeLegend().c_str());
      legend_printed = true;
    }
    for (const v1::GeneratedToken& token : response.tokens()) {
      if (options.json) {
        std::printf("%s\n", TraceJsonLine(token).c_str());
      } else if (options.show_modes) {
        std::printf("%s%s%s", ModeColor(token.mode()), token.text().c_str(), kColorReset);
      } else {
        std::printf("%s", token.text().c_str());
      }
      if (keep_tokens) tokens.push_back(token);
    }
    std::fflush(stdout);
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) last = response;
  }
  const grpc::Status status = reader->Finish();
  if (!options.json) std::printf("\n");
  std::fflush(stdout);
  if (!status.ok()) return RpcFailed("generate", options.server, status);

  const v1::Usage& usage = last.usage();
  if (options.json) {
    v1::GenerateResponse summary;
    summary.set_finish_reason(last.finish_reason());
    *summary.mutable_usage() = usage;
    if (seed) summary.set_seed(*seed);
    summary.set_prompt_tokens(prompt_tokens);
    std::printf("%s\n", ToJson(summary).c_str());
  } else {
    std::fprintf(stderr,
                 "[finish: %s; %d prompt + %d generated tokens; seed %llu; first token %.1f ms, "
                 "total %.1f ms]\n",
                 FinishLabel(last.finish_reason()), usage.prompt_tokens(), usage.generated_tokens(),
                 static_cast<unsigned long long>(seed.value_or(0)), usage.time_to_first_token_ms(),
                 usage.total_ms());
  }
  if (keep_tokens) {
    TraceMeta meta;
    meta.prompt = options.prompt ? *options.prompt : options.chat.value_or("");
    meta.sampler = SamplerLabel(options);
    meta.seed = seed;
    meta.model = options.server;
    if (options.spec) meta.thresholds = ThresholdsFromSpec(*options.spec);
    meta.extra = {{"finish", FinishLabel(last.finish_reason())},
                  {"total", absl::StrFormat("%.0f ms", usage.total_ms())}};
    if (!options.trace_path.empty()) {
      if (absl::Status s = WriteTraceFile(options.trace_path, TraceJsonLines(tokens)); !s.ok()) {
        std::fprintf(stderr, "samplerctl: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    if (!options.trace_html_path.empty()) {
      if (absl::Status s = WriteTraceFile(options.trace_html_path, RenderTraceHtml(meta, tokens));
          !s.ok()) {
        std::fprintf(stderr, "samplerctl: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
  }
  return 0;
}

int RunInfo(const std::string& server, bool json, int64_t timeout_ms) {
  auto stub = ConnectRunner(server);
  grpc::ClientContext context;
  SetDeadline(&context, timeout_ms);
  v1::ModelInfoResponse info;
  const grpc::Status status = stub->ModelInfo(&context, {}, &info);
  if (!status.ok()) return RpcFailed("info", server, status);
  if (json) {
    std::printf("%s\n", ToJson(info).c_str());
    return 0;
  }
  std::printf("model       %s (%s, %lld parameters)\n", info.path().c_str(), info.family().c_str(),
              static_cast<long long>(info.parameters()));
  std::printf("shape       %d layers, hidden %d, %d heads / %d kv heads, vocabulary %d\n",
              info.layers(), info.hidden_size(), info.attention_heads(), info.kv_heads(),
              info.vocab_size());
  std::printf("context     %d tokens\n", info.context_length());
  std::printf("compute     %s on %s\n", info.dtype().c_str(), info.device().c_str());
  std::printf("tokens      bos %d, eos [%s], chat template %s\n", info.bos_token_id(),
              absl::StrJoin(info.eos_token_ids(), ", ").c_str(),
              info.chat_template().empty() ? "(none)" : info.chat_template().c_str());
  std::printf("sampler     %s (default sampler %s)\n", info.sampler().c_str(),
              info.default_sampler().c_str());
  std::printf("engine      max batch %d, max queue %d, KV budget %s\n", info.max_batch(),
              info.max_queue(),
              info.max_kv_cache_bytes() > 0
                  ? absl::StrFormat("%.1f MiB", info.max_kv_cache_bytes() / 1048576.0).c_str()
                  : "unlimited");
  std::printf("load        %d running, %d waiting, KV %.1f MiB\n", info.running(), info.waiting(),
              info.kv_cache_bytes() / 1048576.0);
  return 0;
}

}  // namespace entroserve
