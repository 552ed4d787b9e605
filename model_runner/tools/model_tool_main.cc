// model_tool: loads a checkpoint folder (or builds a random model of a given
// shape) and greedy-decodes from token ids, printing the ids and timings; or
// writes the model's outputs as JSON for comparison with another
// implementation (tools/hf_conformance/ compares them with transformers).
//
//   model_tool --model=models/tiny --tokens=1,2,3 --new_tokens=32
//   model_tool --random=llama-3.2-1b --dtype=bf16 --batch=8 --new_tokens=16
//   model_tool --model=DIR --info            (config and weights only)
//   model_tool --random=llama-3.2-1b --dtype=bf16 --save=/tmp/llama1b   (write it)
//   model_tool --model=DIR --tokens=1,2,3 --force_tokens=7,8,9 --attention_layers=all
//              --dump_json=out.json   (teacher forcing: outputs as JSON)
//   model_tool --model=DIR --tokens=1,2,3 --new_tokens=32 --dump_json=out.json
//
// With --batch=B the prompt is run as B sequences in one batch (sequence b
// drops its first b % len tokens, so that lengths differ), prefilled
// together and then decoded one token each per step. Timings: load, prefill,
// and decode (tokens/s counts every sequence's token).
//
// Steps: the prefill is step 0; each later step feeds one token, the argmax
// of the step before (greedy) or the next id of --force_tokens (teacher
// forcing). Greedy with --new_tokens=N runs N steps and so generates N
// tokens; teacher forcing with K ids runs K + 1 steps.
//
// --dump_json=FILE writes, for every sequence, each step's position (of its
// last new token), its argmax, its logits [vocab] and the pre-softmax
// attention scores [heads, keys] of the layers named by --attention_layers
// (layout and meaning as AttentionScores in transformer.h), plus the model's
// rotary inverse frequencies:
//   {"model": {...}, "rope_inv_freq": [...], "mode": "greedy"|"teacher_forcing",
//    "sequences": [{"prompt": [...], "fed": [...], "argmax": [...],
//                   "steps": [{"position", "new_tokens", "argmax", "logits",
//                              "attention": [{"layer", "heads", "keys",
//                                             "first_key", "scores"}]}]}]}
// Floats are written with 9 significant digits (float32 round-trips
// exactly); a non-finite value as NaN, Infinity or -Infinity, which
// Python's json module reads.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "model_runner/checkpoint/model_config.h"
#include "model_runner/model/transformer.h"

ABSL_FLAG(std::string, model, "", "Checkpoint folder (config.json + model.safetensors)");
ABSL_FLAG(std::string, random, "",
          "Instead of --model: a random model, either a config.json path or a preset "
          "(llama-3.2-1b, qwen2.5-0.5b, tiny)");
ABSL_FLAG(uint64_t, seed, 1, "Seed of --random weights");
ABSL_FLAG(std::string, dtype, "float32", "Compute dtype: float32, bfloat16 (float16 on CUDA)");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N");
ABSL_FLAG(int, threads, 0, "Intra-op threads; 0: all cores");
ABSL_FLAG(std::string, group_decode, "auto",
          "Decode steps of a batch attend together: auto (on CUDA), on, off");
ABSL_FLAG(std::string, decode_graphs, "auto",
          "Decode steps as recorded device graphs over a static KV cache: auto (on CUDA), "
          "on, off");
ABSL_FLAG(std::string, fuse_projections, "auto",
          "q/k/v and gate/up as one matrix product each: auto (on CUDA), on, off");
ABSL_FLAG(std::string, fused_kernels, "auto",
          "The decode graphs' element-wise work as fused CUDA kernels: auto (on for CUDA "
          "in bfloat16/float16 when built with them), on, off");
ABSL_FLAG(bool, map_weights, false,
          "Use checkpoint weights in place from the file mapping where the dtype matches");
ABSL_FLAG(std::string, tokens, "1,2,3,4,5,6,7,8", "Prompt token ids, comma-separated");
ABSL_FLAG(int, new_tokens, 16, "Tokens to generate per sequence (greedy)");
ABSL_FLAG(std::string, force_tokens, "",
          "Teacher forcing: comma-separated ids fed one per decode step instead of the "
          "argmax (--new_tokens is then ignored)");
