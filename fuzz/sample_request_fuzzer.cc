// A sampler.v1.SampleRequest as samplerd receives it: the bytes parsed
// (services/common/message_bytes.h), then every row decoded (tensor dtypes,
// shapes and bytes), validated and sampled as one of samplerd's workers
// does (services/samplerd/row_sampling.h), shared memory refused.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/logging.h"
#include "sampler/v1/sampler.pb.h"
#include "services/common/message_bytes.h"
#include "services/samplerd/row_sampling.h"

// protobuf logs every string that is not UTF-8 it refuses; at thousands of
// inputs a second that is all a run would print.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sampler::v1::SampleRequest request;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!entroserve::ParseMessage(bytes, &request).ok()) return 0;
  // Rows of more than a few million logits only cost time here.
  if (request.rows_size() > 16) return 0;
  for (int i = 0; i < request.rows_size(); ++i) {
    sampler::v1::SampleResult result;
    entroserve::SampleOneRow(request.rows(i), i, &result, /*shm=*/nullptr);
    // A result is either an error or a token with a log p that is a number.
    if (!result.has_error() && (result.token_id() < 0 || std::isnan(result.logprob()))) abort();
  }
  return 0;
}
