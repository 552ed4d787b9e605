// Stages that rescale logits: a fixed temperature and DynaTemp. Both keep the
// order of the candidates (temperature > 0) and record the temperature they
// applied into *ctx.params (when not null).
#ifndef ENTROSERVE_SAMPLER_STAGES_TEMPERATURE_STAGES_H_
#define ENTROSERVE_SAMPLER_STAGES_TEMPERATURE_STAGES_H_

#include <string>

#include "sampler/core/stage.h"

namespace entroserve {

// Divides every logit by `temperature` (> 0; the configs reject 0: greedy is
// the way to get argmax). Softmax temperature as in Ackley, Hinton and
// Sejnowski 1985; llama.cpp llama_sampler_init_temp. Records temperature.
class TemperatureStage : public Stage {
 public:
  explicit TemperatureStage(float temperature) : temperature_(temperature) {}
  std::string Name() const override { return "temperature"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

 private:
  float temperature_;
};

// Dynamic temperature from the normalised entropy of the current candidates
// (DynaTemp, Zhang et al. 2024, arXiv:2403.14541, as llama.cpp's
// llama_sampler_init_temp_ext): with H the entropy in bits of softmax over
// the N candidates,
//   T = min_temperature + (max_temperature - min_temperature)
//       * (H / log2 N)^exponent,
// then logits are divided by T. With N <= 1 the ratio is taken as 0 (T =
// min_temperature). Records the temperature it applied.
class DynaTempStage : public Stage {
 public:
  DynaTempStage(float min_temperature, float max_temperature, float exponent)
      : min_temperature_(min_temperature), max_temperature_(max_temperature), exponent_(exponent) {}
  std::string Name() const override { return "dynatemp"; }
  absl::Status Apply(CandidateSet& set, StepContext& ctx) const override;

  // The temperature the formula gives for normalised entropy `ratio` in [0, 1].
  float TemperatureFor(double ratio) const;

 private:
  float min_temperature_;
  float max_temperature_;
  float exponent_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SAMPLER_STAGES_TEMPERATURE_STAGES_H_