ABSL_FLAG(int, batch, 1, "Sequences decoded together");
ABSL_FLAG(bool, attention, true, "Capture attention scores (as runnerd does); false: none");
ABSL_FLAG(std::string, attention_layers, "-1",
          "Layers whose attention scores to capture: comma-separated indices (negative "
          "counts from the end: -1 is the last layer, what the sampler reads) or \"all\"");
ABSL_FLAG(std::string, dump_json, "",
          "Write every step's position, argmax, logits and captured attention scores (and "
          "the rotary inverse frequencies) to this JSON file");
ABSL_FLAG(bool, dump_logits, true, "With --dump_json: include the logits of every step");
ABSL_FLAG(bool, info, false, "Print the config and weights, then exit");
ABSL_FLAG(std::string, save, "",
          "Write the model (config.json, model.safetensors in the compute dtype) to this "
          "folder, then exit: e.g. a --random model of a real shape, to time loading");

namespace entroserve {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

absl::StatusOr<ModelConfig> PresetConfig(const std::string& name) {
  ModelConfig c;
  if (name == "llama-3.2-1b") {
    c.family = ModelFamily::kLlama;
    c.model_type = "llama";
    c.vocab_size = 128256;
    c.hidden_size = 2048;
    c.intermediate_size = 8192;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.head_dim = 64;
    c.max_position_embeddings = 131072;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 500000.0;
    c.rope_scaling = Llama3RopeScaling{32.0, 1.0, 4.0, 8192};
    c.tie_word_embeddings = true;
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001};
    return c;
  }
  if (name == "qwen2.5-0.5b") {
    c.family = ModelFamily::kQwen2;
    c.model_type = "qwen2";
    c.vocab_size = 151936;
    c.hidden_size = 896;
    c.intermediate_size = 4864;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 14;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.max_position_embeddings = 32768;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1000000.0;
    c.tie_word_embeddings = true;
    c.qkv_bias = true;
    c.eos_token_ids = {151643};
    return c;
  }
  if (name == "tiny") {
    c.vocab_size = 256;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.max_position_embeddings = 2048;
    return c;
  }
  return LoadModelConfig(name);
}

int ArgMax(const std::vector<float>& logits) {
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// "1,2,3" -> {1, 2, 3}; `flag` names the flag in errors.
absl::StatusOr<std::vector<int32_t>> ParseTokenIds(const char* flag, const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", piece, "\" is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

// "all" -> every layer; "-1,0" -> {-1, 0} (Forward() checks the range).
absl::StatusOr<std::vector<int>> ParseAttentionLayers(const std::string& text, int64_t num_layers) {
  std::vector<int> layers;
  if (absl::AsciiStrToLower(text) == "all") {
    for (int l = 0; l < num_layers; ++l) layers.push_back(l);
    return layers;
  }
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int layer;
    if (!absl::SimpleAtoi(piece, &layer)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--attention_layers: \"", piece, "\" is not a layer index (or \"all\")"));
    }
    layers.push_back(layer);
  }
  return layers;
}

// One step of one sequence, kept for --dump_json.
struct StepRecord {
  int64_t position = 0;    // of the step's last new token
  int64_t new_tokens = 0;  // tokens fed in this step
  int argmax = 0;
  SequenceOutput output;
};

struct SequenceRecord {
  std::vector<int32_t> prompt;
  std::vector<int32_t> fed;     // tokens fed after the prompt, one per decode step
  std::vector<int32_t> argmax;  // of every step: the generated tokens when greedy
  std::vector<StepRecord> steps;
};

void AppendFloat(std::string* out, float value) {
  if (std::isnan(value)) {
    out->append("NaN");
  } else if (std::isinf(value)) {
    out->append(value > 0 ? "Infinity" : "-Infinity");
  } else {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.9g", value);  // 9 digits: float32 round-trips
    out->append(buffer);
  }
}

void AppendFloats(std::string* out, absl::Span<const float> values) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendFloat(out, values[i]);
  }
  out->push_back(']');
}

template <typename Int>
void AppendInts(std::string* out, const std::vector<Int>& values) {
  absl::StrAppend(out, "[", absl::StrJoin(values, ","), "]");
}

