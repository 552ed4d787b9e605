#include "clients/samplerctl/runner_commands.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "clients/samplerctl/connection.h"
#include "clients/samplerctl/generation_stats.h"
#include "clients/samplerctl/modes.h"
#include "clients/samplerctl/trace.h"
#include "runner/v1/runner.grpc.pb.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;

std::unique_ptr<v1::Runner::Stub> ConnectRunner(const std::string& server) {
  return v1::Runner::NewStub(OpenChannel(server));
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
  request.mutable_allowed_token_ids()->Add(options.allowed_token_ids.begin(),
                                           options.allowed_token_ids.end());
  for (const std::string& breaker : options.dry_sequence_breakers) {
    request.add_dry_sequence_breakers(breaker);
  }
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

// A Generate call streamed to its end.
struct StreamedGeneration {
  grpc::Status status;
  v1::GenerateResponse last;  // the message with the finish reason and usage
  std::optional<uint64_t> seed;
  int32_t prompt_tokens = 0;
  GenerationStats stats;
};

// Runs `request` on options.server within options.timeout_ms, calling
// `on_token` for each token as it comes (stdout flushed after each message).
StreamedGeneration StreamGeneration(
    const GenerateOptions& options, const v1::GenerateRequest& request,
    const std::function<void(const v1::GeneratedToken&)>& on_token) {
  auto stub = ConnectRunner(options.server);
  grpc::ClientContext context;
  SetDeadline(&context, options.timeout_ms);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->Generate(&context, request);
  StreamedGeneration out;
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (!out.seed && (response.seed() != 0 || response.prompt_tokens() != 0)) {
      out.seed = response.seed();
      out.prompt_tokens = response.prompt_tokens();
    }
    for (const v1::GeneratedToken& token : response.tokens()) {
      out.stats.Add(token);
      on_token(token);
    }
    std::fflush(stdout);
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) out.last = response;
  }
  out.status = reader->Finish();
  out.stats.Finish(out.last.usage());
  return out;
}

void PrintToken(const v1::GeneratedToken& token, bool color) {
  if (color) {
    std::printf("%s%s%s", ModeColor(token.mode()), token.text().c_str(), kColorReset);
  } else {
    std::printf("%s", token.text().c_str());
  }
}

// One sampler's generation in `compare`.
struct CompareRun {
  std::string sampler;
  std::vector<v1::GeneratedToken> tokens;  // kept for the columns layout only
  GenerationStats stats;
  std::string finish;
};

// Between two columns of `compare`.
constexpr char kColumnGap[] = " | ";

// The characters `text` takes on a terminal: its UTF-8 code points (wide
// characters are counted as one).
int DisplayWidth(absl::string_view text) {
  int width = 0;
  for (const char c : text) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return width;
}

// A piece of a token's text, on one line, in the token's mode.
struct TextPiece {
  std::string text;
  sampler::v1::Mode mode;
};

// The tokens' text as words (a word starts at a space, and a line's first
// word after each newline), each a list of pieces; an empty word stands for
// a newline. Tabs show as a space and other control characters not at all.
std::vector<std::vector<TextPiece>> SplitWords(const std::vector<v1::GeneratedToken>& tokens) {
  std::vector<std::vector<TextPiece>> words(1);
  for (const v1::GeneratedToken& token : tokens) {
    const std::vector<std::string> lines = absl::StrSplit(token.text(), '\n');
    for (size_t l = 0; l < lines.size(); ++l) {
      if (l > 0) {
        words.emplace_back();  // the newline
        words.emplace_back();
      }
      for (const char raw : lines[l]) {
        const char c = raw == '\t' ? ' ' : raw;
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) continue;
        if (c == ' ' && !words.back().empty()) words.emplace_back();
        std::vector<TextPiece>& word = words.back();
        if (word.empty() || word.back().mode != token.mode()) word.push_back({"", token.mode()});
        word.back().text.push_back(c);
      }
    }
  }
  return words;
}

