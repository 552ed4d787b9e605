// The tables of unicode_tables.h. The deltas of the leaf categories (Lu,
// Ll, ..., Co) were measured, code point by code point, as the difference
// between the classes \p{X} of Hugging Face's tokenizers 0.23.2 (npm
// `tokenizers`, whose Oniguruma has Unicode 16.0) and of PCRE2 10.42; the
// deltas of Cn and of the groups (L, LC, M, N, P, S, Z, C) follow from
// them. tokenizer_conformance_test's RegexClassesMatchHuggingFace checks
// every code point of every class against Hugging Face's own engine again.
#include "model_runner/tokenizer/unicode_tables.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <initializer_list>
#include <string>
#include <vector>

namespace entroserve::tokenizer {
namespace {

using Ranges = std::vector<CodepointRange>;

constexpr CodepointRange kWhiteSpace[] = {
    {0x9, 0xD},       {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

constexpr CodepointRange kLuAdded[] = {
    {0x1C89, 0x1C89}, {0xA7CB, 0xA7CC}, {0xA7DA, 0xA7DA}, {0xA7DC, 0xA7DC}, {0x10D50, 0x10D65},
};
constexpr CodepointRange kLlAdded[] = {
    {0x1C8A, 0x1C8A}, {0xA7CD, 0xA7CD}, {0xA7DB, 0xA7DB}, {0x10D70, 0x10D85}, {0x1DF25, 0x1DF2A},
};
constexpr CodepointRange kLmAdded[] = {
    {0x10D4E, 0x10D4E}, {0x10D6F, 0x10D6F}, {0x16D40, 0x16D42},
    {0x16D6B, 0x16D6C}, {0x1E030, 0x1E06D}, {0x1E4EB, 0x1E4EB},
};
constexpr CodepointRange kLoAdded[] = {
    {0x105C0, 0x105F3}, {0x10D4A, 0x10D4D}, {0x10D4F, 0x10D4F}, {0x10EC2, 0x10EC4},
    {0x1123F, 0x11240}, {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E},
    {0x11390, 0x113B5}, {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3},
    {0x11BC0, 0x11BE0}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33},
    {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x13460, 0x143FA}, {0x16100, 0x1611D},
    {0x16D43, 0x16D6A}, {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155},
    {0x1E4D0, 0x1E4EA}, {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5F0}, {0x2B739, 0x2B739},
    {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF},
};
constexpr CodepointRange kMnAdded[] = {
    {0x897, 0x897},     {0xECE, 0xECE},     {0x10D69, 0x10D6D}, {0x10EFC, 0x10EFF},
    {0x11241, 0x11241}, {0x113BB, 0x113C0}, {0x113CE, 0x113CE}, {0x113D0, 0x113D0},
    {0x113D2, 0x113D2}, {0x113E1, 0x113E2}, {0x11F00, 0x11F01}, {0x11F36, 0x11F3A},
    {0x11F40, 0x11F40}, {0x11F42, 0x11F42}, {0x11F5A, 0x11F5A}, {0x13440, 0x13440},
    {0x13447, 0x13455}, {0x1611E, 0x16129}, {0x1612D, 0x1612F}, {0x1E08F, 0x1E08F},
    {0x1E4EC, 0x1E4EF}, {0x1E5EE, 0x1E5EF},
};
constexpr CodepointRange kMnRemoved[] = {
    {0x1171E, 0x1171E},
};
constexpr CodepointRange kMcAdded[] = {
    {0xCF3, 0xCF3},     {0x113B8, 0x113BA}, {0x113C2, 0x113C2}, {0x113C5, 0x113C5},
    {0x113C7, 0x113CA}, {0x113CC, 0x113CD}, {0x113CF, 0x113CF}, {0x1171E, 0x1171E},
    {0x11F03, 0x11F03}, {0x11F34, 0x11F35}, {0x11F3E, 0x11F3F}, {0x11F41, 0x11F41},
    {0x1612A, 0x1612C},
};
constexpr CodepointRange kNdAdded[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9},
    {0x11F50, 0x11F59}, {0x16130, 0x16139}, {0x16D70, 0x16D79},
    {0x1CCF0, 0x1CCF9}, {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA},
};
constexpr CodepointRange kNoAdded[] = {
    {0x1D2C0, 0x1D2D3},
};
constexpr CodepointRange kPdAdded[] = {
    {0x10D6E, 0x10D6E},
};
constexpr CodepointRange kPoAdded[] = {
    {0x1B4E, 0x1B4F},   {0x1B7F, 0x1B7F},   {0x113D4, 0x113D5},
    {0x113D7, 0x113D8}, {0x11B00, 0x11B09}, {0x11BE1, 0x11BE1},
    {0x11F43, 0x11F4F}, {0x16D6D, 0x16D6F}, {0x1E5FF, 0x1E5FF},
};
constexpr CodepointRange kSmAdded[] = {
    {0x10D8E, 0x10D8F},
};
constexpr CodepointRange kSoAdded[] = {
    {0x2427, 0x2429},   {0x2FFC, 0x2FFF},   {0x31E4, 0x31E5},   {0x31EF, 0x31EF},
    {0x1CC00, 0x1CCEF}, {0x1CD00, 0x1CEB3}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776},
    {0x1F77B, 0x1F77F}, {0x1F7D9, 0x1F7D9}, {0x1F8B2, 0x1F8BB}, {0x1F8C0, 0x1F8C1},
    {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA89}, {0x1FA8F, 0x1FA8F}, {0x1FAAD, 0x1FAAF},
    {0x1FABB, 0x1FABF}, {0x1FAC6, 0x1FAC6}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADC},
    {0x1FADF, 0x1FADF}, {0x1FAE8, 0x1FAE9}, {0x1FAF7, 0x1FAF8}, {0x1FBCB, 0x1FBEF},
};
constexpr CodepointRange kCfAdded[] = {
    {0x13439, 0x1343F},
};

