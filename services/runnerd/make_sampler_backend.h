// The SamplerBackend runnerd's flags describe, made in one place so that
// runnerd and bench/backend_bench build the same thing: in process, or
// samplerd over several SampleStreams (sharded_sampler_backend.h).
#ifndef ENTROSERVE_SERVICES_RUNNERD_MAKE_SAMPLER_BACKEND_H_
#define ENTROSERVE_SERVICES_RUNNERD_MAKE_SAMPLER_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model_runner/engine/sampler_backend.h"
#include "services/runnerd/remote_sampler_backend.h"

namespace entroserve {

struct SamplerBackendOptions {
  // "local", or samplerd's target (remote.address is set from it).
  std::string sampler = "local";
  // Threads sampling a step's rows in process; 0: the cores available.
  int workers = 0;
  // SampleStreams to samplerd, each a shard of a step's rows.
  int streams = 4;
  // Everything else about the remote backend; its address is ignored.
  RemoteSamplerOptions remote;
};

// `options.streams` RemoteSamplerBackends behind a ShardedSamplerBackend
// (one alone when streams is 1); for a resolver target (dns:///, ipv4:) they
// share one round-robin channel, so that they spread over its replicas,
// otherwise each has a connection of its own. Errors: a channel that
// cannot be made (unreadable TLS files).
absl::StatusOr<std::unique_ptr<SamplerBackend>> MakeSamplerBackend(
    const SamplerBackendOptions& options);

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_RUNNERD_MAKE_SAMPLER_BACKEND_H_
