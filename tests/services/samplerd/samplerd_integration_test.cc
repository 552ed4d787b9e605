// A real samplerd on loopback: the built binary is started as a subprocess
// with --port 0, and the tests talk to it over real channels.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sampler/core/tensor.h"
#include "sampler/v1/sampler.grpc.pb.h"
#include "services/wire/shared_memory_channel.h"
#include "tests/services/test_util/raw_call.h"
#include "tests/services/test_util/server_process.h"

extern char** environ;

namespace entroserve {
namespace {

namespace v1 = ::sampler::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------
// The server process.

// The binary: $SAMPLERD_BIN if set (to test another build or an installed
// one), else the samplerd built with this test.
std::string SamplerdPath() {
  const char* path = getenv("SAMPLERD_BIN");
  return path != nullptr && *path != '\0' ? path : SAMPLERD_PATH;
}

// samplerd on 127.0.0.1 with a free port; null (and a test failure) when it
// does not start.
std::unique_ptr<ServerProcess> StartSamplerd(std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"--host=127.0.0.1", "--port=0"};
  args.insert(args.end(), flags.begin(), flags.end());
  return ServerProcess::Start(SamplerdPath(), args, "samplerd");
}

// ---------------------------------------------------------------------------
// Requests.

constexpr int kVocab = 96;
constexpr int kHeads = 4;

v1::Tensor Float32Tensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  v1::Tensor t;
  t.set_dtype(v1::DTYPE_FLOAT32);
  for (int64_t d : shape) t.add_shape(d);
  t.set_data(EncodeTensor(DType::kFloat32, values));
  return t;
}

// Fixed synthetic logits of a step: a pure function of (sequence, step,
// previous token), peaked on a few tokens so that repeats happen and
// penalties matter.
std::vector<float> SyntheticLogits(uint64_t sequence, int64_t step, int32_t previous) {
  std::mt19937_64 rng(sequence * 1000003u + static_cast<uint64_t>(step) * 7919u +
                      static_cast<uint64_t>(previous + 1));
  std::uniform_real_distribution<float> noise(-3.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i) logits[i] = noise(rng) + (i < 6 ? 4.0f : 0.0f);
  return logits;
}

// Attention scores [kHeads, keys] with keys growing with the step.
v1::Tensor SyntheticAttention(uint64_t sequence, int64_t step) {
  const int keys = 8 + static_cast<int>(step);
  std::mt19937_64 rng(sequence * 31u + static_cast<uint64_t>(step));
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> scores(kHeads * keys);
  for (float& s : scores) s = normal(rng);
  return Float32Tensor({kHeads, keys}, scores);
}

v1::SamplerSpec NamedSpec(const std::string& name) {
  v1::SamplerSpec spec;
  spec.set_name(name);
  return spec;
}

// A sequence whose state matters: penalties, alpha's window, mirostat's mu,
// entropix' last-inserted guard, DRY's history.
struct SequenceSpec {
  std::string id;
  v1::SamplerSpec spec;
  bool attention = false;
};

std::vector<SequenceSpec> StatefulSequences() {
  std::vector<SequenceSpec> list;
  SequenceSpec chain{"chain-penalties", {}, false};
  v1::ChainConfig* c = chain.spec.mutable_chain();
  c->set_repetition_penalty(1.4f);
  c->set_presence_penalty(0.5f);
  c->set_frequency_penalty(0.25f);
  c->set_penalty_last_n(32);
  c->set_top_k(40);
  c->set_temperature(0.9f);
  list.push_back(chain);
  list.push_back({"alpha", NamedSpec("alpha"), true});
  list.push_back({"mirostat", NamedSpec("mirostat_v2"), false});
  list.push_back({"entropix", NamedSpec("entropix"), true});
  list.push_back({"dry", NamedSpec("dry"), false});
  return list;
}

// Row `step` of sequence number `index`, given the previous result (none at
// step 0, where the prompt is appended instead).
v1::SampleRow SequenceRow(const SequenceSpec& sequence, int index, int64_t step,
                          const v1::SampleResult* previous) {
  v1::SampleRow row;
  row.set_sequence_id(sequence.id);
  row.set_step(step);
  *row.mutable_spec() = sequence.spec;
  row.set_seed(1000 + index);
  int32_t previous_token = -1;
  if (previous != nullptr) {
    *row.mutable_state() = previous->state();
    previous_token = previous->token_id();
  } else {
    for (int32_t t : {1, 2, 3, 1, 2, 3, 4}) row.add_appended_tokens(t);  // the prompt
  }
  *row.mutable_logits() = Float32Tensor({kVocab}, SyntheticLogits(index, step, previous_token));
  if (sequence.attention) *row.mutable_attention() = SyntheticAttention(index, step);
  row.mutable_special_tokens()->set_clarifying_question(7);
  row.mutable_special_tokens()->set_eos(kVocab - 1);
  return row;
}

// A row of `sampler` with its own logits, for batch tests.
v1::SampleRow SimpleRow(const std::string& id, const std::string& sampler, uint64_t seed,
                        bool attention = false) {
  v1::SampleRow row;
  row.set_sequence_id(id);
  row.set_step(0);
  row.mutable_spec()->set_name(sampler);
  row.set_seed(seed);
  *row.mutable_logits() = Float32Tensor({kVocab}, SyntheticLogits(seed, 0, -1));
  if (attention) *row.mutable_attention() = SyntheticAttention(seed, 0);
  return row;
}

const std::vector<std::string>& AllSamplerNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"greedy",   "chain",       "entropix", "alpha", "mirostat_v2",
                                   "dynatemp", "top_n_sigma", "xtc",      "dry"};
  return *kNames;
}

// One row of every sampler (with and without attention), plus stateful rows
// past step 0 carrying a real state.
v1::SampleRequest MixedBatch(v1::Sampler::Stub* stub) {
  v1::SampleRequest request;
  uint64_t seed = 11;
  for (const std::string& name : AllSamplerNames()) {
    *request.add_rows() = SimpleRow(name, name, seed++, /*attention=*/false);
    *request.add_rows() = SimpleRow(name + "+attn", name, seed++, /*attention=*/true);
  }
  // Step 1 of each stateful sequence, with the state a first step returned.
  std::vector<SequenceSpec> sequences = StatefulSequences();
  for (size_t i = 0; i < sequences.size(); ++i) {
    v1::SampleRequest first;
    *first.add_rows() = SequenceRow(sequences[i], static_cast<int>(i), 0, nullptr);
    v1::SampleResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(stub->Sample(&context, first, &response).ok());
    EXPECT_FALSE(response.results(0).has_error()) << response.results(0).error().message();
    *request.add_rows() = SequenceRow(sequences[i], static_cast<int>(i), 1, &response.results(0));
  }
  return request;
}

