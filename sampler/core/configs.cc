#include "sampler/core/configs.h"

#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sampler/core/types.h"

namespace entroserve {

static_assert(kMaxHistoryTokens == SamplerState::kMaxRecentTokens,
              "a config may not look further back than the history SamplerState keeps");

namespace {

// The fields of Config with their defaults, ranges and help, as a Markdown
// table; "No fields." for a config without any.
template <typename Config>
std::string Table(const Config& defaults) {
  std::string rows;
  Config::VisitFields(defaults, [&rows](const FieldInfo& field, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    absl::StrAppend(&rows, "| `", field.name, "` | ", ValueText(value), " | ",
                    RuleTextFor<T>(field.rule), " | ", field.help, " |\n");
  });
  if (rows.empty()) return "No fields.\n";
  return absl::StrCat("| field | default | range | meaning |\n|---|---|---|---|\n", rows);
}

}  // namespace

std::string ConfigMarkdown() {
  std::vector<std::string> sections;
  ForEachSamplerConfig([&sections](const auto& defaults) {
    sections.push_back(absl::StrCat("#### `", defaults.kName, "`\n\n", Table(defaults)));
  });
  return absl::StrJoin(sections, "\n");
}

absl::StatusOr<std::string> ConfigMarkdown(absl::string_view name) {
  std::string table;
  std::vector<std::string> names;
  ForEachSamplerConfig([&](const auto& defaults) {
    if (name == defaults.kName) table = Table(defaults);
    names.push_back(defaults.kName);
  });
  if (table.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown sampler \"", name, "\"; known samplers: ", absl::StrJoin(names, ", ")));
  }
  return table;
}

}  // namespace entroserve
