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

template <size_t N>
int IndexOf(const char* const (&names)[N], absl::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<int>(i);
  }
  return -1;
}

// "chain.stages[2] (\"dist\")": how every error names a stage.
std::string StageText(const FieldPath& path, size_t index, absl::string_view name) {
  return absl::StrCat(FieldPath{path.sampler, path.field, static_cast<int64_t>(index)}.ToString(),
                      " (\"", name, "\")");
}

// The first stage listed twice, or temperature together with dynatemp.
absl::Status CheckStagesOnce(const FieldPath& path, const StageList& stages) {
  for (size_t i = 0; i < stages.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (stages[i] == stages[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat(StageText(path, i, stages[i]), " repeats ", StageText(path, j, stages[j]),
                         "; a stage runs once, with the parameters of the config's fields"));
      }
      const bool both_temperatures = (stages[i] == "temperature" && stages[j] == "dynatemp") ||
                                     (stages[i] == "dynatemp" && stages[j] == "temperature");
      if (both_temperatures) {
        return absl::InvalidArgumentError(
            absl::StrCat(StageText(path, i, stages[i]), " and ", StageText(path, j, stages[j]),
                         " both set the temperature; list one of them"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckStageList(const FieldPath& path, const StageList& stages) {
  if (stages.empty()) return absl::OkStatus();  // the default order
  for (size_t i = 0; i < stages.size(); ++i) {
    if (IndexOf(kChainStages, stages[i]) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(StageText(path, i, stages[i]),
                                                     " is not a stage; the stages are ",
                                                     absl::StrJoin(kChainStages, ", ")));
    }
    const bool selector = IndexOf(kChainSelectors, stages[i]) >= 0;
    if (selector && i + 1 < stages.size()) {
      return absl::InvalidArgumentError(absl::StrCat(StageText(path, i, stages[i]),
                                                     " is a selector and must be the last stage; ",
                                                     stages.size() - i - 1, " stage(s) follow it"));
    }
    if (!selector && i + 1 == stages.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          StageText(path, i, stages[i]), " is last but chooses no token; end the list with one of ",
          absl::StrJoin(kChainSelectors, ", ")));
    }
  }
  return CheckStagesOnce(path, stages);
}

absl::Status CheckFieldValue(const FieldPath& path, const FieldRule&, const StageList& stages) {
  return CheckStageList(path, stages);
}

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