// ---------------------------------------------------------------------------
// Calls.

// A SampleStream driven in lockstep: each Send writes one batch and reads its
// answer.
class Stream {
 public:
  explicit Stream(v1::Sampler::Stub* stub, std::chrono::system_clock::time_point deadline =
                                               std::chrono::system_clock::time_point::max()) {
    if (deadline != std::chrono::system_clock::time_point::max()) {
      context_.set_deadline(deadline);
    }
    stream_ = stub->SampleStream(&context_);
  }

  absl::StatusOr<v1::SampleResponse> Send(const v1::SampleRequest& request) {
    if (!stream_->Write(request)) return absl::UnavailableError("write failed");
    v1::SampleResponse response;
    if (!stream_->Read(&response)) return absl::UnavailableError("read failed");
    return response;
  }

  grpc::Status Finish() {
    stream_->WritesDone();
    return stream_->Finish();
  }

  grpc::ClientContext& context() { return context_; }
  grpc::ClientReaderWriter<v1::SampleRequest, v1::SampleResponse>* raw() { return stream_.get(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SampleRequest, v1::SampleResponse>> stream_;
};

v1::SampleResponse SampleUnary(v1::Sampler::Stub* stub, const v1::SampleRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::SampleResponse response;
  grpc::Status status = stub->Sample(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  return response;
}

// ---------------------------------------------------------------------------
// Fixture: one server with several workers, a channel and a stub.

class SamplerdTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = StartSamplerd({"--workers=4"});
    ASSERT_NE(server_, nullptr);
    channel_ = server_->NewChannel();
    stub_ = v1::Sampler::NewStub(channel_);
  }

  // The server still answers a good request after whatever a test sent.
  void ExpectStillServing() {
    v1::SampleRequest request;
    *request.add_rows() = SimpleRow("after", "chain", 5);
    v1::SampleResponse response = SampleUnary(stub_.get(), request);
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_FALSE(response.results(0).has_error()) << response.results(0).error().message();
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Sampler::Stub> stub_;
};

void ExpectSameResults(const v1::SampleResponse& a, const v1::SampleResponse& b) {
  ASSERT_EQ(a.results_size(), b.results_size());
  for (int i = 0; i < a.results_size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(a.results(i), b.results(i)))
        << "row " << i << "\n  " << a.results(i).ShortDebugString() << "\n  "
        << b.results(i).ShortDebugString();
  }
}

// ---------------------------------------------------------------------------
// Good rows.

TEST_F(SamplerdTest, ListSamplersReturnsEverySamplerWithFullDefaults) {
  grpc::ClientContext context;
  v1::ListSamplersResponse response;
  ASSERT_TRUE(stub_->ListSamplers(&context, v1::ListSamplersRequest(), &response).ok());
  std::set<std::string> names;
  for (const v1::SamplerInfo& info : response.samplers()) {
    names.insert(info.name());
    EXPECT_FALSE(info.description().empty()) << info.name();
    EXPECT_EQ(info.defaults().name(), info.name());
    EXPECT_NE(info.defaults().config_case(), v1::SamplerSpec::CONFIG_NOT_SET) << info.name();
  }
  for (const std::string& name : AllSamplerNames()) EXPECT_EQ(names.count(name), 1u) << name;
  for (const v1::SamplerInfo& info : response.samplers()) {
    if (info.name() == "entropix") {
      EXPECT_TRUE(info.defaults().entropix().has_temperature());
      EXPECT_FLOAT_EQ(info.defaults().entropix().temperature(), 0.666f);
      EXPECT_TRUE(info.defaults().entropix().has_attn_varentropy_is_spread());
      EXPECT_TRUE(info.uses_attention());
    }
    if (info.name() == "chain") EXPECT_EQ(info.defaults().chain().penalty_last_n(), 64);
  }
}

TEST_F(SamplerdTest, SampleStreamAnswersEveryBatchInOrder) {
  Stream stream(stub_.get());
  for (int batch = 0; batch < 5; ++batch) {
    v1::SampleRequest request;
    for (int i = 0; i < 3; ++i) {
      *request.add_rows() = SimpleRow(absl::StrCat("b", batch, "r", i),
                                      AllSamplerNames()[(batch + i) % 9], batch * 10 + i, true);
    }
    absl::StatusOr<v1::SampleResponse> response = stream.Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->results_size(), 3);
    for (int i = 0; i < 3; ++i) {
      const v1::SampleResult& r = response->results(i);
      EXPECT_FALSE(r.has_error()) << r.error().message();
      EXPECT_EQ(r.sequence_id(), absl::StrCat("b", batch, "r", i));
      EXPECT_GE(r.token_id(), 0);
      EXPECT_LT(r.token_id(), kVocab);
      EXPECT_NE(r.mode(), v1::MODE_UNSPECIFIED);
      EXPECT_LE(r.logprob(), 0.0f);
      EXPECT_EQ(r.seed(), static_cast<uint64_t>(batch * 10 + i));
      EXPECT_EQ(r.state().next_step(), 1);
      EXPECT_EQ(r.state().version(), 1u);
      EXPECT_EQ(r.state().sampler(), AllSamplerNames()[(batch + i) % 9]);
      EXPECT_GT(r.signals().entropy(), 0.0f);
    }
  }
  EXPECT_TRUE(stream.Finish().ok());
}

TEST_F(SamplerdTest, UnarySampleEqualsTheStream) {
  v1::SampleRequest request = MixedBatch(stub_.get());
  v1::SampleResponse unary = SampleUnary(stub_.get(), request);
  Stream stream(stub_.get());
  absl::StatusOr<v1::SampleResponse> streamed = stream.Send(request);
  ASSERT_TRUE(streamed.ok());
  EXPECT_TRUE(stream.Finish().ok());
  ExpectSameResults(unary, *streamed);
  for (const v1::SampleResult& r : unary.results()) {
    EXPECT_FALSE(r.has_error()) << r.sequence_id() << ": " << r.error().message();
  }
}

TEST_F(SamplerdTest, EmptyBatchGetsAnEmptyAnswer) {
  EXPECT_EQ(SampleUnary(stub_.get(), v1::SampleRequest()).results_size(), 0);
  Stream stream(stub_.get());
  absl::StatusOr<v1::SampleResponse> response = stream.Send(v1::SampleRequest());
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->results_size(), 0);
  EXPECT_TRUE(stream.Finish().ok());
}

TEST_F(SamplerdTest, UnseededRowsGetASeedThatReplaysTheSameToken) {
  v1::SampleRequest request;
  *request.add_rows() = SimpleRow("unseeded", "chain", 0);
  request.mutable_rows(0)->clear_seed();
  v1::SampleResponse first = SampleUnary(stub_.get(), request);
  ASSERT_FALSE(first.results(0).has_error());
  request.mutable_rows(0)->set_seed(first.results(0).seed());
  v1::SampleResponse replay = SampleUnary(stub_.get(), request);
  ExpectSameResults(first, replay);
}

