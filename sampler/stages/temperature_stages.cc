#include "sampler/stages/temperature_stages.h"

#include <algorithm>
#include <cmath>

#include "sampler/stages/candidate_ops.h"

namespace entroserve {

absl::Status TemperatureStage::Apply(CandidateSet& set, StepContext& ctx) const {
  if (ctx.params != nullptr) ctx.params->temperature = temperature_;
  if (temperature_ != 1.0f) set.ApplyTemperature(temperature_);
  return absl::OkStatus();
}

float DynaTempStage::TemperatureFor(double ratio) const {
  ratio = std::clamp(ratio, 0.0, 1.0);
  return static_cast<float>(min_temperature_ +
                            (static_cast<double>(max_temperature_) - min_temperature_) *
                                std::pow(ratio, static_cast<double>(exponent_)));
}

absl::Status DynaTempStage::Apply(CandidateSet& set, StepContext& ctx) const {
  double ratio = 0.0;
  if (set.size() > 1) {
    if (!set.normalized()) set.Normalize();
    // H / log2 N in any base: nats over nats.
    ratio = EntropyNats(set) / std::log(static_cast<double>(set.size()));
  }
  const float temperature = TemperatureFor(ratio);
  if (ctx.params != nullptr) ctx.params->temperature = temperature;
  if (temperature != 1.0f) set.ApplyTemperature(temperature);
  return absl::OkStatus();
}

}  // namespace entroserve
