// Post-processors (tokenizer.json's "post_processor"): the ids a single
// sequence is wrapped in (TemplateProcessing's "single", BERT's and
// RoBERTa's cls / sep). The tokenizer takes BOS and EOS from them when
// tokenizer_config.json names none.
#ifndef ENTROSERVE_MODEL_RUNNER_TOKENIZER_POST_PROCESSOR_H_
#define ENTROSERVE_MODEL_RUNNER_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <vector>

namespace entroserve::tokenizer {

struct PostProcessor {
  std::vector<int32_t> prefix;  // before the sequence
  std::vector<int32_t> suffix;  // after it
};

}  // namespace entroserve::tokenizer

#endif  // ENTROSERVE_MODEL_RUNNER_TOKENIZER_POST_PROCESSOR_H_
