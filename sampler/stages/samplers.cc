#include "sampler/stages/samplers.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sampler/core/candidates.h"
#include "sampler/core/rng.h"
#include "sampler/core/signals.h"
#include "sampler/stages/penalty_stages.h"
#include "sampler/stages/selection_stages.h"
#include "sampler/stages/temperature_stages.h"
#include "sampler/stages/truncation_stages.h"

namespace entroserve {
namespace {

// Checks what validation at the edge guarantees, cheaply, so that a row that
// skipped it gets an error rather than undefined behaviour.
absl::Status CheckRow(const Row& row, const LogitSummary& summary) {
  if (row.logits.empty()) return absl::InvalidArgumentError("logits must not be empty");
  if (summary.argmax < 0 || summary.finite == 0) {
    return absl::InvalidArgumentError("logits have no finite value");
  }
  return absl::OkStatus();
}

void FinishState(const std::string& name, const Row& row, SamplerState& state) {
  state.sampler = name;
  state.next_step = row.step + 1;
}

class GreedySampler : public Sampler {
 public:
  std::string Name() const override { return "greedy"; }
  bool NeedsState() const override { return false; }

  absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const override {
    RowOutput out;
    LogitSummary summary;
    if (row.logits.empty()) return absl::InvalidArgumentError("logits must not be empty");
    ComputeLogitSignals(row.logits, &out.signals, &summary);
    if (absl::Status status = CheckRow(row, summary); !status.ok()) return status;
    out.token = summary.argmax;  // lowest id of the maximum
    out.mode = Mode::kGreedy;
    out.logprob = TokenLogProbFloat(summary, summary.max_logit);
    state.PushToken(out.token);
    FinishState(Name(), row, state);
    return out;
  }
};

// A sampler that runs one stage chain ending in a final stage.
class ChainSampler : public Sampler {
 public:
  ChainSampler(std::string name, bool needs_state, std::unique_ptr<SamplerChain> chain)
      : name_(std::move(name)), needs_state_(needs_state), chain_(std::move(chain)) {}

  std::string Name() const override { return name_; }
  bool NeedsState() const override { return needs_state_; }

  absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const override {
    RowOutput out;
    LogitSummary summary;
    if (row.logits.empty()) return absl::InvalidArgumentError("logits must not be empty");
    ComputeLogitSignals(row.logits, &out.signals, &summary);
    if (absl::Status status = CheckRow(row, summary); !status.ok()) return status;

    CandidateSet set = CandidateSet::FromLogits(row.logits);
    const CounterRng rng(row.seed, row.step);
    StepContext ctx;
    ctx.state = &state;
    ctx.rng = &rng;
    ctx.next_draw = 0;
    ctx.params = &out.params;
    if (absl::Status status = chain_->Apply(set, ctx); !status.ok()) return status;
    const int32_t token = set.selected();
    if (token < 0 || static_cast<size_t>(token) >= row.logits.size()) {
      return absl::InternalError(
          absl::StrCat(name_, ": the chain ended without selecting a token"));
    }
    chain_->Accept(token, set, state);  // pushes the token onto the history
    out.token = token;
    out.mode = Mode::kSample;
    out.logprob = TokenLogProbFloat(summary, row.logits[token]);
    FinishState(name_, row, state);
    return out;
  }

