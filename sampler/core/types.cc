#include "sampler/core/types.h"

namespace entroserve {

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kGreedy: return "greedy";
    case Mode::kSample: return "sample";
    case Mode::kFlowing: return "flowing";
    case Mode::kClarify: return "clarify";
    case Mode::kExplore: return "explore";
    case Mode::kResample: return "resample";
    case Mode::kAdaptive: return "adaptive";
    case Mode::kAlpha: return "alpha";
  }
  return "unknown";
}

void SamplerState::PushToken(int32_t token) {
  recent_tokens.push_back(token);
  if (recent_tokens.size() > static_cast<size_t>(kMaxRecentTokens)) {
    recent_tokens.erase(recent_tokens.begin(),
                        recent_tokens.end() - kMaxRecentTokens);
  }
}

}  // namespace entroserve
