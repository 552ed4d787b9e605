// runnerd: the model runner service (runner.v1.Runner) with gRPC health
// checking and server reflection.
//
// Start-up: the flags are checked and the model folder must exist (else a
// message and exit code 2); the server starts listening and prints
// "runnerd listening on HOST:PORT" with health NOT_SERVING; the model is
// loaded (a failure: a message, exit code 1); health goes SERVING and
// "runnerd serving ..." is printed.
//
// SIGTERM or SIGINT shut it down gracefully: health goes NOT_SERVING, new
// requests are refused (UNAVAILABLE), generations under way get
// --shutdown_grace_s to finish and are then ended with
// FINISH_REASON_CANCELLED, and it exits 0.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "model_runner/engine/engine.h"
#include "model_runner/engine/served_model.h"
#include "model_runner/model/transformer.h"
#include "sampler/registry.h"
#include "services/common/malloc_tuning.h"
#include "services/common/server_main.h"
#include "services/runnerd/local_sampler_backend.h"
#include "services/runnerd/remote_sampler_backend.h"
#include "services/runnerd/runner_service.h"
#include "services/runnerd/sharded_sampler_backend.h"

ABSL_FLAG(std::string, model, "",
          "Checkpoint folder to serve: config.json, model.safetensors (or a sharded "
          "index), tokenizer.json and tokenizer_config.json, as Hugging Face writes them. "
          "Required; e.g. models/tiny.");
ABSL_FLAG(std::string, device, "cpu",
          "Where the model runs: cpu, cuda or cuda:N (CUDA needs a CUDA build of libtorch).");
ABSL_FLAG(std::string, dtype, "float32",
          "Compute dtype of the weights and activations: float32, bfloat16, or float16 "
          "(CUDA only). Checkpoint weights are converted at load.");
ABSL_FLAG(int32_t, threads, 0,
          "CPU threads of the model's matrix products (libtorch intra-op and OpenBLAS); "
          "0 means every core this process may run on. On a shared machine, keep it at "
          "or below the idle cores.");
ABSL_FLAG(int32_t, max_context, 0,
          "Longest sequence, prompt and generated tokens together, a request may reach; "
          "0: the model's max_position_embeddings.");
ABSL_FLAG(std::string, host, "[::]",
          "Address to listen on: \"[::]\" is every interface (IPv6 and IPv4), "
          "\"127.0.0.1\" or \"localhost\" loopback only.");
ABSL_FLAG(int32_t, port, 50052,
          "TCP port to listen on; 0 picks a free port (printed in the "
          "\"runnerd listening on HOST:PORT\" line).");
ABSL_FLAG(std::string, sampler, "local",
          "Where tokens are sampled: \"local\" (in this process) or the HOST:PORT of a "
          "samplerd. A remote samplerd is reached over one long-lived stream, reconnected "
          "with backoff when it breaks; the same request gives the same tokens either way.");
ABSL_FLAG(std::string, sampler_dtype, "bfloat16",
          "Dtype of the logits and attention scores sent to the sampler: bfloat16 (half "
          "the bytes) or float32 (float16 is accepted too). With --sampler=local the "
          "values are rounded the same way, so that local and remote sampling agree.");
ABSL_FLAG(std::string, sampler_transport, "auto",
          "With a remote sampler, how the logits and attention bytes travel: inline (in "
          "the gRPC messages), shared_memory (a /dev/shm/entroserve-* region that a "
          "samplerd on this host reads; the messages carry only rows and references), or "
          "auto: shared memory when --sampler is a loopback address (127.0.0.1, localhost, "
          "[::1], unix:), falling back to inline for good if samplerd cannot read it.");
ABSL_FLAG(int32_t, sampler_workers, 0,
          "With --sampler=local: threads that sample a batch's rows in parallel (0: every "
          "core this process may run on; the model's threads wait while a step's rows are "
          "sampled). samplerd has its own --workers.");
ABSL_FLAG(int32_t, sampler_streams, 4,
          "With a remote sampler: SampleStreams (each its own connection) that a step's "
          "rows are split over, at least 2 rows each, sent at the same time; moving a large "
          "batch's logits through one HTTP/2 connection is the cost of the split.");
