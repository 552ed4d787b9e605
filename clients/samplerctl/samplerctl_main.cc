// samplerctl: command-line client of samplerd and runnerd.
//
//   samplerctl generate (--prompt=TEXT | --chat=TEXT [--system=TEXT]) [--server=HOST:PORT]
//                       [--sampler=NAME | --spec=TEXTPROTO] [--seed=N] [--max_new_tokens=N]
//                       [--stop=S1,S2] [--ignore_eos] [--show-modes] [--json]
//                       [--summary] [--trace=FILE.jsonl] [--trace-html=FILE.html]
//                       [--allowed_token_ids=ID1,ID2] [--dry_sequence_breakers=S1,S2]
//   samplerctl compare (--prompt=TEXT | --chat=TEXT [--system=TEXT]) [--server=HOST:PORT]
//                      [--samplers=greedy,chain,entropix,alpha] [--seed=N]
//                      [--max_new_tokens=N] [--stop=S1,S2] [--ignore_eos] [--show-modes]
//                      [--layout=auto|blocks|columns] [--width=N]
//   samplerctl info [--server=HOST:PORT] [--json]
//   samplerctl samplers [--server=HOST:PORT] [--json]
//   samplerctl samplers --markdown [--sampler=NAME]
//   samplerctl sample --logits=FILE [--dtype=f32|f16|bf16] [--attention=FILE --heads=H]
//                     [--sampler=NAME | --spec=TEXTPROTO] [--seed=N] [--step=N] [--json]
//                     [--allowed_token_ids=ID1,ID2]
//   samplerctl replay [--sampler=NAME | --spec=TEXTPROTO] [--steps=N] [--vocab=V]
//                     [--heads=H] [--seed=N] [--json]
//
// Every command that talks to a server also takes --tls_ca_file,
// --tls_cert_file, --tls_key_file, --tls_server_name and --auth_token_file
// (connection.h).
//
// Flag names may be written with dashes or underscores (flag_names.h).
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/samplerctl/connection.h"
#include "clients/samplerctl/flag_names.h"
#include "clients/samplerctl/modes.h"
#include "clients/samplerctl/runner_commands.h"
#include "clients/samplerctl/synthetic.h"
#include "sampler/base/status_macros.h"
#include "sampler/core/configs.h"
#include "sampler/core/row.h"
#include "sampler/core/tensor.h"
#include "sampler/core/token_mask.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "services/wire/row_convert.h"

ABSL_FLAG(std::string, server, "",
          "server address, HOST:PORT; default localhost:50051 (samplerd) for samplers, "
          "sample and replay, localhost:50052 (runnerd) for generate and info");
ABSL_FLAG(std::string, sampler, "entropix",
          "sampler name, e.g. greedy, chain, entropix or alpha (`samplerctl samplers` lists "
          "them all; generate: runnerd's default sampler when not given)");
ABSL_FLAG(std::string, spec, "",
          "full sampler.v1.SamplerSpec in protobuf text format, e.g. "
          "'entropix { temperature: 0.7 }' (overrides --sampler)");
ABSL_FLAG(std::string, logits, "", "sample: file of raw little-endian logits [V]");
ABSL_FLAG(std::string, attention, "", "sample: file of raw attention scores [heads, keys]");
ABSL_FLAG(int32_t, heads, 8, "sample/replay: attention heads");
ABSL_FLAG(std::string, dtype, "f32", "sample: dtype of the files: f32, f16 or bf16");
ABSL_FLAG(int64_t, seed, -1, "seed (-1: let the server pick one and print it)");
ABSL_FLAG(std::string, prompt, "", "generate, compare: the raw prompt text (no chat template)");
ABSL_FLAG(std::string, chat, "",
          "generate, compare: a user message, rendered with the model's chat template");
ABSL_FLAG(std::string, system, "", "generate, compare: a system message before --chat");
ABSL_FLAG(int32_t, max_new_tokens, 0,
          "generate, compare: tokens to generate (generate: runnerd's default when not given; "
          "compare: 48)");
ABSL_FLAG(std::vector<std::string>, stop, {},
          "generate, compare: stop strings, comma-separated; C escapes such as \\n are decoded");
ABSL_FLAG(bool, ignore_eos, false, "generate, compare: go on past the model's EOS tokens");
ABSL_FLAG(std::vector<std::string>, allowed_token_ids, {},
          "sample, generate: the only token ids the sampler may choose, comma-separated");
