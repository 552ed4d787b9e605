#include "sampler/stages/samplers.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

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
  ChainSampler(std::string name, bool needs_state, Mode mode, std::unique_ptr<SamplerChain> chain)
      : name_(std::move(name)), needs_state_(needs_state), mode_(mode), chain_(std::move(chain)) {}

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
    out.mode = mode_;
    out.logprob = TokenLogProbFloat(summary, row.logits[token]);
    FinishState(name_, row, state);
    return out;
  }

 private:
  std::string name_;
  bool needs_state_;
  Mode mode_;
  std::unique_ptr<SamplerChain> chain_;
};

bool PenaltiesActive(const ChainConfig& c) {
  return c.penalty_last_n > 0 && (c.repetition_penalty != 1.0f || c.frequency_penalty != 0.0f ||
                                  c.presence_penalty != 0.0f);
}

bool DryActive(const ChainConfig& c) {
  return c.dry_multiplier != 0.0f && c.dry_penalty_last_n > 0;
}

using StageFactory = std::unique_ptr<Stage> (*)(const ChainConfig&);

// Every stage of kChainStages with its parameters from the config.
const std::map<std::string, StageFactory>& StageFactories() {
  static const auto* const kFactories = new std::map<std::string, StageFactory>{
      {"logit_bias",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<LogitBiasStage>(c.logit_bias);
       }},
      {"penalties",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<PenaltiesStage>(c.repetition_penalty, c.frequency_penalty,
                                                 c.presence_penalty, c.penalty_last_n);
       }},
      {"no_repeat_ngram",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<NoRepeatNGramStage>(c.no_repeat_ngram_size);
       }},
      {"dry",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<DryStage>(c.dry_multiplier, c.dry_base, c.dry_allowed_length,
                                           c.dry_penalty_last_n, c.dry_sequence_breaker_ids,
                                           c.dry_sequence_breaker_sequences);
       }},
      {"top_n_sigma",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<TopNSigmaStage>(c.top_n_sigma);
       }},
      {"top_k",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<TopKStage>(c.top_k);
       }},
      {"typical_p",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<TypicalStage>(c.typical_p);
       }},
      {"top_p",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<TopPStage>(c.top_p);
       }},
      {"min_p",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<MinPStage>(c.min_p);
       }},
      {"temperature",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<TemperatureStage>(c.temperature);
       }},
      {"dynatemp",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<DynaTempStage>(c.dynatemp_min_temperature,
                                                c.dynatemp_max_temperature, c.dynatemp_exponent);
       }},
      {"xtc",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<XtcStage>(c.xtc_threshold, c.xtc_probability, c.xtc_min_keep);
       }},
      {"dist",
       [](const ChainConfig&) -> std::unique_ptr<Stage> { return std::make_unique<DistStage>(); }},
      {"greedy",
       [](const ChainConfig&) -> std::unique_ptr<Stage> {
         return std::make_unique<GreedyStage>();
       }},
      {"mirostat_v2",
       [](const ChainConfig& c) -> std::unique_ptr<Stage> {
         return std::make_unique<MirostatV2Stage>(c.mirostat_tau, c.mirostat_eta);
       }},
  };
  return *kFactories;
}

bool Listed(const StageList& stages, absl::string_view name) {
  return std::find(stages.begin(), stages.end(), name) != stages.end();
}

// Whether a step after the first needs the state of the one before.
bool ChainNeedsState(const ChainConfig& c) {
  const StageList stages = ChainStages(c);
  return (Listed(stages, "penalties") && PenaltiesActive(c)) ||
         (Listed(stages, "no_repeat_ngram") && c.no_repeat_ngram_size > 0) ||
         (Listed(stages, "dry") && DryActive(c)) || Listed(stages, "mirostat_v2");
}

std::unique_ptr<Sampler> MakePresetSampler(std::string name, const ChainConfig& preset) {
  const Mode mode = ChainStages(preset).back() == "greedy" ? Mode::kGreedy : Mode::kSample;
  return std::make_unique<ChainSampler>(std::move(name), ChainNeedsState(preset), mode,
                                        BuildChain(preset));
}

// A policy (entropix, alpha) behind its pre-stages (WithPreStages).
class PreStagedSampler : public Sampler {
 public:
  PreStagedSampler(std::unique_ptr<Sampler> inner, const ChainConfig& pre)
      : inner_(std::move(inner)),
        chain_(BuildChain(pre)),
        needs_state_(inner_->NeedsState() || ChainNeedsState(pre)) {}

  std::string Name() const override { return inner_->Name(); }
  bool NeedsState() const override { return needs_state_; }

  absl::StatusOr<RowOutput> Sample(const Row& row, SamplerState& state) const override {
    CandidateSet set = CandidateSet::FromLogits(row.logits);
    SamplingParams params;
    StepContext ctx;
    ctx.state = &state;
    ctx.params = &params;
    if (absl::Status status = chain_->Apply(set, ctx); !status.ok()) return status;
    if (set.empty()) {
      return absl::FailedPreconditionError(
          "the pre-stages (logit_bias, penalties, dry) left no token to sample");
    }
    std::vector<float> logits(row.logits.size(), -std::numeric_limits<float>::infinity());
    for (const Candidate& c : set.items()) logits[static_cast<size_t>(c.id)] = c.logit;
    Row staged = row;
    staged.logits = logits;
    absl::StatusOr<RowOutput> out = inner_->Sample(staged, state);
    if (!out.ok()) return out;
    // The policy's own values win (alpha searches a repetition penalty).
    SamplingParams& p = out->params;
    if (!p.repetition_penalty) p.repetition_penalty = params.repetition_penalty;
    if (!p.frequency_penalty) p.frequency_penalty = params.frequency_penalty;
    if (!p.presence_penalty) p.presence_penalty = params.presence_penalty;
    if (!p.dry_multiplier) p.dry_multiplier = params.dry_multiplier;
    return out;
  }

