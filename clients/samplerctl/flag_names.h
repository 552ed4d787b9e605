// How samplerctl reads flag names off its command line before Abseil parses
// it: dashes in a name are underscores ("--show-modes", "--trace-html=F" are
// "--show_modes", "--trace_html=F"), and which flags were given at all.
//
// Only arguments that start with "--" count, only the name before any '='
// changes (values keep their dashes), and nothing after a lone "--" does.
//
// Also: which flags belong to a command, for "samplerctl COMMAND --help".
//
// Thread-safety: pure functions.
#ifndef ENTROSERVE_CLIENTS_SAMPLERCTL_FLAG_NAMES_H_
#define ENTROSERVE_CLIENTS_SAMPLERCTL_FLAG_NAMES_H_

#include <set>
#include <string>
#include <vector>

namespace entroserve {

// argv[0..argc) with the dashes of each flag name turned into underscores.
std::vector<std::string> DashesToUnderscores(int argc, const char* const* argv);

// The names of the flags in args[1..] ("--name" or "--name=value"); a
// "--noname" also counts as "name" (Abseil's negated bool).
std::set<std::string> FlagsGiven(const std::vector<std::string>& args);

// A flag as --help shows it.
struct FlagHelp {
  std::string name;
  std::string help;
  std::string default_value;
};

// Whether a flag is one of `command`'s. A flag's help starts with the
// commands it belongs to ("generate, compare: ...", "sample/replay: ...");
// a help without such a prefix belongs to every command.
bool FlagBelongsTo(const FlagHelp& flag, const std::string& command);

// "samplerctl COMMAND --help": the command's flags, sorted by name, each
// "  --name (help); default: value", the command prefix left out.
std::string CommandHelp(const std::string& command, std::vector<FlagHelp> flags);

}  // namespace entroserve

#endif  // ENTROSERVE_CLIENTS_SAMPLERCTL_FLAG_NAMES_H_