// The tokens' text in lines of `width` characters, each padded to `width`:
// a line ends at a newline of the text, or before a word that would not fit
// (inside a word only when it alone is wider than a line); a word that
// starts a wrapped line loses its leading space.
std::vector<std::string> WrapTokens(const std::vector<v1::GeneratedToken>& tokens, int width,
                                    bool color) {
  std::vector<std::string> lines;
  std::string line;
  int used = 0;
  const auto end_line = [&] {
    line.append(static_cast<size_t>(std::max(width - used, 0)), ' ');
    lines.push_back(std::move(line));
    line.clear();
    used = 0;
  };
  const std::vector<std::vector<TextPiece>> words = SplitWords(tokens);
  for (size_t w = 0; w < words.size(); ++w) {
    const std::vector<TextPiece>& word = words[w];
    if (word.empty()) {
      if (w + 1 < words.size()) end_line();  // a newline
      continue;
    }
    int word_width = 0;
    for (const TextPiece& piece : word) word_width += DisplayWidth(piece.text);
    bool skip_space = false;
    if (used > 0 && used + word_width > width && word_width - 1 <= width) {
      end_line();
      skip_space = word.front().text[0] == ' ';
    }
    for (const TextPiece& piece : word) {
      // The piece in runs that fit, one character (a UTF-8 lead byte and its
      // continuation bytes) at a time.
      std::string run;
      const auto flush = [&] {
        if (run.empty()) return;
        line += color ? absl::StrCat(ModeColor(piece.mode), run, kColorReset) : run;
        run.clear();
      };
      for (const char c : piece.text) {
        if (skip_space) {
          skip_space = false;
          continue;
        }
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
          if (used == width) {
            flush();
            end_line();
          }
          ++used;
        }
        run.push_back(c);
      }
      flush();
    }
  }
  if (used > 0 || lines.empty()) end_line();
  return lines;
}

// The samplers' texts side by side, a column each, under their names.
void PrintColumns(const std::vector<CompareRun>& runs, int width, bool color) {
  std::vector<std::vector<std::string>> columns;
  size_t rows = 0;
  std::vector<std::string> header;
  for (const CompareRun& run : runs) {
    columns.push_back(WrapTokens(run.tokens, width, color));
    rows = std::max(rows, columns.back().size());
    header.push_back(absl::StrFormat("%-*s", width, absl::StrCat("== ", run.sampler, " ==")));
  }
  std::printf("\n%s\n", absl::StrJoin(header, kColumnGap).c_str());
  const std::string blank(static_cast<size_t>(width), ' ');
  for (size_t row = 0; row < rows; ++row) {
    std::vector<std::string> cells;
    for (const auto& column : columns) cells.push_back(row < column.size() ? column[row] : blank);
    std::printf("%s\n", absl::StrJoin(cells, kColumnGap).c_str());
  }
}

// The summaries, a row each.
void PrintCompareTable(const std::vector<CompareRun>& runs) {
  int name_width = static_cast<int>(sizeof("sampler") - 1);
  for (const CompareRun& run : runs) {
    name_width = std::max(name_width, static_cast<int>(run.sampler.size()));
  }
  std::printf("%-*s  tokens  tokens/s  entropy  varentropy  finish  modes\n", name_width,
              "sampler");
  for (const CompareRun& run : runs) {
    std::printf("%-*s  %6d  %8.1f  %7.3f  %10.3f  %-6s  %s\n", name_width, run.sampler.c_str(),
                run.stats.tokens, run.stats.TokensPerSecond(), run.stats.MeanEntropy(),
                run.stats.MeanVarentropy(), run.finish.c_str(),
                FormatModeCounts(run.stats).c_str());
  }
  std::printf("(entropy in bits, varentropy in bits^2: means over the generated tokens)\n");
}

}  // namespace

