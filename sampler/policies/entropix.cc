#include "sampler/policies/entropix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sampler/core/rng.h"
#include "sampler/core/signals.h"
#include "sampler/policies/top_tokens.h"

namespace entroserve {
namespace {

// Bounds of entropix's adaptive clips that EntropixConfig does not carry as
// fields (entropix e55e9a3 torch_sampler.py adaptive_sample; docs/SAMPLERS.md
// "entropix": top_p = clip(.., 0.1, 1), top_k = clip(.., 1,
// adaptive_max_top_k), min_p = clip(.., 0.01, 0.5)).
constexpr float kAdaptiveMinTopP = 0.1f;
constexpr float kAdaptiveMaxTopP = 1.0f;
constexpr float kAdaptiveMinMinP = 0.01f;
constexpr float kAdaptiveMaxMinP = 0.5f;
constexpr int32_t kMinTopK = 1;

// Every sampling temperature a mode computes is at least kMinTemperature
// (config_schema.h), the floor Validate() also puts on the temperature fields. Not
// an entropix parameter: entropix has none. With agreement <= 1 the adaptive
// factor stays positive for adaptive_agreement_coef < 1, but larger
// coefficients could drive T to 0 or below, and a tiny clarify or explore
// offset could drive T towards 0; at the floor any logit gap above ~0.09
// already underflows exp, so the draw is the argmax T -> 0 tends to.

// Relative slack on the bounds of an unseen survivor's weight (between
// min_p and the last kept weight): covers the ~1e-7 error of the exp and the
// rounding of the threshold, so that a bound never decides wrongly.
constexpr double kWeightBoundSlack = 1e-5;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();

// float -> int32 without overflow (x >= 0, finite).
int32_t ClampToInt(float x) {
  if (x >= static_cast<float>(kIntMax)) return kIntMax;
  return static_cast<int32_t>(x);
}

// ---------------------------------------------------------------------------

class EntropixSampler : public Sampler {
 public:
  explicit EntropixSampler(const EntropixConfig& config) : config_(config) {}

  std::string Name() const override { return "entropix"; }
  bool NeedsState() const override { return true; }
  absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const override;

