// Tiny random checkpoints for the model runner tests: configs of each family
// small enough to run in milliseconds, weights drawn from a seeded generator
// and kept as floats (so that tests can build reference computations from
// the very values the model loads), written as config.json plus
// model.safetensors (or shards with an index) in F32, F16 or BF16.
// No libtorch here.
#ifndef ENTROSERVE_TESTS_MODEL_RUNNER_TEST_UTIL_TINY_CHECKPOINT_H_
#define ENTROSERVE_TESTS_MODEL_RUNNER_TEST_UTIL_TINY_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model_runner/checkpoint/model_config.h"
#include "model_runner/checkpoint/safetensors.h"

namespace entroserve::test_util {

// Llama with GQA (4 heads, 2 kv heads), untied, Llama 3 rope scaling whose
// three frequency bands (kept, smoothed, divided) all occur at head_dim 16.
ModelConfig TinyLlamaConfig();
// Qwen2: q/k/v biases, tied embeddings, one kv head for 4 query heads.
ModelConfig TinyQwen2Config();
// Mistral with a sliding window of 5 positions.
ModelConfig TinyMistralConfig();

struct TensorValues {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Every weight `config` calls for, by its Hugging Face name.
using WeightMap = std::map<std::string, TensorValues>;

// Random weights: normal(0, stddev) for matrices and biases, 1 + normal(0,
// 0.1) for norms. Deterministic in `seed` (std::mt19937_64).
WeightMap RandomWeights(const ModelConfig& config, uint64_t seed, float stddev = 0.2f);

// `weights` with every value rounded to `dtype` (identity for F32).
WeightMap RoundWeights(const WeightMap& weights, SafetensorsDType dtype);

// Writes config.json and the weights (converted to `dtype`) into `dir`
// (created if needed): model.safetensors when `shards` is 1, else
// model-0000i-of-0000n.safetensors files and model.safetensors.index.json.
absl::Status WriteCheckpoint(const std::string& dir, const ModelConfig& config,
                             const WeightMap& weights, SafetensorsDType dtype, int shards = 1);

// A fresh empty folder under $TMPDIR (or /tmp), removed with its contents
// on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name, made as a folder.
  std::string Sub(const std::string& name) const;

 private:
  std::string path_;
};

// Whole-file helpers for corrupting checkpoints.
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& bytes);

}  // namespace entroserve::test_util

#endif  // ENTROSERVE_TESTS_MODEL_RUNNER_TEST_UTIL_TINY_CHECKPOINT_H_