absl::Status WriteDumpJson(const std::string& path, const Model& model, bool teacher_forcing,
                           const std::vector<SequenceRecord>& sequences, bool with_logits) {
  const ModelConfig& c = model.config();
  std::string out;
  absl::StrAppend(&out, "{\"model\":{\"family\":\"", ModelFamilyName(c.family), "\",\"dtype\":\"",
                  ComputeDTypeName(model.dtype()), "\",\"device\":\"", model.device(),
                  "\",\"threads\":", model.threads(), ",\"vocab_size\":", c.vocab_size,
                  ",\"num_hidden_layers\":", c.num_hidden_layers,
                  ",\"num_attention_heads\":", c.num_attention_heads,
                  ",\"num_key_value_heads\":", c.num_key_value_heads,
                  ",\"parameters\":", model.parameter_count(), "},\n\"rope_inv_freq\":");
  AppendFloats(&out, RopeInverseFrequencies(c));
  absl::StrAppend(&out, ",\n\"mode\":\"", teacher_forcing ? "teacher_forcing" : "greedy",
                  "\",\n\"sequences\":[");
  for (size_t s = 0; s < sequences.size(); ++s) {
    const SequenceRecord& seq = sequences[s];
    if (s > 0) out.push_back(',');
    out.append("\n{\"prompt\":");
    AppendInts(&out, seq.prompt);
    out.append(",\"fed\":");
    AppendInts(&out, seq.fed);
    out.append(",\"argmax\":");
    AppendInts(&out, seq.argmax);
    out.append(",\"steps\":[");
    for (size_t i = 0; i < seq.steps.size(); ++i) {
      const StepRecord& step = seq.steps[i];
      if (i > 0) out.push_back(',');
      absl::StrAppend(&out, "\n{\"position\":", step.position, ",\"new_tokens\":", step.new_tokens,
                      ",\"argmax\":", step.argmax);
      if (with_logits) {
        out.append(",\"logits\":");
        AppendFloats(&out, step.output.logits);
      }
      out.append(",\"attention\":[");
      for (size_t a = 0; a < step.output.attention.size(); ++a) {
        const AttentionScores& scores = step.output.attention[a];
        if (a > 0) out.push_back(',');
        absl::StrAppend(&out, "{\"layer\":", scores.layer, ",\"heads\":", scores.heads,
                        ",\"keys\":", scores.keys, ",\"first_key\":", scores.first_key,
                        ",\"scores\":");
        AppendFloats(&out, scores.scores);
        out.push_back('}');
      }
      out.append("]}");
    }
    out.append("]}");
  }
  out.append("]}\n");

  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open for writing"));
  const bool written = std::fwrite(out.data(), 1, out.size(), file) == out.size();
  if (std::fclose(file) != 0 || !written) {
    return absl::DataLossError(absl::StrCat(path, ": write failed"));
  }
  return absl::OkStatus();
}

// The model options the flags ask for; false (after printing why) on a bad flag.
bool ParseModelOptions(ModelOptions* options) {
  absl::StatusOr<ComputeDType> dtype = ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) {
    std::fprintf(stderr, "--dtype: %s\n", dtype.status().ToString().c_str());
    return false;
  }
  options->dtype = *dtype;
  options->device = absl::GetFlag(FLAGS_device);
  for (const auto& [name, value, option] :
       {std::tuple<const char*, std::string, std::optional<bool>*>{
            "group_decode", absl::GetFlag(FLAGS_group_decode), &options->group_decode_attention},
        {"decode_graphs", absl::GetFlag(FLAGS_decode_graphs), &options->decode_graphs},
        {"fuse_projections", absl::GetFlag(FLAGS_fuse_projections), &options->fuse_projections},
        {"fused_kernels", absl::GetFlag(FLAGS_fused_kernels), &options->fused_kernels}}) {
    if (value == "on" || value == "off") {
      *option = value == "on";
    } else if (value != "auto") {
      std::fprintf(stderr, "--%s: \"%s\" is not auto, on or off\n", name, value.c_str());
      return false;
    }
  }
  options->threads = absl::GetFlag(FLAGS_threads);
  options->map_weights = absl::GetFlag(FLAGS_map_weights);
  return true;
}

