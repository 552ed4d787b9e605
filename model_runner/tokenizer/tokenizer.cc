#include "model_runner/tokenizer/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <queue>
#include <sstream>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sampler/base/utf8.h"

namespace entroserve {
namespace {

using Json = nlohmann::json;

// Flags of id_flags_.
constexpr uint8_t kIdKnown = 1;
constexpr uint8_t kIdSpecial = 2;
constexpr uint8_t kIdAdded = 4;

// Repeated pieces (words) are common; their BPE result is cached. Pieces
// longer than this are rare and not worth a cache slot.
constexpr size_t kMaxCachedPieceBytes = 256;
// The cache is cleared when it reaches this many entries (about a few MB).
constexpr size_t kMaxCacheEntries = 1 << 16;

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// GPT-2's byte <-> printable-character mapping (bytes_to_unicode in
// openai/gpt-2 encoder.py): printable Latin-1 bytes map to themselves, the
// others to U+0100 onwards in byte order.

struct ByteLevelAlphabet {
  std::string encoded[256];  // byte -> UTF-8 of its character
  int16_t decoded[512];      // codepoint (< 512) -> byte, -1 if none

  ByteLevelAlphabet() {
    std::fill(std::begin(decoded), std::end(decoded), -1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const int cp = printable ? b : 256 + next++;
      AppendUtf8(cp, &encoded[b]);
      decoded[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelAlphabet& Alphabet() {
  static const ByteLevelAlphabet* alphabet = new ByteLevelAlphabet();
  return *alphabet;
}

// The bytes a byte-level token stands for; when a character is outside the
// alphabet (an added token's own text), the token's UTF-8 as is (as the
// Hugging Face ByteLevel decoder does).
std::string ByteLevelDecode(std::string_view token) {
  const ByteLevelAlphabet& alphabet = Alphabet();
  std::string out;
  out.reserve(token.size());
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    const int length = Utf8SequenceLength(s + i, token.size() - i);
    if (length <= 0) return std::string(token);
    uint32_t cp;
    if (length == 1) {
      cp = s[i];
    } else if (length == 2) {
      cp = ((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
    } else {
      return std::string(token);
    }
    if (cp >= 512 || alphabet.decoded[cp] < 0) return std::string(token);
    out.push_back(static_cast<char>(alphabet.decoded[cp]));
    i += length;
  }
  return out;
}

// "<0x0A>" -> 0x0A; -1 when `token` is not a byte-fallback token.
int ParseByteToken(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = token[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

// ---------------------------------------------------------------------------
// PCRE2

struct Pcre2CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using Regex = std::shared_ptr<pcre2_code>;

// The GPT-2 pattern that ByteLevel(use_regex=true) splits with.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

absl::StatusOr<Regex> CompileRegex(std::string_view pattern, absl::string_view where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // MATCH_INVALID_UTF: invalid UTF-8 in the subject never matches but does
  // not fail the match, so any bytes can be tokenized.
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                                   &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrFormat("%s: bad regex /%s/ at offset %d: %s", where,
                                                      pattern, static_cast<int>(error_offset),
                                                      reinterpret_cast<const char*>(message)));
  }
  // JIT is an optimization only: a failure leaves the interpreter.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(code, Pcre2CodeDeleter());
}

// Appends the [begin, end) byte ranges of the successive non-overlapping
// matches of `regex` in `text`.
void FindRegexMatches(const pcre2_code* regex, std::string_view text,
                      std::vector<std::pair<size_t, size_t>>* matches) {
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(regex, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  uint32_t options = 0;
  while (offset <= text.size()) {
    int rc = pcre2_match(regex, subject, text.size(), offset, options, data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(regex, subject, text.size(), offset, options | PCRE2_NO_JIT, data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH && options != 0) {
      // No non-empty match at an empty match's position: step one character.
      if (offset >= text.size()) break;
      offset += Utf8CharLength(text, offset);
      options = 0;
      continue;
    }
    if (rc < 0) break;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) matches->emplace_back(begin, end);
    offset = end;
    options = end == begin ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  pcre2_match_data_free(data);
}

// ---------------------------------------------------------------------------
// JSON helpers. Every accessor checks types so that a malformed file is an
// error naming the field, never an exception.

std::string JsonTypeName(const Json& value) { return value.type_name(); }

absl::Status FieldError(absl::string_view source, absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", what));
}

// A "Sequence" object's list `key`: each member given to `parse` with its
// field path ("field.key[i]"), in order, stopping at the first error.
absl::Status ParseSequence(
    const Json& object, const char* key, absl::string_view source, const std::string& field,
    const std::function<absl::Status(const Json&, const std::string&)>& parse) {
  auto list = object.find(key);
  if (list == object.end() || !list->is_array()) {
    return FieldError(source, absl::StrCat(field, ".", key), "missing list");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    absl::Status status = parse((*list)[i], absl::StrCat(field, ".", key, "[", i, "]"));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> ParseJson(std::string_view text, absl::string_view source) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    // Parse again with exceptions for the position in the message.
    try {
      Json ignored = Json::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const Json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
    }
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object at the top, got ", JsonTypeName(json)));
  }
  return json;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return contents.str();
}

// `object[key]` as a bool; `fallback` when absent or null.
absl::StatusOr<bool> GetBool(const Json& object, const char* key, bool fallback,
                             absl::string_view source, absl::string_view field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return FieldError(source, field, absl::StrCat("expected a boolean, got ", JsonTypeName(*it)));
  }
  return it->get<bool>();
}

absl::StatusOr<std::string> GetString(const Json& object, const char* key, absl::string_view source,
                                      absl::string_view field, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) return FieldError(source, field, "missing");
    return std::string();
  }
  if (!it->is_string()) {
    return FieldError(source, field, absl::StrCat("expected a string, got ", JsonTypeName(*it)));
  }
  return it->get<std::string>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, const char* key, int64_t fallback,
                               absl::string_view source, absl::string_view field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return FieldError(source, field, absl::StrCat("expected an integer, got ", JsonTypeName(*it)));
  }
  return it->get<int64_t>();
}

// A {"String": "..."} or {"Regex": "..."} pattern.
struct Pattern {
  std::string text;
  bool is_regex = false;
};

absl::StatusOr<Pattern> GetPattern(const Json& object, absl::string_view source,
                                   absl::string_view field) {
  auto it = object.find("pattern");
  if (it == object.end() || !it->is_object()) {
    return FieldError(source, field, "missing pattern {\"String\": ...} or {\"Regex\": ...}");
  }
  Pattern pattern;
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    pattern.text = s->get<std::string>();
  } else if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    pattern.text = r->get<std::string>();
    pattern.is_regex = true;
  } else {
    return FieldError(source, field, "pattern must hold a String or a Regex");
  }
  return pattern;
}

// Reads an AddedToken-or-string field of tokenizer_config.json.
absl::StatusOr<std::string> GetTokenField(const Json& object, const char* key,
                                          absl::string_view source) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return FieldError(source, key, "expected a string or an object with \"content\"");
}

}  // namespace

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// TokenizerConfig

absl::StatusOr<TokenizerConfig> TokenizerConfig::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return FromJson(*text, path);
}

