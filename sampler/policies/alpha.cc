#include "sampler/policies/alpha.h"

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

// target = smoothed alpha * kTargetFraction: "normalised entropy close to
// avg_alpha / 2", the objective the original AlphaSampler stated.
constexpr double kTargetFraction = 0.5;

// Golden-section constants: phi = (1 + sqrt 5) / 2 and 1 / phi.
constexpr double kGoldenRatio = 1.6180339887498949;
constexpr double kInvGoldenRatio = 0.6180339887498949;
// Golden-section stops once its bracket is narrower than this fraction of a
// continuous parameter's range: 0.0009 in temperature and top_p, 0.0004 in
// the penalty with the default bounds (about 15 golden-section steps from a
// full-range bracket).
constexpr double kContinuousResolution = 1e-3;

constexpr double kLn2 = 0.693147180559945309417232121458;

enum Coordinate { kTemperature, kTopK, kTopP, kRepetitionPenalty, kCandidateSize, kCoordinates };

// ---------------------------------------------------------------------------

double Log2Vocab(int64_t vocab_size) {
  return vocab_size > 1 ? std::log2(static_cast<double>(vocab_size)) : 0.0;
}

// Evaluates steps a-f of alpha.h for one parameter set. The merged order, the
// weights and their prefix sums depend only on (temperature, penalty), so
// they are kept while those stay the same (the top_k, top_p and
// candidate_size line searches) and extended as top_k grows: such an
// evaluation is two binary searches. The sums are always accumulated in the
// same order, so cached and fresh evaluations agree to the last bit.
class FilterEvaluator {
 public:
  explicit FilterEvaluator(const AlphaPool& pool)
      : pool_(pool), log2_vocab_(Log2Vocab(pool.vocab_size)) {}

  struct Result {
    int32_t size = 0;   // tokens left: merged()[0, size)
    double mass = 0.0;  // sum of weight()[0, size)
    double entropy_bits = 0.0;
    double normalized_entropy = 0.0;
  };

  Result Evaluate(const AlphaParameters& params) {
    Result result;
    if (!(params.temperature == temperature_ && params.repetition_penalty == penalty_)) {
      Reset(params.temperature, params.repetition_penalty);
    }
    const size_t total = pool_.free_tokens.size() + pool_.penalised_tokens.size();
    const size_t k = std::min(static_cast<size_t>(std::max(params.top_k, 1)), total);
    if (k == 0) return result;
    Extend(k);
    // d. top_p: drop token i once the mass before it, prefix_weight_[i],
    // exceeds top_p times the top-k mass.
    size_t keep = k;
    if (params.top_p < 1.0f) {
      const double limit = static_cast<double>(params.top_p) * prefix_weight_[k];
      keep = static_cast<size_t>(
          std::upper_bound(prefix_weight_.begin(), prefix_weight_.begin() + k, limit) -
          prefix_weight_.begin());
    }
    // e. candidate_size.
    keep = std::min(keep, static_cast<size_t>(std::max(params.candidate_size, 1)));
    // f. renormalise: H = ln S - sum w x / S (nats), with x = ln w.
    const double mass = prefix_weight_[keep];
    result.size = static_cast<int32_t>(keep);
    result.mass = mass;
    result.entropy_bits = std::max(0.0, (std::log(mass) - prefix_weighted_[keep] / mass) / kLn2);
    result.normalized_entropy = log2_vocab_ > 0.0 ? result.entropy_bits / log2_vocab_ : 0.0;
    return result;
  }

  const std::vector<Candidate>& merged() const { return merged_; }
  const std::vector<double>& weight() const { return weight_; }

 private:
  void Reset(float temperature, float penalty) {
    temperature_ = temperature;
    penalty_ = penalty;
    inv_temperature_ = 1.0 / static_cast<double>(temperature);
    next_free_ = 0;
    next_penalised_ = 0;
    merged_.clear();
    weight_.clear();
    scaled_.clear();
    prefix_weight_.assign(1, 0.0);
    prefix_weighted_.assign(1, 0.0);
  }