// --random or --model; prints the model and its load time.
absl::StatusOr<std::unique_ptr<Model>> LoadModel(const ModelOptions& options) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::unique_ptr<Model>> model;
  if (!absl::GetFlag(FLAGS_random).empty()) {
    absl::StatusOr<ModelConfig> config = PresetConfig(absl::GetFlag(FLAGS_random));
    if (!config.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--random: ", config.status().ToString()));
    }
    model = Model::CreateRandom(*config, options, absl::GetFlag(FLAGS_seed));
  } else if (!absl::GetFlag(FLAGS_model).empty()) {
    model = Model::Load(absl::GetFlag(FLAGS_model), options);
  } else {
    return absl::InvalidArgumentError(
        "give --model=DIR or --random=PRESET|config.json (see --help)");
  }
  if (!model.ok()) return model.status();
  const Model& m = **model;
  const ModelConfig& c = m.config();
  std::printf("model: %s, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, %.1fM params\n",
              ModelFamilyName(c.family), static_cast<long long>(c.num_hidden_layers),
              static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_attention_heads),
              static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.vocab_size),
              m.parameter_count() / 1e6);
  std::printf("compute: %s on %s, %d threads; loaded in %.2f s\n", ComputeDTypeName(m.dtype()),
              m.device().c_str(), m.threads(), Seconds(start));
  return model;
}

// --info or --save: true when one of them was asked for (*status: its exit status).
bool InfoOrSave(const Model& m, int* status) {
  *status = 0;
  if (absl::GetFlag(FLAGS_info)) {
    std::printf("%s\n", ModelConfigToJson(m.config()).c_str());
    for (const WeightInfo& w : m.weights()) {
      std::printf("  %-48s [%s] %s%s\n", w.name.c_str(), absl::StrJoin(w.shape, ", ").c_str(),
                  w.stored_dtype.c_str(), w.mapped ? " (mapped)" : "");
    }
    return true;
  }
  const std::string dir = absl::GetFlag(FLAGS_save);
  if (dir.empty()) return false;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const Clock::time_point start = Clock::now();
  absl::Status saved = m.Save(dir);
  if (!saved.ok()) {
    std::fprintf(stderr, "--save: %s\n", saved.ToString().c_str());
    *status = 1;
  } else {
    std::printf("saved to %s in %.2f s\n", dir.c_str(), Seconds(start));
  }
  return true;
}

// The greedy (or teacher-forced) steps after the prefill `out`: records each
// step's argmax (and output, for --dump_json) and prints the decode timings:
// the mean over every step, and the median step (which leaves out one-off
// costs such as recording a decode graph).
int DecodeSteps(const Model& m, const std::vector<int32_t>& forced, size_t total_steps,
                bool keep_outputs, std::vector<SequenceInput>& inputs,
                std::vector<SequenceRecord>& records, absl::StatusOr<StepOutput> out) {
  const size_t batch = records.size();
  std::vector<int32_t> next(batch);
  std::vector<double> step_s;
  for (size_t step = 0; step < total_steps; ++step) {
    for (size_t b = 0; b < batch; ++b) {
      SequenceRecord& r = records[b];
      const int argmax = ArgMax(out->sequences[b].logits);
      r.argmax.push_back(argmax);
      if (keep_outputs) {
        r.steps.push_back(StepRecord{inputs[b].cache->length() - 1,
                                     step == 0 ? static_cast<int64_t>(r.prompt.size()) : 1, argmax,
                                     std::move(out->sequences[b])});
      }
      next[b] = step < forced.size() ? forced[step] : argmax;
    }
    if (step + 1 == total_steps) break;  // the last step's output needs no further pass
    for (size_t b = 0; b < batch; ++b) {
      records[b].fed.push_back(next[b]);
      inputs[b].tokens = absl::Span<const int32_t>(&next[b], 1);
    }
    if (!keep_outputs) m.Recycle(std::move(*out));  // as the serving engine does
    const Clock::time_point start = Clock::now();
    out = m.Forward(inputs);
    step_s.push_back(Seconds(start));
    if (!out.ok()) {
      std::fprintf(stderr, "decode step %zu: %s\n", step + 1, out.status().ToString().c_str());
      return 1;
    }
  }
  if (!step_s.empty()) {
    double total = 0;
    for (double s : step_s) total += s;
    std::sort(step_s.begin(), step_s.end());
    const double median = step_s[step_s.size() / 2];
    std::printf(
        "decode: %zu steps x %zu sequences in %.3f s: %.2f ms/step, %.1f tokens/s; "
        "median step %.2f ms, %.1f tokens/s\n",
        step_s.size(), batch, total, 1e3 * total / step_s.size(), step_s.size() * batch / total,
        1e3 * median, batch / median);
  }
  return 0;
}

