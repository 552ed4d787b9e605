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
#include <optional>
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
#include "sampler/base/status_macros.h"
#include "sampler/registry.h"
#include "services/common/log.h"
#include "services/common/malloc_tuning.h"
#include "services/common/server_main.h"
#include "services/openai/http_server.h"
#include "services/runnerd/make_sampler_backend.h"
#include "services/runnerd/remote_sampler_backend.h"
#include "services/runnerd/runner_metrics.h"
#include "services/runnerd/runner_service.h"

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
ABSL_FLAG(int32_t, port, 50052,
          "TCP port to listen on; 0 picks a free port (printed in the "
          "\"runnerd listening on HOST:PORT\" line).");
ABSL_FLAG(std::string, sampler, "local",
          "Where tokens are sampled: \"local\" (in this process), or samplerd's gRPC target: "
          "HOST:PORT, or dns:///NAME:PORT (e.g. a Kubernetes headless Service) or "
          "ipv4:HOST:PORT,HOST:PORT for several replicas, over which the streams spread round "
          "robin. Broken streams are reopened (on another replica) and their steps resent: "
          "the same request gives the same tokens whichever way.");
ABSL_FLAG(std::string, sampler_tls_ca_file, "",
          "PEM CA certificates to verify samplerd's certificate: the connection to samplerd "
          "uses TLS.");
ABSL_FLAG(std::string, sampler_tls_cert_file, "",
          "PEM certificate runnerd presents to samplerd (samplerd --tls_client_ca_file: "
          "mutual TLS); with --sampler_tls_key_file.");
ABSL_FLAG(std::string, sampler_tls_key_file, "", "PEM private key of --sampler_tls_cert_file.");
ABSL_FLAG(std::string, sampler_tls_server_name, "",
          "The name samplerd's certificate must carry, when it is not the host of --sampler "
          "(a list of addresses has none).");
ABSL_FLAG(std::string, sampler_auth_token_file, "",
          "File whose first token runnerd sends to samplerd as \"authorization: Bearer "
          "TOKEN\" (samplerd --auth_token_file); re-read when it changes.");
ABSL_FLAG(int32_t, sampler_stream_max_age_s, 60,
          "A stream to samplerd older than this is closed between two steps and opened "
          "again, so that streams spread over replicas added since (and one back from a "
          "restart). 0: streams live until they break.");
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
ABSL_FLAG(bool, sampler_shm_channel, true,
          "With shared memory (--sampler_transport): each step's rows and answer go through "
          "a shared-memory channel that samplerd's thread for the stream is woken on, "
          "rather than the stream's gRPC messages (a shorter round trip; the stream stays "
          "open beside it). A samplerd that refuses gets the messages.");
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
ABSL_FLAG(std::string, default_sampler, "entropix",
          "The sampler of requests that name none, with its defaults: a sampler name such "
          "as entropix, greedy or chain (`samplerctl samplers` lists them all).");
ABSL_FLAG(int32_t, sampler_timeout_s, 30,
          "Seconds a connected samplerd has to answer one step; past it the stream is "
          "treated as broken and the step is sent again on a new one.");
ABSL_FLAG(int32_t, sampler_wait_s, 60,
          "While samplerd cannot be reached, requests wait for it until their deadline, "
          "or this many seconds when they have none, then fail with UNAVAILABLE.");
ABSL_FLAG(int32_t, http_port, 0,
          "Port of the OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, "
          "/v1/models, /health; README \"OpenAI-compatible API\"), on --host (IPv4 "
          "0.0.0.0 when --host is [::]); 0: off. Plaintext only; with --auth_token_file every "
          "route but /health needs \"Authorization: Bearer TOKEN\" (else 401).");
ABSL_FLAG(int32_t, http_max_body_mb, 8,
          "Largest HTTP request body in MiB; past it the answer is 413.");
ABSL_FLAG(int32_t, http_threads, 0,
          "HTTP connections served at once (a worker each, an event stream holding its "
          "worker to its end); 0: 2 x (--max_batch + --max_queue) + 16, at least 64.");

