// samplerctl's commands for runnerd (runner.v1.Runner):
//
//   generate   streams a generation's text as it comes; --show-modes colours
//              each token by the sampler's mode (a legend line first), --json
//              prints one JSON record per token (trace.h's format) and a
//              last one with the finish reason and usage; --trace and
//              --trace_html write the .jsonl / HTML traces
//              --summary adds a line (generation_stats.h): tokens, tokens/s,
//              how often each mode fired, mean entropy and varentropy
//   compare    the same prompt, seed and budget through several samplers in
//              turn: per sampler its text (coloured by mode when asked) and
//              summary, then a table of the summaries side by side; the texts
//              stand in blocks one under another (streamed as they come), or
//              in columns side by side when the terminal is wide enough
//   info       ModelInfo: the model, its tokenizer and the engine's limits
//
// Errors: a server that cannot be reached, a bad argument and an RPC error
// each get one line on stderr naming what went wrong; exit code 1 for RPC
// failures, 2 for bad arguments.
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_RUNNER_COMMANDS_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_RUNNER_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

struct GenerateOptions {
  std::string server;  // runnerd, HOST:PORT
  // Exactly one of prompt (raw text) and chat (a user message, with
  // `system` before it when not empty).
  std::optional<std::string> prompt;
  std::optional<std::string> chat;
  std::string system;
  // Unset: runnerd's default sampler.
  std::optional<sampler::v1::SamplerSpec> spec;
  std::optional<uint64_t> seed;
  std::optional<int32_t> max_new_tokens;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  std::vector<int32_t> allowed_token_ids;          // empty: every token
  std::vector<std::string> dry_sequence_breakers;  // tokenized by runnerd
  bool show_modes = false;
  bool summary = false;  // the summary line after the finish line (stderr)
  bool json = false;
  std::string trace_path;       // .jsonl trace, "" for none
  std::string trace_html_path;  // HTML trace, "" for none
  int64_t timeout_ms = 0;       // deadline of the whole generation; 0: none
};

// Runs `samplerctl generate`; the process exit code.
int RunGenerate(const GenerateOptions& options);

enum class CompareLayout { kAuto, kBlocks, kColumns };

struct CompareOptions {
  // The request of every sampler: server, prompt or chat, seed, budget, stop
  // strings, deadline (of each generation). Its spec, show_modes, summary,
  // json and trace paths are not used. Unset seed: the first generation's
  // seed (runnerd picks it) is used for the others.
  GenerateOptions request;
  std::vector<std::string> samplers;  // sampler names, in order
  bool color = false;                 // colour each token by its mode (and a legend)
  // kAuto: columns when `columns_fit` and each column gets at least
  // kMinCompareColumn characters of `width`, else blocks.
  CompareLayout layout = CompareLayout::kAuto;
  bool columns_fit = false;  // stdout is a terminal
  int width = 80;            // characters of a line
};

// The narrowest text column kAuto lays out side by side.
inline constexpr int kMinCompareColumn = 28;

// Runs `samplerctl compare`; the process exit code (1 at the first sampler
// whose generation fails, with runnerd's message; 2 when the columns do not
// fit in `width`).
int RunCompare(const CompareOptions& options);

// Runs `samplerctl info`; the process exit code.
int RunInfo(const std::string& server, bool json, int64_t timeout_ms);

// `message` as the one-line JSON samplerctl prints (proto field names).
std::string ToJson(const google::protobuf::Message& message);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_RUNNER_COMMANDS_H_