absl::StatusOr<TokenizerConfig> TokenizerConfig::FromJson(std::string_view json_text,
                                                          std::string_view source_view) {
  const std::string source(source_view);
  absl::StatusOr<Json> parsed = ParseJson(json_text, source);
  if (!parsed.ok()) return parsed.status();
  const Json& json = *parsed;
  TokenizerConfig config;
  struct {
    const char* key;
    std::string* field;
  } tokens[] = {{"bos_token", &config.bos_token},
                {"eos_token", &config.eos_token},
                {"pad_token", &config.pad_token},
                {"unk_token", &config.unk_token}};
  for (const auto& token : tokens) {
    absl::StatusOr<std::string> value = GetTokenField(json, token.key, source);
    if (!value.ok()) return value.status();
    *token.field = *std::move(value);
  }
  for (auto [key, field] : {std::pair{"add_bos_token", &config.add_bos_token},
                            std::pair{"add_eos_token", &config.add_eos_token}}) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) continue;
    if (!it->is_boolean()) {
      return FieldError(source, key, absl::StrCat("expected a boolean, got ", JsonTypeName(*it)));
    }
    *field = it->get<bool>();
  }
  if (auto it = json.find("chat_template"); it != json.end() && !it->is_null()) {
    if (it->is_string()) {
      config.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      const Json* chosen = nullptr;
      for (const Json& entry : *it) {
        if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string()) {
          return FieldError(source, "chat_template",
                            "list entries must be objects with a \"template\" string");
        }
        if (chosen == nullptr) chosen = &entry;
        if (entry.value("name", std::string()) == "default") chosen = &entry;
      }
      if (chosen != nullptr) config.chat_template = (*chosen)["template"].get<std::string>();
    } else {
      return FieldError(source, "chat_template",
                        absl::StrCat("expected a string or a list, got ", JsonTypeName(*it)));
    }
  }
  return config;
}

// ---------------------------------------------------------------------------
// Tokenizer internals

struct Tokenizer::NormalizerStep {
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kPrepend, kReplace, kStrip };
  Kind kind;
  std::string text;    // Prepend: the prefix; Replace: the content
  Pattern pattern;     // Replace
  Regex regex;         // Replace with a regex
  bool left = false;   // Strip
  bool right = false;  // Strip
};

// How Split keeps its matches (the Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Tokenizer::PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel };
  Kind kind;
  Regex regex;          // kSplit with a regex, or kByteLevel with use_regex
  std::string literal;  // kSplit with a string pattern
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // kByteLevel
};

class Tokenizer::BpeCache {
 public:
  bool Lookup(std::string_view piece, std::vector<int32_t>* ids) {
    absl::MutexLock lock(&mutex_);
    auto it = entries_.find(absl::string_view(piece.data(), piece.size()));
    if (it == entries_.end()) return false;
    ids->insert(ids->end(), it->second.begin(), it->second.end());
    return true;
  }
  void Insert(std::string_view piece, absl::Span<const int32_t> ids) {
    absl::MutexLock lock(&mutex_);
    if (entries_.size() >= kMaxCacheEntries) entries_.clear();
    entries_.try_emplace(std::string(piece), ids.begin(), ids.end());
  }

 private:
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::vector<int32_t>> entries_ ABSL_GUARDED_BY(mutex_);
};

Tokenizer::Tokenizer() : cache_(std::make_unique<BpeCache>()) {
  std::fill(std::begin(byte_fallback_ids_), std::end(byte_fallback_ids_), -1);
  std::fill(std::begin(byte_char_ids_), std::end(byte_char_ids_), -1);
}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return FromJson(*text, path);
}