 private:
  const EntropixConfig config_;
};

absl::StatusOr<RowOutput> EntropixSampler::Sample(const Row& row, SamplerState& state) const {
  LogitSummary summary;
  absl::StatusOr<Signals> signals = ComputeRowSignals(row, &summary);
  if (!signals.ok()) return signals.status();
  const int64_t vocab_size = static_cast<int64_t>(row.logits.size());

  RowOutput out;
  out.signals = *signals;

  const EntropixDecision decision =
      DecideEntropix(config_, out.signals, state.last_inserted, row.special_tokens);
  out.mode = decision.mode;
  if (decision.argmax) {
    out.token = summary.argmax;
    out.params.candidates = 1;
  } else if (decision.insert_token.has_value()) {
    const int32_t token = *decision.insert_token;
    if (token < 0 || token >= vocab_size) {
      const char* field = row.special_tokens.clarifying_question == decision.insert_token
                              ? "special_tokens.clarifying_question"
                              : "special_tokens.pause";
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be in [0, ", vocab_size, ") (the vocabulary), got ", token));
    }
    out.token = token;
    out.inserted = true;
  } else {
    const CandidateSet set = EntropixFilter(row.logits, summary.max_logit, decision.temperature,
                                            decision.top_k, decision.top_p, decision.min_p);
    const CounterRng rng(row.seed, row.step);
    // Adaptive mode ranks its draws by log_softmax(z)[token]: the normaliser
    // is common to all of them, so the raw logit ranks the same. Ties keep the
    // first draw.
    int32_t best = -1;
    for (int32_t draw = 0; draw < decision.samples; ++draw) {
      const int32_t index = DrawIndex(set, rng.Uniform(static_cast<uint32_t>(draw)));
      const int32_t token = set.items()[static_cast<size_t>(index)].id;
      if (best < 0 || row.logits[token] > row.logits[best]) best = token;
    }
    out.token = best;
    out.params.temperature = decision.temperature;
    out.params.top_k = decision.top_k;
    out.params.top_p = decision.top_p;
    out.params.min_p = decision.min_p;
    out.params.samples = decision.samples;
    out.params.candidates = static_cast<int32_t>(set.size());
  }
  out.logprob = TokenLogProbFloat(summary, row.logits[out.token]);
  state.PushToken(out.token);
  state.last_inserted = out.inserted;
  return out;
}

}  // namespace

EntropixDecision DecideEntropix(const EntropixConfig& config, const Signals& signals,
                                bool last_inserted, const SpecialTokens& special_tokens) {
  const float entropy = signals.entropy;
  const float varentropy = signals.varentropy;
  // Without attention every attention term is 0.
  const bool attention = signals.has_attention;
  const float attn_entropy = attention ? signals.attn_entropy : 0.0f;
  const float attn_varentropy =
      !attention ? 0.0f
                 : (config.attn_varentropy_is_spread ? signals.attn_entropy_spread
                                                     : signals.attn_varentropy);
  const float agreement = attention ? signals.agreement : 0.0f;
  const float strength = attention ? signals.interaction_strength : 0.0f;

  EntropixDecision d;
  d.temperature = config.temperature;
  d.top_k = config.top_k;
  d.top_p = config.top_p;
  d.min_p = config.min_p;
  d.samples = 1;

  // 1. flowing: low entropy, low varentropy.
  if (entropy < config.low_entropy && varentropy < config.low_varentropy) {
    d.mode = Mode::kFlowing;
    d.argmax = true;
    return d;
  }
  // 2. clarify: high entropy, low varentropy.
  if (entropy > config.medium_entropy && varentropy < config.low_varentropy) {
    d.mode = Mode::kClarify;
    if (!last_inserted) {
      if (special_tokens.clarifying_question.has_value()) {
        d.insert_token = special_tokens.clarifying_question;
        return d;
      }
      if (special_tokens.pause.has_value()) {
        d.insert_token = special_tokens.pause;
        return d;
      }
      // Neither id given: sample (the HF port fell through and returned None).
    }
    d.temperature =
        std::max(kMinTemperature,
                 std::min(config.clarify_max_temperature,
                          config.temperature * (config.clarify_attn_entropy_offset +
                                                config.clarify_attn_entropy_coef * attn_entropy)));
    return d;
  }
  // 3. explore: lower entropy, high varentropy.
  if (entropy < config.high_entropy && varentropy > config.high_varentropy) {
    d.mode = Mode::kExplore;
    d.temperature = std::max(
        kMinTemperature, std::min(config.explore_max_temperature,
                                  config.temperature * (config.explore_strength_offset +
                                                        config.explore_strength_coef * strength)));
    const float k = static_cast<float>(config.top_k) *
                    (1.0f + config.explore_top_k_agreement_coef * (1.0f - agreement));
    d.top_k = std::max(config.explore_min_top_k, ClampToInt(k));  // int() truncates
    return d;
  }
  // 4. resample: high entropy, high varentropy.
  if (entropy > config.high_entropy && varentropy > config.high_varentropy) {
    d.mode = Mode::kResample;
    d.temperature =
        std::max(config.resample_min_temperature,
                 config.temperature * (config.resample_attn_varentropy_offset +
                                       config.resample_attn_varentropy_coef * attn_varentropy));
    d.top_p = std::max(config.resample_min_top_p,
                       config.top_p - config.resample_top_p_attn_entropy_coef * attn_entropy);
    return d;
  }
  // 5. adaptive: everything else.
  d.mode = Mode::kAdaptive;
  const float logit_uncertainty = entropy + varentropy;
  const float attn_uncertainty = attn_entropy + attn_varentropy;
  d.temperature = std::max(
      kMinTemperature,
      config.temperature * (1.0f + config.adaptive_logit_uncertainty_coef * logit_uncertainty +
                            config.adaptive_attn_uncertainty_coef * attn_uncertainty -
                            config.adaptive_agreement_coef * agreement));
  d.top_p = std::clamp(
      config.top_p * (1.0f + config.adaptive_top_p_attn_varentropy_coef * attn_varentropy),
      kAdaptiveMinTopP, kAdaptiveMaxTopP);
  // torch.round rounds half to even, as nearbyint in the default rounding mode.
  const float k = std::nearbyint(static_cast<float>(config.top_k) *
                                 (1.0f + config.adaptive_top_k_strength_coef * strength -
                                  config.adaptive_top_k_agreement_coef * agreement));
  d.top_k = ClampToInt(
      std::clamp(k, static_cast<float>(kMinTopK), static_cast<float>(config.adaptive_max_top_k)));
  d.min_p =
      std::clamp(config.min_p * (1.0f - config.adaptive_min_p_uncertainty_coef * logit_uncertainty),
                 kAdaptiveMinMinP, kAdaptiveMaxMinP);
  d.samples = config.adaptive_samples;
  return d;
}

CandidateSet EntropixFilter(absl::Span<const float> logits, float max_logit, float temperature,
                            int32_t top_k, float top_p, float min_p) {
  const float inv_temperature = 1.0f / temperature;
  // 2. min_p as a logit threshold: p >= min_p p_max <=> z >= z_max + T ln(min_p).
  const float threshold = min_p > 0.0f ? max_logit + temperature * std::log(min_p) : kNegInf;
  // 3. top_k among the min_p survivors.
  TopTokens top = SelectTopTokens(logits, top_k, threshold);
  std::vector<Candidate>& items = top.items;

  // 4. top_p over the probabilities renormalised over all min_p survivors.
  size_t keep = items.size();
  if (top_p < 1.0f && !items.empty()) {
    std::vector<double> weight(items.size());
    double top_mass = 0.0;
    for (size_t i = 0; i < items.size(); ++i) {
      weight[i] = TemperedWeight(items[i].logit, max_logit, inv_temperature);
      top_mass += weight[i];
    }
    // Keeps a token while the mass before it is <= top_p * mass. Returns false
    // when a token's fate depends on where in [mass_lo, mass_hi] the mass is.
    const auto cut = [&](double mass_lo, double mass_hi) {
      const double keep_below = static_cast<double>(top_p) * mass_lo;
      const double drop_above = static_cast<double>(top_p) * mass_hi;
      double before = 0.0;
      for (size_t i = 0; i < items.size(); ++i) {
        if (before > drop_above) {
          keep = i;
          return true;
        }
        if (!(before <= keep_below)) return false;
        before += weight[i];
      }
      keep = items.size();
      return true;
    };
    const int64_t rest = top.at_least - static_cast<int64_t>(items.size());
    if (rest == 0) {
      cut(top_mass, top_mass);
    } else {
      // The survivors top_k dropped each weigh between min_p (the threshold)
      // and the last kept weight: bounds that usually decide every token
      // without the second pass over the row.
      const double others = static_cast<double>(rest);
      const double lo = top_mass + others * min_p * (1.0 - kWeightBoundSlack);
      const double hi = top_mass + others * weight.back() * (1.0 + kWeightBoundSlack);
      if (!cut(lo, hi)) {
        const double mass = TemperedMass(logits, max_logit, inv_temperature, threshold);
        cut(mass, mass);
      }
    }
  }
  items.resize(keep);

  // 5. renormalise over what is left (items keep their order: the draw order).
  for (Candidate& c : items) c.logit = (c.logit - max_logit) * inv_temperature;
  CandidateSet set = CandidateSet::FromItems(std::move(items), static_cast<int32_t>(logits.size()));
  set.Normalize();
  return set;
}

std::unique_ptr<Sampler> MakeEntropixSampler(const EntropixConfig& config) {
  return std::make_unique<EntropixSampler>(config);
}

}  // namespace entroserve