ABSL_FLAG(std::vector<std::string>, dry_sequence_breakers, {},
          "generate: DRY's sequence breakers as strings, comma-separated, C escapes decoded "
          "(runnerd turns them into token ids)");
ABSL_FLAG(bool, show_modes, false,
          "generate, compare: colour each token by the sampler's mode, a legend first (also "
          "--show-modes; compare colours on a terminal anyway)");
ABSL_FLAG(bool, summary, false,
          "generate: after the finish line, a summary: tokens, tokens/s, how often each mode "
          "fired, mean entropy and varentropy (on by default with --show-modes; --nosummary "
          "turns it off)");
ABSL_FLAG(std::vector<std::string>, samplers,
          std::vector<std::string>({"greedy", "chain", "entropix", "alpha"}),
          "compare: the samplers to run the prompt through, comma-separated");
ABSL_FLAG(std::string, layout, "auto",
          "compare: blocks (one sampler under another, streamed), columns (side by side), "
          "or auto (columns on a terminal wide enough)");
ABSL_FLAG(int32_t, width, 0,
          "compare: characters of a line for the columns (0: the terminal's width, else "
          "$COLUMNS, else 80)");
ABSL_FLAG(std::string, trace, "", "generate: write a JSON-lines trace, one line per token");
ABSL_FLAG(std::string, trace_html, "",
          "generate: write a self-contained HTML trace (also --trace-html)");
ABSL_FLAG(int64_t, step, 0, "sample: step index of the row");
ABSL_FLAG(int32_t, steps, 40, "replay: number of steps");
ABSL_FLAG(int32_t, vocab, 32000, "replay: vocabulary size of the synthetic logits");
ABSL_FLAG(bool, json, false, "print one JSON record per result");
ABSL_FLAG(bool, markdown, false,
          "samplers: print the config table of every sampler built into samplerctl (fields, "
          "defaults, ranges, meaning) as README.md shows it, or of --sampler only; no server");
ABSL_FLAG(bool, color, true, "colour tokens by mode (only on a terminal)");
ABSL_FLAG(int32_t, timeout_ms, 10000,
          "deadline of each call, milliseconds (generate: of the whole generation, 10 "
          "minutes unless given; 0: none)");

