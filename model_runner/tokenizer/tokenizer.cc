#include "model_runner/tokenizer/tokenizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "model_runner/tokenizer/json_fields.h"
#include "model_runner/tokenizer/parsers.h"
#include "sampler/base/status_macros.h"

namespace entroserve {
namespace {

namespace tk = ::entroserve::tokenizer;

// Every section of tokenizer.json, in the order their errors take
// precedence.
absl::Status ParseSections(const tk::Json& json, absl::string_view source,
                           tk::TokenizerParts* parts) {
  ASSIGN_OR_RETURN(const tk::Json* model, tk::CheckModelSection(json, source));
  ASSIGN_OR_RETURN(std::vector<tk::AddedToken> added, tk::ParseAddedTokensSection(json, source));
  RETURN_IF_ERROR(tk::ParseModelSection(*model, source, added, &parts->vocabulary, &parts->model));
  for (tk::AddedToken& token : added) {
    parts->vocabulary.Set(token.content, token.id,
                          tk::kIdAdded | (token.special ? tk::kIdSpecial : uint8_t{0}));
    parts->added_tokens.Add(std::move(token));
  }
  RETURN_IF_ERROR(tk::ParseNormalizerSection(json, source, &parts->normalizer));
  RETURN_IF_ERROR(tk::ParsePreTokenizerSection(json, source, &parts->pre_tokenizer));
  const bool byte_level = parts->pre_tokenizer.byte_level();
  parts->model.options().byte_level = byte_level;
  RETURN_IF_ERROR(
      tk::ParseDecoderSection(json, source, byte_level, parts->vocabulary, &parts->decoder));
  return tk::ParsePostProcessorSection(json, source, parts->vocabulary, &parts->post_processor);
}

}  // namespace

Tokenizer::Tokenizer() : parts_(std::make_unique<tk::TokenizerParts>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, tk::ReadFile(path));
  return FromJson(text, path);
}

absl::StatusOr<Tokenizer> Tokenizer::FromJson(std::string_view json_text,
                                              std::string_view source_view) {
  const std::string source(source_view);
  ASSIGN_OR_RETURN(const tk::Json json, tk::ParseJsonObject(json_text, source));
  Tokenizer loaded;
  loaded.source_ = source;
  try {
    RETURN_IF_ERROR(ParseSections(json, source, loaded.parts_.get()));
  } catch (const tk::Json::exception& e) {
    // Every access is type-checked; this is a last line of defence.
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed tokenizer: ", e.what()));
  }
  RETURN_IF_ERROR(loaded.ApplyConfig(TokenizerConfig(), source));
  return loaded;
}

absl::Status Tokenizer::LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(const TokenizerConfig config, TokenizerConfig::FromFile(path));
  return ApplyConfig(config, path);
}

absl::Status Tokenizer::ApplyConfig(const TokenizerConfig& config, std::string_view source_view) {
  const std::string source(source_view);
  std::optional<int32_t> bos, eos;
  for (auto [name, token, target] : {std::tuple{"bos_token", &config.bos_token, &bos},
                                     std::tuple{"eos_token", &config.eos_token, &eos}}) {
    if (token->empty()) continue;
    *target = TokenToId(*token);
    if (!target->has_value()) {
      return tk::FieldError(source, name,
                            absl::StrCat("\"", *token, "\" is not in the vocabulary"));
    }
  }
  // Without a config BOS (EOS), the post-processor's first (last) special
  // token is BOS (EOS).
  const std::vector<int32_t>& prefix = parts_->post_processor.prefix;
  const std::vector<int32_t>& suffix = parts_->post_processor.suffix;
  if (!bos.has_value() && !prefix.empty()) bos = prefix.front();
  if (!eos.has_value() && !suffix.empty()) eos = suffix.back();
  config_ = config;
  bos_id_ = bos;
  eos_id_ = eos;
  add_bos_ = config.add_bos_token.has_value()
                 ? *config.add_bos_token && bos.has_value()
                 : (!prefix.empty() && bos.has_value() && prefix.front() == *bos);
  add_eos_ = config.add_eos_token.has_value()
                 ? *config.add_eos_token && eos.has_value()
                 : (!suffix.empty() && eos.has_value() && suffix.back() == *eos);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Encoding

void Tokenizer::EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  const std::string normalized = parts_->normalizer.Apply(text);
  if (normalized.empty()) return;
  std::vector<std::string> pieces;
  parts_->pre_tokenizer.Apply(normalized, &pieces);
  for (const std::string& piece : pieces) parts_->model.Encode(piece, parts_->vocabulary, ids);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  size_t position = 0;
  for (const tk::AddedMatch& match : parts_->added_tokens.Find(text, parse_special)) {
    EncodeSegment(text.substr(position, match.begin - position), &ids);
    ids.push_back(parts_->added_tokens[match.index].id);
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
  if (!parts_->vocabulary.Has(id, tk::kIdKnown)) return;
  if (skip_special && parts_->vocabulary.Has(id, tk::kIdSpecial)) return;
  out->append(parts_->decoder.bytes(id));
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) AppendTokenBytes(id, skip_special, &bytes);
  size_t begin = 0;
  while (static_cast<int>(begin) < strip_leading() && begin < bytes.size() &&
         bytes[begin] == strip_char()) {
    ++begin;
  }
  return ToValidUtf8(std::string_view(bytes).substr(begin));
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  return parts_->vocabulary.Find(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (!parts_->vocabulary.Has(id, tk::kIdKnown)) return std::nullopt;
  return parts_->vocabulary.tokens[id];
}

int32_t Tokenizer::vocab_size() const { return parts_->vocabulary.size(); }

bool Tokenizer::IsSpecial(int32_t id) const { return parts_->vocabulary.Has(id, tk::kIdSpecial); }

int Tokenizer::strip_leading() const { return parts_->decoder.strip_leading(); }

char Tokenizer::strip_char() const { return parts_->decoder.strip_char(); }

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