ABSL_FLAG(int32_t, max_batch, 8,
          "Sequences decoded together in one batch (continuous batching: requests join "
          "and leave between steps).");
ABSL_FLAG(int32_t, max_queue, 64,
          "Requests accepted beyond the free batch slots, waiting for one; past this a "
          "request is refused with RESOURCE_EXHAUSTED \"queue full (N waiting)\".");
ABSL_FLAG(int32_t, max_kv_mb, 4096,
          "KV cache of the running sequences in all, MiB; each is counted for its prompt "
          "plus max_new_tokens when it joins the batch, and waits while that does not "
          "fit. 0: no limit.");
ABSL_FLAG(int32_t, prefill_chunk, 512,
          "Prompt tokens prefilled per step in all: a long prompt is fed in chunks of "
          "this many tokens, so that the decode steps of running sequences go on.");
ABSL_FLAG(bool, batch_invariant, false,
          "Run every projection row by row, so that a sequence's tokens do not depend on "
          "the other requests it is batched with (batched matrix products round "
          "differently). Slower for large batches.");
ABSL_FLAG(std::string, group_decode, "auto",
          "Decode steps of the batch attend together, a few kernels per layer for the "
          "batch instead of ~10 per sequence: auto (on with CUDA, where launches bound a "
          "step; off on the CPU, where gathering the caches costs more), on, off.");
ABSL_FLAG(std::string, decode_graphs, "auto",
          "Decode steps run as CUDA graphs over a static KV cache of --max_batch rows "
          "(docs/GPU.md): auto (on with CUDA), on, off.");
ABSL_FLAG(std::string, fuse_projections, "auto",
          "q/k/v and gate/up projections as one matrix product each: auto (on with "
          "CUDA), on, off.");
ABSL_FLAG(std::string, fused_kernels, "auto",
          "The decode graphs' element-wise work (norms, rotation, attention, silu) as fused "
          "CUDA kernels: auto (on for CUDA in bfloat16/float16 when built with them), on, off.");
ABSL_FLAG(std::string, pipeline, "auto",
          "Split the running sequences in two cohorts that take turns: one's outputs are "
          "read and sampled while the other's forward pass runs on the GPU (docs/GPU.md): "
          "auto (on where decode steps run as CUDA graphs), on, off.");
ABSL_FLAG(int32_t, pipeline_min_batch, 8,
          "With --pipeline: split only from this many running sequences on (>= 2); "
          "smaller batches run as one.");
ABSL_FLAG(int32_t, max_message_mb, 64,
          "Largest gRPC message in MiB, served and sent to samplerd (at most 2047).");
ABSL_FLAG(std::string, default_sampler, "entropix",
          "The sampler of requests that name none: greedy, chain, entropix, alpha, "
          "mirostat_v2, dynatemp, top_n_sigma, xtc or dry, with its defaults.");
ABSL_FLAG(int32_t, sampler_timeout_s, 30,
          "Seconds a connected samplerd has to answer one step; past it the stream is "
          "treated as broken and the step is sent again on a new one.");
ABSL_FLAG(int32_t, sampler_wait_s, 60,
          "While samplerd cannot be reached, requests wait for it until their deadline, "
          "or this many seconds when they have none, then fail with UNAVAILABLE.");
ABSL_FLAG(int32_t, shutdown_grace_s, 10,
          "On SIGTERM/SIGINT: seconds generations under way get to finish before they "
          "are ended with FINISH_REASON_CANCELLED.");