namespace entroserve {
namespace {

constexpr char kUsage[] =
    "samplerctl: talk to samplerd and runnerd.\n\n"
    "Commands:\n"
    "  generate   generate text with runnerd, streamed as it comes (--prompt or\n"
    "             --chat with --system; --show-modes colours tokens by mode and\n"
    "             adds --summary, --json prints a record per token, --trace and\n"
    "             --trace-html write the traces)\n"
    "  compare    the same prompt and seed through several samplers (--samplers,\n"
    "             default greedy,chain,entropix,alpha): each one's text and summary\n"
    "             (tokens, tokens/s, modes, mean entropy and varentropy), in blocks\n"
    "             or side by side on a wide terminal, then a table of the summaries\n"
    "  info       runnerd's model, tokenizer and engine limits\n"
    "  samplers   list the samplers the server knows, with their defaults\n"
    "             (--markdown: the config tables README.md shows, no server)\n"
    "  sample     send one row of logits read from --logits (and --attention) and\n"
    "             print the decision\n"
    "  replay     stream a synthetic sequence of --steps rows through one\n"
    "             SampleStream, feeding back the state, and print each decision\n"
    "             coloured by mode plus a summary\n\n"
    "Examples:\n"
    "  samplerctl generate --prompt='The jury said' --max_new_tokens=40 --show-modes\n"
    "  samplerctl generate --chat='Tell me about Texas.' --sampler=greedy --stop='\\n'\n"
    "  samplerctl generate --prompt='The jury said' --trace=t.jsonl --trace-html=t.html\n"
    "  samplerctl compare --prompt='The jury said' --samplers=greedy,entropix --seed=7\n"
    "  samplerctl info --server=localhost:50052\n"
    "  samplerctl samplers --server=localhost:50051\n"
    "  samplerctl replay --sampler=entropix --steps=40 --seed=7\n"
    "  samplerctl sample --logits=row.f32 --spec='chain { temperature: 0.8 top_k: 40 }'\n"
    "  samplerctl info --server=runnerd.example:50052 --tls_ca_file=ca.pem \\\n"
    "      --auth_token_file=token\n\n"
    "TLS and tokens: --tls_ca_file (TLS), --tls_cert_file and --tls_key_file (mutual\n"
    "TLS), --tls_server_name, --auth_token_file (sent as authorization: Bearer).\n";

absl::StatusOr<sampler::v1::SamplerSpec> SpecFromFlags() {
  sampler::v1::SamplerSpec spec;
  const std::string text = absl::GetFlag(FLAGS_spec);
  if (!text.empty()) {
    if (!google::protobuf::TextFormat::ParseFromString(text, &spec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--spec is not a valid sampler.v1.SamplerSpec text proto: ", text));
    }
    return spec;
  }
  spec.set_name(absl::GetFlag(FLAGS_sampler));
  return spec;
}

absl::StatusOr<DType> DTypeFromFlag() {
  const std::string d = absl::GetFlag(FLAGS_dtype);
  if (d == "f32" || d == "float32") return DType::kFloat32;
  if (d == "f16" || d == "float16") return DType::kFloat16;
  if (d == "bf16" || d == "bfloat16") return DType::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat("--dtype must be f32, f16 or bf16, got ", d));
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot open ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Default servers of each command family (samplerd_main.cc, runnerd_main.cc).
constexpr char kDefaultSamplerd[] = "localhost:50051";
constexpr char kDefaultRunnerd[] = "localhost:50052";
// A generation may take long on a CPU; runnerd's own deadline is the client's.
constexpr int64_t kDefaultGenerateTimeoutMs = 10 * 60 * 1000;

std::string SamplerdAddress() {
  const std::string server = absl::GetFlag(FLAGS_server);
  return server.empty() ? kDefaultSamplerd : server;
}

std::string RunnerdAddress() {
  const std::string server = absl::GetFlag(FLAGS_server);
  return server.empty() ? kDefaultRunnerd : server;
}

using GivenFlags = std::set<std::string>;

// --allowed_token_ids as ids, ascending without repeats.
absl::StatusOr<std::vector<int32_t>> AllowedTokenIdsFromFlag() {
  std::vector<int32_t> ids;
  for (const std::string& text : absl::GetFlag(FLAGS_allowed_token_ids)) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(text, &id) || id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allowed_token_ids: \"", text, "\" is not a token id (an integer >= 0)"));
    }
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::unique_ptr<sampler::v1::Sampler::Stub> Connect() {
  return sampler::v1::Sampler::NewStub(OpenChannel(SamplerdAddress()));
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms)));
}

int Fail(const std::string& what, const grpc::Status& status) {
  std::fprintf(stderr, "samplerctl: %s failed: %s (%s)\n", what.c_str(),
               status.error_message().c_str(),
               status.error_code() == grpc::StatusCode::UNAVAILABLE
                   ? absl::StrCat("is samplerd running at ", SamplerdAddress(), "?").c_str()
                   : absl::StrCat("gRPC code ", status.error_code()).c_str());
  return 1;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "samplerctl: %s\n", std::string(status.message()).c_str());
  return 2;
}

std::string DescribeParams(const sampler::v1::SamplingParams& p) {
  std::string out;
  if (p.has_temperature()) absl::StrAppendFormat(&out, " T=%.3f", p.temperature());
  if (p.has_top_k()) absl::StrAppendFormat(&out, " top_k=%d", p.top_k());
  if (p.has_top_p()) absl::StrAppendFormat(&out, " top_p=%.3f", p.top_p());
  if (p.has_min_p()) absl::StrAppendFormat(&out, " min_p=%.3f", p.min_p());
  if (p.has_repetition_penalty()) absl::StrAppendFormat(&out, " rep=%.3f", p.repetition_penalty());
  if (p.has_candidate_size()) absl::StrAppendFormat(&out, " cand=%d", p.candidate_size());
  if (p.has_samples()) absl::StrAppendFormat(&out, " samples=%d", p.samples());
  if (p.has_mirostat_mu()) absl::StrAppendFormat(&out, " mu=%.3f", p.mirostat_mu());
  if (p.has_smoothed_alpha()) absl::StrAppendFormat(&out, " alpha=%.3f", p.smoothed_alpha());
  return out;
}

