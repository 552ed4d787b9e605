#include "model_runner/tokenizer/regex_syntax.h"

#include <cctype>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "model_runner/tokenizer/unicode_tables.h"

namespace entroserve::tokenizer {
namespace {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
constexpr CodepointRange kHexDigits[] = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};

// How a rewritten escape is written.
struct Item {
  enum class Kind {
    kVerbatim,    // `text` means the same inside and outside a class
    kSet,         // the contents of a class
    kNegatedSet,  // the complement of the contents of a class
    kBranch,      // `text` is an expression that no class can hold
  };
  Kind kind;
  std::string text;  // kVerbatim, kBranch; sets: listed code points
  // Sets: a \p{..} or \P{..}, and the code points Unicode 15.0 to 16.0 add
  // to it (all of them unassigned in PCRE2's tables, or recategorized).
  std::string property;
  std::string additions;

  static Item Verbatim(std::string text) { return {Kind::kVerbatim, std::move(text), "", ""}; }
  // The code points `text` lists.
  static Item Listed(std::string text) { return {Kind::kSet, std::move(text), "", ""}; }
};

// The class contents that list `ranges`: "\x{9}-\x{D}\x{20}...".
std::string RangesText(absl::Span<const CodepointRange> ranges) {
  std::string text;
  for (const CodepointRange& range : ranges) {
    absl::StrAppendFormat(&text, "\\x{%X}", range.first);
    if (range.last != range.first) absl::StrAppendFormat(&text, "-\\x{%X}", range.last);
  }
  return text;
}

// The class contents of every code point outside `ranges` (sorted, apart).
std::string ComplementText(absl::Span<const CodepointRange> ranges) {
  std::vector<CodepointRange> complement;
  uint32_t next = 0;
  for (const CodepointRange& range : ranges) {
    if (range.first > next) complement.push_back({next, range.first - 1});
    next = range.last + 1;
  }
  if (next <= kMaxCodepoint) complement.push_back({next, kMaxCodepoint});
  return RangesText(complement);
}

// The class contents of every code point that can be in a category's
// additions: those unassigned in PCRE2's tables, and those whose category
// changed (the characters a category other than C and Cn lost).
const std::string& MaybeAdded() {
  static const std::string* const text = [] {
    auto* guard = new std::string("\\p{Cn}");
    for (const CategoryDelta& category : Categories()) {
      if (category.name != "C" && category.name != "Cn") *guard += RangesText(category.removed);
    }
    return guard;
  }();
  return *text;
}

// A class of `contents` (properties first, then listed code points) and
// `additions`, negated or not. Most characters are decided by the
// properties, and PCRE2 tries a class's items in order; so that they need
// not go through the list of additions as well, only characters that can
// be among them (MaybeAdded) are looked for there.
std::string WriteClass(bool negated, const std::string& contents, const std::string& additions) {
  if (additions.empty()) return absl::StrCat(negated ? "[^" : "[", contents, "]");
  const std::string& maybe = MaybeAdded();
  if (!negated) {
    const std::string first = contents.empty() ? "" : absl::StrCat("[", contents, "]|");
    return absl::StrCat("(?:", first, "(?=[", maybe, "])[", additions, "])");
  }
  return absl::StrCat("(?:[^", contents, maybe, "]|(?=[", maybe, "])[^", contents, additions, "])");
}

// \p{X} (or \P{X} when `negated`) for the general category X of Unicode
// 16.0, from PCRE2's \p{X} and what changed since Unicode 14.0.
Item CategoryItem(const CategoryDelta& category, bool negated) {
  const std::string added = RangesText(category.added);
  const std::string removed = RangesText(category.removed);
  const std::string name(category.name);
  const std::string p = "\\p{" + name + "}";
  const std::string not_p = "\\P{" + name + "}";
  using Kind = Item::Kind;
  if (added.empty() && removed.empty()) return {Kind::kSet, "", negated ? not_p : p, ""};
  if (!negated) {
    if (removed.empty()) return {Kind::kSet, "", p, added};
    if (added.empty()) return {Kind::kNegatedSet, "", not_p, removed};
    return {Kind::kBranch, absl::StrCat("(?:(?![", removed, "])", p, "|[", added, "])"), "", ""};
  }
  if (added.empty()) return {Kind::kSet, "", not_p, removed};
  if (removed.empty()) return {Kind::kNegatedSet, "", p, added};
  return {Kind::kBranch, absl::StrCat("(?:(?![", added, "])", not_p, "|[", removed, "])"), "", ""};
}

// The item as an expression of its own, outside any class.
std::string Standalone(const Item& item) {
  switch (item.kind) {
    case Item::Kind::kSet:
      if (item.text.empty() && item.additions.empty()) return item.property;
      return WriteClass(false, item.property + item.text, item.additions);
    case Item::Kind::kNegatedSet:
      return WriteClass(true, item.property + item.text, item.additions);
    default:
      return item.text;
  }
}

bool IsHex(std::string_view text) {
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A character class being rewritten: what a PCRE2 class can hold (the
// properties of its sets, the rest in order, the additions), and the items
// it cannot (as expressions of their own).
struct ClassParts {
  std::string properties;
  std::string contents;
  std::string additions;
  std::vector<std::string> branches;

  void Add(const Item& item) {
    if (item.kind == Item::Kind::kVerbatim || item.kind == Item::Kind::kSet) {
      properties += item.property;
      contents += item.text;
      additions += item.additions;
    } else {
      branches.push_back(Standalone(item));
    }
  }

  // The class, negated or not, as PCRE2 will read it.
  std::string Write(bool negated) const {
    const std::string items = properties + contents;
    if (branches.empty()) return WriteClass(negated, items, additions);
    std::vector<std::string> alternatives;
    if (!items.empty() || !additions.empty()) {
      alternatives.push_back(WriteClass(false, items, additions));
    }
    alternatives.insert(alternatives.end(), branches.begin(), branches.end());
    const std::string any_of = absl::StrJoin(alternatives, "|");
    if (!negated) return absl::StrCat("(?:", any_of, ")");
    return absl::StrCat("(?:(?!", any_of, ")(?s:.))");
  }
};

class Translator {
 public:
  explicit Translator(std::string_view pattern) : in_(pattern) {}

  absl::StatusOr<std::string> Run() {
    std::string out;
    while (pos_ < in_.size()) {
      if (in_[pos_] == '\\') {
        out += Standalone(Escape());
      } else if (in_[pos_] == '[') {
        absl::Status status = Class(&out);
        if (!status.ok()) return status;
      } else {
        out.push_back(in_[pos_++]);
      }
    }
    return out;
  }

 private:
  char Peek(size_t ahead) const { return pos_ + ahead < in_.size() ? in_[pos_ + ahead] : '\0'; }

  Item Escape();
  Item PropertyEscape(char letter);
  absl::Status Class(std::string* out);
  absl::StatusOr<bool> ClassItems(ClassParts* parts);

  std::string_view in_;
  size_t pos_ = 0;
};

// At a backslash: the escape, consumed. Escapes that are not rewritten are
// copied as they are (their backslash and next byte; the rest follows as
// ordinary text).
Item Translator::Escape() {
  if (pos_ + 1 >= in_.size()) {
    ++pos_;
    return Item::Verbatim("\\");
  }
  const char letter = in_[pos_ + 1];
  pos_ += 2;
  switch (letter) {
    case 's':
      return Item::Listed(RangesText(WhiteSpace()));
    case 'S':
      return Item::Listed(ComplementText(WhiteSpace()));
    case 'd':
    case 'D':
      return CategoryItem(*FindCategory("Nd"), letter == 'D');
    case 'h':
      return Item::Listed(RangesText(kHexDigits));
    case 'H':
      return Item::Listed(ComplementText(kHexDigits));
    case 'v':
      return Item::Verbatim("\\x{B}");
    case 'u':
      if (pos_ + 4 <= in_.size() && IsHex(in_.substr(pos_, 4))) {
        pos_ += 4;
        return Item::Verbatim("\\x{" + std::string(in_.substr(pos_ - 4, 4)) + "}");
      }
      break;
    case 'p':
    case 'P':
      return PropertyEscape(letter);
  }
  return Item::Verbatim(std::string{'\\', letter});
}

// After \p or \P: a general category in braces, rewritten; anything else
// (a script, a binary property) as it is.
Item Translator::PropertyEscape(char letter) {
  const std::string verbatim{'\\', letter};
  if (Peek(0) != '{') return Item::Verbatim(verbatim);
  const size_t close = in_.find('}', pos_);
  if (close == std::string_view::npos) return Item::Verbatim(verbatim);
  std::string_view name = in_.substr(pos_ + 1, close - pos_ - 1);
  bool negated = letter == 'P';
  if (!name.empty() && name[0] == '^') {
    negated = !negated;
    name.remove_prefix(1);
  }
  const CategoryDelta* category = FindCategory(name);
  if (category == nullptr) return Item::Verbatim(verbatim);
  pos_ = close + 1;
  return CategoryItem(*category, negated);
}

// At '[': the class, rewritten, appended to *out. An unterminated class is
// copied as it is, for PCRE2 to reject.
absl::Status Translator::Class(std::string* out) {
  const size_t start = pos_++;
  const bool negated = Peek(0) == '^';
  if (negated) ++pos_;
  ClassParts parts;
  absl::StatusOr<bool> closed = ClassItems(&parts);
  if (!closed.ok()) return closed.status();
  if (!*closed) {
    out->append(in_.substr(start));
    return absl::OkStatus();
  }
  out->append(parts.Write(negated));
  return absl::OkStatus();
}

// The items of a class, after its '[' or "[^", up to and including its ']'
// (false when the pattern ends first). A nested class adds its items.
absl::StatusOr<bool> Translator::ClassItems(ClassParts* parts) {
  for (bool first = true; pos_ < in_.size(); first = false) {
    const char c = in_[pos_];
    if (c == ']' && !first) {
      ++pos_;
      return true;
    }
    if (c == ']') {
      parts->contents += "\\]";  // a ']' first in a class is itself
      ++pos_;
    } else if (c == '\\') {
      parts->Add(Escape());
    } else if (c == '[' && Peek(1) == ':' && in_.find(":]", pos_ + 2) != std::string_view::npos) {
      const size_t end = in_.find(":]", pos_ + 2) + 2;  // a POSIX class, [:alpha:]
      parts->contents += in_.substr(pos_, end - pos_);
      pos_ = end;
    } else if (c == '[' || (c == '&' && Peek(1) == '&')) {
      if (c == '&' || Peek(1) == '^') {
        return absl::UnimplementedError(
            "Oniguruma's set operations in a class (&&, a negated nested class) are not "
            "supported");
      }
      ++pos_;
      absl::StatusOr<bool> closed = ClassItems(parts);
      if (!closed.ok() || !*closed) return closed;
    } else {
      parts->contents.push_back(c);
      ++pos_;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> OnigurumaToPcre2(std::string_view pattern) {
  return Translator(pattern).Run();
}

}  // namespace entroserve::tokenizer