  // a + b + c for the first k tokens: the merge of the free tokens with the
  // penalised ones (penalising is monotone, so those stay sorted), and the
  // weights exp((z - z_first) / T) relative to the first.
  void Extend(size_t k) {
    const std::vector<Candidate>& free = pool_.free_tokens;
    const std::vector<Candidate>& penalised = pool_.penalised_tokens;
    while (merged_.size() < k) {
      Candidate next;
      bool take_penalised = false;
      if (next_penalised_ < penalised.size()) {
        const Candidate& q = penalised[next_penalised_];
        next = {q.id, PenalizeLogit(q.logit, penalty_), 0.0f};
        take_penalised = next_free_ >= free.size() || ByLogitDescending()(next, free[next_free_]);
      }
      if (take_penalised) {
        ++next_penalised_;
      } else {
        next = free[next_free_++];
      }
      merged_.push_back(next);
      const double x = (static_cast<double>(next.logit) - merged_[0].logit) * inv_temperature_;
      const double w = std::exp(x);
      scaled_.push_back(x);
      weight_.push_back(w);
      prefix_weight_.push_back(prefix_weight_.back() + w);
      prefix_weighted_.push_back(prefix_weighted_.back() + w * x);
    }
  }

  const AlphaPool& pool_;
  const double log2_vocab_;
  // The (temperature, penalty) the buffers below hold; NaN: none yet.
  float temperature_ = std::numeric_limits<float>::quiet_NaN();
  float penalty_ = std::numeric_limits<float>::quiet_NaN();
  double inv_temperature_ = 0.0;
  size_t next_free_ = 0;
  size_t next_penalised_ = 0;
  std::vector<Candidate> merged_;
  std::vector<double> scaled_;
  std::vector<double> weight_;
  std::vector<double> prefix_weight_{0.0};    // [i]: sum of weight_[0, i)
  std::vector<double> prefix_weighted_{0.0};  // [i]: sum of (weight_ * scaled_)[0, i)
};

// Reads and writes one coordinate of AlphaParameters as a double.
double GetCoordinate(const AlphaParameters& p, int c) {
  switch (c) {
    case kTemperature:
      return p.temperature;
    case kTopK:
      return p.top_k;
    case kTopP:
      return p.top_p;
    case kRepetitionPenalty:
      return p.repetition_penalty;
    case kCandidateSize:
      return p.candidate_size;
  }
  return 0.0;
}

void SetCoordinate(AlphaParameters& p, int c, double value) {
  switch (c) {
    case kTemperature:
      p.temperature = static_cast<float>(value);
      break;
    case kTopK:
      p.top_k = static_cast<int32_t>(std::lround(value));
      break;
    case kTopP:
      p.top_p = static_cast<float>(value);
      break;
    case kRepetitionPenalty:
      p.repetition_penalty = static_cast<float>(value);
      break;
    case kCandidateSize:
      p.candidate_size = static_cast<int32_t>(std::lround(value));
      break;
  }
}

struct Bounds {
  double lo = 0.0;
  double hi = 0.0;
};

Bounds CoordinateBounds(const AlphaConfig& config, int c) {
  switch (c) {
    case kTemperature:
      return {config.min_temperature, config.max_temperature};
    case kTopK:
      return {static_cast<double>(config.min_top_k), static_cast<double>(config.max_top_k)};
    case kTopP:
      return {config.min_top_p, config.max_top_p};
    case kRepetitionPenalty:
      return {config.min_repetition_penalty, config.max_repetition_penalty};
    case kCandidateSize:
      return {static_cast<double>(config.min_candidate_size),
              static_cast<double>(config.max_candidate_size)};
  }
  return {0.0, 0.0};
}

bool IsInteger(int c) { return c == kTopK || c == kCandidateSize; }
bool IsSupportLimit(int c) { return c == kTopK || c == kTopP || c == kCandidateSize; }