TEST_F(SamplerdTest, PipelinedBatchesAreAnsweredInOrder) {
  // Many streams at once, each writing all its batches before reading.
  constexpr int kStreams = 6;
  constexpr int kBatches = 20;
  std::vector<std::thread> clients;
  std::vector<std::string> failures(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    clients.emplace_back([&, s] {
      Stream stream(stub_.get());
      std::thread writer([&] {
        for (int b = 0; b < kBatches; ++b) {
          v1::SampleRequest request;
          for (int r = 0; r < 1 + b % 4; ++r) {
            *request.add_rows() = SimpleRow(absl::StrCat(s, "/", b, "/", r),
                                            AllSamplerNames()[(s + b + r) % 9], s * 1000 + b);
          }
          if (!stream.raw()->Write(request)) break;
        }
        stream.raw()->WritesDone();
      });
      for (int b = 0; b < kBatches; ++b) {
        v1::SampleResponse response;
        if (!stream.raw()->Read(&response)) {
          failures[s] = absl::StrCat("read ", b, " failed");
          break;
        }
        if (response.results_size() != 1 + b % 4) failures[s] = "wrong size";
        for (int r = 0; r < response.results_size(); ++r) {
          if (response.results(r).sequence_id() != absl::StrCat(s, "/", b, "/", r)) {
            failures[s] = absl::StrCat("out of order at ", b);
          }
          if (response.results(r).has_error()) failures[s] = response.results(r).error().message();
        }
      }
      writer.join();
      grpc::Status status = stream.raw()->Finish();
      if (!status.ok() && failures[s].empty()) failures[s] = status.error_message();
    });
  }
  for (std::thread& t : clients) t.join();
  for (int s = 0; s < kStreams; ++s) EXPECT_EQ(failures[s], "") << "stream " << s;
}

// ---------------------------------------------------------------------------
// Health and reflection.

TEST_F(SamplerdTest, HealthCheckIsServing) {
  // HealthCheckResponse{status: SERVING} is field 1 = 1: bytes 08 01.
  absl::StatusOr<std::string> overall = GenericUnary(channel_, "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, std::string("\x08\x01", 2));
  absl::StatusOr<std::string> service = GenericUnary(channel_, "/grpc.health.v1.Health/Check",
                                                     ShortBytesField(1, "sampler.v1.Sampler"));
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, std::string("\x08\x01", 2));
  absl::StatusOr<std::string> unknown =
      GenericUnary(channel_, "/grpc.health.v1.Health/Check", ShortBytesField(1, "no.such.Service"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SamplerdTest, ReflectionListsTheSamplerService) {
  // ServerReflectionRequest{list_services: ""} (field 7), sent as the one
  // message of the bidi ServerReflectionInfo stream.
  absl::StatusOr<std::string> bytes =
      GenericUnary(channel_, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                   ShortBytesField(7, ""));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  // ServerReflectionResponse.list_services_response (6) .service (1) .name (1)
  google::protobuf::UnknownFieldSet response;
  ASSERT_TRUE(response.ParseFromString(*bytes));
  std::set<std::string> services;
  for (int i = 0; i < response.field_count(); ++i) {
    if (response.field(i).number() != 6) continue;
    google::protobuf::UnknownFieldSet list;
    ASSERT_TRUE(list.ParseFromString(response.field(i).length_delimited()));
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      ASSERT_TRUE(service.ParseFromString(list.field(j).length_delimited()));
      for (int k = 0; k < service.field_count(); ++k) {
        if (service.field(k).number() == 1) services.insert(service.field(k).length_delimited());
      }
    }
  }
  EXPECT_EQ(services.count("sampler.v1.Sampler"), 1u);
  EXPECT_EQ(services.count("grpc.health.v1.Health"), 1u);
}

// ---------------------------------------------------------------------------
// Determinism: batch, order and thread count do not change a row's result.

TEST_F(SamplerdTest, ABatchEqualsItsRowsOneByOneAndAnyThreadCount) {
  v1::SampleRequest batch = MixedBatch(stub_.get());
  v1::SampleResponse together = SampleUnary(stub_.get(), batch);
  ASSERT_EQ(together.results_size(), batch.rows_size());
  for (const v1::SampleResult& r : together.results()) {
    EXPECT_FALSE(r.has_error()) << r.sequence_id() << ": " << r.error().message();
  }

  // One by one.
  v1::SampleResponse alone;
  for (const v1::SampleRow& row : batch.rows()) {
    v1::SampleRequest one;
    *one.add_rows() = row;
    v1::SampleResponse response = SampleUnary(stub_.get(), one);
    ASSERT_EQ(response.results_size(), 1);
    *alone.add_results() = response.results(0);
  }
  ExpectSameResults(together, alone);

  // Reversed order: the same results, reversed.
  v1::SampleRequest reversed;
  for (int i = batch.rows_size() - 1; i >= 0; --i) *reversed.add_rows() = batch.rows(i);
  v1::SampleResponse backwards = SampleUnary(stub_.get(), reversed);
  v1::SampleResponse unreversed;
  for (int i = backwards.results_size() - 1; i >= 0; --i) {
    *unreversed.add_results() = backwards.results(i);
  }
  ExpectSameResults(together, unreversed);

  // A server with one worker.
  std::unique_ptr<ServerProcess> single = StartSamplerd({"--workers=1"});
  ASSERT_NE(single, nullptr);
  auto single_stub = v1::Sampler::NewStub(single->NewChannel());
  ExpectSameResults(together, SampleUnary(single_stub.get(), batch));
  // And the same batch four times over in one request.
  v1::SampleRequest quadruple;
  for (int k = 0; k < 4; ++k) {
    for (const v1::SampleRow& row : batch.rows()) *quadruple.add_rows() = row;
  }
  v1::SampleResponse four = SampleUnary(single_stub.get(), quadruple);
  ASSERT_EQ(four.results_size(), 4 * batch.rows_size());
  for (int i = 0; i < four.results_size(); ++i) {
    EXPECT_TRUE(
        MessageDifferencer::Equals(four.results(i), together.results(i % batch.rows_size())))
        << i;
  }
}

// ---------------------------------------------------------------------------
// State: a sequence continues identically on a fresh server from the state
// it was given.

// Runs steps [from, to) of every sequence as one batch per step through
// `stream`, continuing from `last` (the results of step from-1, or empty at
// step 0). Returns the results per step.
std::vector<v1::SampleResponse> RunSequences(Stream& stream,
                                             const std::vector<SequenceSpec>& sequences, int from,
                                             int to, v1::SampleResponse last) {
  std::vector<v1::SampleResponse> steps;
  for (int step = from; step < to; ++step) {
    v1::SampleRequest request;
    for (size_t i = 0; i < sequences.size(); ++i) {
      *request.add_rows() = SequenceRow(sequences[i], static_cast<int>(i), step,
                                        step == 0 ? nullptr : &last.results(i));
    }
    absl::StatusOr<v1::SampleResponse> response = stream.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) break;
    for (const v1::SampleResult& r : response->results()) {
      EXPECT_FALSE(r.has_error()) << r.sequence_id() << " step " << step << ": "
                                  << r.error().message();
    }
    last = *response;
    steps.push_back(*response);
  }
  return steps;
}

