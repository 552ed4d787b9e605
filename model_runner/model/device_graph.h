// A recorded step of device work that can be run again: a CUDA graph on a
// CUDA device (captured once, then replayed with one launch instead of
// hundreds), and on the CPU the recorded function itself, run again, so that
// the code around it (static inputs and outputs, no host reads inside) is
// exercised by the CPU tests too. The only file of the model runner that
// includes CUDA headers, and only when libtorch has CUDA
// (ENTROSERVE_TORCH_CUDA, set by model_runner/model/CMakeLists.txt).
#ifndef ENTROSERVE_MODEL_RUNNER_DEVICE_GRAPH_H_
#define ENTROSERVE_MODEL_RUNNER_DEVICE_GRAPH_H_

#include <ATen/ATen.h>

#include <functional>
#include <memory>

namespace entroserve {

class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  // Runs the recorded work on the device's current stream.
  virtual void Replay() = 0;

  // Records `body` for `device`. On CUDA, `body` runs once for real on a
  // side stream (so that libraries set up their handles and workspaces
  // outside the capture), then is captured; it must be idempotent, read only
  // tensors that outlive the graph, and never read device values on the host.
  // All graphs of a process share one memory pool: a graph's intermediate
  // tensors may be reused by another's, so read a graph's outputs before
  // replaying another. The caller's pending device work finishes first.
  static std::unique_ptr<DeviceGraph> Record(const at::Device& device, std::function<void()> body);
};

// True when this libtorch was built with CUDA and CUDA graphs are compiled in.
bool DeviceGraphsCompiledIn();

// A point in a device's queue of work that the host can wait for.
class DeviceFence {
 public:
  virtual ~DeviceFence() = default;
  // Returns once the device has done the work before the fence.
  virtual void Wait() = 0;
};

// Copies `src` (device memory) into `dst` (a HostBuffer of the same shape
// and dtype) once the work queued so far on the device's current stream is
// done. On CUDA the copy runs on a stream of its own, so that work queued
// after this call (the next graph) runs meanwhile; the fence passes once
// `dst` holds the values. On the CPU: copies now.
std::unique_ptr<DeviceFence> CopyToHostAsync(const at::Tensor& src, const at::Tensor& dst);

// Host memory for device-to-host copies: page-locked on CUDA (one DMA, no
// staging), ordinary on the CPU.
at::Tensor HostBuffer(at::IntArrayRef shape, at::ScalarType dtype, const at::Device& device);

}  // namespace entroserve

#endif  // ENTROSERVE_MODEL_RUNNER_DEVICE_GRAPH_H_