namespace {

// Parses one normalizer object (recursing into Sequence) into `steps`.
template <typename Step>
absl::Status ParseNormalizer(const Json& json, absl::string_view source, const std::string& field,
                             std::vector<Step>* steps) {
  if (json.is_null()) return absl::OkStatus();
  if (!json.is_object()) return FieldError(source, field, "expected an object");
  absl::StatusOr<std::string> type = GetString(json, "type", source, field + ".type", true);
  if (!type.ok()) return type.status();
  using Kind = typename Step::Kind;
  Step step{};
  if (*type == "Sequence") {
    return ParseSequence(json, "normalizers", source, field,
                         [&](const Json& member, const std::string& member_field) {
                           return ParseNormalizer(member, source, member_field, steps);
                         });
  } else if (*type == "NFC") {
    step.kind = Kind::kNfc;
  } else if (*type == "NFD") {
    step.kind = Kind::kNfd;
  } else if (*type == "NFKC") {
    step.kind = Kind::kNfkc;
  } else if (*type == "NFKD") {
    step.kind = Kind::kNfkd;
  } else if (*type == "Lowercase") {
    step.kind = Kind::kLowercase;
  } else if (*type == "Prepend") {
    step.kind = Kind::kPrepend;
    absl::StatusOr<std::string> prepend =
        GetString(json, "prepend", source, field + ".prepend", true);
    if (!prepend.ok()) return prepend.status();
    step.text = *prepend;
  } else if (*type == "Replace") {
    step.kind = Kind::kReplace;
    absl::StatusOr<Pattern> pattern = GetPattern(json, source, field);
    if (!pattern.ok()) return pattern.status();
    step.pattern = *pattern;
    absl::StatusOr<std::string> content =
        GetString(json, "content", source, field + ".content", true);
    if (!content.ok()) return content.status();
    step.text = *content;
    if (pattern->is_regex) {
      absl::StatusOr<Regex> regex = CompileRegex(pattern->text, absl::StrCat(source, ": ", field));
      if (!regex.ok()) return regex.status();
      step.regex = *regex;
    }
  } else if (*type == "Strip") {
    step.kind = Kind::kStrip;
    absl::StatusOr<bool> left = GetBool(json, "strip_left", false, source, field + ".strip_left");
    absl::StatusOr<bool> right =
        GetBool(json, "strip_right", false, source, field + ".strip_right");
    if (!left.ok()) return left.status();
    if (!right.ok()) return right.status();
    step.left = *left;
    step.right = *right;
  } else {
    return absl::UnimplementedError(
        absl::StrCat(source, ": ", field, ": unsupported normalizer type \"", *type, "\""));
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<SplitBehavior> ParseSplitBehavior(const Json& json, absl::string_view source,
                                                 const std::string& field) {
  absl::StatusOr<std::string> name = GetString(json, "behavior", source, field, false);
  if (!name.ok()) return name.status();
  if (name->empty() || *name == "Isolated") return SplitBehavior::kIsolated;
  if (*name == "Removed") return SplitBehavior::kRemoved;
  if (*name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (*name == "Contiguous") return SplitBehavior::kContiguous;
  return FieldError(source, field, absl::StrCat("unknown split behavior \"", *name, "\""));
}

}  // namespace

absl::StatusOr<Tokenizer> Tokenizer::FromJson(std::string_view json_text,
                                              std::string_view source_view) {
  const std::string source(source_view);
  absl::StatusOr<Json> parsed = ParseJson(json_text, source);
  if (!parsed.ok()) return parsed.status();
  const Json& json = *parsed;
  Tokenizer tokenizer;
  tokenizer.source_ = source;

  try {
    // --- model ---------------------------------------------------------
    auto model_it = json.find("model");
    if (model_it == json.end() || !model_it->is_object()) {
      return FieldError(source, "model", "missing (expected an object)");
    }
    const Json& model = *model_it;
    auto type_it = model.find("type");
    if (type_it == model.end() || type_it->is_null()) {
      return FieldError(source, "model.type", "missing (expected \"BPE\")");
    }
    if (!type_it->is_string()) return FieldError(source, "model.type", "expected a string");
    const std::string model_type = type_it->get<std::string>();
    if (model_type != "BPE") {
      return absl::UnimplementedError(absl::StrCat(
          source, ": model.type: unsupported model type \"", model_type, "\" (only BPE is)"));
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      absl::StatusOr<std::string> value =
          GetString(model, key, source, absl::StrCat("model.", key), false);
      if (!value.ok()) return value.status();
      if (!value->empty()) {
        return absl::UnimplementedError(
            absl::StrCat(source, ": model.", key, ": \"", *value, "\" is not supported"));
      }
    }
    auto vocab_it = model.find("vocab");
    if (vocab_it == model.end() || !vocab_it->is_object()) {
      return FieldError(source, "model.vocab", "missing (expected an object token -> id)");
    }
    int64_t max_id = -1;
    for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
          it.value().get<int64_t>() > INT32_MAX) {
        return FieldError(source, absl::StrCat("model.vocab[\"", it.key(), "\"]"),
                          "expected a non-negative 32-bit integer id");
      }
      max_id = std::max(max_id, it.value().get<int64_t>());
    }
    auto added_it = json.find("added_tokens");
    if (added_it != json.end() && !added_it->is_null() && !added_it->is_array()) {
      return FieldError(source, "added_tokens", "expected a list");
    }
    if (added_it != json.end() && added_it->is_array()) {
      for (size_t i = 0; i < added_it->size(); ++i) {
        const Json& entry = (*added_it)[i];
        const std::string field = absl::StrCat("added_tokens[", i, "]");
        if (!entry.is_object()) return FieldError(source, field, "expected an object");
        absl::StatusOr<int64_t> id = GetInt(entry, "id", -1, source, field + ".id");
        if (!id.ok()) return id.status();
        if (*id < 0 || *id > INT32_MAX) {
          return FieldError(source, field + ".id", "missing or not a non-negative 32-bit id");
        }
        absl::StatusOr<std::string> content =
            GetString(entry, "content", source, field + ".content", true);
        if (!content.ok()) return content.status();
        if (content->empty()) return FieldError(source, field + ".content", "empty");
        AddedToken token;
        token.id = static_cast<int32_t>(*id);
        token.content = *content;
        for (auto [key, flag] :
             {std::pair{"special", &token.special}, std::pair{"lstrip", &token.lstrip},
              std::pair{"rstrip", &token.rstrip}, std::pair{"single_word", &token.single_word}}) {
          absl::StatusOr<bool> value =
              GetBool(entry, key, false, source, absl::StrCat(field, ".", key));
          if (!value.ok()) return value.status();
          *flag = *value;
        }
        max_id = std::max(max_id, *id);
        tokenizer.added_tokens_.push_back(std::move(token));
      }
    }
    tokenizer.id_to_token_.resize(max_id + 1);
    tokenizer.id_flags_.assign(max_id + 1, 0);
    tokenizer.vocab_.reserve(vocab_it->size() + tokenizer.added_tokens_.size());
    for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
      const int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
      tokenizer.vocab_[it.key()] = id;
      tokenizer.id_to_token_[id] = it.key();
      tokenizer.id_flags_[id] |= kIdKnown;
    }

    // Merges: "a b" strings or [a, b] pairs, rank = position.
    auto merges_it = model.find("merges");
    if (merges_it != model.end() && !merges_it->is_null()) {
      if (!merges_it->is_array()) return FieldError(source, "model.merges", "expected a list");
      tokenizer.merges_.reserve(merges_it->size());
      for (size_t rank = 0; rank < merges_it->size(); ++rank) {
        const Json& merge = (*merges_it)[rank];
        std::string left, right;
        if (merge.is_string()) {
          const std::string& line = merge.get_ref<const std::string&>();
          const size_t space = line.find(' ');
          if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
            return FieldError(
                source, absl::StrCat("model.merges[", rank, "]"),
                absl::StrCat("\"", line, "\" is not two tokens separated by a space"));
          }
          left = line.substr(0, space);
          right = line.substr(space + 1);
        } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
                   merge[1].is_string()) {
          left = merge[0].get<std::string>();
          right = merge[1].get<std::string>();
        } else {
          return FieldError(source, absl::StrCat("model.merges[", rank, "]"),
                            "expected \"a b\" or [\"a\", \"b\"]");
        }
        auto left_id = tokenizer.vocab_.find(left);
        auto right_id = tokenizer.vocab_.find(right);
        auto merged_id = tokenizer.vocab_.find(left + right);
        for (auto [it, token] : {std::pair{left_id, &left}, std::pair{right_id, &right}}) {
          if (it == tokenizer.vocab_.end()) {
            return FieldError(source, absl::StrCat("model.merges[", rank, "]"),
                              absl::StrCat("token \"", *token, "\" is not in model.vocab"));
          }
        }
        if (merged_id == tokenizer.vocab_.end()) {
          return FieldError(
              source, absl::StrCat("model.merges[", rank, "]"),
              absl::StrCat("merged token \"", left, right, "\" is not in model.vocab"));
        }
        const uint64_t key = (static_cast<uint64_t>(left_id->second) << 32) |
                             static_cast<uint32_t>(right_id->second);
        // The first (lowest-rank) occurrence of a pair wins.
        tokenizer.merges_.try_emplace(key, static_cast<int32_t>(rank), merged_id->second);
      }
    }

    absl::StatusOr<bool> ignore_merges =
        GetBool(model, "ignore_merges", false, source, "model.ignore_merges");
    absl::StatusOr<bool> byte_fallback =
        GetBool(model, "byte_fallback", false, source, "model.byte_fallback");
    absl::StatusOr<bool> fuse_unk = GetBool(model, "fuse_unk", false, source, "model.fuse_unk");
    absl::StatusOr<std::string> unk =
        GetString(model, "unk_token", source, "model.unk_token", false);
    for (const absl::Status& status :
         {ignore_merges.status(), byte_fallback.status(), fuse_unk.status(), unk.status()}) {
      if (!status.ok()) return status;
    }
    tokenizer.ignore_merges_ = *ignore_merges;
    tokenizer.byte_fallback_ = *byte_fallback;
    tokenizer.fuse_unk_ = *fuse_unk;
    if (!unk->empty()) {
      auto it = tokenizer.vocab_.find(*unk);
      if (it == tokenizer.vocab_.end()) {
        return FieldError(source, "model.unk_token",
                          absl::StrCat("\"", *unk, "\" is not in model.vocab"));
      }
      tokenizer.unk_id_ = it->second;
    }
    for (int b = 0; b < 256; ++b) {
      if (auto it = tokenizer.vocab_.find(absl::StrFormat("<0x%02X>", b));
          it != tokenizer.vocab_.end()) {
        tokenizer.byte_fallback_ids_[b] = it->second;
      }
      if (auto it = tokenizer.vocab_.find(Alphabet().encoded[b]); it != tokenizer.vocab_.end()) {
        tokenizer.byte_char_ids_[b] = it->second;
      }
    }

    // Added tokens override the model vocabulary for their ids.
    for (size_t i = 0; i < tokenizer.added_tokens_.size(); ++i) {
      const AddedToken& token = tokenizer.added_tokens_[i];
      tokenizer.vocab_[token.content] = token.id;
      tokenizer.id_to_token_[token.id] = token.content;
      tokenizer.id_flags_[token.id] |=
          kIdKnown | kIdAdded | (token.special ? kIdSpecial : uint8_t{0});
      // Trie for leftmost-longest matching.
      if (tokenizer.trie_.empty()) tokenizer.trie_.emplace_back();
      int32_t node = 0;
      for (unsigned char c : token.content) {
        auto it = tokenizer.trie_[node].next.find(c);
        if (it == tokenizer.trie_[node].next.end()) {
          tokenizer.trie_.emplace_back();
          const int32_t child = static_cast<int32_t>(tokenizer.trie_.size() - 1);
          tokenizer.trie_[node].next[c] = child;
          node = child;
        } else {
          node = it->second;
        }
      }
      tokenizer.trie_[node].token = static_cast<int32_t>(i);
      tokenizer.added_first_byte_[static_cast<unsigned char>(token.content[0])] = true;
    }

    // --- normalizer ----------------------------------------------------
    if (auto it = json.find("normalizer"); it != json.end()) {
      absl::Status status = ParseNormalizer(*it, source, "normalizer", &tokenizer.normalizers_);
      if (!status.ok()) return status;
    }

    // --- pre_tokenizer -------------------------------------------------
    std::function<absl::Status(const Json&, const std::string&)> parse_pre =
        [&](const Json& pre, const std::string& field) -> absl::Status {
      if (pre.is_null()) return absl::OkStatus();
      if (!pre.is_object()) return FieldError(source, field, "expected an object");
      absl::StatusOr<std::string> type = GetString(pre, "type", source, field + ".type", true);
      if (!type.ok()) return type.status();
      PreTokenizerStep step{};
      if (*type == "Sequence") {
        return ParseSequence(pre, "pretokenizers", source, field, parse_pre);
      } else if (*type == "Split") {
        step.kind = PreTokenizerStep::Kind::kSplit;
        absl::StatusOr<Pattern> pattern = GetPattern(pre, source, field);
        if (!pattern.ok()) return pattern.status();
        if (pattern->is_regex) {
          absl::StatusOr<Regex> regex =
              CompileRegex(pattern->text, absl::StrCat(source, ": ", field, ".pattern.Regex"));
          if (!regex.ok()) return regex.status();
          step.regex = *regex;
        } else {
          if (pattern->text.empty()) return FieldError(source, field, "empty String pattern");
          step.literal = pattern->text;
        }
        absl::StatusOr<SplitBehavior> behavior =
            ParseSplitBehavior(pre, source, field + ".behavior");
        if (!behavior.ok()) return behavior.status();
        step.behavior = *behavior;
        absl::StatusOr<bool> invert = GetBool(pre, "invert", false, source, field + ".invert");
        if (!invert.ok()) return invert.status();
        step.invert = *invert;
      } else if (*type == "ByteLevel") {
        step.kind = PreTokenizerStep::Kind::kByteLevel;
        absl::StatusOr<bool> prefix =
            GetBool(pre, "add_prefix_space", false, source, field + ".add_prefix_space");
        absl::StatusOr<bool> use_regex =
            GetBool(pre, "use_regex", true, source, field + ".use_regex");
        if (!prefix.ok()) return prefix.status();
        if (!use_regex.ok()) return use_regex.status();
        step.add_prefix_space = *prefix;
        if (*use_regex) {
          absl::StatusOr<Regex> regex = CompileRegex(kGpt2Pattern, source);
          if (!regex.ok()) return regex.status();
          step.regex = *regex;
        }
        tokenizer.byte_level_ = true;
      } else if (*type == "Digits") {
        // Digits(individual_digits) is a Split on Unicode numerics.
        step.kind = PreTokenizerStep::Kind::kSplit;
        absl::StatusOr<bool> individual =
            GetBool(pre, "individual_digits", false, source, field + ".individual_digits");
        if (!individual.ok()) return individual.status();
        absl::StatusOr<Regex> regex = CompileRegex(*individual ? R"(\p{N})" : R"(\p{N}+)", source);
        if (!regex.ok()) return regex.status();
        step.regex = *regex;
      } else {
        return absl::UnimplementedError(
            absl::StrCat(source, ": ", field, ": unsupported pre_tokenizer type \"", *type, "\""));
      }
      tokenizer.pre_tokenizers_.push_back(std::move(step));
      return absl::OkStatus();
    };
    if (auto it = json.find("pre_tokenizer"); it != json.end()) {
      absl::Status status = parse_pre(*it, "pre_tokenizer");
      if (!status.ok()) return status;
    }
    // --- decoder -------------------------------------------------------
    // Each token decodes to bytes on its own; see AppendTokenBytes.
    bool decode_byte_level = false;
    bool decode_byte_fallback = false;
    std::vector<std::pair<std::string, std::string>> replacements;
    std::function<absl::Status(const Json&, const std::string&)> parse_decoder =
        [&](const Json& decoder, const std::string& field) -> absl::Status {
      if (decoder.is_null()) return absl::OkStatus();
      if (!decoder.is_object()) return FieldError(source, field, "expected an object");
      absl::StatusOr<std::string> type = GetString(decoder, "type", source, field + ".type", true);
      if (!type.ok()) return type.status();
      if (*type == "Sequence") {
        if (absl::Status s = ParseSequence(decoder, "decoders", source, field, parse_decoder);
            !s.ok()) {
          return s;
        }
      } else if (*type == "ByteLevel") {
        decode_byte_level = true;
      } else if (*type == "ByteFallback") {
        decode_byte_fallback = true;
      } else if (*type == "Fuse") {
        // Concatenation is what decoding does anyway.
      } else if (*type == "Replace") {
        absl::StatusOr<Pattern> pattern = GetPattern(decoder, source, field);
        if (!pattern.ok()) return pattern.status();
        if (pattern->is_regex) {
          return absl::UnimplementedError(
              absl::StrCat(source, ": ", field, ": Replace decoder with a Regex is not supported"));
        }
        absl::StatusOr<std::string> content =
            GetString(decoder, "content", source, field + ".content", true);
        if (!content.ok()) return content.status();
        replacements.emplace_back(pattern->text, *content);
      } else if (*type == "Strip") {
        absl::StatusOr<std::string> content =
            GetString(decoder, "content", source, field + ".content", true);
        absl::StatusOr<int64_t> start = GetInt(decoder, "start", 0, source, field + ".start");
        absl::StatusOr<int64_t> stop = GetInt(decoder, "stop", 0, source, field + ".stop");
        for (const absl::Status& status : {content.status(), start.status(), stop.status()}) {
          if (!status.ok()) return status;
        }
        if (content->size() != 1 || *start < 0 || *start > 16 || *stop != 0) {
          return absl::UnimplementedError(absl::StrCat(
              source, ": ", field,
              ": only Strip of a one-byte character at the start (stop = 0) is supported"));
        }
        tokenizer.strip_char_ = (*content)[0];
        tokenizer.strip_leading_ = static_cast<int>(*start);
      } else if (*type == "Metaspace") {
        absl::StatusOr<std::string> replacement =
            GetString(decoder, "replacement", source, field + ".replacement", false);
        if (!replacement.ok()) return replacement.status();
        replacements.emplace_back(replacement->empty() ? "\xE2\x96\x81" : *replacement, " ");
        absl::StatusOr<std::string> scheme =
            GetString(decoder, "prepend_scheme", source, field + ".prepend_scheme", false);
        absl::StatusOr<bool> prefix =
            GetBool(decoder, "add_prefix_space", true, source, field + ".add_prefix_space");
        if (!scheme.ok()) return scheme.status();
        if (!prefix.ok()) return prefix.status();
        const bool strip = scheme->empty() ? *prefix : *scheme != "never";
        if (strip) {
          tokenizer.strip_char_ = ' ';
          tokenizer.strip_leading_ = 1;
        }
      } else {
        return absl::UnimplementedError(
            absl::StrCat(source, ": ", field, ": unsupported decoder type \"", *type, "\""));
      }
      return absl::OkStatus();
    };
    auto decoder_it = json.find("decoder");
    if (decoder_it != json.end() && !decoder_it->is_null()) {
      absl::Status status = parse_decoder(*decoder_it, "decoder");
      if (!status.ok()) return status;
    } else {
      // No decoder: byte-level vocabularies still decode through the alphabet.
      decode_byte_level = tokenizer.byte_level_;
    }
    tokenizer.id_to_bytes_.resize(tokenizer.id_to_token_.size());
    for (size_t id = 0; id < tokenizer.id_to_token_.size(); ++id) {
      if (!(tokenizer.id_flags_[id] & kIdKnown)) continue;
      const std::string& token = tokenizer.id_to_token_[id];
      std::string& bytes = tokenizer.id_to_bytes_[id];
      if (tokenizer.id_flags_[id] & kIdAdded) {
        bytes = token;
        continue;
      }
      if (decode_byte_fallback) {
        const int byte = ParseByteToken(token);
        if (byte >= 0) {
          bytes.assign(1, static_cast<char>(byte));
          continue;
        }
      }
      std::string text = token;
      for (const auto& [from, to] : replacements) text = absl::StrReplaceAll(text, {{from, to}});
      bytes = decode_byte_level ? ByteLevelDecode(text) : text;
    }

    // --- post_processor: the ids around a single sequence -------------
    std::function<absl::Status(const Json&, const std::string&)> parse_post =
        [&](const Json& post, const std::string& field) -> absl::Status {
      if (post.is_null()) return absl::OkStatus();
      if (!post.is_object()) return FieldError(source, field, "expected an object");
      absl::StatusOr<std::string> type = GetString(post, "type", source, field + ".type", true);
      if (!type.ok()) return type.status();
      auto token_id = [&](const std::string& token,
                          const std::string& where) -> absl::StatusOr<int32_t> {
        auto it = tokenizer.vocab_.find(token);
        if (it == tokenizer.vocab_.end()) {
          return FieldError(source, where,
                            absl::StrCat("\"", token, "\" is not in the vocabulary"));
        }
        return it->second;
      };
      if (*type == "Sequence") {
        if (absl::Status s = ParseSequence(post, "processors", source, field, parse_post);
            !s.ok()) {
          return s;
        }
      } else if (*type == "TemplateProcessing") {
        auto single = post.find("single");
        if (single == post.end() || !single->is_array()) {
          return FieldError(source, field + ".single", "missing list");
        }
        const Json* special = post.contains("special_tokens") ? &post["special_tokens"] : nullptr;
        bool after_sequence = false;
        tokenizer.template_prefix_.clear();
        tokenizer.template_suffix_.clear();
        for (size_t i = 0; i < single->size(); ++i) {
          const Json& piece = (*single)[i];
          const std::string where = absl::StrCat(field, ".single[", i, "]");
          if (piece.contains("Sequence")) {
            after_sequence = true;
            continue;
          }
          if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id") ||
              !piece["SpecialToken"]["id"].is_string()) {
            return FieldError(source, where, "expected {\"SpecialToken\": {\"id\": ...}}");
          }
          const std::string name = piece["SpecialToken"]["id"].get<std::string>();
          std::vector<int32_t> ids;
          if (special != nullptr && special->contains(name) && (*special)[name].contains("ids") &&
              (*special)[name]["ids"].is_array()) {
            for (const Json& id : (*special)[name]["ids"]) {
              if (!id.is_number_integer()) return FieldError(source, where, "bad special id");
              ids.push_back(id.get<int32_t>());
            }
          } else {
            absl::StatusOr<int32_t> id = token_id(name, where);
            if (!id.ok()) return id.status();
            ids.push_back(*id);
          }
          auto& target = after_sequence ? tokenizer.template_suffix_ : tokenizer.template_prefix_;
          target.insert(target.end(), ids.begin(), ids.end());
        }
      } else if (*type == "RobertaProcessing" || *type == "BertProcessing") {
        for (auto [key, target] : {std::pair{"cls", &tokenizer.template_prefix_},
                                   std::pair{"sep", &tokenizer.template_suffix_}}) {
          auto it = post.find(key);
          if (it == post.end() || !it->is_array() || it->size() != 2 ||
              !(*it)[1].is_number_integer()) {
            return FieldError(source, absl::StrCat(field, ".", key), "expected [token, id]");
          }
          *target = {(*it)[1].get<int32_t>()};
        }
      } else if (*type == "ByteLevel") {
        // Offsets only.
      } else {
        return absl::UnimplementedError(
            absl::StrCat(source, ": ", field, ": unsupported post_processor type \"", *type, "\""));
      }
      return absl::OkStatus();
    };
    if (auto it = json.find("post_processor"); it != json.end()) {
      absl::Status status = parse_post(*it, "post_processor");
      if (!status.ok()) return status;
    }
  } catch (const Json::exception& e) {
    // Every access above is type-checked; this is a last line of defence.
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed tokenizer: ", e.what()));
  }

  absl::Status status = tokenizer.ApplyConfig(TokenizerConfig(), source);
  if (!status.ok()) return status;
  return tokenizer;
}