namespace entroserve {
namespace {

constexpr char kServiceName[] = "runner.v1.Runner";
// Time the last messages of cancelled streams get to reach their clients.
constexpr absl::Duration kFinalWritesTimeout = absl::Seconds(5);

// Every flag, checked and parsed once (OptionsFromFlags).
struct RunnerdOptions {
  ServerOptions server;
  std::string model_dir;
  ModelOptions model;
  EngineOptions engine;
  SamplerConfig default_sampler;
  // --sampler ("local" or samplerd's target), its workers or streams, and
  // the remote backend's options.
  SamplerBackendOptions sampler;
  // --http_port 0: no HTTP server.
  openai::HttpServerOptions http;
};

absl::StatusOr<DType> ParseSamplerDType(const std::string& name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "bfloat16" || lower == "bf16") return DType::kBFloat16;
  if (lower == "float32" || lower == "f32" || lower == "fp32") return DType::kFloat32;
  if (lower == "float16" || lower == "f16" || lower == "fp16") return DType::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--sampler_dtype must be bfloat16 or float32 (or float16), got ", name));
}

absl::Status CheckAtLeast(const char* flag, int64_t value, int64_t least) {
  if (value >= least) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, " must be >= ", least, ", got ", value));
}

// auto | on | off as an optional bool: nullopt for auto.
absl::StatusOr<std::optional<bool>> ParseAutoOnOff(const char* flag, const std::string& value) {
  if (value == "auto") return std::optional<bool>();
  if (value == "on" || value == "off") return std::optional<bool>(value == "on");
  return absl::InvalidArgumentError(
      absl::StrCat(flag, " must be auto, on or off, got \"", value, "\""));
}

absl::Status ModelFolderError(const std::string& model) {
  if (model.empty()) {
    return absl::InvalidArgumentError(
        "--model is required (a checkpoint folder, e.g. models/tiny)");
  }
  std::error_code error;
  if (!std::filesystem::is_directory(model, error)) {
    return absl::InvalidArgumentError(absl::StrCat("--model=", model, ": no such folder"));
  }
  if (!std::filesystem::exists(std::filesystem::path(model) / "config.json", error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model=", model, ": no config.json there, not a checkpoint folder"));
  }
  return absl::OkStatus();
}

absl::Status ModelOptionsFromFlags(RunnerdOptions* options) {
  options->model_dir = absl::GetFlag(FLAGS_model);
  ModelOptions& model = options->model;
  model.device = absl::GetFlag(FLAGS_device);
  absl::StatusOr<ComputeDType> dtype = ParseComputeDType(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--dtype: ", dtype.status().message()));
  }
  model.dtype = *dtype;
  RETURN_IF_ERROR(CheckAtLeast("--threads", absl::GetFlag(FLAGS_threads), 0));
  model.threads = absl::GetFlag(FLAGS_threads);
  model.batch_invariant = absl::GetFlag(FLAGS_batch_invariant);
  ASSIGN_OR_RETURN(std::optional<bool> group,
                   ParseAutoOnOff("--group_decode", absl::GetFlag(FLAGS_group_decode)));
  if (group) model.group_decode_attention = *group;
  ASSIGN_OR_RETURN(std::optional<bool> graphs,
                   ParseAutoOnOff("--decode_graphs", absl::GetFlag(FLAGS_decode_graphs)));
  if (graphs) model.decode_graphs = *graphs;
  ASSIGN_OR_RETURN(std::optional<bool> fuse,
                   ParseAutoOnOff("--fuse_projections", absl::GetFlag(FLAGS_fuse_projections)));
  if (fuse) model.fuse_projections = *fuse;
  ASSIGN_OR_RETURN(std::optional<bool> kernels,
                   ParseAutoOnOff("--fused_kernels", absl::GetFlag(FLAGS_fused_kernels)));
  if (kernels) model.fused_kernels = *kernels;
  RETURN_IF_ERROR(CheckAtLeast("--max_context", absl::GetFlag(FLAGS_max_context), 0));
  model.max_sequence_length = absl::GetFlag(FLAGS_max_context);
  model.static_cache_rows = absl::GetFlag(FLAGS_max_batch);
  return absl::OkStatus();
}

absl::Status EngineOptionsFromFlags(RunnerdOptions* options) {
  EngineOptions& engine = options->engine;
  RETURN_IF_ERROR(CheckAtLeast("--max_batch", absl::GetFlag(FLAGS_max_batch), 1));
  engine.max_batch = absl::GetFlag(FLAGS_max_batch);
  RETURN_IF_ERROR(CheckAtLeast("--max_queue", absl::GetFlag(FLAGS_max_queue), 0));
  engine.max_queue = absl::GetFlag(FLAGS_max_queue);
  RETURN_IF_ERROR(CheckAtLeast("--max_kv_mb", absl::GetFlag(FLAGS_max_kv_mb), 0));
  engine.max_kv_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_max_kv_mb)) << 20;
  RETURN_IF_ERROR(CheckAtLeast("--prefill_chunk", absl::GetFlag(FLAGS_prefill_chunk), 1));
  engine.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  ASSIGN_OR_RETURN(std::optional<bool> pipeline,
                   ParseAutoOnOff("--pipeline", absl::GetFlag(FLAGS_pipeline)));
  if (pipeline) engine.pipeline = *pipeline;
  RETURN_IF_ERROR(CheckAtLeast("--pipeline_min_batch", absl::GetFlag(FLAGS_pipeline_min_batch), 2));
  engine.pipeline_min_batch = absl::GetFlag(FLAGS_pipeline_min_batch);
  RETURN_IF_ERROR(CheckAtLeast("--sampler_wait_s", absl::GetFlag(FLAGS_sampler_wait_s), 1));
  engine.sampler_wait = absl::Seconds(absl::GetFlag(FLAGS_sampler_wait_s));
  absl::StatusOr<SamplerConfig> sampler = DefaultConfig(absl::GetFlag(FLAGS_default_sampler));
  if (!sampler.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--default_sampler: ", sampler.status().message()));
  }
  options->default_sampler = *std::move(sampler);
  return absl::OkStatus();
}

