// trace_demo: writes the demo generation's trace (trace_demo_tokens.h) as
// PREFIX.jsonl and PREFIX.html, to look at or to open in a browser.
//
//   trace_demo PREFIX [N]     N: the first N tokens (0: none; past 60 the
//                             sequence repeats)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "clients/samplerctl/trace.h"
#include "tests/clients/trace_demo_tokens.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s PREFIX [N]\n", argv[0]);
    return 2;
  }
  const std::string prefix = argv[1];
  auto tokens = entroserve::DemoTraceTokens();
  if (argc == 3) {
    const long n = std::strtol(argv[2], nullptr, 10);
    if (n < 0) {
      std::fprintf(stderr, "trace_demo: N must be >= 0, got %s\n", argv[2]);
      return 2;
    }
    // The first n tokens, the sequence repeated when n is larger.
    std::vector<runner::v1::GeneratedToken> kept;
    for (long i = 0; i < n; ++i) {
      kept.push_back(tokens[i % tokens.size()]);
      kept.back().set_index(static_cast<int32_t>(i));
    }
    tokens = std::move(kept);
  }
  for (const auto& [path, contents] :
       {std::pair{prefix + ".jsonl", entroserve::TraceJsonLines(tokens)},
        std::pair{prefix + ".html",
                  entroserve::RenderTraceHtml(entroserve::DemoTraceMeta(), tokens)}}) {
    const auto status = entroserve::WriteTraceFile(path, contents);
    if (!status.ok()) {
      std::fprintf(stderr, "trace_demo: %s\n", status.ToString().c_str());
      return 1;
    }
    std::printf("wrote %s (%zu tokens)\n", path.c_str(), tokens.size());
  }
  return 0;
}
