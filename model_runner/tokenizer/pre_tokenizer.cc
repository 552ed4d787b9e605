#include "model_runner/tokenizer/pre_tokenizer.h"

#include <algorithm>

namespace entroserve::tokenizer {
namespace {

// A stretch of the text and whether the pattern matched it.
struct Segment {
  size_t begin, end;
  bool is_match;
};

// The partition of [0, size) into matches and the text between them.
std::vector<Segment> Partition(size_t size, const std::vector<std::pair<size_t, size_t>>& matches,
                               bool invert) {
  std::vector<Segment> segments;
  size_t previous = 0;
  for (auto [begin, end] : matches) {
    if (begin > previous) segments.push_back({previous, begin, invert});
    segments.push_back({begin, end, !invert});
    previous = end;
  }
  if (previous < size) segments.push_back({previous, size, invert});
  return segments;
}

// Each match joined to the piece before it (a match that follows a match,
// or starts the text, stands alone).
std::vector<Segment> MergeWithPrevious(const std::vector<Segment>& segments) {
  std::vector<Segment> merged;
  bool previous_match = false;
  for (const Segment& segment : segments) {
    if (segment.is_match && !previous_match && !merged.empty()) {
      merged.back().end = segment.end;
    } else {
      merged.push_back(segment);
    }
    previous_match = segment.is_match;
  }
  return merged;
}

// Each match joined to the piece after it, scanning from the end.
std::vector<Segment> MergeWithNext(const std::vector<Segment>& segments) {
  std::vector<Segment> merged;
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
  return merged;
}

// Runs of matches, and runs of the text between, each joined into one.
std::vector<Segment> MergeContiguous(const std::vector<Segment>& segments) {
  std::vector<Segment> merged;
  for (const Segment& segment : segments) {
    if (!merged.empty() && merged.back().is_match == segment.is_match) {
      merged.back().end = segment.end;
    } else {
      merged.push_back(segment);
    }
  }
  return merged;
}

std::vector<Segment> ApplyBehavior(std::vector<Segment> segments, SplitBehavior behavior) {
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return segments;
    case SplitBehavior::kRemoved:
      segments.erase(std::remove_if(segments.begin(), segments.end(),
                                    [](const Segment& segment) { return segment.is_match; }),
                     segments.end());
      return segments;
    case SplitBehavior::kMergedWithPrevious:
      return MergeWithPrevious(segments);
    case SplitBehavior::kMergedWithNext:
      return MergeWithNext(segments);
    case SplitBehavior::kContiguous:
      return MergeContiguous(segments);
  }
  return segments;
}

// The [begin, end) ranges of `literal` in `text`, left to right.
void FindLiteral(std::string_view text, const std::string& literal,
                 std::vector<std::pair<size_t, size_t>>* matches) {
  for (size_t at = text.find(literal); at != std::string_view::npos;
       at = text.find(literal, at + literal.size())) {
    matches->emplace_back(at, at + literal.size());
  }
}

}  // namespace

void SplitAtMatches(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                    SplitBehavior behavior, bool invert, std::vector<std::string>* out) {
  for (const Segment& segment : ApplyBehavior(Partition(text.size(), matches, invert), behavior)) {
    if (segment.end > segment.begin) {
      out->emplace_back(text.substr(segment.begin, segment.end - segment.begin));
    }
  }
}

void PreTokenizer::Add(PreTokenizerStep step) {
  if (step.kind == PreTokenizerStep::Kind::kByteLevel) byte_level_ = true;
  steps_.push_back(std::move(step));
}

void PreTokenizer::Apply(std::string_view text, std::vector<std::string>* pieces) const {
  pieces->clear();
  pieces->emplace_back(text);
  std::vector<std::string> next;
  std::vector<std::pair<size_t, size_t>> matches;
  for (const PreTokenizerStep& step : steps_) {
    next.clear();
    for (std::string& piece : *pieces) {
      if (step.kind == PreTokenizerStep::Kind::kByteLevel && step.add_prefix_space &&
          (piece.empty() || piece[0] != ' ')) {
        piece.insert(0, 1, ' ');
      }
      if (!step.regex.has_value() && step.literal.empty()) {
        next.push_back(std::move(piece));
        continue;
      }
      matches.clear();
      if (step.regex.has_value()) {
        step.regex->FindAll(piece, &matches);
      } else {
        FindLiteral(piece, step.literal, &matches);
      }
      SplitAtMatches(piece, matches, step.behavior, step.invert, &next);
    }
    pieces->swap(next);
  }
}

}  // namespace entroserve::tokenizer