namespace entroserve {
namespace {

constexpr char kServiceName[] = "runner.v1.Runner";
// Time the last messages of cancelled streams get to reach their clients.
constexpr auto kFinalWritesTimeout = std::chrono::seconds(5);

absl::StatusOr<DType> ParseSamplerDType(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "bfloat16" || lower == "bf16") return DType::kBFloat16;
  if (lower == "float32" || lower == "f32" || lower == "fp32") return DType::kFloat32;
  if (lower == "float16" || lower == "f16" || lower == "fp16") return DType::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--sampler_dtype must be bfloat16 or float32 (or float16), got ", name));
}

// Checks the flags; an error message, or empty when they are fine.
// The flags of the GPU runner: auto/on/off switches and the pipeline's
// threshold.
std::string GpuFlagError() {
  for (const auto& [name, value] :
       {std::pair<const char*, std::string>{"group_decode", absl::GetFlag(FLAGS_group_decode)},
        {"decode_graphs", absl::GetFlag(FLAGS_decode_graphs)},
        {"fuse_projections", absl::GetFlag(FLAGS_fuse_projections)},
        {"fused_kernels", absl::GetFlag(FLAGS_fused_kernels)},
        {"pipeline", absl::GetFlag(FLAGS_pipeline)}}) {
    if (value != "auto" && value != "on" && value != "off") {
      return absl::StrCat("--", name, " must be auto, on or off, got \"", value, "\"");
    }
  }
  if (absl::GetFlag(FLAGS_pipeline_min_batch) < 2) {
    return absl::StrCat("--pipeline_min_batch must be >= 2, got ",
                        absl::GetFlag(FLAGS_pipeline_min_batch));
  }
  return "";
}

std::string FlagError() {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) return "--model is required (a checkpoint folder, e.g. models/tiny)";
  std::error_code error;
  if (!std::filesystem::is_directory(model, error)) {
    return absl::StrCat("--model=", model, ": no such folder");
  }
  if (!std::filesystem::exists(std::filesystem::path(model) / "config.json", error)) {
    return absl::StrCat("--model=", model, ": no config.json there, not a checkpoint folder");
  }
  if (std::string error = ServerFlagsError(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port),
                                           absl::GetFlag(FLAGS_max_message_mb),
                                           absl::GetFlag(FLAGS_shutdown_grace_s));
      !error.empty()) {
    return error;
  }
  if (absl::GetFlag(FLAGS_max_context) < 0) {
    return absl::StrCat("--max_context must be >= 0, got ", absl::GetFlag(FLAGS_max_context));
  }
  if (std::string error = GpuFlagError(); !error.empty()) return error;
  if (absl::GetFlag(FLAGS_sampler_streams) < 1 || absl::GetFlag(FLAGS_sampler_streams) > 64) {
    return absl::StrCat("--sampler_streams must be in [1, 64], got ",
                        absl::GetFlag(FLAGS_sampler_streams));
  }
  if (auto transport = ParseSamplerTransport(absl::GetFlag(FLAGS_sampler_transport));
      !transport.ok()) {
    return absl::StrCat("--sampler_transport ", transport.status().message());
  }
  if (absl::GetFlag(FLAGS_sampler_workers) < 0) {
    return absl::StrCat("--sampler_workers must be >= 0, got ",
                        absl::GetFlag(FLAGS_sampler_workers));
  }
  if (absl::GetFlag(FLAGS_threads) < 0) {
    return absl::StrCat("--threads must be >= 0, got ", absl::GetFlag(FLAGS_threads));
  }
  if (auto dtype = ParseComputeDType(absl::GetFlag(FLAGS_dtype)); !dtype.ok()) {
    return absl::StrCat("--dtype: ", dtype.status().message());
  }
  if (auto dtype = ParseSamplerDType(absl::GetFlag(FLAGS_sampler_dtype)); !dtype.ok()) {
    return std::string(dtype.status().message());
  }
  const std::string sampler = absl::GetFlag(FLAGS_sampler);
  if (sampler != "local" && !absl::StrContains(sampler, ':')) {
    return absl::StrCat("--sampler must be \"local\" or HOST:PORT of a samplerd, got \"", sampler,
                        "\"");
  }
  if (absl::GetFlag(FLAGS_max_batch) < 1) {
    return absl::StrCat("--max_batch must be >= 1, got ", absl::GetFlag(FLAGS_max_batch));
  }
  if (absl::GetFlag(FLAGS_max_queue) < 0) {
    return absl::StrCat("--max_queue must be >= 0, got ", absl::GetFlag(FLAGS_max_queue));
  }
  if (absl::GetFlag(FLAGS_max_kv_mb) < 0) {
    return absl::StrCat("--max_kv_mb must be >= 0, got ", absl::GetFlag(FLAGS_max_kv_mb));
  }
  if (absl::GetFlag(FLAGS_prefill_chunk) < 1) {
    return absl::StrCat("--prefill_chunk must be >= 1, got ", absl::GetFlag(FLAGS_prefill_chunk));
  }
  if (auto config = DefaultConfig(absl::GetFlag(FLAGS_default_sampler)); !config.ok()) {
    return absl::StrCat("--default_sampler: ", config.status().message());
  }
  for (const auto& [name, value] :
       {std::pair{"--sampler_timeout_s", absl::GetFlag(FLAGS_sampler_timeout_s)},
        std::pair{"--sampler_wait_s", absl::GetFlag(FLAGS_sampler_wait_s)}}) {
    if (value < 1) return absl::StrCat(name, " must be >= 1, got ", value);
  }
  return "";
}