// The leaf categories but Cn (unassigned), whose delta follows from theirs.
const CategoryDelta kLeaves[] = {
    {"Lu", "Uppercase_Letter", kLuAdded, {}},
    {"Ll", "Lowercase_Letter", kLlAdded, {}},
    {"Lt", "Titlecase_Letter", {}, {}},
    {"Lm", "Modifier_Letter", kLmAdded, {}},
    {"Lo", "Other_Letter", kLoAdded, {}},
    {"Mn", "Nonspacing_Mark", kMnAdded, kMnRemoved},
    {"Mc", "Spacing_Mark", kMcAdded, {}},
    {"Me", "Enclosing_Mark", {}, {}},
    {"Nd", "Decimal_Number", kNdAdded, {}},
    {"Nl", "Letter_Number", {}, {}},
    {"No", "Other_Number", kNoAdded, {}},
    {"Pc", "Connector_Punctuation", {}, {}},
    {"Pd", "Dash_Punctuation", kPdAdded, {}},
    {"Ps", "Open_Punctuation", {}, {}},
    {"Pe", "Close_Punctuation", {}, {}},
    {"Pi", "Initial_Punctuation", {}, {}},
    {"Pf", "Final_Punctuation", {}, {}},
    {"Po", "Other_Punctuation", kPoAdded, {}},
    {"Sm", "Math_Symbol", kSmAdded, {}},
    {"Sc", "Currency_Symbol", {}, {}},
    {"Sk", "Modifier_Symbol", {}, {}},
    {"So", "Other_Symbol", kSoAdded, {}},
    {"Zs", "Space_Separator", {}, {}},
    {"Zl", "Line_Separator", {}, {}},
    {"Zp", "Paragraph_Separator", {}, {}},
    {"Cc", "Control", {}, {}},
    {"Cf", "Format", kCfAdded, {}},
    {"Co", "Private_Use", {}, {}},
    {"Cs", "Surrogate", {}, {}},

};

struct Group {
  std::string_view name;
  std::string_view long_name;
  std::initializer_list<std::string_view> members;
};
const Group kGroups[] = {
    {"L", "Letter", {"Lu", "Ll", "Lt", "Lm", "Lo"}},
    {"LC", "Cased_Letter", {"Lu", "Ll", "Lt"}},
    {"M", "Mark", {"Mn", "Mc", "Me"}},
    {"N", "Number", {"Nd", "Nl", "No"}},
    {"P", "Punctuation", {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}},
    {"S", "Symbol", {"Sm", "Sc", "Sk", "So"}},
    {"Z", "Separator", {"Zs", "Zl", "Zp"}},
    {"C", "Other", {"Cc", "Cf", "Co", "Cs", "Cn"}},
};

