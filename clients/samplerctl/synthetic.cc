#include "clients/samplerctl/synthetic.h"

#include <cmath>
#include <random>

namespace entroserve {
namespace {

// Regimes of the synthetic sequence, visited in a repeating pattern.
enum class Regime { kPeaked, kFlatFew, kStrongWithTail, kSplitWithTail, kZipf };
constexpr Regime kPattern[] = {Regime::kPeaked,        Regime::kZipf,
                               Regime::kPeaked,        Regime::kStrongWithTail,
                               Regime::kZipf,          Regime::kFlatFew,
                               Regime::kPeaked,        Regime::kSplitWithTail,
                               Regime::kZipf,          Regime::kPeaked};
constexpr float kMaskedLogit = -30.0f;  // far below every live token

std::mt19937_64 StepEngine(uint64_t seed, int64_t step) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32)};
  return std::mt19937_64(seq);
}

}  // namespace

std::vector<float> SyntheticLogits(uint64_t seed, int64_t step, int32_t vocab,
                                   int32_t previous_token) {
  std::mt19937_64 engine = StepEngine(seed, step);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
  std::vector<float> z(static_cast<size_t>(vocab));
  const int32_t top = pick(engine);
  switch (kPattern[step % (sizeof(kPattern) / sizeof(kPattern[0]))]) {
    case Regime::kPeaked:
      for (auto& v : z) v = noise(engine);
      z[top] = 28.0f;
      break;
    case Regime::kFlatFew:
      for (auto& v : z) v = kMaskedLogit + noise(engine);
      for (int i = 0; i < 64; ++i) z[pick(engine)] = 0.01f * noise(engine);
      break;
    case Regime::kStrongWithTail:
      for (auto& v : z) v = 0.05f * noise(engine);
      z[top] = std::log(4.0f * static_cast<float>(vocab));
      break;
    case Regime::kSplitWithTail:
      for (auto& v : z) v = 0.05f * noise(engine);
      z[top] = std::log(0.5f * static_cast<float>(vocab));
      z[pick(engine)] = std::log(0.5f * static_cast<float>(vocab));
      break;
    case Regime::kZipf:
      for (int32_t i = 0; i < vocab; ++i) {
        z[i] = -1.1f * std::log(1.0f + static_cast<float>((i * 7919 + top) % vocab)) +
               0.3f * noise(engine);
      }
      break;
  }
  if (previous_token >= 0 && previous_token < vocab) z[previous_token] -= 2.0f;
  return z;
}

std::vector<float> SyntheticAttention(uint64_t seed, int64_t step, int32_t heads,
                                      int32_t keys) {
  std::mt19937_64 engine = StepEngine(seed ^ 0x9e3779b97f4a7c15ull, step);
  std::normal_distribution<float> noise(0.0f, 1.5f);
  std::vector<float> s(static_cast<size_t>(heads) * keys);
  for (auto& v : s) v = noise(engine);
  return s;
}

}  // namespace entroserve