absl::Status Tokenizer::LoadConfig(const std::string& path) {
  absl::StatusOr<TokenizerConfig> config = TokenizerConfig::FromFile(path);
  if (!config.ok()) return config.status();
  return ApplyConfig(*config, path);
}

absl::Status Tokenizer::ApplyConfig(const TokenizerConfig& config, std::string_view source_view) {
  const std::string source(source_view);
  std::optional<int32_t> bos, eos;
  for (auto [name, token, target] : {std::tuple{"bos_token", &config.bos_token, &bos},
                                     std::tuple{"eos_token", &config.eos_token, &eos}}) {
    if (token->empty()) continue;
    std::optional<int32_t> id = TokenToId(*token);
    if (!id.has_value()) {
      return FieldError(source, name, absl::StrCat("\"", *token, "\" is not in the vocabulary"));
    }
    *target = id;
  }
  // Without a config BOS, the post-processor's first special token is BOS.
  if (!bos.has_value() && !template_prefix_.empty()) bos = template_prefix_.front();
  if (!eos.has_value() && !template_suffix_.empty()) eos = template_suffix_.back();
  config_ = config;
  bos_id_ = bos;
  eos_id_ = eos;
  add_bos_ = config.add_bos_token.has_value()
                 ? *config.add_bos_token && bos.has_value()
                 : (!template_prefix_.empty() && bos.has_value() && template_prefix_[0] == *bos);
  add_eos_ = config.add_eos_token.has_value() ? *config.add_eos_token && eos.has_value()
                                              : (!template_suffix_.empty() && eos.has_value() &&
                                                 template_suffix_.back() == *eos);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Encoding

std::vector<Tokenizer::AddedMatch> Tokenizer::FindAddedTokens(std::string_view text,
                                                              bool parse_special) const {
  std::vector<AddedMatch> matches;
  if (trie_.empty()) return matches;
  auto is_word_byte = [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c >= 0x80;
  };
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  size_t previous_end = 0;
  for (size_t i = 0; i < text.size();) {
    if (!added_first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    // Longest allowed token starting at i.
    int32_t node = 0;
    int best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie_[node].next.find(static_cast<unsigned char>(text[j]));
      if (it == trie_[node].next.end()) break;
      node = it->second;
      const int32_t index = trie_[node].token;
      if (index < 0) continue;
      const AddedToken& token = added_tokens_[index];
      if (token.special && !parse_special) continue;
      if (token.single_word) {
        const bool left_ok = i == 0 || !is_word_byte(text[i - 1]);
        const bool right_ok = j + 1 == text.size() || !is_word_byte(text[j + 1]);
        if (!left_ok || !right_ok) continue;
      }
      best = index;
      best_end = j + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& token = added_tokens_[best];
    size_t begin = i, end = best_end;
    if (token.lstrip) {
      while (begin > previous_end && is_space(text[begin - 1])) --begin;
    }
    if (token.rstrip) {
      while (end < text.size() && is_space(text[end])) ++end;
    }
    matches.push_back({begin, end, best});
    previous_end = end;
    i = end;
  }
  return matches;
}

std::string Tokenizer::Normalize(std::string_view text) const {
  std::string out(text);
  for (const NormalizerStep& step : normalizers_) {
    using Kind = NormalizerStep::Kind;
    switch (step.kind) {
      case Kind::kNfc:
      case Kind::kNfd:
      case Kind::kNfkc:
      case Kind::kNfkd:
      case Kind::kLowercase: {
        // ASCII is already normalized; invalid UTF-8 is left as it is (ICU
        // would replace it and lose bytes).
        if (step.kind != Kind::kLowercase && IsAscii(out)) break;
        if (step.kind == Kind::kLowercase && IsAscii(out)) {
          for (char& c : out) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          }
          break;
        }
        if (!IsValidUtf8(out)) break;
        icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(out);
        if (step.kind == Kind::kLowercase) {
          unicode.toLower(icu::Locale::getRoot());
        } else {
          UErrorCode error = U_ZERO_ERROR;
          const icu::Normalizer2* normalizer =
              step.kind == Kind::kNfc    ? icu::Normalizer2::getNFCInstance(error)
              : step.kind == Kind::kNfd  ? icu::Normalizer2::getNFDInstance(error)
              : step.kind == Kind::kNfkc ? icu::Normalizer2::getNFKCInstance(error)
                                         : icu::Normalizer2::getNFKDInstance(error);
          if (U_FAILURE(error)) break;
          if (normalizer->isNormalized(unicode, error) && U_SUCCESS(error)) break;
          error = U_ZERO_ERROR;
          icu::UnicodeString normalized = normalizer->normalize(unicode, error);
          if (U_FAILURE(error)) break;
          unicode = normalized;
        }
        out.clear();
        unicode.toUTF8String(out);
        break;
      }
      case Kind::kPrepend:
        if (!out.empty()) out.insert(0, step.text);
        break;
      case Kind::kReplace:
        if (step.regex) {
          std::vector<std::pair<size_t, size_t>> matches;
          FindRegexMatches(step.regex.get(), out, &matches);
          std::string replaced;
          size_t last = 0;
          for (auto [begin, end] : matches) {
            replaced.append(out, last, begin - last);
            replaced.append(step.text);
            last = end;
          }
          replaced.append(out, last, std::string::npos);
          out = std::move(replaced);
        } else if (!step.pattern.text.empty()) {
          out = absl::StrReplaceAll(out, {{step.pattern.text, step.text}});
        }
        break;
      case Kind::kStrip: {
        auto is_space = [](char c) {
          return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
        };
        size_t begin = 0, end = out.size();
        if (step.left) {
          while (begin < end && is_space(out[begin])) ++begin;
        }
        if (step.right) {
          while (end > begin && is_space(out[end - 1])) --end;
        }
        out = out.substr(begin, end - begin);
        break;
      }
    }
  }
  return out;
}

namespace {

// Splits `text` into pieces at `matches` (sorted, non-overlapping ranges)
// according to `behavior` (the Hugging Face SplitDelimiterBehavior), dropping
// empty pieces.
void SplitAtMatches(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                    SplitBehavior behavior, bool invert, std::vector<std::string>* out) {
  // The partition of text into (range, is_match).
  struct Segment {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Segment> segments;
  size_t previous = 0;
  for (auto [begin, end] : matches) {
    if (begin > previous) segments.push_back({previous, begin, false});
    segments.push_back({begin, end, true});
    previous = end;
  }
  if (previous < text.size()) segments.push_back({previous, text.size(), false});
  if (invert) {
    for (Segment& segment : segments) segment.is_match = !segment.is_match;
  }
  std::vector<Segment> merged;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      merged = segments;
      break;
    case SplitBehavior::kRemoved:
      for (const Segment& segment : segments) {
        if (!segment.is_match) merged.push_back(segment);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& segment : segments) {
        if (segment.is_match && !previous_match && !merged.empty()) {
          merged.back().end = segment.end;
        } else {
          merged.push_back(segment);
        }
        previous_match = segment.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().begin = it->begin;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::kContiguous:
      for (const Segment& segment : segments) {
        if (!merged.empty() && merged.back().is_match == segment.is_match) {
          merged.back().end = segment.end;
        } else {
          merged.push_back(segment);
        }
      }
      break;
  }
  for (const Segment& segment : merged) {
    if (segment.end > segment.begin) {
      out->emplace_back(text.substr(segment.begin, segment.end - segment.begin));
    }
  }
}

}  // namespace

void Tokenizer::PreTokenize(std::string_view text, std::vector<std::string>* pieces) const {
  pieces->clear();
  pieces->emplace_back(text);
  std::vector<std::string> next;
  std::vector<std::pair<size_t, size_t>> matches;
  for (const PreTokenizerStep& step : pre_tokenizers_) {
    next.clear();
    for (std::string& piece : *pieces) {
      if (step.kind == PreTokenizerStep::Kind::kByteLevel && step.add_prefix_space &&
          (piece.empty() || piece[0] != ' ')) {
        piece.insert(0, 1, ' ');
      }
      if (!step.regex && step.literal.empty()) {
        next.push_back(std::move(piece));
        continue;
      }
      matches.clear();
      if (step.regex) {
        FindRegexMatches(step.regex.get(), piece, &matches);
      } else {
        for (size_t at = piece.find(step.literal); at != std::string::npos;
             at = piece.find(step.literal, at + step.literal.size())) {
          matches.emplace_back(at, at + step.literal.size());
        }
      }
      SplitAtMatches(piece, matches, step.behavior, step.invert, &next);
    }
    pieces->swap(next);
  }
}

void Tokenizer::BpePiece(std::string_view piece, std::vector<int32_t>* ids) const {
  // Initial symbols: one per byte (byte-level) or per character.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  auto push = [&symbols](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1});
  };
  if (byte_level_) {
    for (unsigned char c : piece) {
      const int32_t id = byte_char_ids_[c];
      if (id >= 0) {
        push(id);
      } else if (byte_fallback_) {
        // HF falls back on the UTF-8 bytes of the byte-level character.
        bool all = true;
        for (unsigned char b : Alphabet().encoded[c]) all = all && byte_fallback_ids_[b] >= 0;
        if (all) {
          for (unsigned char b : Alphabet().encoded[c]) push(byte_fallback_ids_[b]);
        } else if (unk_id_ >= 0) {
          push(unk_id_);
        }
      } else if (unk_id_ >= 0 && !(fuse_unk_ && !symbols.empty() && symbols.back().id == unk_id_)) {
        push(unk_id_);
      }
    }
  } else {
    for (size_t i = 0; i < piece.size();) {
      const size_t length = Utf8CharLength(piece, i);
      const std::string_view character = piece.substr(i, length);
      auto it = vocab_.find(absl::string_view(character.data(), character.size()));
      if (it != vocab_.end() && !(id_flags_[it->second] & kIdAdded)) {
        push(it->second);
      } else {
        bool all = byte_fallback_;
        for (size_t k = 0; all && k < length; ++k) {
          all = byte_fallback_ids_[static_cast<unsigned char>(character[k])] >= 0;
        }
        if (all) {
          for (unsigned char b : character) push(byte_fallback_ids_[b]);
        } else if (unk_id_ >= 0 &&
                   !(fuse_unk_ && !symbols.empty() && symbols.back().id == unk_id_)) {
          push(unk_id_);
        }
      }
      i += length;
    }
  }
  for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int32_t>(i + 1);
  if (symbols.empty()) return;

  // Merge the lowest-ranked pair first, the leftmost among equal ranks (as
  // Hugging Face's Word::merge_all does).
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto find_merge = [this](int32_t left, int32_t right) -> const std::pair<int32_t, int32_t>* {
    auto it = merges_.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
    return it == merges_.end() ? nullptr : &it->second;
  };
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const auto* merge = find_merge(symbols[pos].id, symbols[next].id)) {
      queue.push({merge->first, pos, merge->second});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  std::vector<bool> removed(symbols.size(), false);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (removed[top.pos]) continue;
    const int32_t next = symbols[top.pos].next;
    if (next < 0) continue;
    const auto* merge = find_merge(symbols[top.pos].id, symbols[next].id);
    if (merge == nullptr || merge->second != top.merged || merge->first != top.rank) continue;
    symbols[top.pos].id = top.merged;
    removed[next] = true;
    symbols[top.pos].next = symbols[next].next;
    if (symbols[next].next >= 0) symbols[symbols[next].next].prev = top.pos;
    if (symbols[top.pos].prev >= 0) consider(symbols[top.pos].prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

void Tokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    // A piece that is itself a vocabulary token maps to it directly.
    std::string key;
    if (byte_level_) {
      for (unsigned char c : piece) key += Alphabet().encoded[c];
    } else {
      key.assign(piece);
    }
    auto it = vocab_.find(key);
    if (it != vocab_.end() && !(id_flags_[it->second] & kIdAdded)) {
      ids->push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable && cache_->Lookup(piece, ids)) return;
  const size_t first = ids->size();
  BpePiece(piece, ids);
  if (cacheable) {
    cache_->Insert(piece, absl::MakeConstSpan(ids->data() + first, ids->size() - first));
  }
}

void Tokenizer::EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  const std::string normalized = Normalize(text);
  if (normalized.empty()) return;
  std::vector<std::string> pieces;
  PreTokenize(normalized, &pieces);
  for (const std::string& piece : pieces) EncodePiece(piece, ids);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  size_t position = 0;
  for (const AddedMatch& match : FindAddedTokens(text, parse_special)) {
    EncodeSegment(text.substr(position, match.begin - position), &ids);
    ids.push_back(added_tokens_[match.index].id);
    position = match.end;
  }
  EncodeSegment(text.substr(position), &ids);
  return ids;
}

std::vector<int32_t> Tokenizer::EncodeWithSpecialTokens(std::string_view text,
                                                        bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos_) ids.push_back(*bos_id_);
  std::vector<int32_t> body = Encode(text, parse_special);
  ids.insert(ids.end(), body.begin(), body.end());
  if (add_eos_) ids.push_back(*eos_id_);
  return ids;
}

