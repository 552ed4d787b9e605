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

namespace {

// The commands a help text names before its first ": ", if it starts with
// lowercase command names separated by ", " or "/"; none otherwise.
std::vector<std::string> CommandsOf(const std::string& help) {
  const size_t colon = help.find(": ");
  if (colon == std::string::npos) return {};
  const std::string prefix = help.substr(0, colon);
  for (char c : prefix) {
    if (!(c >= 'a' && c <= 'z') && c != ',' && c != ' ' && c != '/') return {};
  }
  std::vector<std::string> commands;
  std::string current;
  for (char c : prefix + ",") {
    if (c == ',' || c == '/') {
      if (!current.empty()) commands.push_back(current);
      current.clear();
    } else if (c != ' ') {
      current += c;
    }
  }
  return commands;
}

}  // namespace

bool FlagBelongsTo(const FlagHelp& flag, const std::string& command) {
  const std::vector<std::string> commands = CommandsOf(flag.help);
  return commands.empty() || std::find(commands.begin(), commands.end(), command) != commands.end();
}

std::string CommandHelp(const std::string& command, std::vector<FlagHelp> flags) {
  std::sort(flags.begin(), flags.end(),
            [](const FlagHelp& a, const FlagHelp& b) { return a.name < b.name; });
  std::string out = "samplerctl " + command + ": flags\n";
  for (const FlagHelp& flag : flags) {
    if (!FlagBelongsTo(flag, command)) continue;
    std::string help = flag.help;
    if (!CommandsOf(help).empty()) help = help.substr(help.find(": ") + 2);
    out += "  --" + flag.name + " (" + help + "); default: \"" + flag.default_value + "\"\n";
  }
  return out;
}

}  // namespace entroserve