// The remote sampler's options (used when --sampler is not "local").
absl::Status RemoteOptionsFromFlags(RunnerdOptions* options) {
  RemoteSamplerOptions& remote = options->sampler.remote;
  ASSIGN_OR_RETURN(remote.wire_dtype, ParseSamplerDType(absl::GetFlag(FLAGS_sampler_dtype)));
  absl::StatusOr<SamplerTransport> transport =
      ParseSamplerTransport(absl::GetFlag(FLAGS_sampler_transport));
  if (!transport.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sampler_transport ", transport.status().message()));
  }
  remote.transport = *transport;
  remote.shm_channel = absl::GetFlag(FLAGS_sampler_shm_channel);
  remote.max_message_bytes = options->server.max_message_bytes;
  RETURN_IF_ERROR(CheckAtLeast("--sampler_timeout_s", absl::GetFlag(FLAGS_sampler_timeout_s), 1));
  remote.response_timeout = absl::Seconds(absl::GetFlag(FLAGS_sampler_timeout_s));
  RETURN_IF_ERROR(
      CheckAtLeast("--sampler_stream_max_age_s", absl::GetFlag(FLAGS_sampler_stream_max_age_s), 0));
  remote.stream_max_age = absl::Seconds(absl::GetFlag(FLAGS_sampler_stream_max_age_s));
  remote.tls = {
      absl::GetFlag(FLAGS_sampler_tls_ca_file), absl::GetFlag(FLAGS_sampler_tls_cert_file),
      absl::GetFlag(FLAGS_sampler_tls_key_file), absl::GetFlag(FLAGS_sampler_tls_server_name)};
  // The files are read now, so that an unreadable one is a flag error (exit
  // code 2) rather than a failed model load.
  RETURN_IF_ERROR(MakeChannelCredentials(remote.tls, "--sampler_tls_", nullptr).status());
  const std::string token_file = absl::GetFlag(FLAGS_sampler_auth_token_file);
  if (!token_file.empty()) {
    ASSIGN_OR_RETURN(remote.token, TokenFile::Open("--sampler_auth_token_file", token_file));
  }
  return absl::OkStatus();
}

absl::Status SamplerOptionsFromFlags(RunnerdOptions* options) {
  options->sampler.sampler = absl::GetFlag(FLAGS_sampler);
  if (options->sampler.sampler.empty()) {
    return absl::InvalidArgumentError(
        "--sampler must be \"local\" or samplerd's gRPC target (HOST:PORT, dns:///NAME:PORT)");
  }
  const int streams = absl::GetFlag(FLAGS_sampler_streams);
  if (streams < 1 || streams > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sampler_streams must be in [1, 64], got ", streams));
  }
  options->sampler.streams = streams;
  RETURN_IF_ERROR(CheckAtLeast("--sampler_workers", absl::GetFlag(FLAGS_sampler_workers), 0));
  options->sampler.workers = absl::GetFlag(FLAGS_sampler_workers);
  return RemoteOptionsFromFlags(options);
}