int RunGenerate(const GenerateOptions& options) {
  const bool keep_tokens = !options.trace_path.empty() || !options.trace_html_path.empty();
  std::vector<v1::GeneratedToken> tokens;
  bool legend_printed = false;
  const StreamedGeneration result =
      StreamGeneration(options, BuildRequest(options), [&](const v1::GeneratedToken& token) {
        if (options.show_modes && !options.json && !legend_printed) {
          std::printf("%s\n", ModeLegend().c_str());
          legend_printed = true;
        }
        if (options.json) {
          std::printf("%s\n", TraceJsonLine(token).c_str());
        } else {
          PrintToken(token, options.show_modes);
        }
        if (keep_tokens) tokens.push_back(token);
      });
  if (!options.json) std::printf("\n");
  std::fflush(stdout);
  if (!result.status.ok()) return RpcFailed("generate", options.server, result.status);

  const v1::Usage& usage = result.last.usage();
  if (options.json) {
    v1::GenerateResponse summary;
    summary.set_finish_reason(result.last.finish_reason());
    *summary.mutable_usage() = usage;
    if (result.seed) summary.set_seed(*result.seed);
    summary.set_prompt_tokens(result.prompt_tokens);
    std::printf("%s\n", ToJson(summary).c_str());
  } else {
    std::fprintf(stderr,
                 "[finish: %s; %d prompt + %d generated tokens; seed %llu; first token %.1f ms, "
                 "total %.1f ms]\n",
                 FinishLabel(result.last.finish_reason()), usage.prompt_tokens(),
                 usage.generated_tokens(), static_cast<unsigned long long>(result.seed.value_or(0)),
                 usage.time_to_first_token_ms(), usage.total_ms());
    if (options.summary) {
      std::fprintf(stderr, "[summary: %s]\n", FormatSummary(result.stats).c_str());
    }
  }
  if (keep_tokens) {
    TraceMeta meta;
    meta.prompt = options.prompt ? *options.prompt : options.chat.value_or("");
    meta.sampler = SamplerLabel(options);
    meta.seed = result.seed;
    meta.model = options.server;
    if (options.spec) meta.thresholds = ThresholdsFromSpec(*options.spec);
    meta.extra = {{"finish", FinishLabel(result.last.finish_reason())},
                  {"total", absl::StrFormat("%.0f ms", usage.total_ms())}};
    const std::pair<const std::string*, std::string> traces[] = {
        {&options.trace_path, TraceJsonLines(tokens)},
        {&options.trace_html_path, RenderTraceHtml(meta, tokens)}};
    for (const auto& [path, contents] : traces) {
      if (path->empty()) continue;
      if (absl::Status s = WriteTraceFile(*path, contents); !s.ok()) {
        std::fprintf(stderr, "samplerctl: %s\n", std::string(s.message()).c_str());
        return 1;
      }
      std::fprintf(stderr, "[trace: %s]\n", path->c_str());
    }
  }
  return 0;
}

int RunCompare(const CompareOptions& options) {
  const size_t n = options.samplers.size();
  const int gaps = static_cast<int>(n - 1) * static_cast<int>(sizeof(kColumnGap) - 1);
  const int column_width = n > 0 ? (options.width - gaps) / static_cast<int>(n) : 0;
  const bool columns = options.layout == CompareLayout::kColumns ||
                       (options.layout == CompareLayout::kAuto && options.columns_fit && n > 1 &&
                        column_width >= kMinCompareColumn);
  if (columns && column_width < 1) {
    std::fprintf(stderr, "samplerctl: --width=%d leaves no room for %zu columns\n", options.width,
                 n);
    return 2;
  }
  GenerateOptions request = options.request;
  std::printf("prompt: %s\n", request.prompt
                                  ? request.prompt->c_str()
                                  : absl::StrCat("(chat) ", request.chat.value_or("")).c_str());
  if (options.color) std::printf("%s\n", ModeLegend().c_str());
  std::vector<CompareRun> runs;
  for (const std::string& name : options.samplers) {
    sampler::v1::SamplerSpec spec;
    spec.set_name(name);
    request.spec = spec;
    if (!columns) std::printf("\n== %s ==\n", name.c_str());
    std::fflush(stdout);
    CompareRun run{name};
    const StreamedGeneration result =
        StreamGeneration(request, BuildRequest(request), [&](const v1::GeneratedToken& token) {
          if (columns) {
            run.tokens.push_back(token);
          } else {
            PrintToken(token, options.color);
          }
        });
    if (!columns) std::printf("\n");
    std::fflush(stdout);
    if (!result.status.ok()) {
      return RpcFailed(absl::StrCat("generate with sampler \"", name, "\""), request.server,
                       result.status);
    }
    if (!request.seed && result.seed) request.seed = result.seed;
    run.stats = result.stats;
    run.finish = FinishLabel(result.last.finish_reason());
    if (!columns) {
      std::printf("[finish: %s; %s]\n", run.finish.c_str(), FormatSummary(run.stats).c_str());
    }
    runs.push_back(std::move(run));
  }
  if (columns) PrintColumns(runs, column_width, options.color);
  std::printf("\nseed %llu, the same for every sampler\n",
              static_cast<unsigned long long>(request.seed.value_or(0)));
  PrintCompareTable(runs);
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

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace entroserve
