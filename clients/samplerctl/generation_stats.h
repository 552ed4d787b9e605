// What samplerctl says of a finished generation (`generate --summary`, and
// each sampler of `compare`): tokens, tokens per second, how often each mode
// fired, mean entropy and varentropy.
//
//   40 tokens, 162.3 tokens/s; modes: flowing 31 (78%), explore 6 (15%),
//   clarify 3 (8%); mean entropy 1.207 bits, mean varentropy 2.914 bits^2
//
// Tokens per second is generated tokens over runnerd's total wall time of
// the request (Usage.total_ms: prefill, sampling and decode together).
//
// Thread-safety: a GenerationStats is a plain value; the functions are pure.
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_GENERATION_STATS_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_GENERATION_STATS_H_

#include <cstdint>
#include <map>
#include <string>

#include "runner/v1/runner.pb.h"
#include "sampler/v1/sampler.pb.h"

namespace entroserve {

struct GenerationStats {
  int32_t tokens = 0;
  std::map<sampler::v1::Mode, int32_t> modes;
  double entropy_sum = 0;     // bits
  double varentropy_sum = 0;  // bits^2
  double total_ms = 0;        // runnerd's Usage.total_ms; 0 until Finish()

  // Counts one generated token.
  void Add(const runner::v1::GeneratedToken& token);
  // Records the request's usage (its last message).
  void Finish(const runner::v1::Usage& usage) { total_ms = usage.total_ms(); }

  double MeanEntropy() const { return tokens > 0 ? entropy_sum / tokens : 0; }
  double MeanVarentropy() const { return tokens > 0 ? varentropy_sum / tokens : 0; }
  // 0 when no time was recorded.
  double TokensPerSecond() const { return total_ms > 0 ? tokens * 1000.0 / total_ms : 0; }
};

// "flowing 31 (78%), explore 6 (15%)": the modes that fired, most frequent
// first (ties in the legend's order); "-" when none did.
std::string FormatModeCounts(const GenerationStats& stats);

// The one-line summary of the file comment (no newline at the end).
std::string FormatSummary(const GenerationStats& stats);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_GENERATION_STATS_H_