// The OpenAI-compatible HTTP server's options; the model's id is the name
// of the --model folder.
absl::Status HttpOptionsFromFlags(RunnerdOptions* options) {
  openai::HttpServerOptions& http = options->http;
  const int port = absl::GetFlag(FLAGS_http_port);
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_port must be in [0, 65535], got ", port));
  }
  http.port = port;
  http.host = options->server.host == "[::]" || options->server.host == "::" ? "0.0.0.0"
                                                                             : options->server.host;
  RETURN_IF_ERROR(CheckAtLeast("--http_max_body_mb", absl::GetFlag(FLAGS_http_max_body_mb), 1));
  http.max_body_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_http_max_body_mb)) << 20;
  RETURN_IF_ERROR(CheckAtLeast("--http_threads", absl::GetFlag(FLAGS_http_threads), 0));
  http.threads =
      absl::GetFlag(FLAGS_http_threads) > 0
          ? absl::GetFlag(FLAGS_http_threads)
          : openai::DefaultHttpThreads(options->engine.max_batch, options->engine.max_queue);
  const std::filesystem::path dir = std::filesystem::path(options->model_dir).lexically_normal();
  http.model_name =
      dir.has_filename() ? dir.filename().string() : dir.parent_path().filename().string();
  return absl::OkStatus();
}

// The HTTP server, listening, when --http_port is set; null when it is not.
// `tokens` (--auth_token_file, or null) guard it as they guard the gRPC port.
absl::StatusOr<std::unique_ptr<openai::HttpServer>> StartHttp(const RunnerdOptions& options,
                                                              std::shared_ptr<TokenFile> tokens) {
  if (options.http.port == 0) return nullptr;
  openai::HttpServerOptions http_options = options.http;
  http_options.tokens = std::move(tokens);  // the gRPC port's
  auto http = std::make_unique<openai::HttpServer>(http_options);
  ASSIGN_OR_RETURN(const int port, http->Start());
  std::cout << "runnerd http listening on " << options.http.host << ":" << port << " (model \""
            << options.http.model_name << "\")" << std::endl;
  return http;
}

absl::StatusOr<RunnerdOptions> OptionsFromFlags() {
  RunnerdOptions options;
  RETURN_IF_ERROR(ModelFolderError(absl::GetFlag(FLAGS_model)));
  ASSIGN_OR_RETURN(options.server, ServerOptionsFromFlags(absl::GetFlag(FLAGS_port)));
  RETURN_IF_ERROR(ModelOptionsFromFlags(&options));
  RETURN_IF_ERROR(EngineOptionsFromFlags(&options));
  RETURN_IF_ERROR(SamplerOptionsFromFlags(&options));
  RETURN_IF_ERROR(HttpOptionsFromFlags(&options));
  return options;
}

// What the loading thread makes, destroyed after the server (Run's order).
struct Loaded {
  std::unique_ptr<ServedModel> model;
  std::unique_ptr<SamplerBackend> backend;
  std::unique_ptr<Engine> engine;
  std::atomic<bool> ready{false};
};

