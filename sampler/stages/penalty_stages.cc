#include "sampler/stages/penalty_stages.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/types/span.h"
#include "sampler/stages/candidate_ops.h"

namespace entroserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ln(FLT_MAX): DRY clamps its exponent so that base^exponent stays a finite
// float (llama.cpp's FLOAT_MAX_LOG in llama_sampler_dry_apply).
constexpr float kFloatMaxLog = 88.7228391f;

// The last `last_n` tokens of the history (all of it when shorter).
absl::Span<const int32_t> Window(const StepContext& ctx, int32_t last_n) {
  if (ctx.state == nullptr || last_n <= 0) return {};
  absl::Span<const int32_t> history(ctx.state->recent_tokens);
  const size_t keep = std::min(history.size(), static_cast<size_t>(last_n));
  return history.subspan(history.size() - keep);
}

// Sorted unique token ids with their number of occurrences in `tokens`
// (negative ids, which no candidate has, are dropped).
void CountTokens(absl::Span<const int32_t> tokens, std::vector<int32_t>* ids,
                 std::vector<int32_t>* counts) {
  std::vector<int32_t> sorted(tokens.begin(), tokens.end());
  std::sort(sorted.begin(), sorted.end());
  ids->clear();
  counts->clear();
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    if (sorted[i] >= 0) {
      ids->push_back(sorted[i]);
      counts->push_back(static_cast<int32_t>(j - i));
    }
    i = j;
  }
}

// Removes the candidates whose ids are in `sorted_ids` (order kept).
void RemoveIds(CandidateSet& set, absl::Span<const int32_t> sorted_ids) {
  const size_t hit = ForEachCandidateWithId(set.items(), sorted_ids,
                                            [](Candidate& c, size_t) { c.logit = kNegInf; });
  if (hit == 0) return;
  RemoveCandidatesIf(set.items(), [](const Candidate& c) { return c.logit == kNegInf; });
  set.MarkRemoved();
}

// Removes candidates whose logit a penalty pushed out of the float range
// (only absurd but valid configs do that): a -inf logit is a masked token.
void RemoveNonFinite(CandidateSet& set) {
  RemoveCandidatesIf(set.items(), [](const Candidate& c) { return !std::isfinite(c.logit); });
  set.MarkRemoved();
}

// Z-function: z[k] = length of the longest common prefix of s and s[k..]
// (z[0] = |s|), in O(|s|) (Gusfield 1997, "Algorithms on Strings, Trees and
// Sequences", §1.4).
std::vector<int32_t> ZFunction(absl::Span<const int32_t> s) {
  const int32_t m = static_cast<int32_t>(s.size());
  std::vector<int32_t> z(m, 0);
  if (m == 0) return z;
  z[0] = m;
  int32_t left = 0, right = 0;  // [left, right) matches a prefix of s
  for (int32_t k = 1; k < m; ++k) {
    if (k < right) z[k] = std::min(right - k, z[k - left]);
    while (k + z[k] < m && s[z[k]] == s[k + z[k]]) ++z[k];
    if (k + z[k] > right) {
      left = k;
      right = k + z[k];
    }
  }
  return z;
}

}  // namespace

// ---------------------------------------------------------------------------
// LogitBiasStage

LogitBiasStage::LogitBiasStage(const std::map<int32_t, float>& bias) {
  ids_.reserve(bias.size());
  biases_.reserve(bias.size());
  for (const auto& [id, value] : bias) {  // std::map: ascending ids
    if (id < 0) continue;
    ids_.push_back(id);
    biases_.push_back(value);
  }
}

absl::Status LogitBiasStage::Apply(CandidateSet& set, StepContext& ctx) const {
  bool removed = false;
  const size_t hit = ForEachCandidateWithId(set.items(), ids_, [&](Candidate& c, size_t j) {
    c.logit += biases_[j];
    // A finite bias can overflow a huge logit: keep it the largest float.
    if (c.logit == -kNegInf) c.logit = std::numeric_limits<float>::max();
    removed |= c.logit == kNegInf;
  });
  if (hit == 0) return absl::OkStatus();
  if (removed) {
    RemoveCandidatesIf(set.items(), [](const Candidate& c) { return c.logit == kNegInf; });
  }
  set.MarkLogitsChanged();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// PenaltiesStage

PenaltiesStage::PenaltiesStage(float repetition, float frequency, float presence, int32_t last_n)
    : repetition_(repetition), frequency_(frequency), presence_(presence), last_n_(last_n) {}

absl::Status PenaltiesStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) {
    ctx.params->repetition_penalty = repetition_;
    ctx.params->frequency_penalty = frequency_;
    ctx.params->presence_penalty = presence_;
  }
  if (repetition_ == 1.0f && frequency_ == 0.0f && presence_ == 0.0f) return absl::OkStatus();
  const absl::Span<const int32_t> window = Window(ctx, last_n_);
  if (window.empty()) return absl::OkStatus();
  std::vector<int32_t> ids, counts;
  CountTokens(window, &ids, &counts);
  bool overflowed = false;
  const size_t hit = ForEachCandidateWithId(set.items(), ids, [&](Candidate& c, size_t j) {
    if (c.logit <= 0.0f) {
      c.logit *= repetition_;
    } else {
      c.logit /= repetition_;
    }
    c.logit -= static_cast<float>(counts[j]) * frequency_ + presence_;
    overflowed |= !std::isfinite(c.logit);
  });
  if (hit == 0) return absl::OkStatus();
  if (overflowed) RemoveNonFinite(set);
  set.MarkLogitsChanged();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// NoRepeatNGramStage

NoRepeatNGramStage::NoRepeatNGramStage(int32_t n) : n_(n) {}