TEST(SamplerdStateTest, ASequenceSplitAcrossTwoServersEqualsOneUnbrokenRun) {
  constexpr int kSteps = 50;
  constexpr int kSplit = 25;
  const std::vector<SequenceSpec> sequences = StatefulSequences();

  std::vector<v1::SampleResponse> unbroken;
  {
    std::unique_ptr<ServerProcess> server = StartSamplerd();
    ASSERT_NE(server, nullptr);
    auto stub = v1::Sampler::NewStub(server->NewChannel());
    Stream stream(stub.get());
    unbroken = RunSequences(stream, sequences, 0, kSteps, {});
    EXPECT_TRUE(stream.Finish().ok());
  }
  ASSERT_EQ(unbroken.size(), static_cast<size_t>(kSteps));

  std::vector<v1::SampleResponse> split;
  std::unique_ptr<ServerProcess> first = StartSamplerd({"--workers=1"});
  ASSERT_NE(first, nullptr);
  {
    auto stub = v1::Sampler::NewStub(first->NewChannel());
    Stream stream(stub.get());
    split = RunSequences(stream, sequences, 0, kSplit, {});
    EXPECT_TRUE(stream.Finish().ok());
  }
  // The first server is killed (SIGKILL: nothing it held survives) before
  // the second starts.
  first.reset();
  ASSERT_EQ(split.size(), static_cast<size_t>(kSplit));
  {
    std::unique_ptr<ServerProcess> second = StartSamplerd({"--workers=3"});
    ASSERT_NE(second, nullptr);
    auto stub = v1::Sampler::NewStub(second->NewChannel());
    Stream stream(stub.get());
    std::vector<v1::SampleResponse> rest =
        RunSequences(stream, sequences, kSplit, kSteps, split.back());
    EXPECT_TRUE(stream.Finish().ok());
    split.insert(split.end(), rest.begin(), rest.end());
  }
  ASSERT_EQ(split.size(), static_cast<size_t>(kSteps));

  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    ExpectSameResults(unbroken[step], split[step]);
  }

  // The state is doing something: the sequences are not constant, the
  // stateful samplers carry what they promise, and the history is bounded.
  for (size_t i = 0; i < sequences.size(); ++i) {
    std::set<int32_t> tokens;
    for (const v1::SampleResponse& r : unbroken) tokens.insert(r.results(i).token_id());
    EXPECT_GT(tokens.size(), 1u) << sequences[i].id;
    const v1::SamplerState& last = unbroken.back().results(i).state();
    EXPECT_EQ(last.next_step(), kSteps);
    EXPECT_EQ(last.recent_tokens_size(), kSteps + 7) << sequences[i].id;  // + the prompt
  }
  EXPECT_TRUE(unbroken.back().results(2).state().has_mirostat_mu());     // mirostat
  EXPECT_GT(unbroken.back().results(1).state().alpha_window_size(), 0);  // alpha
}

TEST(SamplerdStateTest, ChangingTheStateChangesThePenalisedSequence) {
  // Control for the test above: with the history dropped, the repetition
  // penalties see a different window and the chain's tokens differ somewhere.
  std::unique_ptr<ServerProcess> server = StartSamplerd();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  const std::vector<SequenceSpec> sequences = {StatefulSequences()[0]};
  Stream stream(stub.get());
  std::vector<v1::SampleResponse> run = RunSequences(stream, sequences, 0, 30, {});
  ASSERT_EQ(run.size(), 30u);
  int differences = 0;
  for (int step = 1; step < 30; ++step) {
    v1::SampleResponse previous = run[step - 1];
    previous.mutable_results(0)->mutable_state()->clear_recent_tokens();
    v1::SampleRequest request;
    *request.add_rows() = SequenceRow(sequences[0], 0, step, &previous.results(0));
    v1::SampleResponse forgetful = SampleUnary(stub.get(), request);
    ASSERT_FALSE(forgetful.results(0).has_error()) << forgetful.results(0).error().message();
    if (forgetful.results(0).token_id() != run[step].results(0).token_id() ||
        forgetful.results(0).logprob() != run[step].results(0).logprob()) {
      ++differences;
    }
  }
  EXPECT_TRUE(stream.Finish().ok());
  EXPECT_GT(differences, 0);
}

// ---------------------------------------------------------------------------
// Bad input: an in-band error for that row only, the right code, a message
// naming the field; the stream and the server go on.

struct BadRowCase {
  std::string name;
  v1::SampleRow row;
  grpc::StatusCode code;
  std::string message;  // a fragment of the expected message
};

