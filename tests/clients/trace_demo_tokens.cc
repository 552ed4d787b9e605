#include "tests/clients/trace_demo_tokens.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "sampler/core/configs.h"

namespace entroserve {
namespace {

using runner::v1::GeneratedToken;
using sampler::v1::Mode;

// One demo token: its text and mode; signals and parameters are derived.
struct DemoStep {
  const char* text;
  Mode mode;
  bool inserted = false;
};

constexpr Mode kFlow = sampler::v1::MODE_FLOWING;
constexpr Mode kClar = sampler::v1::MODE_CLARIFY;
constexpr Mode kExpl = sampler::v1::MODE_EXPLORE;
constexpr Mode kResa = sampler::v1::MODE_RESAMPLE;
constexpr Mode kAdap = sampler::v1::MODE_ADAPTIVE;
constexpr Mode kAlph = sampler::v1::MODE_ALPHA;
constexpr Mode kSamp = sampler::v1::MODE_SAMPLE;
constexpr Mode kGree = sampler::v1::MODE_GREEDY;

// clang-format off
const DemoStep kSteps[] = {
    {"The", kAdap}, {" trace", kAdap}, {" shows", kFlow}, {" each", kFlow}, {" token", kFlow},
    {"'s", kFlow}, {" mode", kExpl}, {":", kFlow}, {"\n", kFlow}, {"- ", kAdap},
    {"`", kAdap}, {"<script>", kResa}, {"alert", kExpl}, {"(", kFlow}, {"1", kAdap},
    {")", kFlow}, {"</script>", kFlow}, {"`", kFlow}, {" is", kAdap}, {" escaped", kExpl},
    {",", kFlow}, {" so", kAdap}, {" is", kFlow}, {" &amp;", kResa}, {" and", kFlow},
    {" \"", kAdap}, {"quotes", kExpl}, {"\"", kFlow}, {" or", kAdap}, {" '", kAdap},
    {"single", kExpl}, {"'", kFlow}, {".", kFlow}, {"\n\n", kAdap}, {"Hmm", kClar},
    {"\xE2\x80\xA6", kClar, true}, {" emoji", kResa}, {":", kFlow}, {"", kAdap},
    {" \xF0\x9F\x8E\x89", kAdap}, {"\xF0\x9F\x99\x82", kExpl}, {" CJK", kAdap}, {":", kFlow},
    {" \xE4\xB8\xAD\xE6\x96\x87", kResa}, {"\xE5\xAD\x97", kAdap}, {"\t", kClar},
    {"tab", kAdap}, {".\n", kFlow}, {"Alpha", kAlph}, {" picks", kAlph}, {" its", kAlph},
    {" own", kAlph}, {" knobs", kAlph}, {";", kSamp}, {" chain", kSamp}, {" samples", kSamp},
    {";", kGree}, {" greedy", kGree}, {" ends", kGree}, {".", kGree},
};
// clang-format on

// A fixed sequence of uniforms in [0, 1) (64-bit LCG, Knuth's MMIX constants).
class DemoUniform {
 public:
  float Next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>(state_ >> 40) / static_cast<float>(1 << 24);
  }

 private:
  uint64_t state_ = 0x5eed;
};

float Lerp(float lo, float hi, float u) { return lo + (hi - lo) * u; }

}  // namespace