// Loads the model and starts the engine; then the service answers and
// health turns SERVING. On failure: a log line, and `stop` is told.
void LoadAndAttach(const RunnerdOptions& options, RunnerMetrics* metrics, RunnerService* service,
                   openai::HttpServer* http, DaemonServer* server, Loaded* loaded,
                   StopSignals* stop) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<ServedModel>> served =
      ServedModel::Load(options.model_dir, options.model);
  absl::StatusOr<std::unique_ptr<SamplerBackend>> backend =
      served.ok() ? MakeSamplerBackend(options.sampler) : served.status();
  if (!backend.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot load --model=", options.model_dir, ": ", backend.status().message()));
    stop->Notify(StopSignals::kLoadFailed);
    return;
  }
  loaded->model = *std::move(served);
  loaded->backend = *std::move(backend);
  EngineOptions engine_options = options.engine;
  engine_options.observer = metrics;
  loaded->engine =
      std::make_unique<Engine>(loaded->model.get(), loaded->backend.get(), engine_options);
  service->Attach(loaded->model.get(), loaded->engine.get(), loaded->backend->Describe());
  if (http != nullptr) http->Attach(loaded->model.get(), loaded->engine.get());
  loaded->ready.store(true);
  server->SetServing(true);
  const Model& model = loaded->model->model();
  std::cout << "runnerd serving " << options.model_dir << " ("
            << ModelFamilyName(model.config().family) << ", " << model.parameter_count()
            << " parameters, " << ComputeDTypeName(model.dtype()) << " on " << model.device()
            << ", " << model.threads() << " threads, loaded in "
            << absl::FormatDuration(absl::Now() - start) << "), sampler "
            << loaded->backend->Describe() << std::endl;
}

int Run(const RunnerdOptions& options) {
  // SIGTERM and SIGINT, and the loading thread's "the model failed to load".
  StopSignals stop;
  // Each step allocates the batch's logits on the host (32 rows of a 128k
  // vocabulary: 16 MB of float32, twice) and frees them: keep that memory in
  // the heap rather than giving it back and faulting it in again per step.
  TuneMallocForLargeMessages();
  absl::StatusOr<ServerSecurity> security = MakeServerSecurity(options.server);
  if (!security.ok()) {
    Log(LogLevel::kError, security.status().message());
    return 2;
  }
  // Destroyed after the server (declared first): the model, the backend and
  // the engine outlive every call.
  Loaded loaded;
  auto registry = std::make_shared<prometheus::Registry>();
  RunnerMetrics metrics(*registry);
  RunnerService service(options.default_sampler, &security->gate);
  absl::StatusOr<std::unique_ptr<DaemonServer>> server =
      DaemonServer::Start(options.server, *security,
                          {"runnerd", &service, kServiceName, /*serving=*/false,
                           /*whole_message_windows=*/false, registry, [&] {
                             if (loaded.ready.load())
                               metrics.Refresh(loaded.engine.get(), loaded.backend.get());
                           }});
  if (!server.ok()) {
    Log(LogLevel::kError, server.status().message());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<openai::HttpServer>> http = StartHttp(options, security->tokens);
  if (!http.ok()) {
    Log(LogLevel::kError, http.status().message());
    (*server)->Shutdown(absl::Now());
    return 1;
  }
  // Loaded on a thread of its own so that a signal can end the wait.
  std::thread loader([&] {
    LoadAndAttach(options, &metrics, &service, http->get(), server->get(), &loaded, &stop);
  });
  const int signal_number = stop.Wait();
  (*server)->SetServing(false);
  if (*http) (*http)->Drain();
  if (signal_number == StopSignals::kLoadFailed) {
    loader.join();
    (*server)->Shutdown(absl::Now());
    return 1;
  }
  Log(LogLevel::kInfo, absl::StrCat("signal ", signal_number, ", shutting down"));
  if (!loaded.ready.load()) {
    // Still loading: nothing is being served; leave without waiting for it.
    (*server)->Shutdown(absl::Now());
    std::cout.flush();
    _exit(0);
  }
  loader.join();
  loaded.engine->Shutdown(options.server.shutdown_grace);
  if (*http) (*http)->Stop(kFinalWritesTimeout);
  (*server)->Shutdown(absl::Now() + kFinalWritesTimeout);
  return 0;
}

}  // namespace
}  // namespace entroserve

int main(int argc, char** argv) {
  return entroserve::DaemonMain<entroserve::RunnerdOptions>(
      argc, argv, "runnerd",
      "The entroserve model runner: runner.v1.Runner over gRPC (Generate, Tokenize, "
      "Detokenize, ModelInfo), with grpc.health.v1 health checking and server reflection. "
      "Each token is chosen by a sampler in this process or in samplerd.\n"
      "Usage: runnerd --model=models/tiny [--sampler=local|HOST:PORT|dns:///NAME:PORT] "
      "[--port=50052] ...\n"
      "Example: samplerd --port=50051 &\n"
      "         runnerd --model=models/tiny --sampler=localhost:50051 --port=50052",
      entroserve::OptionsFromFlags, entroserve::Run);
}