std::vector<BadRowCase> BadRowCases() {
  std::vector<BadRowCase> cases;
  auto add = [&cases](std::string name, v1::SampleRow row, grpc::StatusCode code,
                      std::string message) {
    cases.push_back({std::move(name), std::move(row), code, std::move(message)});
  };
  const v1::SampleRow good = SimpleRow("bad", "chain", 3);

  v1::SampleRow row = good;
  row.mutable_logits()->mutable_data()->resize(kVocab * 4 - 2);
  add("data size", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].logits.data has 382 bytes, but shape [96] of FLOAT32 needs 384");

  std::vector<float> logits = SyntheticLogits(3, 0, -1);
  logits[5] = std::numeric_limits<float>::quiet_NaN();
  row = good;
  *row.mutable_logits() = Float32Tensor({kVocab}, logits);
  add("NaN", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].logits[5] is NaN");

  logits[5] = kInf;
  *row.mutable_logits() = Float32Tensor({kVocab}, logits);
  add("+Inf", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].logits[5] is +inf");

  row = good;
  *row.mutable_logits() = Float32Tensor({0}, {});
  add("empty logits", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].logits is empty");

  row = good;
  row.clear_logits();
  add("no logits", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].logits is required");

  row = good;
  row.mutable_logits()->set_dtype(v1::DTYPE_UNSPECIFIED);
  add("no dtype", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].logits.dtype is DTYPE_UNSPECIFIED");

  row = good;
  *row.mutable_attention() = Float32Tensor({2, 2, 2}, std::vector<float>(8, 0.5f));
  add("attention rank", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].attention must have shape [heads, keys], got rank 3");

  row = good;
  row.mutable_spec()->set_name("bogus");
  add("unknown sampler", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec.name: unknown sampler \"bogus\"");

  row = good;
  row.mutable_spec()->clear_name();
  row.mutable_spec()->mutable_chain()->set_top_p(1.5f);
  add("top_p out of range", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec.chain.top_p must be in (0, 1], got 1.5");

  row = good;
  row.mutable_spec()->clear_name();
  row.mutable_spec()->mutable_mirostat_v2()->set_eta(-0.5f);
  add("eta out of range", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec.mirostat_v2.eta must be > 0, got -0.5");

  row = good;
  row.mutable_spec()->clear_name();
  row.mutable_spec()->mutable_entropix()->set_temperature(-1.0f);
  add("entropix temperature", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec.entropix.temperature");

  row = good;
  row.mutable_spec()->set_name("alpha");
  row.mutable_spec()->mutable_entropix();
  add("name and config disagree", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec.name is \"alpha\" but spec.config is entropix");

  row = good;
  row.clear_spec();
  add("no spec", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].spec: sampler name or config is required");

  row = good;
  row.mutable_spec()->set_name("mirostat_v2");
  row.set_step(5);
  add("missing state", row, grpc::StatusCode::FAILED_PRECONDITION,
      "rows[1].state is required at step 5 for sampler mirostat_v2: send back the state "
      "returned with step 4");

  row = good;
  row.set_step(7);
  row.mutable_state()->set_version(1);
  row.mutable_state()->set_sampler("chain");
  row.mutable_state()->set_next_step(4);
  add("state for another step", row, grpc::StatusCode::FAILED_PRECONDITION,
      "rows[1].state is for step 4 but the row is step 7");

  row = good;
  row.mutable_state()->set_version(9);
  add("state version", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].state.version is 9");

  row = good;
  row.add_appended_tokens(kVocab);
  add("appended token", row, grpc::StatusCode::INVALID_ARGUMENT,
      "rows[1].appended_tokens[0] is 96, outside the vocabulary [0, 96)");

  row = good;
  row.mutable_special_tokens()->set_eos(-1);
  add("special token", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].special_tokens.eos is -1");

  row = good;
  row.set_step(-2);
  add("negative step", row, grpc::StatusCode::INVALID_ARGUMENT, "rows[1].step is -2");
  return cases;
}

v1::SampleRequest GoodBadGood(const v1::SampleRow& bad) {
  v1::SampleRequest request;
  *request.add_rows() = SimpleRow("good-0", "entropix", 21, true);
  *request.add_rows() = bad;
  *request.add_rows() = SimpleRow("good-2", "alpha", 22, true);
  return request;
}

void ExpectBadRow(const BadRowCase& c, const v1::SampleResponse& response,
                  const v1::SampleResponse& good) {
  SCOPED_TRACE(c.name);
  ASSERT_EQ(response.results_size(), 3);
  const v1::SampleResult& bad = response.results(1);
  ASSERT_TRUE(bad.has_error());
  EXPECT_EQ(bad.error().code(), static_cast<int>(c.code)) << bad.error().message();
  EXPECT_THAT(bad.error().message(), HasSubstr(c.message));
  EXPECT_EQ(bad.sequence_id(), "bad");
  EXPECT_FALSE(bad.has_state());
  // The other rows are as if the bad one were not there.
  EXPECT_TRUE(MessageDifferencer::Equals(response.results(0), good.results(0)));
  EXPECT_TRUE(MessageDifferencer::Equals(response.results(2), good.results(1)));
}

TEST_F(SamplerdTest, BadRowsGetInBandErrorsInAStreamThatGoesOn) {
  v1::SampleRequest good;
  *good.add_rows() = SimpleRow("good-0", "entropix", 21, true);
  *good.add_rows() = SimpleRow("good-2", "alpha", 22, true);
  v1::SampleResponse good_results = SampleUnary(stub_.get(), good);

  Stream stream(stub_.get());
  for (const BadRowCase& c : BadRowCases()) {
    absl::StatusOr<v1::SampleResponse> response = stream.Send(GoodBadGood(c.row));
    ASSERT_TRUE(response.ok()) << c.name << ": " << response.status();
    ExpectBadRow(c, *response, good_results);
  }
  // The same stream still samples.
  absl::StatusOr<v1::SampleResponse> after = stream.Send(good);
  ASSERT_TRUE(after.ok());
  ExpectSameResults(*after, good_results);
  EXPECT_TRUE(stream.Finish().ok());
  ExpectStillServing();
}

TEST_F(SamplerdTest, BadRowsGetInBandErrorsThroughUnarySample) {
  v1::SampleRequest good;
  *good.add_rows() = SimpleRow("good-0", "entropix", 21, true);
  *good.add_rows() = SimpleRow("good-2", "alpha", 22, true);
  v1::SampleResponse good_results = SampleUnary(stub_.get(), good);
  for (const BadRowCase& c : BadRowCases()) {
    ExpectBadRow(c, SampleUnary(stub_.get(), GoodBadGood(c.row)), good_results);
  }
  ExpectStillServing();
}

// ---------------------------------------------------------------------------
// Bytes that do not parse.

TEST_F(SamplerdTest, BytesThatDoNotParseGetInvalidArgumentOnEveryUnaryMethod) {
  struct Case {
    std::string method;
    std::string type;
  };
  for (const Case& c :
       {Case{"/sampler.v1.Sampler/Sample", "sampler.v1.SampleRequest"},
        Case{"/sampler.v1.Sampler/ListSamplers", "sampler.v1.ListSamplersRequest"}}) {
    RawCallResult result = CallRaw(channel_, c.method, {std::string(1, '\xff')});
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.method;
    EXPECT_EQ(result.status.error_message(),
              absl::StrCat("the request could not be parsed as a ", c.type))
        << c.method;
    EXPECT_TRUE(result.answers.empty()) << c.method;
  }
  ExpectStillServing();
}

TEST_F(SamplerdTest, ASequenceIdThatIsNotUtf8IsNamedByUnarySample) {
  v1::SampleRequest request;
  *request.add_rows() = SimpleRow("good", "chain", 5);
  *request.add_rows() = SimpleRow("seq-XY", "chain", 6);
  RawCallResult result = CallRaw(channel_, "/sampler.v1.Sampler/Sample",
                                 {BreakUtf8(request.SerializeAsString(), "seq-XY")});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(),
              StartsWith("the request could not be parsed as a sampler.v1.SampleRequest: "
                         "rows[1].sequence_id is not valid UTF-8"));
  ExpectStillServing();
}

TEST_F(SamplerdTest, AStreamMessageThatDoesNotParseEndsTheStreamNamingIt) {
  v1::SampleRequest good;
  *good.add_rows() = SimpleRow("good", "chain", 5);
  v1::SampleRequest bad;
  *bad.add_rows() = SimpleRow("seq-XY", "chain", 6);
  const std::string good_bytes = good.SerializeAsString();
  RawCallResult result =
      CallRaw(channel_, "/sampler.v1.Sampler/SampleStream",
              {good_bytes, good_bytes, BreakUtf8(bad.SerializeAsString(), "seq-XY"), good_bytes});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(),
              StartsWith("message 2 of the stream could not be parsed as a "
                         "sampler.v1.SampleRequest: rows[0].sequence_id is not valid UTF-8"));
  // The messages before it are answered, in order; none after it.
  const v1::SampleResponse expected = SampleUnary(stub_.get(), good);
  ASSERT_EQ(result.answers.size(), 2u);
  for (const std::string& answer : result.answers) {
    v1::SampleResponse response;
    ASSERT_TRUE(response.ParseFromString(answer));
    ExpectSameResults(response, expected);
  }

  result = CallRaw(channel_, "/sampler.v1.Sampler/SampleStream", {std::string(1, '\xff')});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(result.status.error_message(),
            "message 0 of the stream could not be parsed as a sampler.v1.SampleRequest");
  EXPECT_TRUE(result.answers.empty());
  ExpectStillServing();
}

// ---------------------------------------------------------------------------
// The shared-memory channel (SampleRequest.channel).

v1::SampleRequest ChannelRequest(const std::string& region) {
  v1::SampleRequest request;
  request.mutable_channel()->set_region(region);
  return request;
}

std::unique_ptr<ChannelClient> NewChannel() {
  absl::StatusOr<std::unique_ptr<ChannelClient>> channel = ChannelClient::Create(0);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *std::move(channel) : nullptr;
}

// `request` through `channel`, its answer parsed (an error on a timeout).
absl::StatusOr<v1::SampleResponse> Exchange(ChannelClient& channel, const std::string& bytes) {
  std::memcpy(channel.request_area(), bytes.data(), bytes.size());
  channel.Post(static_cast<uint32_t>(bytes.size()));
  if (!channel.Wait(absl::Seconds(60), absl::Microseconds(100))) {
    return absl::DeadlineExceededError("no answer through the channel");
  }
  absl::StatusOr<absl::string_view> answer = channel.Answer();
  if (!answer.ok()) return answer.status();
  v1::SampleResponse response;
  if (!response.ParseFromArray(answer->data(), static_cast<int>(answer->size()))) {
    return absl::InternalError("the answer does not parse");
  }
  return response;
}

TEST_F(SamplerdTest, AChannelAnswersEachBatchAsTheMessagesWould) {
  std::unique_ptr<ChannelClient> channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  Stream stream(stub_.get());
  absl::StatusOr<v1::SampleResponse> attached = stream.Send(ChannelRequest(channel->name()));
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_TRUE(attached->channel().attached()) << attached->channel().error();
  EXPECT_EQ(attached->results_size(), 0);

  // Every sampler, stateful steps included, and a one-row batch (sampled on
  // the channel's own thread).
  v1::SampleRequest one;
  *one.add_rows() = SimpleRow("one", "entropix", 3, /*attention=*/true);
  for (const v1::SampleRequest& request : {MixedBatch(stub_.get()), one, one}) {
    absl::StatusOr<v1::SampleResponse> got = Exchange(*channel, request.SerializeAsString());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_FALSE(got->has_channel());
    ExpectSameResults(*got, SampleUnary(stub_.get(), request));
  }
  // The stream's own messages are still answered, and a half-close ends
  // the stream OK with the channel's thread stopped.
  absl::StatusOr<v1::SampleResponse> message = stream.Send(one);
  ASSERT_TRUE(message.ok()) << message.status();
  ExpectSameResults(*message, SampleUnary(stub_.get(), one));
  const grpc::Status finished = stream.Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  ExpectStillServing();
}

TEST(SamplerdChannelSpinTest, ASpinningChannelAnswersAsTheMessagesWould) {
  // Its thread spins 50 ms for each next request: steps that come within
  // the spin and steps that come after it (it then sleeps) alike.
  std::unique_ptr<ServerProcess> server =
      StartSamplerd({"--workers=2", "--channel_spinners=1", "--channel_spin_us=50000"});
  ASSERT_NE(server, nullptr);
  std::unique_ptr<v1::Sampler::Stub> stub = v1::Sampler::NewStub(server->NewChannel());
  std::unique_ptr<ChannelClient> channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  Stream stream(stub.get());
  absl::StatusOr<v1::SampleResponse> attached = stream.Send(ChannelRequest(channel->name()));
  ASSERT_TRUE(attached.ok()) << attached.status();
  ASSERT_TRUE(attached->channel().attached()) << attached->channel().error();
  v1::SampleRequest one;
  *one.add_rows() = SimpleRow("one", "entropix", 3, /*attention=*/true);
  for (absl::Duration pause : {absl::ZeroDuration(), absl::Milliseconds(5), absl::Milliseconds(120),
                               absl::ZeroDuration()}) {
    absl::SleepFor(pause);
    absl::StatusOr<v1::SampleResponse> got = Exchange(*channel, one.SerializeAsString());
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSameResults(*got, SampleUnary(stub.get(), one));
  }
  const grpc::Status finished = stream.Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
}

TEST_F(SamplerdTest, AChannelThatCannotBeServedIsRefusedInBandAndTheStreamGoesOn) {
  std::unique_ptr<ChannelClient> channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  Stream stream(stub_.get());
  v1::SampleRequest with_rows = ChannelRequest(channel->name());
  *with_rows.add_rows() = SimpleRow("row", "chain", 5);
  struct Case {
    v1::SampleRequest request;
    std::string error;  // a prefix
  };
  const std::vector<Case> cases = {
      {with_rows, "a request for a channel carries no rows"},
      {ChannelRequest("/entroserve-missing"),
       "channel.region: cannot open /entroserve-missing on samplerd's host: No such file"},
      {ChannelRequest("/dev/shm/x"), "channel.region must be \"/entroserve-\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::SampleResponse> answer = stream.Send(c.request);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_FALSE(answer->channel().attached());
    EXPECT_THAT(answer->channel().error(), StartsWith(c.error));
    EXPECT_EQ(answer->results_size(), 0);
  }
  // One channel a stream.
  absl::StatusOr<v1::SampleResponse> first = stream.Send(ChannelRequest(channel->name()));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->channel().attached());
  std::unique_ptr<ChannelClient> second_channel = NewChannel();
  ASSERT_NE(second_channel, nullptr);
  absl::StatusOr<v1::SampleResponse> second = stream.Send(ChannelRequest(second_channel->name()));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->channel().attached());
  EXPECT_EQ(second->channel().error(), "the stream has a channel already");
  v1::SampleRequest batch;
  *batch.add_rows() = SimpleRow("after", "chain", 9);
  absl::StatusOr<v1::SampleResponse> after = stream.Send(batch);
  ASSERT_TRUE(after.ok());
  ExpectSameResults(*after, SampleUnary(stub_.get(), batch));
  EXPECT_TRUE(stream.Finish().ok());

  // A samplerd that reads no shared memory serves no channel either.
  std::unique_ptr<ServerProcess> no_shm = StartSamplerd({"--shared_memory=false"});
  ASSERT_NE(no_shm, nullptr);
  auto no_shm_stub = v1::Sampler::NewStub(no_shm->NewChannel());
  Stream refused(no_shm_stub.get());
  absl::StatusOr<v1::SampleResponse> answer = refused.Send(ChannelRequest(channel->name()));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(answer->channel().attached());
  EXPECT_EQ(answer->channel().error(),
            "samplerd reads no shared memory for this client (--shared_memory=false, or the "
            "client is not on samplerd's host)");
  EXPECT_TRUE(refused.Finish().ok());
}

