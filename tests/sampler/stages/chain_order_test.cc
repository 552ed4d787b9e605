// The chain's stage list against an independent reference: a plain
// double-precision implementation of each stage over the whole vocabulary
// (sort, cumulative sums, no selection tricks), written from the formulas of
// docs/SAMPLERS.md. For several lists, the distribution after every prefix
// of the list must match the reference's exactly (same surviving ids, p to
// float rounding); orders that the math says differ must differ; bad lists
// are errors naming the stage by index and name.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sampler/core/candidates.h"
#include "sampler/core/configs.h"
#include "sampler/core/rng.h"
#include "sampler/stages/samplers.h"
#include "sampler/stages/truncation_stages.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;
constexpr double kInf = std::numeric_limits<double>::infinity();

// The reference's distribution: logits of the whole vocabulary, -inf for a
// removed token.
using Logits = std::vector<double>;

std::vector<double> Softmax(const Logits& z) {
  const double max = *std::max_element(z.begin(), z.end());
  std::vector<double> p(z.size(), 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < z.size(); ++i) sum += p[i] = std::isinf(z[i]) ? 0.0 : std::exp(z[i] - max);
  for (double& v : p) v /= sum;
  return p;
}

// Ids of the live tokens by logit descending, ties by id.
std::vector<int> Ranked(const Logits& z) {
  std::vector<int> ids;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!std::isinf(z[i])) ids.push_back(static_cast<int>(i));
  }
  std::stable_sort(ids.begin(), ids.end(), [&z](int a, int b) { return z[a] > z[b]; });
  return ids;
}

void KeepOnly(Logits& z, const std::vector<int>& keep) {
  Logits out(z.size(), -kInf);
  for (int id : keep) out[id] = z[id];
  z = out;
}

// Keeps the smallest prefix of `order` whose mass reaches `mass`.
void KeepMassPrefix(Logits& z, const std::vector<int>& order, double mass) {
  const std::vector<double> p = Softmax(z);
  double cum = 0.0;
  size_t n = 0;
  while (n < order.size() && cum < mass) cum += p[order[n++]];
  KeepOnly(z, std::vector<int>(order.begin(), order.begin() + static_cast<long>(n)));
}

double EntropyNats(const Logits& z) {
  double h = 0.0;
  for (double p : Softmax(z)) {
    if (p > 0) h -= p * std::log(p);
  }
  return h;
}

// DRY by its definition: the token at position j of the window would extend
// the repeat of the L tokens before it that equal the window's last L.
void ReferenceDry(Logits& z, const ChainConfig& c, const std::vector<int32_t>& history) {
  const int m = static_cast<int>(history.size());
  const auto breaker = [&c](int32_t t) {
    const auto& b = c.dry_sequence_breaker_ids;
    return std::find(b.begin(), b.end(), t) != b.end();
  };
  int limit = m;
  for (int i = m - 1; i >= 0; --i) {
    if (breaker(history[i])) {
      limit = m - 1 - i;
      break;
    }
  }
  if (m <= c.dry_allowed_length) return;
  std::map<int32_t, int> longest;
  for (int j = 1; j < m; ++j) {
    int length = 0;
    while (j - 1 - length >= 0 && history[j - 1 - length] == history[m - 1 - length]) ++length;
    length = std::min(length, limit);
    if (length >= c.dry_allowed_length && !breaker(history[j])) {
      longest[history[j]] = std::max(longest[history[j]], length);
    }
  }
  for (const auto& [token, length] : longest) {
    z[token] -= c.dry_multiplier * std::pow(c.dry_base, length - c.dry_allowed_length);
  }
}

void ReferencePenalties(Logits& z, const ChainConfig& c, const std::vector<int32_t>& history) {
  std::map<int32_t, int> count;
  const size_t n = std::min(history.size(), static_cast<size_t>(c.penalty_last_n));
  for (size_t i = history.size() - n; i < history.size(); ++i) ++count[history[i]];
  for (const auto& [token, times] : count) {
    double& v = z[token];
    v = v > 0 ? v / c.repetition_penalty : v * c.repetition_penalty;
    v -= times * c.frequency_penalty + c.presence_penalty;
  }
}

// XTC with a draw below xtc_probability (the tests use probability 1).
void ReferenceXtc(Logits& z, const ChainConfig& c) {
  const std::vector<double> p = Softmax(z);
  std::vector<int> above;
  for (int id : Ranked(z)) {
    if (p[id] >= c.xtc_threshold) above.push_back(id);
  }
  const size_t live = Ranked(z).size();
  if (above.size() < 2 || live - (above.size() - 1) < static_cast<size_t>(c.xtc_min_keep)) return;
  for (size_t i = 0; i + 1 < above.size(); ++i) z[above[i]] = -kInf;
}