// ---------------------------------------------------------------------------
// Decoding and lookups

void Tokenizer::AppendTokenBytes(int32_t id, bool skip_special, std::string* out) const {
  if (id < 0 || id >= vocab_size() || !(id_flags_[id] & kIdKnown)) return;
  if (skip_special && (id_flags_[id] & kIdSpecial)) return;
  out->append(id_to_bytes_[id]);
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) AppendTokenBytes(id, skip_special, &bytes);
  size_t begin = 0;
  while (static_cast<int>(begin) < strip_leading_ && begin < bytes.size() &&
         bytes[begin] == strip_char_) {
    ++begin;
  }
  return ToValidUtf8(std::string_view(bytes).substr(begin));
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  auto it = vocab_.find(absl::string_view(token.data(), token.size()));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !(id_flags_[id] & kIdKnown)) return std::nullopt;
  return id_to_token_[id];
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && (id_flags_[id] & kIdSpecial);
}

// ---------------------------------------------------------------------------
// StreamingDecoder

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::Add(int32_t id) {
  tokenizer_->AppendTokenBytes(id, skip_special_, &pending_);
  // The decoder's leading Strip applies to the very start of the text.
  while (at_start_ && !pending_.empty()) {
    if (stripped_ < tokenizer_->strip_leading() && pending_[0] == tokenizer_->strip_char()) {
      pending_.erase(0, 1);
      ++stripped_;
    } else {
      at_start_ = false;
    }
  }
  std::string out;
  const size_t consumed = AppendValidUtf8(pending_, /*final=*/false, &out);
  pending_.erase(0, consumed);
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out;
  AppendValidUtf8(pending_, /*final=*/true, &out);
  pending_.clear();
  stripped_ = 0;
  at_start_ = true;
  return out;
}

}  // namespace entroserve