TEST_F(SamplerdTest, BadBytesInAChannelEndTheStreamNamingTheRequest) {
  struct Case {
    std::string bytes;
    std::string message;  // whole, or a prefix when it ends with "..."
  };
  v1::SampleRequest good;
  *good.add_rows() = SimpleRow("good", "chain", 5);
  v1::SampleRequest bad;
  *bad.add_rows() = SimpleRow("seq-XY", "chain", 6);
  const std::string not_utf8 = BreakUtf8(bad.SerializeAsString(), "seq-XY");
  const std::vector<Case> cases = {
      {std::string(1, '\xff'),
       "channel request 1 (1 bytes) could not be parsed as a sampler.v1.SampleRequest"},
      {not_utf8, absl::StrCat("channel request 1 (", not_utf8.size(),
                              " bytes) could not be parsed as a sampler.v1.SampleRequest: "
                              "rows[0].sequence_id is not valid UTF-8...")},
      {ChannelRequest("/entroserve-x").SerializeAsString(),
       absl::StrCat("channel request 1 (", ChannelRequest("/entroserve-x").ByteSizeLong(),
                    " bytes) asks for a channel inside the channel")},
  };
  for (const Case& c : cases) {
    std::unique_ptr<ChannelClient> channel = NewChannel();
    ASSERT_NE(channel, nullptr);
    Stream stream(stub_.get());
    ASSERT_TRUE(stream.Send(ChannelRequest(channel->name()))->channel().attached());
    // Request 0 is good and answered; request 1 ends the stream.
    absl::StatusOr<v1::SampleResponse> answered = Exchange(*channel, good.SerializeAsString());
    ASSERT_TRUE(answered.ok()) << answered.status();
    std::memcpy(channel->request_area(), c.bytes.data(), c.bytes.size());
    channel->Post(static_cast<uint32_t>(c.bytes.size()));
    v1::SampleResponse none;
    EXPECT_FALSE(stream.raw()->Read(&none));
    const grpc::Status status = stream.raw()->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    if (absl::EndsWith(c.message, "...")) {
      EXPECT_THAT(status.error_message(), StartsWith(c.message.substr(0, c.message.size() - 3)));
    } else {
      EXPECT_EQ(status.error_message(), c.message);
    }
  }
  ExpectStillServing();
}