 private:
  std::string name_;
  bool needs_state_;
  std::unique_ptr<SamplerChain> chain_;
};

bool PenaltiesActive(const ChainConfig& c) {
  return c.penalty_last_n > 0 && (c.repetition_penalty != 1.0f || c.frequency_penalty != 0.0f ||
                                  c.presence_penalty != 0.0f);
}

}  // namespace

std::unique_ptr<SamplerChain> BuildChain(const ChainConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  if (!c.logit_bias.empty()) chain->Add(std::make_unique<LogitBiasStage>(c.logit_bias));
  chain->Add(std::make_unique<PenaltiesStage>(c.repetition_penalty, c.frequency_penalty,
                                              c.presence_penalty, c.penalty_last_n));
  if (c.no_repeat_ngram_size > 0) {
    chain->Add(std::make_unique<NoRepeatNGramStage>(c.no_repeat_ngram_size));
  }
  chain->Add(std::make_unique<TopKStage>(c.top_k))
      .Add(std::make_unique<TypicalStage>(c.typical_p))
      .Add(std::make_unique<TopPStage>(c.top_p))
      .Add(std::make_unique<MinPStage>(c.min_p))
      .Add(std::make_unique<TemperatureStage>(c.temperature))
      .Add(std::make_unique<DistStage>());
  return chain;
}

std::unique_ptr<SamplerChain> BuildMirostatV2Chain(const MirostatV2Config& c) {
  auto chain = std::make_unique<SamplerChain>();
  chain->Add(std::make_unique<TemperatureStage>(c.temperature))
      .Add(std::make_unique<MirostatV2Stage>(c.tau, c.eta));
  return chain;
}

std::unique_ptr<SamplerChain> BuildDynaTempChain(const DynaTempConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  chain->Add(std::make_unique<DynaTempStage>(c.min_temperature, c.max_temperature, c.exponent))
      .Add(std::make_unique<DistStage>());
  return chain;
}

std::unique_ptr<SamplerChain> BuildTopNSigmaChain(const TopNSigmaConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  chain->Add(std::make_unique<TopNSigmaStage>(c.n))
      .Add(std::make_unique<TemperatureStage>(c.temperature))
      .Add(std::make_unique<DistStage>());
  return chain;
}

std::unique_ptr<SamplerChain> BuildXtcChain(const XtcConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  chain->Add(std::make_unique<TemperatureStage>(c.temperature))
      .Add(std::make_unique<XtcStage>(c.threshold, c.probability, c.min_keep))
      .Add(std::make_unique<DistStage>());
  return chain;
}

std::unique_ptr<SamplerChain> BuildDryChain(const DryConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  chain
      ->Add(std::make_unique<DryStage>(c.multiplier, c.base, c.allowed_length, c.penalty_last_n,
                                       c.sequence_breaker_ids))
      .Add(std::make_unique<TemperatureStage>(c.temperature))
      .Add(std::make_unique<DistStage>());
  return chain;
}

std::unique_ptr<Sampler> MakeGreedySampler(const GreedyConfig&) {
  return std::make_unique<GreedySampler>();
}

std::unique_ptr<Sampler> MakeChainSampler(const ChainConfig& c) {
  const bool needs_state = PenaltiesActive(c) || c.no_repeat_ngram_size > 0;
  return std::make_unique<ChainSampler>("chain", needs_state, BuildChain(c));
}

std::unique_ptr<Sampler> MakeMirostatV2Sampler(const MirostatV2Config& c) {
  return std::make_unique<ChainSampler>("mirostat_v2", /*needs_state=*/true,
                                        BuildMirostatV2Chain(c));
}

std::unique_ptr<Sampler> MakeDynaTempSampler(const DynaTempConfig& c) {
  return std::make_unique<ChainSampler>("dynatemp", /*needs_state=*/false, BuildDynaTempChain(c));
}

std::unique_ptr<Sampler> MakeTopNSigmaSampler(const TopNSigmaConfig& c) {
  return std::make_unique<ChainSampler>("top_n_sigma", /*needs_state=*/false,
                                        BuildTopNSigmaChain(c));
}

std::unique_ptr<Sampler> MakeXtcSampler(const XtcConfig& c) {
  return std::make_unique<ChainSampler>("xtc", /*needs_state=*/false, BuildXtcChain(c));
}

std::unique_ptr<Sampler> MakeDrySampler(const DryConfig& c) {
  const bool needs_state = c.multiplier != 0.0f && c.penalty_last_n > 0;
  return std::make_unique<ChainSampler>("dry", needs_state, BuildDryChain(c));
}

}  // namespace entroserve