void ReferenceTypical(Logits& z, double mass) {
  const std::vector<double> p = Softmax(z);
  const double h = EntropyNats(z);
  std::vector<int> order = Ranked(z);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const double da = std::fabs(-std::log(p[a]) - h), db = std::fabs(-std::log(p[b]) - h);
    return da < db || (da == db && a < b);
  });
  KeepMassPrefix(z, order, mass);
}

void ReferenceStage(const std::string& name, const ChainConfig& c,
                    const std::vector<int32_t>& history, Logits& z) {
  const std::vector<int> ranked = Ranked(z);
  if (name == "logit_bias") {
    for (const auto& [id, bias] : c.logit_bias) z[id] += bias;
  } else if (name == "penalties") {
    ReferencePenalties(z, c, history);
  } else if (name == "dry") {
    ReferenceDry(z, c, history);
  } else if (name == "top_k") {
    if (c.top_k > 0 && static_cast<size_t>(c.top_k) < ranked.size()) {
      KeepOnly(z, std::vector<int>(ranked.begin(), ranked.begin() + c.top_k));
    }
  } else if (name == "top_p") {
    if (c.top_p < 1) KeepMassPrefix(z, ranked, c.top_p);
  } else if (name == "min_p") {
    const std::vector<double> p = Softmax(z);
    for (int id : ranked) {
      if (p[id] < c.min_p * p[ranked[0]]) z[id] = -kInf;
    }
  } else if (name == "typical_p") {
    if (c.typical_p < 1) ReferenceTypical(z, c.typical_p);
  } else if (name == "temperature" || name == "dynatemp") {
    double t = c.temperature;
    if (name == "dynatemp") {
      const double ratio = ranked.size() > 1 ? EntropyNats(z) / std::log(ranked.size()) : 0.0;
      t = c.dynatemp_min_temperature + (c.dynatemp_max_temperature - c.dynatemp_min_temperature) *
                                           std::pow(ratio, c.dynatemp_exponent);
    }
    for (double& v : z) v /= t;
  } else if (name == "top_n_sigma") {
    double sum = 0, squares = 0;
    for (int id : ranked) sum += z[id];
    const double mean = sum / ranked.size();
    for (int id : ranked) squares += (z[id] - mean) * (z[id] - mean);
    const double cut = z[ranked[0]] - c.top_n_sigma * std::sqrt(squares / ranked.size());
    for (int id : ranked) {
      if (z[id] < cut) z[id] = -kInf;
    }
  } else if (name == "xtc") {
    ReferenceXtc(z, c);
  } else {
    ADD_FAILURE() << "no reference for stage " << name;
  }
}

// Logits of 200 tokens: a few strong ones over a spread tail, with ties.
Logits TestLogits() {
  Logits z(200);
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = std::sin(static_cast<double>(i) * 1.7) * 3.0 + (i % 23 == 0 ? 3.0 : 0.0);
    z[i] = std::round(z[i] * 64.0) / 64.0;  // exact in float, some ties
  }
  return z;
}

const std::vector<int32_t> kHistory = {5, 9, 23, 46, 5, 9, 23, 7, 46, 5, 9, 23};

ChainConfig TestConfig(std::vector<std::string> stages) {
  ChainConfig c;
  c.stages = std::move(stages);
  c.logit_bias = {{0, -2.0f}, {7, 1.5f}, {100, -INFINITY}};
  c.repetition_penalty = 1.3f;
  c.frequency_penalty = 0.25f;
  c.presence_penalty = 0.5f;
  c.dry_multiplier = 0.8f;
  c.dry_allowed_length = 2;
  c.dry_sequence_breaker_ids = {};
  c.top_k = 40;
  c.top_p = 0.8f;
  c.min_p = 0.05f;
  c.typical_p = 0.9f;
  c.temperature = 0.7f;
  c.top_n_sigma = 1.5f;
  c.xtc_threshold = 0.05f;
  c.xtc_probability = 1.0f;
  c.dynatemp_min_temperature = 0.6f;
  c.dynatemp_max_temperature = 1.6f;
  return c;
}

// The library's p over the vocabulary after the first n stages of `c`.
std::vector<double> LibraryAfter(const ChainConfig& c, size_t n) {
  ChainConfig prefix = c;
  prefix.stages.resize(n);  // BuildChain runs a list as given, selector or not
  const Logits z = TestLogits();
  const std::vector<float> logits(z.begin(), z.end());
  CandidateSet set = CandidateSet::FromLogits(logits);
  SamplerState state;
  state.recent_tokens = kHistory;
  const CounterRng rng(1, 0);
  StepContext ctx;
  ctx.state = &state;
  ctx.rng = &rng;
  EXPECT_TRUE(BuildChain(prefix)->Apply(set, ctx).ok());
  set.Normalize();
  std::vector<double> p(z.size(), 0.0);
  for (const Candidate& item : set.items()) p[item.id] = item.p;
  return p;
}