std::vector<GeneratedToken> DemoTraceTokens() {
  const EntropixConfig c;
  DemoUniform u;
  std::vector<GeneratedToken> tokens;
  int32_t index = 0;
  for (const DemoStep& step : kSteps) {
    GeneratedToken t;
    t.set_id(1000 + 37 * index);
    t.set_text(step.text);
    t.set_mode(step.mode);
    t.set_inserted(step.inserted);
    t.set_index(index);
    float h = 0, v = 0;
    switch (step.mode) {  // inside each mode's region of entropix.h
      case sampler::v1::MODE_FLOWING:
        h = Lerp(0.005f, 0.09f, u.Next()), v = Lerp(0.002f, 0.09f, u.Next());
        break;
      case sampler::v1::MODE_CLARIFY:
        h = Lerp(3.1f, 4.6f, u.Next()), v = Lerp(0.02f, 0.09f, u.Next());
        break;
      case sampler::v1::MODE_EXPLORE:
        h = Lerp(2.0f, 4.8f, u.Next()), v = Lerp(5.3f, 9.0f, u.Next());
        break;
      case sampler::v1::MODE_RESAMPLE:
        h = Lerp(5.2f, 7.5f, u.Next()), v = Lerp(5.5f, 11.0f, u.Next());
        break;
      default:
        h = Lerp(0.3f, 4.5f, u.Next()), v = Lerp(0.3f, 4.5f, u.Next());
        break;
    }
    sampler::v1::Signals* s = t.mutable_signals();
    s->set_entropy(h);
    s->set_varentropy(v);
    const float attn_entropy = Lerp(1.0f, 3.0f, u.Next());
    const float attn_varentropy = Lerp(0.1f, 1.5f, u.Next());
    const float agreement = Lerp(0.0f, 0.4f, u.Next());
    const float strength = Lerp(0.0f, 1.2f, u.Next());
    s->set_attn_entropy(attn_entropy);
    s->set_attn_varentropy(attn_varentropy);
    s->set_attn_entropy_spread(Lerp(0.0f, 0.6f, u.Next()));
    s->set_agreement(agreement);
    s->set_interaction_strength(strength);

    // Parameters as entropix.h's table computes them (base values elsewhere).
    sampler::v1::SamplingParams* p = t.mutable_params();
    float temperature = c.temperature, top_p = c.top_p, min_p = c.min_p;
    int32_t top_k = c.top_k;
    switch (step.mode) {
      case sampler::v1::MODE_CLARIFY:
        temperature = std::min(c.clarify_max_temperature,
                               c.temperature * (c.clarify_attn_entropy_offset +
                                                c.clarify_attn_entropy_coef * attn_entropy));
        break;
      case sampler::v1::MODE_EXPLORE:
        temperature = std::min(
            c.explore_max_temperature,
            c.temperature * (c.explore_strength_offset + c.explore_strength_coef * strength));
        top_k = std::max(
            c.explore_min_top_k,
            static_cast<int32_t>(c.top_k * (1 + c.explore_top_k_agreement_coef * (1 - agreement))));
        break;
      case sampler::v1::MODE_RESAMPLE:
        temperature = std::max(c.resample_min_temperature,
                               c.temperature * (c.resample_attn_varentropy_offset +
                                                c.resample_attn_varentropy_coef * attn_varentropy));
        top_p = std::max(c.resample_min_top_p,
                         c.top_p - c.resample_top_p_attn_entropy_coef * attn_entropy);
        break;
      case sampler::v1::MODE_ADAPTIVE:
        temperature =
            c.temperature * (1 + c.adaptive_logit_uncertainty_coef * (h + v) +
                             c.adaptive_attn_uncertainty_coef * (attn_entropy + attn_varentropy) -
                             c.adaptive_agreement_coef * agreement);
        top_p = std::clamp(top_p * (1 + c.adaptive_top_p_attn_varentropy_coef * attn_varentropy),
                           0.1f, 1.0f);
        top_k = std::clamp(static_cast<int32_t>(std::nearbyint(
                               c.top_k * (1 + c.adaptive_top_k_strength_coef * strength -
                                          c.adaptive_top_k_agreement_coef * agreement))),
                           1, c.adaptive_max_top_k);
        min_p = std::clamp(min_p * (1 - c.adaptive_min_p_uncertainty_coef * (h + v)), 0.01f, 0.5f);
        p->set_samples(c.adaptive_samples);
        break;
      default:
        break;
    }
    if (step.mode == sampler::v1::MODE_ALPHA) {
      const AlphaConfig a;
      p->set_temperature(Lerp(a.min_temperature, a.max_temperature, u.Next()));
      p->set_top_k(static_cast<int32_t>(Lerp(8, 40, u.Next())));
      p->set_top_p(Lerp(0.7f, 0.95f, u.Next()));
      p->set_repetition_penalty(a.base_repetition_penalty);
      p->set_candidate_size(a.base_candidate_size);
      p->set_alpha(Lerp(0.2f, 0.6f, u.Next()));
      p->set_smoothed_alpha(0.4f);
    } else if (step.mode == sampler::v1::MODE_SAMPLE) {
      p->set_temperature(0.8f);
      p->set_top_k(40);
      p->set_top_p(0.95f);
    } else if (step.mode == sampler::v1::MODE_GREEDY) {
      t.clear_params();  // greedy sets none
    } else {
      p->set_temperature(temperature);
      p->set_top_k(top_k);
      p->set_top_p(top_p);
      p->set_min_p(min_p);
      p->set_candidates(step.mode == sampler::v1::MODE_FLOWING
                            ? 1
                            : static_cast<int32_t>(Lerp(2, static_cast<float>(top_k), u.Next())));
    }
    t.set_logprob(step.mode == sampler::v1::MODE_FLOWING ? -Lerp(0.001f, 0.05f, u.Next())
                                                         : -Lerp(0.2f, 4.0f, u.Next()));
    tokens.push_back(std::move(t));
    ++index;
  }
  return tokens;
}

TraceMeta DemoTraceMeta() {
  TraceMeta meta;
  meta.prompt = "Explain <b>modes</b> & \"signals\" in one paragraph.\nThen list them.";
  meta.sampler = "entropix { temperature: 0.666 }";
  meta.seed = 7;
  meta.model = "demo (synthetic tokens, no model)";
  meta.extra = {{"finish", "length"}, {"total", "812 ms"}};
  return meta;
}

}  // namespace entroserve