// Coordinate descent with bracketing and golden-section line searches (see
// alpha.h).
class ParameterSearch {
 public:
  ParameterSearch(const AlphaConfig& config, const AlphaPool& pool, double target)
      : config_(config), evaluator_(pool), target_(target) {}

  AlphaSearchResult Run() {
    AlphaSearchResult result;
    AlphaParameters params = BaseAlphaParameters(config_);
    double objective = Objective(params);
    result.initial_objective = objective;
    int32_t sweeps = 0;
    while (sweeps < config_.max_iterations && !(objective < config_.tolerance)) {
      ++sweeps;
      bool moved = false;
      for (int c = 0; c < kCoordinates && !(objective < config_.tolerance); ++c) {
        moved |= LineSearch(c, params, objective);
      }
      if (!moved) break;
    }
    result.params = params;
    result.objective = objective;
    result.sweeps = sweeps;
    result.evaluations = evaluations_;
    return result;
  }

 private:
  double Objective(const AlphaParameters& params) {
    ++evaluations_;
    const double diff = evaluator_.Evaluate(params).normalized_entropy - target_;
    return diff * diff;
  }

  // Minimises along coordinate c from params (objective f); updates both
  // and returns true when the coordinate moved (a strict improvement, or a
  // tie that widens a filter).
  bool LineSearch(int c, AlphaParameters& params, double& f) {
    const Bounds bounds = CoordinateBounds(config_, c);
    const double lo = bounds.lo;
    const double hi = bounds.hi;
    if (!(hi > lo)) return false;
    const bool integer = IsInteger(c);
    const double x0 = GetCoordinate(params, c);
    const double resolution = integer ? 1.0 : kContinuousResolution * (hi - lo);
    double step = static_cast<double>(config_.learning_rate) * (hi - lo);
    if (integer) step = std::max(1.0, std::round(step));
    step = std::max(step, resolution);

    // top_k, top_p and candidate_size each cap the support, and one of them
    // can hold another at a corner (top_p binding at 81 tokens, candidate_size
    // at 81: neither alone widens the support). Where the objective ties, they
    // move to the largest tied value: the same distribution, with room left
    // for the others.
    const bool widens = IsSupportLimit(c);
    double best_x = x0;
    double best_f = f;
    memo_.clear();
    // The objective at x (rounded for integers), remembering the best point.
    auto eval = [&](double x) {
      x = std::clamp(integer ? std::round(x) : x, lo, hi);
      if (integer) {
        for (const auto& [mx, mf] : memo_) {
          if (mx == x) return mf;
        }
      }
      AlphaParameters q = params;
      SetCoordinate(q, c, x);
      const double fx = Objective(q);
      if (integer) memo_.push_back({x, fx});
      // Among equal values, a filter prefers its least restrictive setting.
      if (fx < best_f || (fx == best_f && widens && x > best_x)) {
        best_f = fx;
        best_x = x;
      }
      return fx;
    };

    // Bracketing: a scan of the whole range with spacing `step` (the
    // objective has plateaus, e.g. where top_p leaves one token and the
    // entropy is exactly 0, which a local probe cannot see past); the bracket
    // is the cell around the best point so far.
    for (double x = lo;; x += step) {
      eval(std::min(x, hi));
      if (x >= hi) break;
    }
    double a = std::max(lo, best_x - step);
    double b = std::min(hi, best_x + step);

    // Golden-section search in [a, b]. On a tie (a plateau), keep the part
    // holding the best point seen so far.
    double c1 = b - (b - a) * kInvGoldenRatio;
    double c2 = a + (b - a) * kInvGoldenRatio;
    double f1 = eval(c1);
    double f2 = eval(c2);
    while (b - a > resolution) {
      const bool keep_left = f1 < f2 || (f1 == f2 && best_x < 0.5 * (c1 + c2));
      if (keep_left) {
        b = c2;
        c2 = c1;
        f2 = f1;
        c1 = b - (b - a) * kInvGoldenRatio;
        f1 = eval(c1);
      } else {
        a = c1;
        c1 = c2;
        f1 = f2;
        c2 = a + (b - a) * kInvGoldenRatio;
        f2 = eval(c2);
      }
    }
    if (integer) {
      for (double x = std::ceil(a); x <= std::floor(b); x += 1.0) eval(x);
    }

    if (!(best_f < f) && best_x == x0) return false;
    SetCoordinate(params, c, best_x);
    f = best_f;
    return true;
  }

