// signals_tool: the signals of one row read from raw tensor files, as JSON.
//
//   signals_tool --logits=FILE --dtype=float32|float16|bfloat16 --vocab=V
//       [--attention=FILE --attention_dtype=DTYPE --heads=H --keys=L]
//
// Files hold raw little-endian elements, row-major, no header (the wire
// format of docs/ARCHITECTURE.md "Tensors on the wire"). The row goes through the same checks as at the edge
// (DecodeTensor, CheckLogits, CheckAttention); an error is printed on stderr
// with exit status 2. Used by signals_numpy_check.py.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sampler/core/signals.h"
#include "sampler/core/tensor.h"

namespace entroserve {
namespace {

constexpr char kUsage[] =
    "usage: signals_tool --logits=FILE --dtype=float32|float16|bfloat16 --vocab=V\n"
    "           [--attention=FILE --attention_dtype=DTYPE --heads=H --keys=L]\n"
    "Prints the signals of the row (sampler/core/signals.h) as one JSON object.\n";

bool ParseDType(const std::string& name, DType* dtype) {
  if (name == "float32")
    *dtype = DType::kFloat32;
  else if (name == "float16")
    *dtype = DType::kFloat16;
  else if (name == "bfloat16")
    *dtype = DType::kBFloat16;
  else
    return false;
  return true;
}

absl::Status ReadTensor(const std::string& path, DType dtype, int64_t numel,
                        const std::string& field, std::vector<float>* out) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError("cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return DecodeTensor(dtype, bytes, numel, field, out);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "signals_tool: %s\n", message.c_str());
  return 2;
}

int Run(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fputs(kUsage, stderr);
      return Fail("bad argument " + arg);
    }
    flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
  }
  DType dtype;
  if (!flags.count("logits") || !flags.count("vocab") || !ParseDType(flags["dtype"], &dtype)) {
    std::fputs(kUsage, stderr);
    return Fail("--logits, --dtype and --vocab are required");
  }
  const int64_t vocab = std::atoll(flags["vocab"].c_str());
  std::vector<float> logits;
  absl::Status status = ReadTensor(flags["logits"], dtype, vocab, "logits", &logits);
  if (status.ok()) status = CheckLogits(logits, "logits");
  if (!status.ok()) return Fail(status.ToString());

  std::vector<float> attention;
  int32_t heads = 0, keys = 0;
  if (flags.count("attention")) {
    DType attention_dtype;
    if (!ParseDType(flags["attention_dtype"], &attention_dtype)) {
      return Fail("--attention_dtype must be float32, float16 or bfloat16");
    }
    heads = std::atoi(flags["heads"].c_str());
    keys = std::atoi(flags["keys"].c_str());
    if (heads <= 0 || keys <= 0) return Fail("--heads and --keys must be > 0");
    status = ReadTensor(flags["attention"], attention_dtype, int64_t{heads} * keys, "attention",
                        &attention);
    if (status.ok()) status = CheckAttention(attention, "attention");
    if (!status.ok()) return Fail(status.ToString());
  }

  LogitSummary summary;
  const Signals s = ComputeSignals(logits, attention, heads, keys, &summary);
  std::printf(
      "{\"entropy\": %.9g, \"varentropy\": %.9g, \"has_attention\": %s, "
      "\"attn_entropy\": %.9g, \"attn_varentropy\": %.9g, \"attn_entropy_spread\": %.9g, "
      "\"agreement\": %.9g, \"interaction_strength\": %.9g, "
      "\"argmax\": %d, \"max_logit\": %.9g, \"log_normalizer\": %.17g, \"finite\": %d}\n",
      s.entropy, s.varentropy, s.has_attention ? "true" : "false", s.attn_entropy,
      s.attn_varentropy, s.attn_entropy_spread, s.agreement, s.interaction_strength, summary.argmax,
      summary.max_logit, summary.log_normalizer, summary.finite);
  return 0;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) { return entroserve::Run(argc, argv); }
