#include "sampler/stages/chain.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace entroserve {

SamplerChain& SamplerChain::Add(std::unique_ptr<Stage> stage) {
  stages_.push_back(std::move(stage));
  return *this;
}

std::string SamplerChain::Describe() const {
  std::string out;
  for (const auto& stage : stages_) {
    if (!out.empty()) out += " -> ";
    out += stage->Name();
  }
  return out;
}

absl::Status SamplerChain::Apply(CandidateSet& set, StepContext& ctx) const {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status;
  for (const auto& stage : stages_) {
    status = stage->Apply(set, ctx);
    if (!status.ok()) break;
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  applies_.fetch_add(1, std::memory_order_relaxed);
  apply_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
                      std::memory_order_relaxed);
  return status;
}

void SamplerChain::Accept(int32_t token, const CandidateSet& set, SamplerState& state) const {
  for (const auto& stage : stages_) stage->Accept(token, set, state);
  if (history_ == History::kPush) state.PushToken(token);
}

SamplerChain::Timing SamplerChain::timing() const {
  Timing t;
  t.applies = applies_.load(std::memory_order_relaxed);
  t.apply_ns = apply_ns_.load(std::memory_order_relaxed);
  return t;
}

}  // namespace entroserve