// The union of `sets`, sorted, adjacent ranges joined.
Ranges Union(const std::vector<absl::Span<const CodepointRange>>& sets) {
  Ranges all;
  for (absl::Span<const CodepointRange> set : sets) all.insert(all.end(), set.begin(), set.end());
  std::sort(all.begin(), all.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.first < b.first; });
  Ranges joined;
  for (const CodepointRange& range : all) {
    if (!joined.empty() && range.first <= joined.back().last + 1) {
      joined.back().last = std::max(joined.back().last, range.last);
    } else {
      joined.push_back(range);
    }
  }
  return joined;
}

// The code points of `a` that are not in `b` (both sorted and apart).
Ranges Difference(const Ranges& a, const Ranges& b) {
  Ranges out;
  size_t j = 0;
  for (const CodepointRange& range : a) {
    while (j < b.size() && b[j].last < range.first) ++j;
    uint32_t next = range.first;  // the first code point not yet decided
    for (size_t k = j; k < b.size() && b[k].first <= range.last && next <= range.last; ++k) {
      if (b[k].first > next) out.push_back({next, b[k].first - 1});
      next = std::max(next, b[k].last + 1);
    }
    if (next <= range.last) out.push_back({next, range.last});
  }
  return out;
}

// Every category: the leaves, then Cn and the groups, whose ranges it keeps.
class Table {
 public:
  Table() {
    std::vector<absl::Span<const CodepointRange>> added, removed;
    for (const CategoryDelta& leaf : kLeaves) {
      categories_.push_back(leaf);
      added.push_back(leaf.added);
      removed.push_back(leaf.removed);
    }
    // What Unicode 15.0 to 16.0 assigned: every addition to a leaf, except
    // the characters that moved from one leaf to another.
    categories_.push_back({"Cn", "Unassigned", {}, Keep(Difference(Union(added), Union(removed)))});
    for (const Group& group : kGroups) AddGroup(group);
  }

  const std::vector<CategoryDelta>& categories() const { return categories_; }

 private:
  absl::Span<const CodepointRange> Keep(Ranges ranges) {
    storage_.push_back(std::move(ranges));
    return storage_.back();
  }

  const CategoryDelta& Find(std::string_view name) const {
    return *std::find_if(categories_.begin(), categories_.end(),
                         [name](const CategoryDelta& c) { return c.name == name; });
  }

  // A group gains what its members gained from outside it, and loses what
  // they lost to outside it.
  void AddGroup(const Group& group) {
    std::vector<absl::Span<const CodepointRange>> added, removed;
    for (std::string_view member : group.members) {
      added.push_back(Find(member).added);
      removed.push_back(Find(member).removed);
    }
    const Ranges all_added = Union(added), all_removed = Union(removed);
    categories_.push_back({group.name, group.long_name, Keep(Difference(all_added, all_removed)),
                           Keep(Difference(all_removed, all_added))});
  }

  std::deque<Ranges> storage_;  // a deque keeps the spans into it valid
  std::vector<CategoryDelta> categories_;
};

const Table& TheTable() {
  static const Table* const table = new Table();
  return *table;
}

// `name` lowercased without ' ', '-' and '_'.
std::string LooseName(std::string_view name) {
  std::string loose;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    loose.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return loose;
}

}  // namespace

absl::Span<const CodepointRange> WhiteSpace() { return kWhiteSpace; }

absl::Span<const CategoryDelta> Categories() { return TheTable().categories(); }

const CategoryDelta* FindCategory(std::string_view name) {
  const std::string loose = LooseName(name);
  for (const CategoryDelta& category : TheTable().categories()) {
    if (loose == LooseName(category.name) || loose == LooseName(category.long_name)) {
      return &category;
    }
  }
  return nullptr;
}

}  // namespace entroserve::tokenizer
