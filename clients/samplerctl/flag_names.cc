#include "clients/samplerctl/flag_names.h"

#include <algorithm>
#include <cstddef>

namespace entroserve {
namespace {

// The end of the name of flag argument `arg` ("--name[=value]"), or 0 when
// `arg` is no flag.
size_t FlagNameEnd(const std::string& arg) {
  if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) return 0;
  return std::min(arg.find('='), arg.size());
}

}  // namespace

std::vector<std::string> DashesToUnderscores(int argc, const char* const* argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    std::string& arg = args[i];
    const size_t end = FlagNameEnd(arg);
    if (end == 0) continue;
    std::replace(arg.begin() + 2, arg.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  return args;
}

std::set<std::string> FlagsGiven(const std::vector<std::string>& args) {
  std::set<std::string> given;
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    const size_t end = FlagNameEnd(args[i]);
    if (end == 0) continue;
    const std::string name = args[i].substr(2, end - 2);
    given.insert(name);
    if (name.compare(0, 2, "no") == 0) given.insert(name.substr(2));
  }
  return given;
}

}  // namespace entroserve