void PrintResult(const sampler::v1::SampleResult& r, bool color) {
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", ToJson(r).c_str());
    return;
  }
  if (r.has_error()) {
    std::printf("step %3lld  error (code %d): %s\n", static_cast<long long>(r.step()),
                r.error().code(), r.error().message().c_str());
    return;
  }
  std::printf("step %3lld  %s%-8s%s token %6d%s  H=%.3f V=%.3f logp=%.3f%s\n",
              static_cast<long long>(r.step()), color ? ModeColor(r.mode()) : "",
              ModeLabel(r.mode()), color ? kColorReset : "", r.token_id(),
              r.inserted() ? " (inserted)" : "", r.signals().entropy(), r.signals().varentropy(),
              r.logprob(), DescribeParams(r.params()).c_str());
}

// The options of `command` (generate or compare) that the flags give.
absl::StatusOr<GenerateOptions> GenerateOptionsFromFlags(const char* command,
                                                         const GivenFlags& flags) {
  auto Given = [&flags](const char* name) { return flags.count(name) > 0; };
  GenerateOptions options;
  options.server = RunnerdAddress();
  const bool has_prompt = Given("prompt");
  const bool has_chat = Given("chat");
  if (has_prompt == has_chat) {
    return absl::InvalidArgumentError(
        absl::StrCat(command, " needs one of --prompt=TEXT or --chat=TEXT"));
  }
  if (has_prompt) options.prompt = absl::GetFlag(FLAGS_prompt);
  if (has_chat) options.chat = absl::GetFlag(FLAGS_chat);
  if (Given("system")) {
    if (!has_chat) return absl::InvalidArgumentError("--system goes with --chat");
    options.system = absl::GetFlag(FLAGS_system);
  }
  if (absl::GetFlag(FLAGS_seed) >= 0) options.seed = absl::GetFlag(FLAGS_seed);
  if (Given("max_new_tokens")) {
    if (absl::GetFlag(FLAGS_max_new_tokens) < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--max_new_tokens must be >= 1, got ", absl::GetFlag(FLAGS_max_new_tokens)));
    }
    options.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  }
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) {
    std::string unescaped;
    std::string error;
    if (!absl::CUnescape(stop, &unescaped, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--stop \"", stop, "\": ", error));
    }
    options.stop.push_back(unescaped);
  }
  options.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  ASSIGN_OR_RETURN(options.allowed_token_ids, AllowedTokenIdsFromFlag());
  for (const std::string& breaker : absl::GetFlag(FLAGS_dry_sequence_breakers)) {
    std::string unescaped;
    std::string error;
    if (!absl::CUnescape(breaker, &unescaped, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--dry_sequence_breakers \"", breaker, "\": ", error));
    }
    options.dry_sequence_breakers.push_back(unescaped);
  }
  options.timeout_ms =
      Given("timeout_ms") ? absl::GetFlag(FLAGS_timeout_ms) : kDefaultGenerateTimeoutMs;
  return options;
}

int Generate(const GivenFlags& flags) {
  absl::StatusOr<GenerateOptions> options = GenerateOptionsFromFlags("generate", flags);
  if (!options.ok()) return Fail(options.status());
  if (flags.count("spec") > 0 || flags.count("sampler") > 0) {
    auto spec = SpecFromFlags();
    if (!spec.ok()) return Fail(spec.status());
    options->spec = *spec;
  }
  options->show_modes = absl::GetFlag(FLAGS_show_modes);
  options->summary =
      flags.count("summary") > 0 ? absl::GetFlag(FLAGS_summary) : options->show_modes;
  options->json = absl::GetFlag(FLAGS_json);
  options->trace_path = absl::GetFlag(FLAGS_trace);
  options->trace_html_path = absl::GetFlag(FLAGS_trace_html);
  return RunGenerate(*options);
}