// The unlabelled sample `name` on samplerd's /metrics; -1 when absent.
double MetricValue(int metrics_port, absl::string_view name) {
  absl::StatusOr<std::string> page = HttpGet(metrics_port, "/metrics");
  if (!page.ok()) return -1;
  const std::string prefix = absl::StrCat(name, " ");
  for (absl::string_view line : absl::StrSplit(*page, '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtod(line, &value)) return value;
  }
  return -1;
}

double ChannelsGauge(int metrics_port) {
  return MetricValue(metrics_port, "entroserve_sampler_shm_channels");
}

TEST(SamplerdBatchMetricsTest, EveryBatchWithRowsIsTimedOnceWhicheverWayItCame) {
  const int metrics_port = FreeTcpPort();
  std::unique_ptr<ServerProcess> server =
      StartSamplerd({absl::StrCat("--metrics_port=", metrics_port), "--workers=2"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  const std::string count = "entroserve_sampler_batch_seconds_count";
  EXPECT_EQ(MetricValue(metrics_port, count), 0);
  v1::SampleRequest three;
  for (int i = 0; i < 3; ++i) *three.add_rows() = SimpleRow(absl::StrCat("r", i), "chain", 5);
  SampleUnary(stub.get(), three);
  EXPECT_EQ(MetricValue(metrics_port, count), 1);
  std::unique_ptr<ChannelClient> channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  Stream stream(stub.get());
  ASSERT_TRUE(stream.Send(three).ok());
  EXPECT_EQ(MetricValue(metrics_port, count), 2);
  // The request for a channel has no rows: no batch.
  ASSERT_TRUE(stream.Send(ChannelRequest(channel->name()))->channel().attached());
  EXPECT_EQ(MetricValue(metrics_port, count), 2);
  ASSERT_TRUE(Exchange(*channel, three.SerializeAsString()).ok());
  EXPECT_EQ(MetricValue(metrics_port, count), 3);
  EXPECT_GT(MetricValue(metrics_port, "entroserve_sampler_batch_seconds_sum"), 0);
  EXPECT_TRUE(stream.Finish().ok());
}

TEST(SamplerdChannelMetricsTest, TheGaugeCountsTheChannelsServedNow) {
  const int metrics_port = FreeTcpPort();
  std::unique_ptr<ServerProcess> server =
      StartSamplerd({absl::StrCat("--metrics_port=", metrics_port)});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  EXPECT_EQ(ChannelsGauge(metrics_port), 0);
  std::unique_ptr<ChannelClient> a = NewChannel(), b = NewChannel();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Stream first(stub.get()), second(stub.get()), refused(stub.get());
  ASSERT_TRUE(first.Send(ChannelRequest(a->name()))->channel().attached());
  EXPECT_EQ(ChannelsGauge(metrics_port), 1);
  ASSERT_TRUE(second.Send(ChannelRequest(b->name()))->channel().attached());
  EXPECT_EQ(ChannelsGauge(metrics_port), 2);
  // A refused request counts nothing.
  ASSERT_FALSE(refused.Send(ChannelRequest("/entroserve-missing"))->channel().attached());
  EXPECT_EQ(ChannelsGauge(metrics_port), 2);
  // A stream that ended has stopped its channel before the client sees the end.
  EXPECT_TRUE(first.Finish().ok());
  EXPECT_EQ(ChannelsGauge(metrics_port), 1);
  EXPECT_TRUE(second.Finish().ok());
  EXPECT_TRUE(refused.Finish().ok());
  EXPECT_EQ(ChannelsGauge(metrics_port), 0);
}

TEST(SamplerdLimitsTest, OversizeMessageEndsTheCallWithResourceExhausted) {
  std::unique_ptr<ServerProcess> server = StartSamplerd({"--max_message_mb=1"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  v1::SampleRequest big;
  v1::SampleRow row = SimpleRow("big", "greedy", 1);
  *row.mutable_logits() = Float32Tensor({300000}, std::vector<float>(300000, 0.0f));  // 1.2 MB
  *big.add_rows() = row;

  {
    Stream stream(stub.get());
    stream.raw()->Write(big);
    v1::SampleResponse response;
    EXPECT_FALSE(stream.raw()->Read(&response));
    grpc::Status status = stream.raw()->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }
  {
    grpc::ClientContext context;
    v1::SampleResponse response;
    grpc::Status status = stub->Sample(&context, big, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }
  // A message under the limit still goes through, on a new stream.
  v1::SampleRequest small;
  *small.add_rows() = SimpleRow("small", "greedy", 1);
  Stream stream(stub.get());
  absl::StatusOr<v1::SampleResponse> response = stream.Send(small);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(response->results(0).has_error());
  EXPECT_TRUE(stream.Finish().ok());
}

TEST_F(SamplerdTest, AStreamPastItsDeadlineEndsWithDeadlineExceeded) {
  Stream stream(stub_.get(), std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  v1::SampleRequest request;
  *request.add_rows() = SimpleRow("d", "greedy", 1);
  ASSERT_TRUE(stream.Send(request).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(stream.Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectStillServing();
}

TEST_F(SamplerdTest, ACancelledStreamLeavesTheServerServing) {
  for (int i = 0; i < 5; ++i) {
    Stream stream(stub_.get());
    v1::SampleRequest request = MixedBatch(stub_.get());
    stream.raw()->Write(request);
    stream.raw()->Write(request);
    stream.context().TryCancel();
    EXPECT_EQ(stream.raw()->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectStillServing();
}

// ---------------------------------------------------------------------------
// samplerctl sample: a row from a file, restricted to --allowed_token_ids.

TEST(SamplerctlSampleTest, AllowedTokenIdsLimitTheDrawAndBadIdsSayWhich) {
  std::unique_ptr<ServerProcess> server = StartSamplerd();
  ASSERT_NE(server, nullptr);
  // 1000 logits, token 7 far ahead: without the set it is always drawn.
  std::vector<float> logits(1000, 0.0f);
  logits[7] = 30.0f;
  const std::string path = ::testing::TempDir() + "/samplerctl_logits.f32";
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(logits.data(), sizeof(float), logits.size(), f);
    std::fclose(f);
  }
  const auto sample = [&](const std::string& allowed) {
    std::vector<std::string> args = {"sample", "--server=" + server->address(), "--logits=" + path,
                                     "--sampler=chain", "--seed=3"};
    if (!allowed.empty()) args.push_back("--allowed_token_ids=" + allowed);
    return RunToExit(SAMPLERCTL_PATH, args);
  };
  const ProcessExit free = sample("");
  ASSERT_EQ(WEXITSTATUS(free.status), 0) << free.output;
  EXPECT_THAT(free.output, ::testing::ContainsRegex("token +7 "));
  // Two ids (sent as ids) and 600 (sent as a bitmask, the smaller then):
  // equal logits, so the entropy is exactly log2 of the set's size, in bits.
  std::string many;
  for (int id = 100; id < 700; ++id) many += (many.empty() ? "" : ",") + std::to_string(id);
  const ProcessExit two = sample("3,12");
  ASSERT_EQ(WEXITSTATUS(two.status), 0) << two.output;
  EXPECT_THAT(two.output, ::testing::ContainsRegex("token +(3|12) +H=1.000 .*logp=-0.693"));
  const ProcessExit six_hundred = sample(many);
  ASSERT_EQ(WEXITSTATUS(six_hundred.status), 0) << six_hundred.output;
  EXPECT_THAT(six_hundred.output, ::testing::ContainsRegex("token +[1-6][0-9][0-9] +H=9.229 "));
  const ProcessExit bad = sample("3,1000");
  EXPECT_NE(WEXITSTATUS(bad.status), 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("--allowed_token_ids[1] is 1000"));
}

// ---------------------------------------------------------------------------
// Shutdown.

TEST(SamplerdShutdownTest, SigtermShutsDownGracefullyWithExitCodeZero) {
  std::unique_ptr<ServerProcess> server = StartSamplerd();
  ASSERT_NE(server, nullptr);
  {
    auto stub = v1::Sampler::NewStub(server->NewChannel());
    v1::SampleRequest request;
    *request.add_rows() = SimpleRow("x", "chain", 1);
    EXPECT_FALSE(SampleUnary(stub.get(), request).results(0).has_error());
  }
  // With the client gone (an idle client connection that nobody polls holds
  // the server's goodbye up to the client's 5 s backup poll: see
  // AnOpenStreamIsEndedAfterTheGracePeriod for a live client), the server
  // stops at once.
  const auto start = std::chrono::steady_clock::now();
  const int status = server->Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(SamplerdShutdownTest, SigintShutsDownGracefullyWithExitCodeZero) {
  std::unique_ptr<ServerProcess> server = StartSamplerd();
  ASSERT_NE(server, nullptr);
  const int status = server->Stop(SIGINT);
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SamplerdShutdownTest, AnOpenStreamIsEndedAfterTheGracePeriod) {
  std::unique_ptr<ServerProcess> server = StartSamplerd({"--shutdown_grace_s=1"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::Sampler::NewStub(server->NewChannel());
  Stream stream(stub.get());
  v1::SampleRequest request;
  *request.add_rows() = SimpleRow("open", "chain", 1);
  ASSERT_TRUE(stream.Send(request).ok());
  // The stream stays open (no WritesDone) while the server shuts down.
  const auto start = std::chrono::steady_clock::now();
  const int status = server->Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  v1::SampleResponse response;
  EXPECT_FALSE(stream.raw()->Read(&response));
  EXPECT_FALSE(stream.raw()->Finish().ok());
}

TEST(SamplerdFlagsTest, BadFlagsExitWithAnError) {
  for (const char* flag :
       {"--max_message_mb=0", "--port=70000", "--workers=-1", "--channel_spin_us=-1",
        "--channel_spin_us=1000001", "--channel_spinners=-2"}) {
    pid_t pid = 0;
    std::vector<std::string> args = {SamplerdPath(), flag};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << flag;
    EXPECT_EQ(WEXITSTATUS(status), 2) << flag;
  }
}

}  // namespace
}  // namespace entroserve
