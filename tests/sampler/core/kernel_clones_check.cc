// Prints a digest of what the multiversioned kernels compute for 300 random
// rows (sizes, masks, tails of every kind): the signals, CandidateSet's
// Normalize, and top_tokens' tempered masses and weights; or "skip" when this
// CPU cannot run the kernels it was built with. tests/sampler/clones.cmake
// builds it once per target clone (ENTROSERVE_KERNEL_TARGET: x86-64-v4,
// x86-64-v3 and the baseline) and checks that every build prints the same
// digest: bit-identical results whichever clone the loader picks (see
// sampler/core/multiversion.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "sampler/core/candidates.h"
#include "sampler/core/signals.h"
#include "sampler/policies/top_tokens.h"

namespace entroserve {
namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr int kRows = 300;

uint64_t Mix(uint64_t h, uint64_t bits) { return (h ^ bits) * kFnvPrime; }
uint64_t MixFloat(uint64_t h, float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return Mix(h, u);
}
uint64_t MixDouble(uint64_t h, double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof(u));
  return Mix(h, u);
}

bool CpuRunsKernels() {
#if defined(ENTROSERVE_CLONE_CHECK_V4)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("fma");
#elif defined(ENTROSERVE_CLONE_CHECK_V3)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return true;
#endif
}

// signals.cc: every signal of the row, and the logit summary.
uint64_t MixSignals(uint64_t h, const std::vector<float>& z, const std::vector<float>& att,
                    int heads, int keys) {
  LogitSummary s;
  const Signals g = ComputeSignals(z, att, heads, keys, &s);
  for (float f : {g.entropy, g.varentropy, g.attn_entropy, g.attn_varentropy, g.attn_entropy_spread,
                  g.agreement, g.interaction_strength, s.max_logit}) {
    h = MixFloat(h, f);
  }
  h = MixDouble(h, s.log_normalizer);
  return Mix(h, static_cast<uint64_t>(s.argmax) ^ (static_cast<uint64_t>(s.finite) << 32));
}

// candidates.cc: p of every item after Normalize, with a temperature applied
// first (logits of other magnitudes).
uint64_t MixNormalize(uint64_t h, const std::vector<float>& z, float temperature) {
  CandidateSet set = CandidateSet::FromLogits(z);
  set.ApplyTemperature(temperature);
  set.Normalize();
  for (const Candidate& c : set.items()) h = MixFloat(h, c.p);
  return h;
}

// top_tokens.cc: tempered masses over the row, with and without a threshold,
// and the weights of the top tokens.
uint64_t MixTempered(uint64_t h, const std::vector<float>& z, float inv_temperature) {
  float max_logit = -INFINITY;
  for (float v : z) max_logit = std::max(max_logit, v);
  h = MixDouble(h, TemperedMass(z, max_logit, inv_temperature, -INFINITY));
  h = MixDouble(h, TemperedMass(z, max_logit, inv_temperature, max_logit - 3.0f));
  for (const Candidate& c : SelectTopTokens(z, 40, -INFINITY).items) {
    h = Mix(h, static_cast<uint64_t>(c.id));
    h = MixFloat(h, TemperedWeight(c.logit, max_logit, inv_temperature));
  }
  return h;
}

int Run() {
  if (!CpuRunsKernels()) {
    std::puts("skip");
    return 0;
  }
  std::mt19937 gen(1);
  uint64_t h = kFnvOffset;
  for (int row = 0; row < kRows; ++row) {
    const int vocab = 1 + static_cast<int>(gen() % 40000);
    const int heads = 1 + static_cast<int>(gen() % 8);
    const int keys = 1 + static_cast<int>(gen() % 700);
    std::normal_distribution<float> normal(0.0f, 0.5f + static_cast<float>(gen() % 100) / 10.0f);
    std::vector<float> z(static_cast<size_t>(vocab));
    std::vector<float> att(static_cast<size_t>(heads * keys));
    for (float& v : z) v = normal(gen);
    for (int i = 0; i < vocab; i += 1 + static_cast<int>(gen() % 50)) z[i] = -INFINITY;
    z[gen() % vocab] = 3.0f;
    for (float& v : att) v = normal(gen);
    const float temperature = 0.3f + static_cast<float>(gen() % 20) / 10.0f;
    h = MixSignals(h, z, att, heads, keys);
    h = MixNormalize(h, z, temperature);
    h = MixTempered(h, z, 1.0f / temperature);
  }
  std::printf("%016llx\n", static_cast<unsigned long long>(h));
  return 0;
}

}  // namespace
}  // namespace entroserve

int main() { return entroserve::Run(); }