// The width of stdout's terminal, else $COLUMNS, else 80.
int TerminalWidth() {
  winsize size{};
  if (ioctl(fileno(stdout), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  const char* columns = std::getenv("COLUMNS");
  if (columns != nullptr && std::atoi(columns) > 0) return std::atoi(columns);
  return 80;
}

// compare's budget when --max_new_tokens is not given: a few lines each.
constexpr int32_t kDefaultCompareTokens = 48;

int Compare(const GivenFlags& flags) {
  absl::StatusOr<GenerateOptions> request = GenerateOptionsFromFlags("compare", flags);
  if (!request.ok()) return Fail(request.status());
  if (flags.count("spec") > 0 || flags.count("sampler") > 0) {
    return Fail(absl::InvalidArgumentError(
        "compare takes the sampler names as --samplers=a,b,c (not --sampler or --spec)"));
  }
  if (!request->max_new_tokens) request->max_new_tokens = kDefaultCompareTokens;
  CompareOptions options;
  options.request = *request;
  for (const std::string& name : absl::GetFlag(FLAGS_samplers)) {
    if (!name.empty()) options.samplers.push_back(name);
  }
  if (options.samplers.empty()) {
    return Fail(absl::InvalidArgumentError("--samplers names no sampler"));
  }
  const std::string layout = absl::GetFlag(FLAGS_layout);
  if (layout == "auto") {
    options.layout = CompareLayout::kAuto;
  } else if (layout == "blocks") {
    options.layout = CompareLayout::kBlocks;
  } else if (layout == "columns") {
    options.layout = CompareLayout::kColumns;
  } else {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--layout must be auto, blocks or columns, got ", layout)));
  }
  const bool terminal = isatty(fileno(stdout));
  options.color = absl::GetFlag(FLAGS_show_modes) || (absl::GetFlag(FLAGS_color) && terminal);
  options.columns_fit = terminal;
  options.width = absl::GetFlag(FLAGS_width) > 0 ? absl::GetFlag(FLAGS_width) : TerminalWidth();
  return RunCompare(options);
}

// The Markdown config tables of sampler/core/configs.h (README.md's).
int SamplerTables(const GivenFlags& flags) {
  if (flags.count("sampler") == 0) {
    std::fputs(ConfigMarkdown().c_str(), stdout);
    return 0;
  }
  absl::StatusOr<std::string> table = ConfigMarkdown(absl::GetFlag(FLAGS_sampler));
  if (!table.ok()) return Fail(table.status());
  std::fputs(table->c_str(), stdout);
  return 0;
}

int Samplers(const GivenFlags& flags) {
  if (absl::GetFlag(FLAGS_markdown)) return SamplerTables(flags);
  auto stub = Connect();
  grpc::ClientContext context;
  SetDeadline(&context);
  sampler::v1::ListSamplersResponse response;
  grpc::Status status = stub->ListSamplers(&context, {}, &response);
  if (!status.ok()) return Fail("ListSamplers", status);
  for (const auto& info : response.samplers()) {
    if (absl::GetFlag(FLAGS_json)) {
      std::printf("%s\n", ToJson(info).c_str());
      continue;
    }
    std::string defaults;
    google::protobuf::TextFormat::Printer printer;
    printer.SetSingleLineMode(true);
    printer.PrintToString(info.defaults(), &defaults);
    std::printf(
        "%-12s %s\n             uses attention: %s, stateful: %s\n             "
        "defaults: %s\n",
        info.name().c_str(), info.description().c_str(), info.uses_attention() ? "yes" : "no",
        info.stateful() ? "yes" : "no", defaults.c_str());
  }
  return 0;
}

int Sample() {
  auto spec = SpecFromFlags();
  if (!spec.ok()) return Fail(spec.status());
  auto dtype = DTypeFromFlag();
  if (!dtype.ok()) return Fail(dtype.status());
  if (absl::GetFlag(FLAGS_logits).empty()) {
    return Fail(absl::InvalidArgumentError("sample needs --logits=FILE"));
  }
  auto logits = ReadFile(absl::GetFlag(FLAGS_logits), "--logits");
  if (!logits.ok()) return Fail(logits.status());
  const int element = ElementSize(*dtype);
  if (logits->size() % element != 0) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--logits: file size ", logits->size(), " is not a multiple of ", element)));
  }
  sampler::v1::SampleRequest request;
  sampler::v1::SampleRow* row = request.add_rows();
  row->set_sequence_id("samplerctl");
  row->set_step(absl::GetFlag(FLAGS_step));
  *row->mutable_spec() = *spec;
  if (absl::GetFlag(FLAGS_seed) >= 0) row->set_seed(absl::GetFlag(FLAGS_seed));
  if (!absl::GetFlag(FLAGS_allowed_token_ids).empty()) {
    auto allowed = AllowedTokenIdsFromFlag();
    if (!allowed.ok()) return Fail(allowed.status());
    // As the runner sends it: ids or a bitmask, whichever is smaller.
    const int64_t vocab_size = static_cast<int64_t>(logits->size() / element);
    if (absl::Status s = CheckTokenIds(*allowed, vocab_size, "--allowed_token_ids"); !s.ok()) {
      return Fail(s);
    }
    AllowedTokensToProto(MaskFromIds(*allowed, vocab_size), vocab_size,
                         row->mutable_allowed_tokens());
  }
  const auto wire = static_cast<sampler::v1::DType>(static_cast<int>(*dtype));
  row->mutable_logits()->set_dtype(wire);
  row->mutable_logits()->add_shape(static_cast<int64_t>(logits->size() / element));
  row->mutable_logits()->set_data(*logits);
  if (!absl::GetFlag(FLAGS_attention).empty()) {
    auto attention = ReadFile(absl::GetFlag(FLAGS_attention), "--attention");
    if (!attention.ok()) return Fail(attention.status());
    const int64_t heads = absl::GetFlag(FLAGS_heads);
    const int64_t numel = static_cast<int64_t>(attention->size() / element);
    if (heads <= 0 || numel % heads != 0) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--attention holds ", numel, " values, not a multiple of --heads=", heads)));
    }
    row->mutable_attention()->set_dtype(wire);
    row->mutable_attention()->add_shape(heads);
    row->mutable_attention()->add_shape(numel / heads);
    row->mutable_attention()->set_data(*attention);
  }
  auto stub = Connect();
  grpc::ClientContext context;
  SetDeadline(&context);
  sampler::v1::SampleResponse response;
  grpc::Status status = stub->Sample(&context, request, &response);
  if (!status.ok()) return Fail("Sample", status);
  const sampler::v1::SampleResult& result = response.results(0);
  PrintResult(result, false);
  if (!absl::GetFlag(FLAGS_json) && !result.has_error()) {
    std::printf("seed %llu\n", static_cast<unsigned long long>(result.seed()));
  }
  return result.has_error() ? 3 : 0;
}

