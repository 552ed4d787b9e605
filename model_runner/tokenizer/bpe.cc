#include "model_runner/tokenizer/bpe.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <queue>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "model_runner/tokenizer/byte_level.h"
#include "sampler/base/utf8.h"

namespace entroserve::tokenizer {
namespace {

// Repeated pieces (words) are common; their BPE result is cached. Pieces
// longer than this are rare and not worth a cache slot.
constexpr size_t kMaxCachedPieceBytes = 256;
// The cache is cleared when it reaches this many entries (about a few MB).
constexpr size_t kMaxCacheEntries = 1 << 16;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

// A symbol of the piece being merged, in a doubly linked list over the
// vector (merged-away symbols are unlinked).
struct BpeModel::Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
};

class BpeModel::Cache {
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

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) {
  std::fill(std::begin(byte_fallback_ids_), std::end(byte_fallback_ids_), -1);
  std::fill(std::begin(byte_char_ids_), std::end(byte_char_ids_), -1);
}
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

void BpeModel::AddMerge(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  merges_.try_emplace(PairKey(left, right), rank, merged);
}

void BpeModel::FindByteTokens(const Vocabulary& vocabulary) {
  for (int b = 0; b < 256; ++b) {
    byte_fallback_ids_[b] = vocabulary.Find(absl::StrFormat("<0x%02X>", b)).value_or(-1);
    byte_char_ids_[b] = vocabulary.Find(ByteLevelChar(b)).value_or(-1);
  }
}

const std::pair<int32_t, int32_t>* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::PushUnknown(std::vector<Symbol>* symbols) const {
  if (options_.unk_id < 0) return;
  if (options_.fuse_unk && !symbols->empty() && symbols->back().id == options_.unk_id) return;
  symbols->push_back({options_.unk_id, static_cast<int32_t>(symbols->size()) - 1, -1});
}

void BpeModel::PushByteLevelSymbols(std::string_view piece, std::vector<Symbol>* symbols) const {
  auto push = [symbols](int32_t id) {
    symbols->push_back({id, static_cast<int32_t>(symbols->size()) - 1, -1});
  };
  for (unsigned char c : piece) {
    if (byte_char_ids_[c] >= 0) {
      push(byte_char_ids_[c]);
    } else if (!options_.byte_fallback) {
      PushUnknown(symbols);
    } else {
      // Hugging Face falls back on the UTF-8 bytes of the byte-level
      // character, or else the unk token (not fused).
      const std::string& encoded = ByteLevelChar(c);
      const bool all = std::all_of(encoded.begin(), encoded.end(), [this](char b) {
        return byte_fallback_ids_[static_cast<unsigned char>(b)] >= 0;
      });
      if (all) {
        for (unsigned char b : encoded) push(byte_fallback_ids_[b]);
      } else if (options_.unk_id >= 0) {
        push(options_.unk_id);
      }
    }
  }
}

void BpeModel::PushCharacterSymbols(std::string_view piece, const Vocabulary& vocabulary,
                                    std::vector<Symbol>* symbols) const {
  for (size_t i = 0; i < piece.size();) {
    const size_t length = Utf8CharLength(piece, i);
    const std::string_view character = piece.substr(i, length);
    i += length;
    const int32_t id = vocabulary.FindModelToken(character);
    if (id >= 0) {
      symbols->push_back({id, static_cast<int32_t>(symbols->size()) - 1, -1});
      continue;
    }
    const bool all =
        options_.byte_fallback && std::all_of(character.begin(), character.end(), [this](char b) {
          return byte_fallback_ids_[static_cast<unsigned char>(b)] >= 0;
        });
    if (!all) {
      PushUnknown(symbols);
      continue;
    }
    for (unsigned char b : character) {
      symbols->push_back({byte_fallback_ids_[b], static_cast<int32_t>(symbols->size()) - 1, -1});
    }
  }
}

void BpeModel::MergeSymbols(std::vector<Symbol>* symbols_ptr) const {
  std::vector<Symbol>& symbols = *symbols_ptr;
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const auto* merge = FindMerge(symbols[pos].id, symbols[next].id)) {
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
    const auto* merge = FindMerge(symbols[top.pos].id, symbols[next].id);
    if (merge == nullptr || merge->second != top.merged || merge->first != top.rank) continue;
    symbols[top.pos].id = top.merged;
    removed[next] = true;
    symbols[top.pos].next = symbols[next].next;
    if (symbols[next].next >= 0) symbols[symbols[next].next].prev = top.pos;
    if (symbols[top.pos].prev >= 0) consider(symbols[top.pos].prev);
    consider(top.pos);
  }
}

void BpeModel::Merge(std::string_view piece, const Vocabulary& vocabulary,
                     std::vector<int32_t>* ids) const {
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  if (options_.byte_level) {
    PushByteLevelSymbols(piece, &symbols);
  } else {
    PushCharacterSymbols(piece, vocabulary, &symbols);
  }
  if (symbols.empty()) return;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int32_t>(i + 1);
  MergeSymbols(&symbols);
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

void BpeModel::Encode(std::string_view piece, const Vocabulary& vocabulary,
                      std::vector<int32_t>* ids) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = vocabulary.FindModelToken(options_.byte_level ? ByteLevelEncode(piece)
                                                                     : std::string(piece));
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable && cache_->Lookup(piece, ids)) return;
  const size_t first = ids->size();
  Merge(piece, vocabulary, ids);
  if (cacheable) {
    cache_->Insert(piece, absl::MakeConstSpan(ids->data() + first, ids->size() - first));
  }
}

}  // namespace entroserve::tokenizer