std::unique_ptr<SamplerBackend> MakeBackend(DType wire_dtype, int max_message_bytes) {
  const std::string sampler = absl::GetFlag(FLAGS_sampler);
  if (sampler == "local") {
    int workers = absl::GetFlag(FLAGS_sampler_workers);
    if (workers <= 0) workers = CoresAvailable();
    return std::make_unique<LocalSamplerBackend>(wire_dtype, workers);
  }
  RemoteSamplerOptions options;
  options.address = sampler;
  options.wire_dtype = wire_dtype;
  options.max_message_bytes = max_message_bytes;
  options.response_timeout = absl::Seconds(absl::GetFlag(FLAGS_sampler_timeout_s));
  options.transport = *ParseSamplerTransport(absl::GetFlag(FLAGS_sampler_transport));
  const int streams = absl::GetFlag(FLAGS_sampler_streams);
  if (streams == 1) return std::make_unique<RemoteSamplerBackend>(options);
  std::vector<std::unique_ptr<SamplerBackend>> shards;
  for (int i = 0; i < streams; ++i)
    shards.push_back(std::make_unique<RemoteSamplerBackend>(options));
  return std::make_unique<ShardedSamplerBackend>(std::move(shards));
}

// The model's options from the flags (checked by FlagError).
ModelOptions ModelOptionsFromFlags() {
  ModelOptions model_options;
  model_options.device = absl::GetFlag(FLAGS_device);
  model_options.dtype = *ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  model_options.threads = absl::GetFlag(FLAGS_threads);
  model_options.batch_invariant = absl::GetFlag(FLAGS_batch_invariant);
  if (absl::GetFlag(FLAGS_group_decode) != "auto") {
    model_options.group_decode_attention = absl::GetFlag(FLAGS_group_decode) == "on";
  }
  if (absl::GetFlag(FLAGS_decode_graphs) != "auto") {
    model_options.decode_graphs = absl::GetFlag(FLAGS_decode_graphs) == "on";
  }
  if (absl::GetFlag(FLAGS_fused_kernels) != "auto") {
    model_options.fused_kernels = absl::GetFlag(FLAGS_fused_kernels) == "on";
  }
  if (absl::GetFlag(FLAGS_fuse_projections) != "auto") {
    model_options.fuse_projections = absl::GetFlag(FLAGS_fuse_projections) == "on";
  }
  model_options.static_cache_rows = absl::GetFlag(FLAGS_max_batch);
  model_options.max_sequence_length = absl::GetFlag(FLAGS_max_context);
  return model_options;
}

EngineOptions EngineOptionsFromFlags() {
  EngineOptions engine_options;
  engine_options.max_batch = absl::GetFlag(FLAGS_max_batch);
  engine_options.max_queue = absl::GetFlag(FLAGS_max_queue);
  engine_options.max_kv_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_max_kv_mb)) << 20;
  engine_options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  engine_options.sampler_wait = absl::Seconds(absl::GetFlag(FLAGS_sampler_wait_s));
  if (absl::GetFlag(FLAGS_pipeline) != "auto") {
    engine_options.pipeline = absl::GetFlag(FLAGS_pipeline) == "on";
  }
  engine_options.pipeline_min_batch = absl::GetFlag(FLAGS_pipeline_min_batch);
  return engine_options;
}