  const AlphaConfig& config_;
  FilterEvaluator evaluator_;
  const double target_;
  int32_t evaluations_ = 0;
  std::vector<std::pair<double, double>> memo_;  // integer line search: (x, f)
};

// ---------------------------------------------------------------------------

class AlphaSampler : public Sampler {
 public:
  explicit AlphaSampler(const AlphaConfig& config) : config_(config) {}

  std::string Name() const override { return "alpha"; }
  bool NeedsState() const override { return true; }
  absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const override;

 private:
  const AlphaConfig config_;
};

absl::StatusOr<RowOutput> AlphaSampler::Sample(const Row& row, SamplerState& state) const {
  LogitSummary summary;
  absl::StatusOr<Signals> signals = ComputeRowSignals(row, &summary);
  if (!signals.ok()) return signals.status();
  const int64_t vocab_size = static_cast<int64_t>(row.logits.size());

  RowOutput out;
  out.signals = *signals;

  const float alpha =
      ComputeAlpha(config_, out.signals, vocab_size, row.attention.empty() ? 0 : row.keys);
  const float smoothed = PushAlpha(config_, alpha, &state.alpha_window);
  const double target = kTargetFraction * static_cast<double>(smoothed);

  const AlphaPool pool = BuildAlphaPool(config_, row.logits, state.recent_tokens);
  const AlphaSearchResult search = SearchAlphaParameters(config_, pool, target);
  AlphaFiltered filtered = FilterAlpha(pool, search.params);

  const CandidateSet set =
      CandidateSet::FromItems(std::move(filtered.items), static_cast<int32_t>(vocab_size));
  const CounterRng rng(row.seed, row.step);
  const int32_t index = DrawIndex(set, rng.Uniform(0));
  out.token = set.items()[static_cast<size_t>(index)].id;
  out.mode = Mode::kAlpha;
  out.params.temperature = search.params.temperature;
  out.params.top_k = search.params.top_k;
  out.params.top_p = search.params.top_p;
  out.params.repetition_penalty = search.params.repetition_penalty;
  out.params.candidate_size = search.params.candidate_size;
  out.params.alpha = alpha;
  out.params.smoothed_alpha = smoothed;
  out.params.candidates = static_cast<int32_t>(set.size());
  out.logprob = TokenLogProbFloat(summary, row.logits[out.token]);
  state.PushToken(out.token);
  return out;
}

}  // namespace

AlphaParameters BaseAlphaParameters(const AlphaConfig& config) {
  AlphaParameters p;
  p.temperature =
      std::clamp(config.base_temperature, config.min_temperature, config.max_temperature);
  p.top_k = std::clamp(config.base_top_k, config.min_top_k, config.max_top_k);
  p.top_p = std::clamp(config.base_top_p, config.min_top_p, config.max_top_p);
  p.repetition_penalty = std::clamp(config.base_repetition_penalty, config.min_repetition_penalty,
                                    config.max_repetition_penalty);
  p.candidate_size =
      std::clamp(config.base_candidate_size, config.min_candidate_size, config.max_candidate_size);
  return p;
}

float ComputeAlpha(const AlphaConfig& config, const Signals& signals, int64_t vocab_size,
                   int32_t keys) {
  double alpha = 0.0;
  const double log2_vocab = Log2Vocab(vocab_size);
  if (log2_vocab > 0.0) {
    alpha += config.entropy_weight * static_cast<double>(signals.entropy) / log2_vocab +
             config.varentropy_weight * static_cast<double>(signals.varentropy) /
                 (log2_vocab * log2_vocab);
  }
  const double log2_keys = Log2Vocab(keys);
  if (signals.has_attention && log2_keys > 0.0) {
    alpha += config.attn_entropy_weight * static_cast<double>(signals.attn_entropy) / log2_keys +
             config.attn_varentropy_weight * static_cast<double>(signals.attn_varentropy) /
                 (log2_keys * log2_keys);
  }
  return static_cast<float>(alpha);
}

