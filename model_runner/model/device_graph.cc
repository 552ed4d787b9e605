#include "model_runner/model/device_graph.h"

#include <utility>

#if defined(ENTROSERVE_TORCH_CUDA)
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace entroserve {
namespace {

// The CPU's stand-in: the recorded function, run again.
class HostGraph : public DeviceGraph {
 public:
  explicit HostGraph(std::function<void()> body) : body_(std::move(body)) {}
  void Replay() override { body_(); }

 private:
  std::function<void()> body_;
};

// A fence the host has already passed (the CPU's copies are synchronous).
class PassedFence : public DeviceFence {
 public:
  void Wait() override {}
};

#if defined(ENTROSERVE_TORCH_CUDA)
class CudaFence : public DeviceFence {
 public:
  explicit CudaFence(at::cuda::CUDAEvent event) : event_(std::move(event)) {}
  void Wait() override { event_.synchronize(); }

 private:
  at::cuda::CUDAEvent event_;
};

// The copy waits for the current stream's work on a pooled stream; later
// work on the current stream does not wait for the copy. `src` outlives the
// copy (a graph's static output), so no allocator bookkeeping is needed.
std::unique_ptr<DeviceFence> CopyToHostCuda(const at::Tensor& src, const at::Tensor& dst) {
  c10::cuda::CUDAGuard device_guard(src.device());
  const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(src.device().index());
  const c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(false, src.device().index());
  at::cuda::CUDAEvent ready;
  ready.record(compute);
  ready.block(copy);
  {
    c10::cuda::CUDAStreamGuard stream_guard(copy);
    dst.copy_(src, /*non_blocking=*/true);
  }
  at::cuda::CUDAEvent done;
  done.record(copy);
  return std::make_unique<CudaFence>(std::move(done));
}

class CudaGraph : public DeviceGraph {
 public:
  void Replay() override { graph_.replay(); }
  at::cuda::CUDAGraph& graph() { return graph_; }

 private:
  at::cuda::CUDAGraph graph_;
};

std::unique_ptr<DeviceGraph> RecordCuda(const at::Device& device,
                                        const std::function<void()>& body) {
  c10::cuda::CUDAGuard device_guard(device);
  // Capture needs a stream other than the default one; the step's inputs
  // were written on the current stream, so that work finishes first.
  c10::cuda::device_synchronize();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
  auto graph = std::make_unique<CudaGraph>();
  {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    body();  // warm-up: cuBLAS handles and workspaces, allocator blocks
    side.synchronize();
    // One memory pool for every graph of the process (see DeviceGraph::Record).
    static const auto pool = at::cuda::graph_pool_handle();
    graph->graph().capture_begin(pool);
    body();
    graph->graph().capture_end();
  }
  side.synchronize();
  return graph;
}
#endif

}  // namespace

bool DeviceGraphsCompiledIn() {
#if defined(ENTROSERVE_TORCH_CUDA)
  return true;
#else
  return false;
#endif
}

std::unique_ptr<DeviceGraph> DeviceGraph::Record(const at::Device& device,
                                                 std::function<void()> body) {
#if defined(ENTROSERVE_TORCH_CUDA)
  if (device.is_cuda()) return RecordCuda(device, body);
#endif
  return std::make_unique<HostGraph>(std::move(body));
}

std::unique_ptr<DeviceFence> CopyToHostAsync(const at::Tensor& src, const at::Tensor& dst) {
#if defined(ENTROSERVE_TORCH_CUDA)
  if (src.is_cuda()) return CopyToHostCuda(src, dst);
#endif
  dst.copy_(src);
  return std::make_unique<PassedFence>();
}

at::Tensor HostBuffer(at::IntArrayRef shape, at::ScalarType dtype, const at::Device& device) {
  at::TensorOptions options = at::TensorOptions().dtype(dtype);
  if (device.is_cuda()) options = options.pinned_memory(true);
  return at::empty(shape, options);
}

}  // namespace entroserve
