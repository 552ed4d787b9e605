#include "services/runnerd/make_sampler_backend.h"

#include <utility>
#include <vector>

#include "model_runner/model/transformer.h"
#include "sampler/base/status_macros.h"
#include "services/runnerd/local_sampler_backend.h"
#include "services/runnerd/sharded_sampler_backend.h"

namespace entroserve {

absl::StatusOr<std::unique_ptr<SamplerBackend>> MakeSamplerBackend(
    const SamplerBackendOptions& options) {
  if (options.sampler == "local") {
    const int workers = options.workers > 0 ? options.workers : CoresAvailable();
    return std::make_unique<LocalSamplerBackend>(options.remote.wire_dtype, workers);
  }
  RemoteSamplerOptions remote = options.remote;
  remote.address = options.sampler;
  const bool shared = IsResolverTarget(remote.address);
  if (shared) {
    ASSIGN_OR_RETURN(remote.channel, MakeSamplerChannel(remote, /*own_connection=*/false));
  }
  std::vector<std::unique_ptr<SamplerBackend>> shards;
  for (int i = 0; i < options.streams; ++i) {
    if (!shared) {
      ASSIGN_OR_RETURN(remote.channel, MakeSamplerChannel(remote, /*own_connection=*/true));
    }
    shards.push_back(std::make_unique<RemoteSamplerBackend>(remote));
  }
  if (shards.size() == 1) return std::move(shards.front());
  return std::make_unique<ShardedSamplerBackend>(std::move(shards));
}

}  // namespace entroserve
