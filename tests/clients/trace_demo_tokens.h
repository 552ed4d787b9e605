// A synthetic generation for the trace tests and trace_demo: ~60 tokens that
// cover every mode (the entropix ones with signals inside their policy region
// and the parameters entropix's formulas give, then alpha, sample and greedy
// tokens), an inserted clarify token, and texts that need escaping ("<script>",
// "&amp;", quotes, newlines, a tab, an empty text, emoji, CJK).
#ifndef ENTROSERVE_TESTS_CLIENTS_TRACE_DEMO_TOKENS_H_
#define ENTROSERVE_TESTS_CLIENTS_TRACE_DEMO_TOKENS_H_

#include <vector>

#include "clients/samplerctl/trace.h"
#include "runner/v1/runner.pb.h"

namespace entroserve {

std::vector<runner::v1::GeneratedToken> DemoTraceTokens();

// The header of the demo page (prompt with markup in it, seed 7).
TraceMeta DemoTraceMeta();

}  // namespace entroserve

#endif  // ENTROSERVE_TESTS_CLIENTS_TRACE_DEMO_TOKENS_H_