// One step of a replayed synthetic sequence: logits that depend on the
// previous token, and attention over a growing number of keys.
sampler::v1::SampleRequest ReplayRequest(const sampler::v1::SamplerSpec& spec, uint64_t data_seed,
                                         int32_t step, int32_t vocab, int32_t heads,
                                         int32_t previous, const sampler::v1::SamplerState& state) {
  sampler::v1::SampleRequest request;
  sampler::v1::SampleRow* row = request.add_rows();
  row->set_sequence_id("replay");
  row->set_step(step);
  *row->mutable_spec() = spec;
  row->set_seed(data_seed);
  if (step > 0) *row->mutable_state() = state;
  const std::vector<float> logits = SyntheticLogits(data_seed, step, vocab, previous);
  row->mutable_logits()->set_dtype(sampler::v1::DTYPE_BFLOAT16);
  row->mutable_logits()->add_shape(vocab);
  row->mutable_logits()->set_data(EncodeTensor(DType::kBFloat16, logits));
  const int32_t keys = 16 + step;
  const std::vector<float> attention = SyntheticAttention(data_seed, step, heads, keys);
  row->mutable_attention()->set_dtype(sampler::v1::DTYPE_BFLOAT16);
  row->mutable_attention()->add_shape(heads);
  row->mutable_attention()->add_shape(keys);
  row->mutable_attention()->set_data(EncodeTensor(DType::kBFloat16, attention));
  return request;
}

// What replay prints after the last step.
struct ReplaySummary {
  std::map<std::string, int> modes;
  double entropy_sum = 0, varentropy_sum = 0;
  std::vector<double> latencies_ms;

  void Add(const sampler::v1::SampleResult& result, double latency_ms) {
    ++modes[ModeLabel(result.mode())];
    entropy_sum += result.signals().entropy();
    varentropy_sum += result.signals().varentropy();
    latencies_ms.push_back(latency_ms);
  }
  void Print(int32_t steps) {
    std::sort(latencies_ms.begin(), latencies_ms.end());
    std::printf("\n%d steps; modes:", steps);
    for (const auto& [mode, count] : modes) std::printf(" %s %d", mode.c_str(), count);
    std::printf("\nmean entropy %.3f bits, mean varentropy %.3f bits^2, round trip p50 %.3f ms\n",
                entropy_sum / steps, varentropy_sum / steps, latencies_ms[latencies_ms.size() / 2]);
  }
};

