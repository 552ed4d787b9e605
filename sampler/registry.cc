#include "sampler/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sampler/policies/alpha.h"
#include "sampler/policies/entropix.h"
#include "sampler/stages/samplers.h"

namespace entroserve {
namespace {

// Creates each config type's sampler.
struct Factory {
  std::unique_ptr<Sampler> operator()(const GreedyConfig& c) const { return MakeGreedySampler(c); }
  std::unique_ptr<Sampler> operator()(const ChainConfig& c) const { return MakeChainSampler(c); }
  std::unique_ptr<Sampler> operator()(const EntropixConfig& c) const {
    return WithPreStages(MakeEntropixSampler(c), PreStages(c));
  }
  std::unique_ptr<Sampler> operator()(const AlphaConfig& c) const {
    return WithPreStages(MakeAlphaSampler(c), PreStages(c));
  }
  std::unique_ptr<Sampler> operator()(const MirostatV2Config& c) const {
    return MakeMirostatV2Sampler(c);
  }
  std::unique_ptr<Sampler> operator()(const DynaTempConfig& c) const {
    return MakeDynaTempSampler(c);
  }
  std::unique_ptr<Sampler> operator()(const TopNSigmaConfig& c) const {
    return MakeTopNSigmaSampler(c);
  }
  std::unique_ptr<Sampler> operator()(const XtcConfig& c) const { return MakeXtcSampler(c); }
  std::unique_ptr<Sampler> operator()(const DryConfig& c) const { return MakeDrySampler(c); }
};

std::vector<SamplerDescription> BuildDescriptions() {
  std::vector<SamplerDescription> list;
  auto add = [&list](SamplerConfig defaults, std::string description, bool uses_attention,
                     bool stateful) {
    std::string name = SamplerName(defaults);
    list.push_back(
        {std::move(name), std::move(description), std::move(defaults), uses_attention, stateful});
  };
  add(GreedyConfig{}, "Always the most probable token.", false, false);
  add(ChainConfig{},
      "Stages in the order listed (logit bias, penalties, no-repeat n-gram, DRY, "
      "top-n-sigma, top-k, typical-p, top-p, min-p, XTC, temperature or DynaTemp) and one "
      "selector (draw, greedy or Mirostat 2.0); by default llama.cpp's order.",
      false, false);
  add(EntropixConfig{},
      "entropix adaptive sampling: entropy, varentropy and attention signals pick a mode "
      "(flowing, clarify, explore, resample, adaptive) and its parameters.",
      true, true);
  add(AlphaConfig{},
      "AlphaSampler: a smoothed uncertainty score alpha drives a bounded search over "
      "temperature, top-k, top-p, repetition penalty and candidate size.",
      true, true);
  add(MirostatV2Config{},
      "Mirostat 2.0: keeps the surprise of drawn tokens near tau (arXiv:2007.14966).", false, true);
  add(DynaTempConfig{},
      "Dynamic temperature from the normalised entropy of the distribution "
      "(arXiv:2403.14541).",
      false, false);
  add(TopNSigmaConfig{},
      "Top-n-sigma: keeps logits within n standard deviations of the maximum "
      "(arXiv:2411.07641).",
      false, false);
  add(XtcConfig{},
      "Exclude Top Choices: sometimes removes all but the least likely of the top tokens.", false,
      false);
  add(DryConfig{}, "DRY: penalises tokens that would extend a sequence repeated from the history.",
      false, false);
  return list;
}

}  // namespace

const std::vector<SamplerDescription>& ListSamplers() {
  // Immutable after first use (a function-local static, not mutable global state).
  static const std::vector<SamplerDescription>* const kList =
      new std::vector<SamplerDescription>(BuildDescriptions());
  return *kList;
}

absl::StatusOr<SamplerConfig> DefaultConfig(const std::string& name) {
  std::vector<std::string> names;
  for (const SamplerDescription& d : ListSamplers()) {
    if (d.name == name) return d.defaults;
    names.push_back(d.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown sampler \"", name, "\"; known samplers: ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<std::unique_ptr<Sampler>> CreateSampler(const SamplerConfig& config) {
  absl::Status valid = std::visit([](const auto& c) { return c.Validate(); }, config);
  if (!valid.ok()) return valid;
  return std::visit(Factory(), config);
}

}  // namespace entroserve