std::vector<double> ReferenceAfter(const ChainConfig& c, size_t n) {
  Logits z = TestLogits();
  for (size_t i = 0; i < n; ++i) ReferenceStage(c.stages[i], c, kHistory, z);
  return Softmax(z);
}

void ExpectEveryPrefixMatches(const std::vector<std::string>& stages) {
  const ChainConfig c = TestConfig(stages);
  ASSERT_TRUE(c.Validate().ok()) << c.Validate();
  for (size_t n = 1; n < stages.size(); ++n) {  // the last is the selector
    const std::vector<double> got = LibraryAfter(c, n);
    const std::vector<double> want = ReferenceAfter(c, n);
    int live = 0;
    for (size_t id = 0; id < want.size(); ++id) {
      live += want[id] > 0;
      ASSERT_EQ(got[id] > 0, want[id] > 0) << "token " << id << " after " << stages[n - 1];
      ASSERT_NEAR(got[id], want[id], 2e-6 + 1e-5 * want[id])
          << "token " << id << " after stage " << n - 1 << " (" << stages[n - 1] << ")";
    }
    EXPECT_GT(live, 0) << stages[n - 1];
  }
}

TEST(ChainOrderTest, EveryPrefixMatchesTheReferenceInTheDefaultOrder) {
  ExpectEveryPrefixMatches({"logit_bias", "penalties", "dry", "top_n_sigma", "top_k", "typical_p",
                            "top_p", "min_p", "xtc", "temperature", "dist"});
}

TEST(ChainOrderTest, EveryPrefixMatchesTheReferenceInOtherOrders) {
  ExpectEveryPrefixMatches(
      {"temperature", "top_p", "dry", "min_p", "logit_bias", "top_k", "penalties", "dist"});
  ExpectEveryPrefixMatches({"xtc", "top_k", "dynatemp", "typical_p", "top_n_sigma", "greedy"});
  ExpectEveryPrefixMatches({"min_p", "xtc", "penalties", "top_p", "mirostat_v2"});
  ExpectEveryPrefixMatches({"top_n_sigma", "dynatemp", "top_p", "logit_bias", "dist"});
}

// Top-p keeps a mass of the distribution it sees: a temperature < 1 before
// it sharpens that distribution, so fewer tokens reach 0.8.
TEST(ChainOrderTest, TemperatureBeforeTopPDiffersFromAfter) {
  const ChainConfig before = TestConfig({"temperature", "top_p", "dist"});
  const ChainConfig after = TestConfig({"top_p", "temperature", "dist"});
  const std::vector<double> p_before = LibraryAfter(before, 2);
  const std::vector<double> p_after = LibraryAfter(after, 2);
  const auto live = [](const std::vector<double>& p) {
    return std::count_if(p.begin(), p.end(), [](double v) { return v > 0; });
  };
  EXPECT_LT(live(p_before), live(p_after));
  EXPECT_EQ(live(p_before), live(ReferenceAfter(before, 2)));
  EXPECT_EQ(live(p_after), live(ReferenceAfter(after, 2)));
}

// Bias before top-k can lift a token into the k best; after, it cannot.
TEST(ChainOrderTest, LogitBiasBeforeTopKDiffersFromAfter) {
  ChainConfig before = TestConfig({"logit_bias", "top_k", "dist"});
  ChainConfig after = TestConfig({"top_k", "logit_bias", "dist"});
  const int worst = Ranked(TestLogits()).back();
  before.logit_bias = after.logit_bias = {{worst, 20.0f}};
  before.top_k = after.top_k = 3;
  EXPECT_GT(LibraryAfter(before, 2)[worst], 0.99);
  EXPECT_EQ(LibraryAfter(after, 2)[worst], 0.0);
}