int Run() {
  // SIGTERM and SIGINT are blocked in every thread (gRPC's, libtorch's and
  // the engine's inherit this mask) and taken synchronously by sigwait()
  // below. SIGUSR1 is the loading thread's "the model failed to load".
  const sigset_t signals = BlockStopSignals({SIGUSR1});
  // Each step allocates the batch's logits on the host (32 rows of a 128k
  // vocabulary: 16 MB of float32, twice) and frees them: keep that memory in
  // the heap rather than giving it back and faulting it in again per step.
  TuneMallocForLargeMessages();

  const int max_message_bytes = absl::GetFlag(FLAGS_max_message_mb) * (1 << 20);
  const DType wire_dtype = *ParseSamplerDType(absl::GetFlag(FLAGS_sampler_dtype));

  const ModelOptions model_options = ModelOptionsFromFlags();
  const EngineOptions engine_options = EngineOptionsFromFlags();

  // Destroyed after the server (declared first): the model, the backend and
  // the engine outlive every call.
  std::unique_ptr<ServedModel> model;
  std::unique_ptr<SamplerBackend> backend;
  std::unique_ptr<Engine> engine;
  RunnerService service(*DefaultConfig(absl::GetFlag(FLAGS_default_sampler)));

  Listening listening = Listen("runnerd", absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port),
                               &service, kServiceName, /*serving=*/false, max_message_bytes,
                               /*whole_message_windows=*/false);
  if (listening.server == nullptr) return 1;
  grpc::Server* server = listening.server.get();
  grpc::HealthCheckServiceInterface* health = listening.health;

  // Loaded on a thread of its own so that a signal can end the wait.
  std::atomic<bool> loaded{false};
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  std::thread loader([&] {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<ServedModel>> served =
        ServedModel::Load(model_dir, model_options);
    if (!served.ok()) {
      std::cerr << "runnerd: cannot load --model=" << model_dir << ": " << served.status().message()
                << "\n";
      kill(getpid(), SIGUSR1);
      return;
    }
    model = *std::move(served);
    backend = MakeBackend(wire_dtype, max_message_bytes);
    engine = std::make_unique<Engine>(model.get(), backend.get(), engine_options);
    service.Attach(model.get(), engine.get(), backend->Describe());
    health->SetServingStatus(kServiceName, true);
    health->SetServingStatus(true);
    loaded.store(true);
    const ModelConfig& config = model->model().config();
    std::cout << "runnerd serving " << model_dir << " (" << ModelFamilyName(config.family) << ", "
              << model->model().parameter_count() << " parameters, "
              << ComputeDTypeName(model->model().dtype()) << " on " << model->model().device()
              << ", " << model->model().threads() << " threads, loaded in "
              << absl::FormatDuration(absl::Now() - start) << "), sampler " << backend->Describe()
              << std::endl;
  });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  health->SetServingStatus(kServiceName, false);
  health->SetServingStatus(false);
  if (signal_number == SIGUSR1) {
    loader.join();
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    return 1;
  }
  std::cerr << "runnerd: signal " << signal_number << ", shutting down\n";
  if (!loaded.load()) {
    // Still loading: nothing is being served; leave without waiting for it.
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    std::cout.flush();
    _exit(0);
  }
  loader.join();
  engine->Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_s)));
  server->Shutdown(std::chrono::system_clock::now() + kFinalWritesTimeout);
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  return entroserve::DaemonMain(
      argc, argv, "runnerd",
      "The entroserve model runner: runner.v1.Runner over gRPC (Generate, Tokenize, "
      "Detokenize, ModelInfo), with grpc.health.v1 health checking and server reflection. "
      "Each token is chosen by a sampler in this process or in a samplerd.\n"
      "Usage: runnerd --model=models/tiny [--sampler=local|HOST:PORT] [--port=50052] ...\n"
      "Example: samplerd --port=50051 &\n"
      "         runnerd --model=models/tiny --sampler=localhost:50051 --port=50052",
      entroserve::FlagError, entroserve::Run);
}