 private:
  std::unique_ptr<Sampler> inner_;
  std::unique_ptr<SamplerChain> chain_;
  bool needs_state_;
};

}  // namespace

StageList ActivePreStages(const ChainConfig& c) {
  StageList stages;
  if (!c.logit_bias.empty()) stages.push_back("logit_bias");
  if (PenaltiesActive(c)) stages.push_back("penalties");
  if (DryActive(c)) stages.push_back("dry");
  return stages;
}

std::unique_ptr<Sampler> WithPreStages(std::unique_ptr<Sampler> inner, const ChainConfig& pre) {
  if (pre.stages.empty()) return inner;
  return std::make_unique<PreStagedSampler>(std::move(inner), pre);
}

StageList ChainStages(const ChainConfig& c) {
  if (!c.stages.empty()) return c.stages;
  StageList stages;
  if (!c.logit_bias.empty()) stages.push_back("logit_bias");
  stages.push_back("penalties");
  if (c.no_repeat_ngram_size > 0) stages.push_back("no_repeat_ngram");
  if (DryActive(c)) stages.push_back("dry");
  if (c.top_n_sigma > 0.0f) stages.push_back("top_n_sigma");
  for (const char* name : {"top_k", "typical_p", "top_p", "min_p"}) stages.push_back(name);
  if (c.xtc_probability > 0.0f) stages.push_back("xtc");
  stages.push_back("temperature");
  stages.push_back("dist");
  return stages;
}

std::unique_ptr<SamplerChain> BuildChain(const ChainConfig& c) {
  auto chain = std::make_unique<SamplerChain>();
  for (const std::string& name : ChainStages(c)) {
    // Validate() admits only names of kChainStages, each of which has a
    // factory (chain_order_test checks every one).
    chain->Add(StageFactories().at(name)(c));
  }
  return chain;
}

ChainConfig MirostatV2Preset(const MirostatV2Config& c) {
  ChainConfig chain;
  chain.stages = {"temperature", "mirostat_v2"};
  chain.temperature = c.temperature;
  chain.mirostat_tau = c.tau;
  chain.mirostat_eta = c.eta;
  return chain;
}

ChainConfig DynaTempPreset(const DynaTempConfig& c) {
  ChainConfig chain;
  chain.stages = {"dynatemp", "dist"};
  chain.dynatemp_min_temperature = c.min_temperature;
  chain.dynatemp_max_temperature = c.max_temperature;
  chain.dynatemp_exponent = c.exponent;
  return chain;
}

ChainConfig TopNSigmaPreset(const TopNSigmaConfig& c) {
  ChainConfig chain;
  chain.stages = {"top_n_sigma", "temperature", "dist"};
  chain.top_n_sigma = c.n;
  chain.temperature = c.temperature;
  return chain;
}

ChainConfig XtcPreset(const XtcConfig& c) {
  ChainConfig chain;
  chain.stages = {"temperature", "xtc", "dist"};
  chain.temperature = c.temperature;
  chain.xtc_threshold = c.threshold;
  chain.xtc_probability = c.probability;
  chain.xtc_min_keep = c.min_keep;
  return chain;
}

ChainConfig DryPreset(const DryConfig& c) {
  ChainConfig chain;
  chain.stages = {"dry", "temperature", "dist"};
  chain.dry_multiplier = c.multiplier;
  chain.dry_base = c.base;
  chain.dry_allowed_length = c.allowed_length;
  chain.dry_penalty_last_n = c.penalty_last_n;
  chain.dry_sequence_breaker_ids = c.sequence_breaker_ids;
  chain.dry_sequence_breaker_sequences = c.sequence_breaker_sequences;
  chain.temperature = c.temperature;
  return chain;
}

std::unique_ptr<Sampler> MakeGreedySampler(const GreedyConfig&) {
  return std::make_unique<GreedySampler>();
}

std::unique_ptr<Sampler> MakeChainSampler(const ChainConfig& c) {
  return MakePresetSampler("chain", c);
}

std::unique_ptr<Sampler> MakeMirostatV2Sampler(const MirostatV2Config& c) {
  return MakePresetSampler("mirostat_v2", MirostatV2Preset(c));
}

std::unique_ptr<Sampler> MakeDynaTempSampler(const DynaTempConfig& c) {
  return MakePresetSampler("dynatemp", DynaTempPreset(c));
}

std::unique_ptr<Sampler> MakeTopNSigmaSampler(const TopNSigmaConfig& c) {
  return MakePresetSampler("top_n_sigma", TopNSigmaPreset(c));
}

std::unique_ptr<Sampler> MakeXtcSampler(const XtcConfig& c) {
  return MakePresetSampler("xtc", XtcPreset(c));
}

std::unique_ptr<Sampler> MakeDrySampler(const DryConfig& c) {
  return MakePresetSampler("dry", DryPreset(c));
}

}  // namespace entroserve