absl::Status NoRepeatNGramStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (n_ <= 0 || ctx.state == nullptr) return absl::OkStatus();
  const std::vector<int32_t>& h = ctx.state->recent_tokens;
  const size_t n = static_cast<size_t>(n_);
  if (h.size() < n) return absl::OkStatus();  // no complete n-gram yet
  // The prefix a new token would complete: the last n-1 tokens.
  const auto prefix = h.end() - static_cast<ptrdiff_t>(n - 1);
  std::vector<int32_t> banned;
  for (size_t i = 0; i + n <= h.size(); ++i) {
    if (std::equal(prefix, h.end(), h.begin() + static_cast<ptrdiff_t>(i))) {
      banned.push_back(h[i + n - 1]);
    }
  }
  if (banned.empty()) return absl::OkStatus();
  std::sort(banned.begin(), banned.end());
  banned.erase(std::unique(banned.begin(), banned.end()), banned.end());
  RemoveIds(set, banned);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// DryStage

DryStage::DryStage(float multiplier, float base, int32_t allowed_length, int32_t penalty_last_n,
                   std::vector<int32_t> sequence_breaker_ids, TokenSequences sequence_breakers)
    : multiplier_(multiplier),
      base_(base),
      allowed_length_(allowed_length),
      penalty_last_n_(penalty_last_n),
      breakers_(std::move(sequence_breaker_ids)),
      max_exponent_(base > 1.0f ? static_cast<int32_t>(kFloatMaxLog / std::log(base)) : 0) {
  for (std::vector<int32_t>& sequence : sequence_breakers) {
    if (sequence.size() == 1) {
      breakers_.push_back(sequence[0]);
    } else if (!sequence.empty()) {
      sequences_.push_back(std::move(sequence));
    }
  }
  std::sort(breakers_.begin(), breakers_.end());
  breakers_.erase(std::unique(breakers_.begin(), breakers_.end()), breakers_.end());
  std::sort(sequences_.begin(), sequences_.end(), [](const auto& a, const auto& b) {
    return a[0] < b[0] || (a[0] == b[0] && a.size() > b.size());
  });
}

bool DryStage::IsBreaker(int32_t token) const {
  return std::binary_search(breakers_.begin(), breakers_.end(), token);
}

int32_t DryStage::TokensAfterLastBreaker(absl::Span<const int32_t> reversed) const {
  const int32_t m = static_cast<int32_t>(reversed.size());
  for (int32_t i = 0; i < m; ++i) {
    if (IsBreaker(reversed[i])) return i;
    // Sequences that start with this token, longest first: the first whose
    // other tokens follow it (at i - 1, i - 2, ...) ends the search.
    auto it = std::lower_bound(sequences_.begin(), sequences_.end(), reversed[i],
                               [](const std::vector<int32_t>& s, int32_t t) { return s[0] < t; });
    for (; it != sequences_.end() && (*it)[0] == reversed[i]; ++it) {
      const int32_t tail = static_cast<int32_t>(it->size()) - 1;
      if (tail > i) continue;
      bool match = true;
      for (int32_t k = 1; k <= tail && match; ++k) match = reversed[i - k] == (*it)[k];
      if (match) return i - tail;
    }
  }
  return m;
}

absl::Status DryStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->dry_multiplier = multiplier_;
  if (multiplier_ == 0.0f) return absl::OkStatus();
  const absl::Span<const int32_t> window = Window(ctx, penalty_last_n_);
  const int32_t m = static_cast<int32_t>(window.size());
  if (m <= allowed_length_) return absl::OkStatus();

  // The window reversed, most recent token first: a repeat of the end of the
  // history is then a common prefix, which the Z-function finds for every
  // earlier position at once.
  std::vector<int32_t> reversed(window.rbegin(), window.rend());

  // A breaker ending i tokens from the end limits every repeat to those i.
  const int32_t limit = TokensAfterLastBreaker(reversed);
  if (limit < allowed_length_) return absl::OkStatus();

  // z[k] = n: the n tokens ending k tokens before the last one repeat the
  // last n tokens, so reversed[k - 1] (the token that followed them) would
  // extend the repeat to n + 1.
  const std::vector<int32_t> z = ZFunction(reversed);
  std::vector<std::pair<int32_t, int32_t>> longest;  // (token, n)
  for (int32_t k = 1; k < m; ++k) {
    const int32_t n = std::min(z[k], limit);
    if (n < allowed_length_) continue;
    const int32_t token = reversed[k - 1];
    if (token < 0 || IsBreaker(token)) continue;
    longest.emplace_back(token, n);
  }
  if (longest.empty()) return absl::OkStatus();
  // One entry per token with its longest repeat.
  std::sort(longest.begin(), longest.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  std::vector<int32_t> ids;
  std::vector<float> penalties;
  for (size_t i = 0; i < longest.size(); ++i) {
    if (i > 0 && longest[i].first == longest[i - 1].first) continue;
    int32_t exponent = longest[i].second - allowed_length_;
    if (max_exponent_ > 0) exponent = std::min(exponent, max_exponent_);
    ids.push_back(longest[i].first);
    penalties.push_back(multiplier_ * std::pow(base_, static_cast<float>(exponent)));
  }
  bool overflowed = false;
  const size_t hit = ForEachCandidateWithId(set.items(), ids, [&](Candidate& c, size_t j) {
    c.logit -= penalties[j];
    overflowed |= !std::isfinite(c.logit);
  });
  if (hit == 0) return absl::OkStatus();
  if (overflowed) RemoveNonFinite(set);
  set.MarkLogitsChanged();
  return absl::OkStatus();
}

}  // namespace entroserve