float PushAlpha(const AlphaConfig& config, float alpha, std::vector<float>* window) {
  window->push_back(alpha);
  const size_t keep = static_cast<size_t>(std::max(config.window, 1));
  if (window->size() > keep) window->erase(window->begin(), window->end() - keep);
  double sum = 0.0;
  for (const float a : *window) sum += a;
  return static_cast<float>(sum / static_cast<double>(window->size()));
}

AlphaPool BuildAlphaPool(const AlphaConfig& config, absl::Span<const float> logits,
                         absl::Span<const int32_t> recent_tokens) {
  AlphaPool pool;
  pool.vocab_size = static_cast<int64_t>(logits.size());
  const size_t window =
      std::min(recent_tokens.size(), static_cast<size_t>(std::max(config.repetition_window, 0)));
  std::vector<int32_t> penalised;
  penalised.reserve(window);
  for (const int32_t id : recent_tokens.subspan(recent_tokens.size() - window)) {
    if (id >= 0 && id < pool.vocab_size) penalised.push_back(id);
  }
  std::sort(penalised.begin(), penalised.end());
  penalised.erase(std::unique(penalised.begin(), penalised.end()), penalised.end());

  // The max_top_k best unpenalised tokens are among the best
  // max_top_k + |penalised| of all.
  const int64_t wanted = std::min<int64_t>(
      int64_t{config.max_top_k} + static_cast<int64_t>(penalised.size()), pool.vocab_size);
  TopTokens top = SelectTopTokens(logits, static_cast<int32_t>(wanted),
                                  -std::numeric_limits<float>::infinity());
  pool.free_tokens.reserve(top.items.size());
  for (const Candidate& c : top.items) {
    if (pool.free_tokens.size() >= static_cast<size_t>(config.max_top_k)) break;
    if (!std::binary_search(penalised.begin(), penalised.end(), c.id)) {
      pool.free_tokens.push_back(c);
    }
  }
  for (const int32_t id : penalised) {
    const float z = logits[static_cast<size_t>(id)];
    if (z > -std::numeric_limits<float>::infinity()) pool.penalised_tokens.push_back({id, z, 0.0f});
  }
  std::sort(pool.penalised_tokens.begin(), pool.penalised_tokens.end(), ByLogitDescending());
  return pool;
}

float PenalizeLogit(float logit, float penalty) {
  return logit > 0.0f ? logit / penalty : logit * penalty;
}

AlphaFiltered FilterAlpha(const AlphaPool& pool, const AlphaParameters& params) {
  AlphaFiltered out;
  FilterEvaluator evaluator(pool);
  const FilterEvaluator::Result r = evaluator.Evaluate(params);
  out.entropy_bits = r.entropy_bits;
  out.normalized_entropy = r.normalized_entropy;
  out.items.reserve(static_cast<size_t>(r.size));
  for (int32_t i = 0; i < r.size; ++i) {
    Candidate c = evaluator.merged()[static_cast<size_t>(i)];
    c.p = static_cast<float>(evaluator.weight()[static_cast<size_t>(i)] / r.mass);
    out.items.push_back(c);
  }
  return out;
}

double AlphaObjective(const AlphaPool& pool, const AlphaParameters& params, double target) {
  FilterEvaluator evaluator(pool);
  const double diff = evaluator.Evaluate(params).normalized_entropy - target;
  return diff * diff;
}

AlphaSearchResult SearchAlphaParameters(const AlphaConfig& config, const AlphaPool& pool,
                                        double target) {
  return ParameterSearch(config, pool, target).Run();
}

std::unique_ptr<Sampler> MakeAlphaSampler(const AlphaConfig& config) {
  return std::make_unique<AlphaSampler>(config);
}

}  // namespace entroserve