// Top-p on a whole 128k row (the histogram selection of
// CandidateSet::KeepTopMass) keeps exactly the tokens of the sorted prefix,
// for several masses, on a set fresh from the logits and on one normalized
// already. The prefix is summed here from the set's own float p: a softmax
// in double would move the boundary of p = 0.999 by a token through p's
// float rounding alone.
TEST(ChainOrderTest, TopPOnAFullRowKeepsTheSortedPrefix) {
  const int vocab = 128256;
  std::vector<float> logits(vocab);
  for (int i = 0; i < vocab; ++i) {
    const int rank = static_cast<int>((static_cast<int64_t>(i) * 7919) % vocab);  // a permutation
    logits[i] = static_cast<float>(18.0 - 1.1 * std::log(rank + 1.0) + 0.5 * std::sin(i * 0.37));
  }
  const CandidateSet raw = CandidateSet::FromLogits(logits);
  CandidateSet normalized = raw;
  normalized.Normalize();
  std::vector<double> p(vocab);
  for (const Candidate& item : normalized.items()) p[item.id] = item.p;
  const std::vector<int> ranked = Ranked(Logits(logits.begin(), logits.end()));
  for (float top_p : {0.5f, 0.9f, 0.95f, 0.999f}) {
    size_t n = 0;
    for (double cum = 0.0; n < ranked.size() && cum < top_p;) cum += p[ranked[n++]];
    std::vector<int> want(ranked.begin(), ranked.begin() + static_cast<long>(n));
    std::sort(want.begin(), want.end());
    EXPECT_GT(want.size(), 20u) << "top_p " << top_p;
    for (const CandidateSet* start : std::vector<const CandidateSet*>{&raw, &normalized}) {
      CandidateSet set = *start;
      StepContext ctx;
      ASSERT_TRUE(TopPStage(top_p).Apply(set, ctx).ok());
      std::vector<int> got;
      for (const Candidate& item : set.items()) {
        got.push_back(item.id);
        // The kept tokens' p are the softmax's over the whole row.
        EXPECT_EQ(item.p, static_cast<float>(p[item.id])) << "token " << item.id;
      }
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, want) << "top_p " << top_p << (start == &raw ? " raw" : " normalized") << ": "
                           << got.size() << " vs " << want.size();
    }
  }
}

// The default order is the documented one, and every stage name builds.
TEST(ChainOrderTest, EveryStageNameBuildsAStageOfThatName) {
  for (const char* name : kChainStages) {
    ChainConfig c;
    c.stages = {name};
    EXPECT_EQ(BuildChain(c)->Describe(), name);
  }
  ChainConfig all;
  all.logit_bias = {{1, 1.0f}};
  all.no_repeat_ngram_size = 2;
  all.dry_multiplier = 0.5f;
  all.top_n_sigma = 1.0f;
  all.xtc_probability = 0.5f;
  EXPECT_EQ(BuildChain(all)->Describe(),
            "logit_bias -> penalties -> no_repeat_ngram -> dry -> top_n_sigma -> top_k -> "
            "typical_p -> top_p -> min_p -> xtc -> temperature -> dist");
}

absl::Status ValidateStages(std::vector<std::string> stages) {
  ChainConfig c;
  c.stages = std::move(stages);
  return c.Validate();
}

TEST(ChainOrderTest, BadListsAreErrorsNamingTheStage) {
  EXPECT_EQ(ValidateStages({"top_k", "dist"}), absl::OkStatus());
  EXPECT_EQ(ValidateStages({}), absl::OkStatus());
  const auto error = [](std::vector<std::string> stages) {
    const absl::Status status = ValidateStages(std::move(stages));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_THAT(error({"top_k", "top_q", "dist"}),
              HasSubstr("chain.stages[1] (\"top_q\") is not a stage; the stages are logit_bias"));
  EXPECT_THAT(error({"top_k", "dist", "min_p"}),
              HasSubstr("chain.stages[1] (\"dist\") is a selector and must be the last stage"));
  EXPECT_THAT(error({"greedy", "dist"}),
              HasSubstr("chain.stages[0] (\"greedy\") is a selector and must be the last stage"));
  EXPECT_THAT(error({"top_k", "min_p"}),
              HasSubstr("chain.stages[1] (\"min_p\") is last but chooses no token"));
  EXPECT_THAT(error({"top_k", "min_p", "top_k", "dist"}),
              HasSubstr("chain.stages[2] (\"top_k\") repeats chain.stages[0] (\"top_k\")"));
  EXPECT_THAT(error({"temperature", "dynatemp", "dist"}),
              HasSubstr("chain.stages[1] (\"dynatemp\") and chain.stages[0] (\"temperature\") "
                        "both set the temperature"));
}

TEST(ChainOrderTest, GreedySelectorTakesTheBestOfWhatIsLeft) {
  ChainConfig c;
  c.stages = {"logit_bias", "greedy"};
  c.logit_bias = {{2, -10.0f}};
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 2.0f};
  Row row;
  row.logits = logits;
  SamplerState state;
  const absl::StatusOr<RowOutput> out = MakeChainSampler(c)->Sample(row, state);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->token, 1);  // 2 is biased away; 1 and 3 tie, the lower id wins
  EXPECT_EQ(out->mode, Mode::kGreedy);
  EXPECT_EQ(out->params.candidates, 4);  // a bias of -10 lowers, it does not remove
}

}  // namespace
}  // namespace entroserve
