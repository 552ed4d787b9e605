// model_tool: loads a checkpoint folder (or builds a random model of a given
// shape) and greedy-decodes from token ids, printing the ids and timings.
//
//   model_tool --model=models/tiny --tokens=1,2,3 --new_tokens=32
//   model_tool --random=llama-3.2-1b --dtype=bf16 --batch=8 --new_tokens=16
//   model_tool --model=DIR --info            (config and weights only)
//   model_tool --random=llama-3.2-1b --dtype=bf16 --save=/tmp/llama1b   (write it)
//
// With --batch=B the prompt is run as B sequences in one batch (sequence b
// drops its first b % len tokens, so that lengths differ), prefilled
// together and then decoded one token each per step. Timings: load, prefill,
// and decode (tokens/s counts every sequence's token).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model_runner/model_config.h"
#include "model_runner/transformer.h"

ABSL_FLAG(std::string, model, "", "Checkpoint folder (config.json + model.safetensors)");
ABSL_FLAG(std::string, random, "",
          "Instead of --model: a random model, either a config.json path or a preset "
          "(llama-3.2-1b, qwen2.5-0.5b, tiny)");
ABSL_FLAG(uint64_t, seed, 1, "Seed of --random weights");
ABSL_FLAG(std::string, dtype, "float32", "Compute dtype: float32, bfloat16 (float16 on CUDA)");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N");
ABSL_FLAG(int, threads, 0, "Intra-op threads; 0: all cores");
ABSL_FLAG(bool, map_weights, false,
          "Use checkpoint weights in place from the file mapping where the dtype matches");
ABSL_FLAG(std::string, tokens, "1,2,3,4,5,6,7,8", "Prompt token ids, comma-separated");
ABSL_FLAG(int, new_tokens, 16, "Tokens to generate per sequence");
ABSL_FLAG(int, batch, 1, "Sequences decoded together");
ABSL_FLAG(bool, attention, true, "Capture the last layer's attention scores (as runnerd does)");
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