// Prefill, decode, print and dump, for the prompt and flags given.
int Generate(const Model& m, const std::vector<int32_t>& prompt,
             const std::vector<int32_t>& forced) {
  const int batch = absl::GetFlag(FLAGS_batch);
  std::vector<int> attention_layers;
  if (absl::GetFlag(FLAGS_attention)) {
    absl::StatusOr<std::vector<int>> layers =
        ParseAttentionLayers(absl::GetFlag(FLAGS_attention_layers), m.config().num_hidden_layers);
    if (!layers.ok()) {
      std::fprintf(stderr, "%s\n", std::string(layers.status().message()).c_str());
      return 2;
    }
    attention_layers = *std::move(layers);
  }
  // Sequence b drops its first b % len tokens: different lengths in a batch.
  std::vector<SequenceRecord> records(batch);
  std::vector<SequenceCache> caches(batch);
  std::vector<SequenceInput> inputs(batch);
  for (int b = 0; b < batch; ++b) {
    size_t drop = static_cast<size_t>(b) % prompt.size();
    records[b].prompt.assign(prompt.begin() + static_cast<ptrdiff_t>(drop), prompt.end());
    inputs[b] = SequenceInput{&caches[b], records[b].prompt, attention_layers};
  }
  const Clock::time_point start = Clock::now();
  absl::StatusOr<StepOutput> out = m.Forward(inputs);
  if (!out.ok()) {
    std::fprintf(stderr, "prefill: %s\n", out.status().ToString().c_str());
    return 1;
  }
  const double prefill_s = Seconds(start);
  size_t prompt_tokens = 0;
  for (const SequenceRecord& r : records) prompt_tokens += r.prompt.size();
  std::printf("prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", prompt_tokens, prefill_s,
              prompt_tokens / prefill_s);

  // Step 0 is the prefill; every later step feeds one token.
  const bool teacher_forcing = !forced.empty();
  const size_t total_steps =
      teacher_forcing ? forced.size() + 1 : static_cast<size_t>(absl::GetFlag(FLAGS_new_tokens));
  const std::string dump_path = absl::GetFlag(FLAGS_dump_json);
  if (int status =
          DecodeSteps(m, forced, total_steps, !dump_path.empty(), inputs, records, std::move(out));
      status != 0) {
    return status;
  }
  for (int b = 0; b < batch; ++b) {
    std::printf("seq %d (%zu prompt tokens) %s: %s\n", b, records[b].prompt.size(),
                teacher_forcing ? "argmax under teacher forcing" : "generated",
                absl::StrJoin(records[b].argmax, " ").c_str());
  }
  if (dump_path.empty()) return 0;
  absl::Status status =
      WriteDumpJson(dump_path, m, teacher_forcing, records, absl::GetFlag(FLAGS_dump_logits));
  if (!status.ok()) {
    std::fprintf(stderr, "--dump_json: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s\n", dump_path.c_str());
  return 0;
}

int Run() {
  ModelOptions options;
  if (!ParseModelOptions(&options)) return 2;
  absl::StatusOr<std::vector<int32_t>> prompt =
      ParseTokenIds("tokens", absl::GetFlag(FLAGS_tokens));
  absl::StatusOr<std::vector<int32_t>> forced =
      ParseTokenIds("force_tokens", absl::GetFlag(FLAGS_force_tokens));
  for (const auto* ids : {&prompt, &forced}) {
    if (!ids->ok()) {
      std::fprintf(stderr, "%s\n", std::string(ids->status().message()).c_str());
      return 2;
    }
  }
  if (prompt->empty() || absl::GetFlag(FLAGS_batch) < 1 || absl::GetFlag(FLAGS_new_tokens) < 0) {
    std::fprintf(stderr, "need --tokens, --batch >= 1 and --new_tokens >= 0\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(options);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return model.status().code() == absl::StatusCode::kInvalidArgument &&
                   absl::GetFlag(FLAGS_random).empty() && absl::GetFlag(FLAGS_model).empty()
               ? 2
               : 1;
  }
  int status = 0;
  if (InfoOrSave(**model, &status)) return status;
  return Generate(**model, *prompt, *forced);
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Greedy decode with the entroserve model runner, or dump its outputs as JSON.\n"
      "  model_tool --model=DIR --tokens=1,2,3 --new_tokens=32 [--batch=8] [--dtype=bf16]\n"
      "  model_tool --random=llama-3.2-1b --dtype=bf16 --new_tokens=16\n"
      "  model_tool --model=DIR --tokens=1,2,3 --force_tokens=4,5 --attention_layers=all "
      "--dump_json=out.json");
  absl::ParseCommandLine(argc, argv);
  return entroserve::Run();
}