int Replay() {
  auto spec = SpecFromFlags();
  if (!spec.ok()) return Fail(spec.status());
  const int32_t steps = absl::GetFlag(FLAGS_steps);
  const int32_t vocab = absl::GetFlag(FLAGS_vocab);
  const int32_t heads = absl::GetFlag(FLAGS_heads);
  if (steps <= 0 || vocab <= 1 || heads <= 0) {
    return Fail(absl::InvalidArgumentError("--steps, --heads must be > 0 and --vocab > 1"));
  }
  const uint64_t data_seed =
      absl::GetFlag(FLAGS_seed) >= 0 ? static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)) : 1;
  const bool color = absl::GetFlag(FLAGS_color) && isatty(fileno(stdout));
  auto stub = Connect();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(absl::GetFlag(FLAGS_timeout_ms)) * steps);
  auto stream = stub->SampleStream(&context);
  sampler::v1::SamplerState state;
  int32_t previous = -1;
  ReplaySummary summary;
  if (!absl::GetFlag(FLAGS_json)) {
    std::printf("synthetic logits (V=%d) and attention (%d heads), sampler %s\n", vocab, heads,
                spec->name().empty() ? "(from --spec)" : spec->name().c_str());
    if (color) std::printf("%s\n", ModeLegend().c_str());
  }
  for (int32_t step = 0; step < steps; ++step) {
    const sampler::v1::SampleRequest request =
        ReplayRequest(*spec, data_seed, step, vocab, heads, previous, state);
    const auto start = std::chrono::steady_clock::now();
    sampler::v1::SampleResponse response;
    if (!stream->Write(request) || !stream->Read(&response)) {
      return Fail("SampleStream", stream->Finish());
    }
    const double latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const sampler::v1::SampleResult& result = response.results(0);
    PrintResult(result, color);
    if (result.has_error()) {
      stream->WritesDone();
      stream->Finish();
      return 3;
    }
    state = result.state();
    previous = result.token_id();
    summary.Add(result, latency_ms);
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return Fail("SampleStream", status);
  if (!absl::GetFlag(FLAGS_json)) summary.Print(steps);
  return 0;
}

constexpr const char* kCommands[] = {"generate", "compare", "info", "samplers", "sample", "replay"};

// "samplerctl COMMAND --help" (or -help, --helpshort): that command's flags,
// not Abseil's general help. Returns false when args ask no such thing.
bool PrintCommandHelp(const std::vector<std::string>& args) {
  const std::set<std::string> given = FlagsGiven(args);
  if (!given.count("help") && !given.count("helpshort")) return false;
  std::string command;
  for (size_t i = 1; i < args.size() && command.empty(); ++i) {
    for (const char* c : kCommands) {
      if (args[i] == c) command = c;
    }
  }
  if (command.empty()) return false;
  std::vector<FlagHelp> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "clients/samplerctl/")) continue;
    flags.push_back({std::string(name), flag->Help(), flag->DefaultValue()});
  }
  std::printf("%s", CommandHelp(command, std::move(flags)).c_str());
  return true;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(entroserve::kUsage);
  std::vector<std::string> args = entroserve::DashesToUnderscores(argc, argv);
  if (entroserve::PrintCommandHelp(args)) return 0;
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  if (positional.size() != 2) {
    std::fprintf(stderr, "%s\nsamplerctl: expected one command (see --help)\n", entroserve::kUsage);
    return 2;
  }
  const std::string command = positional[1];
  if (absl::Status s = entroserve::InitConnectionFromFlags(); !s.ok()) {
    std::fprintf(stderr, "samplerctl: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (command == "generate") return entroserve::Generate(entroserve::FlagsGiven(args));
  if (command == "compare") return entroserve::Compare(entroserve::FlagsGiven(args));
  if (command == "info") {
    return entroserve::RunInfo(entroserve::RunnerdAddress(), absl::GetFlag(FLAGS_json),
                               absl::GetFlag(FLAGS_timeout_ms));
  }
  if (command == "samplers") return entroserve::Samplers(entroserve::FlagsGiven(args));
  if (command == "sample") return entroserve::Sample();
  if (command == "replay") return entroserve::Replay();
  std::fprintf(stderr, "samplerctl: unknown command \"%s\" (%s)\n", command.c_str(),
               absl::StrJoin(entroserve::kCommands, ", ").c_str());
  return 2;
}