int Run() {
  absl::StatusOr<ComputeDType> dtype = ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) {
    std::fprintf(stderr, "--dtype: %s\n", dtype.status().ToString().c_str());
    return 2;
  }
  ModelOptions options;
  options.dtype = *dtype;
  options.device = absl::GetFlag(FLAGS_device);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.map_weights = absl::GetFlag(FLAGS_map_weights);

  std::vector<int32_t> prompt;
  for (absl::string_view piece :
       absl::StrSplit(absl::GetFlag(FLAGS_tokens), ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      std::fprintf(stderr, "--tokens: \"%s\" is not a token id\n", std::string(piece).c_str());
      return 2;
    }
    prompt.push_back(id);
  }
  const int batch = absl::GetFlag(FLAGS_batch);
  const int new_tokens = absl::GetFlag(FLAGS_new_tokens);
  if (prompt.empty() || batch < 1 || new_tokens < 0) {
    std::fprintf(stderr, "need --tokens, --batch >= 1 and --new_tokens >= 0\n");
    return 2;
  }

  Clock::time_point start = Clock::now();
  absl::StatusOr<std::unique_ptr<Model>> model;
  if (!absl::GetFlag(FLAGS_random).empty()) {
    absl::StatusOr<ModelConfig> config = PresetConfig(absl::GetFlag(FLAGS_random));
    if (!config.ok()) {
      std::fprintf(stderr, "--random: %s\n", config.status().ToString().c_str());
      return 1;
    }
    model = Model::CreateRandom(*config, options, absl::GetFlag(FLAGS_seed));
  } else if (!absl::GetFlag(FLAGS_model).empty()) {
    model = Model::Load(absl::GetFlag(FLAGS_model), options);
  } else {
    std::fprintf(stderr, "give --model=DIR or --random=PRESET|config.json (see --help)\n");
    return 2;
  }
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  const double load_s = Seconds(start);
  const Model& m = **model;
  const ModelConfig& c = m.config();
  std::printf("model: %s, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, %.1fM params\n",
              ModelFamilyName(c.family), static_cast<long long>(c.num_hidden_layers),
              static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_attention_heads),
              static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.vocab_size),
              m.parameter_count() / 1e6);
  std::printf("compute: %s on %s, %d threads; loaded in %.2f s\n", ComputeDTypeName(m.dtype()),
              m.device().c_str(), m.threads(), load_s);
  if (absl::GetFlag(FLAGS_info)) {
    std::printf("%s\n", ModelConfigToJson(c).c_str());
    for (const WeightInfo& w : m.weights()) {
      std::printf("  %-48s [%s] %s%s\n", w.name.c_str(), absl::StrJoin(w.shape, ", ").c_str(),
                  w.stored_dtype.c_str(), w.mapped ? " (mapped)" : "");
    }
    return 0;
  }

  if (const std::string dir = absl::GetFlag(FLAGS_save); !dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    start = Clock::now();
    absl::Status status = m.Save(dir);
    if (!status.ok()) {
      std::fprintf(stderr, "--save: %s\n", status.ToString().c_str());
      return 1;
    }
    std::printf("saved to %s in %.2f s\n", dir.c_str(), Seconds(start));
    return 0;
  }

  // Sequence b drops its first b % len tokens: different lengths in a batch.
  std::vector<std::vector<int32_t>> prompts(batch);
  std::vector<std::vector<int32_t>> generated(batch);
  for (int b = 0; b < batch; ++b) {
    size_t drop = static_cast<size_t>(b) % prompt.size();
    prompts[b].assign(prompt.begin() + static_cast<ptrdiff_t>(drop), prompt.end());
  }
  std::vector<SequenceCache> caches(batch);
  std::vector<int> attention_layers;
  if (absl::GetFlag(FLAGS_attention)) attention_layers = {-1};

  std::vector<SequenceInput> inputs(batch);
  for (int b = 0; b < batch; ++b) {
    inputs[b] = SequenceInput{&caches[b], prompts[b], attention_layers};
  }
  start = Clock::now();
  absl::StatusOr<StepOutput> out = m.Forward(inputs);
  if (!out.ok()) {
    std::fprintf(stderr, "prefill: %s\n", out.status().ToString().c_str());
    return 1;
  }
  const double prefill_s = Seconds(start);
  size_t prompt_tokens = 0;
  for (const auto& p : prompts) prompt_tokens += p.size();
  std::printf("prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", prompt_tokens, prefill_s,
              prompt_tokens / prefill_s);

  std::vector<int32_t> next(batch);
  double decode_s = 0;
  int steps = 0;
  for (int step = 0; step < new_tokens; ++step) {
    for (int b = 0; b < batch; ++b) {
      next[b] = ArgMax(out->sequences[b].logits);
      generated[b].push_back(next[b]);
    }
    if (step + 1 == new_tokens) break;  // the last token needs no forward pass
    for (int b = 0; b < batch; ++b) {
      inputs[b].tokens = absl::Span<const int32_t>(&next[b], 1);
    }
    start = Clock::now();
    out = m.Forward(inputs);
    decode_s += Seconds(start);
    ++steps;
    if (!out.ok()) {
      std::fprintf(stderr, "decode step %d: %s\n", step, out.status().ToString().c_str());
      return 1;
    }
  }
  for (int b = 0; b < batch; ++b) {
    std::printf("seq %d (%zu prompt tokens): %s\n", b, prompts[b].size(),
                absl::StrJoin(generated[b], " ").c_str());
  }
  if (steps > 0) {
    std::printf("decode: %d steps x %d sequences in %.3f s: %.2f ms/step, %.1f tokens/s\n", steps,
                batch, decode_s, 1e3 * decode_s / steps, steps * batch / decode_s);
  }
  return 0;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Greedy decode with the entroserve model runner.\n"
      "  model_tool --model=DIR --tokens=1,2,3 --new_tokens=32 [--batch=8] [--dtype=bf16]\n"
      "  model_tool --random=llama-3.2-1b --dtype=bf16 --new_tokens=16");
  absl::ParseCommandLine(argc, argv);
  return entroserve::Run();
}
