// Real runnerd (and samplerd) processes on loopback serving the bundled tiny
// model (models/tiny): the built binaries are started with --port 0 and the
// tests talk to them over real channels. Few tokens per request and one
// model thread per server, so that the suite stays quick on 2 cores.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "runner/v1/runner.grpc.pb.h"
#include "tests/services/test_util/certificates.h"
#include "tests/services/test_util/raw_call.h"
#include "tests/services/test_util/runnerd_test_util.h"
#include "tests/services/test_util/server_process.h"

namespace entroserve {
namespace {

namespace v1 = ::runner::v1;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// One server for the tests that only read.

class RunnerdTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = StartRunnerd();
    ASSERT_NE(server_, nullptr);
    channel_ = server_->NewChannel();
    stub_ = v1::Runner::NewStub(channel_);
  }

  void ExpectStillServing() {
    EXPECT_TRUE(HealthServing(channel_, "runner.v1.Runner"));
    Generation g = Generate(stub_.get(), TextRequest(kPrompt, 3, 1));
    EXPECT_TRUE(g.status.ok()) << Describe(g.status);
    EXPECT_EQ(g.tokens.size(), 3u);
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Runner::Stub> stub_;
};

TEST_F(RunnerdTest, HealthIsServingAndReflectionListsTheRunner) {
  EXPECT_TRUE(HealthServing(channel_, ""));
  EXPECT_TRUE(HealthServing(channel_, "runner.v1.Runner"));
  std::vector<std::string> services = ReflectedServices(channel_);
  EXPECT_THAT(services, testing::Contains("runner.v1.Runner"));
  EXPECT_THAT(services, testing::Contains("grpc.health.v1.Health"));
}

TEST_F(RunnerdTest, ModelInfoDescribesTheTinyModel) {
  grpc::ClientContext context;
  v1::ModelInfoResponse info;
  ASSERT_TRUE(stub_->ModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.family(), "llama");
  EXPECT_EQ(info.path(), kTinyModel);
  EXPECT_EQ(info.parameters(), 7868672);
  EXPECT_EQ(info.layers(), 8);
  EXPECT_EQ(info.vocab_size(), kVocab);
  EXPECT_EQ(info.context_length(), kContext);
  EXPECT_EQ(info.dtype(), "float32");
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_EQ(info.bos_token_id(), 0);
  // config.json's 0 and generation_config.json's [0, 2] (<|im_end|>).
  EXPECT_THAT(info.eos_token_ids(), testing::ElementsAre(0, 2));
  EXPECT_EQ(info.chat_template(), "chatml");
  EXPECT_EQ(info.sampler(), "local");
  EXPECT_EQ(info.default_sampler(), "entropix");
  EXPECT_EQ(info.max_batch(), 8);
  EXPECT_EQ(info.running(), 0);

  // The engine's counters: one step and one sampled row per token of a
  // short prompt's generation.
  const int64_t steps = info.steps();
  const int64_t rows = info.rows_sampled();
  Generation g = Generate(stub_.get(), TextRequest(kPrompt, 5, 1));
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  grpc::ClientContext again;
  v1::ModelInfoResponse later;
  ASSERT_TRUE(stub_->ModelInfo(&again, {}, &later).ok());
  EXPECT_EQ(later.steps() - steps, 5);
  EXPECT_EQ(later.rows_sampled() - rows, 5);
  EXPECT_GT(later.forward_ms(), info.forward_ms());
  EXPECT_GT(later.sampling_ms(), info.sampling_ms());
}

TEST_F(RunnerdTest, TokenizeAndDetokenizeRoundTrip) {
  grpc::ClientContext context;
  v1::TokenizeRequest request;
  request.set_text(kPrompt);
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(stub_->Tokenize(&context, request, &tokens).ok());
  ASSERT_GE(tokens.ids_size(), 2);
  EXPECT_EQ(tokens.ids(0), 0);  // BOS: add_bos_token is true
  EXPECT_EQ(tokens.pieces_size(), tokens.ids_size());
  EXPECT_EQ(absl::StrJoin(tokens.pieces(), ""), absl::StrCat("<|endoftext|>", kPrompt));

  grpc::ClientContext context2;
  v1::DetokenizeRequest detokenize;
  detokenize.mutable_ids()->CopyFrom(tokens.ids());
  detokenize.set_skip_special_tokens(true);
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&context2, detokenize, &text).ok());
  EXPECT_EQ(text.text(), kPrompt);

  grpc::ClientContext context4;
  request.set_text("ok \xe2\x82");
  grpc::Status utf8 = stub_->Tokenize(&context4, request, &tokens);
  EXPECT_EQ(utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(utf8.error_message(),
              StartsWith("the request could not be parsed as a runner.v1.TokenizeRequest: "
                         "text is not valid UTF-8"));

  grpc::ClientContext context3;
  detokenize.add_ids(kVocab);
  grpc::Status bad = stub_->Detokenize(&context3, detokenize, &text);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), StartsWith("ids[4] is 6144, outside the vocabulary"));
}

TEST_F(RunnerdTest, BytesThatDoNotParseGetInvalidArgumentOnEveryMethod) {
  for (const std::string method : {"Generate", "Tokenize", "Detokenize", "ModelInfo"}) {
    RawCallResult result =
        CallRaw(channel_, absl::StrCat("/runner.v1.Runner/", method), {std::string(1, '\xff')});
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_EQ(result.status.error_message(),
              absl::StrCat("the request could not be parsed as a runner.v1.", method, "Request"));
    EXPECT_TRUE(result.answers.empty()) << method;
  }
  ExpectStillServing();
}

TEST_F(RunnerdTest, StreamedTextIsTheDetokenizedTokensAndUsageAddsUp) {
  Generation g = Generate(stub_.get(), TextRequest(kPrompt, 24, 5));
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  ASSERT_EQ(g.tokens.size(), 24u);
  for (size_t i = 0; i < g.tokens.size(); ++i) EXPECT_EQ(g.tokens[i].index(), static_cast<int>(i));
  EXPECT_EQ(g.messages.front().seed(), 5u);
  EXPECT_EQ(g.messages.front().prompt_tokens(), 4);
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(g.last().usage().prompt_tokens(), 4);
  EXPECT_EQ(g.last().usage().generated_tokens(), 24);
  EXPECT_GT(g.last().usage().total_ms(), 0);
  EXPECT_LE(g.last().usage().time_to_first_token_ms(), g.last().usage().total_ms());
  // entropix with attention: every detail is there by default.
  EXPECT_TRUE(g.tokens[0].signals().has_attn_entropy());
  EXPECT_TRUE(g.tokens[0].params().has_temperature());

  grpc::ClientContext context;
  v1::DetokenizeRequest detokenize;
  for (int32_t id : g.ids()) detokenize.add_ids(id);
  detokenize.set_skip_special_tokens(true);
  v1::DetokenizeResponse text;
  ASSERT_TRUE(stub_->Detokenize(&context, detokenize, &text).ok());
  EXPECT_EQ(g.text(), text.text());
}

TEST_F(RunnerdTest, AnUnseededRequestGetsASeedThatReplaysIt) {
  v1::GenerateRequest request = TextRequest(kPrompt, 12, 0);
  request.clear_seed();
  Generation first = Generate(stub_.get(), request);
  ASSERT_TRUE(first.status.ok()) << Describe(first.status);
  request.set_seed(first.messages.front().seed());
  Generation again = Generate(stub_.get(), request);
  ASSERT_TRUE(again.status.ok()) << Describe(again.status);
  ExpectSameTokens(first, again);
}

TEST_F(RunnerdTest, StopStringCutsTheTextAndEndsWithStop) {
  v1::GenerateRequest request = WithSampler(TextRequest(kPrompt, 40, 1), "greedy");
  Generation full = Generate(stub_.get(), request);
  ASSERT_TRUE(full.status.ok()) << Describe(full.status);
  const std::string text = full.text();
  // A stop string from the middle of the text, across token boundaries.
  const size_t at = text.size() / 2;
  const std::string stop = text.substr(at, 5);
  const size_t first = text.find(stop);
  request.add_stop(stop);
  Generation stopped = Generate(stub_.get(), request);
  ASSERT_TRUE(stopped.status.ok()) << Describe(stopped.status);
  EXPECT_EQ(stopped.last().finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stopped.text(), text.substr(0, first));
  EXPECT_LT(stopped.tokens.size(), full.tokens.size());
  // The tokens up to the stop are the same tokens.
  for (size_t i = 0; i < stopped.tokens.size(); ++i) {
    EXPECT_EQ(stopped.tokens[i].id(), full.tokens[i].id()) << i;
  }
}

TEST_F(RunnerdTest, ChatAnswersEndAtEndOfTurnUnlessEosIsIgnored) {
  // The chat example of models/tiny/README.md, whose greedy answer ends
  // with <|im_end|>.
  v1::GenerateRequest request;
  v1::ChatMessage* user = request.mutable_chat()->add_messages();
  user->set_role("user");
  user->set_content("Continue the text.\n\nThe committee met on Monday to discuss the new budget.");
  request.mutable_sampler()->set_name("greedy");
  request.set_max_new_tokens(200);
  Generation g = Generate(stub_.get(), request);
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  ASSERT_EQ(g.last().finish_reason(), v1::FINISH_REASON_EOS) << g.text();
  const int32_t last = g.tokens.back().id();
  EXPECT_EQ(last, 2) << "<|im_end|>";
  EXPECT_EQ(g.tokens.back().text(), "");  // special tokens are not in the text

  request.set_ignore_eos(true);
  request.set_max_new_tokens(static_cast<int32_t>(g.tokens.size()) + 3);
  Generation ignored = Generate(stub_.get(), request);
  ASSERT_TRUE(ignored.status.ok()) << Describe(ignored.status);
  EXPECT_EQ(ignored.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(ignored.tokens.size(), g.tokens.size() + 3);
}

TEST(RunnerdContextTest, DefaultMaxNewTokensIsWhatTheContextLeavesWhenLess) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--max_context=64"});
  ASSERT_NE(server, nullptr);
  auto stub = RunnerStub(*server);
  grpc::ClientContext context;
  v1::ModelInfoResponse info;
  ASSERT_TRUE(stub->ModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.context_length(), 64);

  v1::GenerateRequest request;
  for (int i = 0; i < 64 - 5; ++i) request.mutable_tokens()->add_ids(100 + i % 50);
  request.mutable_sampler()->set_name("greedy");
  request.set_ignore_eos(true);
  Generation g = Generate(stub.get(), request);
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  EXPECT_EQ(g.tokens.size(), 5u);
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_CONTEXT);

  // Asked for, the same length is FINISH_REASON_LENGTH; one more does not fit.
  request.set_max_new_tokens(5);
  g = Generate(stub.get(), request);
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  request.set_max_new_tokens(6);
  g = Generate(stub.get(), request);
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.status.error_message(),
            "max_new_tokens is 6, but the prompt's 59 tokens leave room for 5 in the context of "
            "64");
}

TEST_F(RunnerdTest, TokenDetailsChooseWhatComesBack) {
  v1::GenerateRequest request = TextRequest(kPrompt, 3, 2);
  request.mutable_details()->set_logprob(true);
  Generation g = Generate(stub_.get(), request);
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);
  EXPECT_FALSE(g.tokens[0].has_signals());
  EXPECT_FALSE(g.tokens[0].has_params());
  EXPECT_LT(g.tokens[0].logprob(), 0.0f);
}

// Bad input: the status code and a message naming the field; the server
// goes on serving.
struct BadCase {
  std::string name;
  std::function<void(v1::GenerateRequest*)> edit;
  grpc::StatusCode code;
  std::string message;  // a prefix of the message
};

TEST_F(RunnerdTest, EveryTokenIsOneTheRequestAllows) {
  for (const char* sampler : {"entropix", "chain", "alpha", "greedy"}) {
    v1::GenerateRequest request = WithSampler(TextRequest(kPrompt, 16, 3), sampler);
    const std::vector<int32_t> allowed = {17, 250, 251, 4000};
    for (int32_t id : allowed) request.add_allowed_token_ids(id);
    Generation g = Generate(stub_.get(), request);
    ASSERT_TRUE(g.status.ok()) << sampler << ": " << Describe(g.status);
    ASSERT_EQ(g.tokens.size(), 16u) << sampler;
    for (const v1::GeneratedToken& token : g.tokens) {
      EXPECT_THAT(allowed, testing::Contains(token.id())) << sampler;
    }
  }
}

TEST_F(RunnerdTest, BadRequestsNameTheFieldAndTheServerGoesOn) {
  const std::vector<BadCase> cases = {
      {"no input", [](v1::GenerateRequest* r) { r->clear_input(); },
       grpc::StatusCode::INVALID_ARGUMENT, "input: set one of text, chat or tokens"},
      {"prompt longer than the context",
       [](v1::GenerateRequest* r) {
         for (int i = 0; i < kContext + 76; ++i) r->mutable_tokens()->add_ids(7);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt has 1100 tokens; the context holds 1024"},
      {"max_new_tokens 0", [](v1::GenerateRequest* r) { r->set_max_new_tokens(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "max_new_tokens must be >= 1, got 0"},
      {"max_new_tokens beyond the context",
       [](v1::GenerateRequest* r) { r->set_max_new_tokens(5000); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "max_new_tokens is 5000, but the prompt's 4 tokens leave room for 1020 in the context of "
       "1024"},
      {"unknown sampler",
       [](v1::GenerateRequest* r) { r->mutable_sampler()->set_name("nucleus9"); },
       grpc::StatusCode::INVALID_ARGUMENT, "sampler.name: "},
      {"sampler parameter out of range",
       [](v1::GenerateRequest* r) {
         r->mutable_sampler()->mutable_entropix()->set_temperature(-1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "sampler.entropix.temperature must be > 0"},
      {"logit bias outside the vocabulary",
       [](v1::GenerateRequest* r) {
         (*r->mutable_sampler()->mutable_chain()->mutable_logit_bias())[9999] = 1.0f;
       },
       grpc::StatusCode::INVALID_ARGUMENT, "sampler.chain.logit_bias has token 9999"},
      {"empty chat", [](v1::GenerateRequest* r) { r->mutable_chat(); },
       grpc::StatusCode::INVALID_ARGUMENT, "chat.messages is empty"},
      {"invalid UTF-8 in the text", [](v1::GenerateRequest* r) { r->set_text("caf\xc3"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "the request could not be parsed as a runner.v1.GenerateRequest: text is not valid UTF-8"},
      {"invalid UTF-8 in a chat message",
       [](v1::GenerateRequest* r) {
         v1::ChatMessage* m = r->mutable_chat()->add_messages();
         m->set_role("user");
         m->set_content("ok");
         m = r->mutable_chat()->add_messages();
         m->set_role("user");
         m->set_content("\xff\xfe");
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "the request could not be parsed as a runner.v1.GenerateRequest: "
       "chat.messages[1].content is not valid UTF-8"},
      {"token id outside the vocabulary",
       [](v1::GenerateRequest* r) {
         r->mutable_tokens()->add_ids(5);
         r->mutable_tokens()->add_ids(kVocab);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "tokens.ids[1] is 6144, outside the vocabulary [0, 6144)"},
      {"negative token id", [](v1::GenerateRequest* r) { r->mutable_tokens()->add_ids(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "tokens.ids[0] is -1"},
      {"empty token list", [](v1::GenerateRequest* r) { r->mutable_tokens(); },
       grpc::StatusCode::INVALID_ARGUMENT, "tokens.ids is empty"},
      {"stop token outside the vocabulary",
       [](v1::GenerateRequest* r) { r->add_stop_token_ids(70000); },
       grpc::StatusCode::INVALID_ARGUMENT, "stop_token_ids[0] is 70000"},
      {"empty stop string", [](v1::GenerateRequest* r) { r->add_stop(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "stop[0] is empty"},
      {"allowed token outside the vocabulary",
       [](v1::GenerateRequest* r) {
         r->add_allowed_token_ids(3);
         r->add_allowed_token_ids(kVocab);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "allowed_token_ids[1] is 6144, outside the vocabulary [0, 6144)"},
      {"DRY breakers for a sampler without DRY",
       [](v1::GenerateRequest* r) {
         r->mutable_sampler()->set_name("greedy");
         r->add_dry_sequence_breakers("\n");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "dry_sequence_breakers: sampler greedy has no DRY"},
      {"empty DRY breaker", [](v1::GenerateRequest* r) { r->add_dry_sequence_breakers(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "dry_sequence_breakers[0] has 0 bytes"},
      {"stage list without a selector",
       [](v1::GenerateRequest* r) { r->mutable_sampler()->mutable_chain()->add_stages("top_k"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "sampler.chain.stages[0] (\"top_k\") is last but chooses no token"},
  };
  for (const BadCase& c : cases) {
    v1::GenerateRequest request = TextRequest(kPrompt, 4, 1);
    c.edit(&request);
    Generation g = Generate(stub_.get(), request);
    EXPECT_EQ(g.status.error_code(), c.code) << c.name << ": " << Describe(g.status);
    EXPECT_THAT(g.status.error_message(), StartsWith(c.message)) << c.name;
    EXPECT_TRUE(g.tokens.empty()) << c.name;
  }
  ExpectStillServing();
}

TEST_F(RunnerdTest, ADeadlineAlreadyPassedIsRejected) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  auto reader = stub_->Generate(&context, TextRequest(kPrompt, 4, 1));
  v1::GenerateResponse response;
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectStillServing();
}

TEST_F(RunnerdTest, ADeadlinePassingMidGenerationEndsItAndFreesTheSlot) {
  Generation g =
      Generate(stub_.get(), TextRequest(kPrompt, kContext - 10, 1), std::chrono::milliseconds(300));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << Describe(g.status);
  EXPECT_LT(g.tokens.size(), static_cast<size_t>(kContext - 10));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Running(stub_.get()) != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Running(stub_.get()), 0);
  ExpectStillServing();
}

// ---------------------------------------------------------------------------
// Local and remote sampling.

std::vector<v1::GenerateRequest> SamplerRequests() {
  std::vector<v1::GenerateRequest> requests;
  requests.push_back(TextRequest(kPrompt, 20, 11));  // entropix, the default
  v1::GenerateRequest chain = TextRequest("It was a dark and stormy night", 20, 12);
  ::sampler::v1::ChainConfig* c = chain.mutable_sampler()->mutable_chain();
  c->set_temperature(0.9f);
  c->set_repetition_penalty(1.3f);
  c->set_top_k(40);
  requests.push_back(chain);
  requests.push_back(WithSampler(TextRequest("The committee", 20, 13), "alpha"));
  requests.push_back(WithSampler(TextRequest("In the morning", 20, 14), "mirostat_v2"));
  // An allowed-token set crosses to samplerd with every row.
  v1::GenerateRequest masked = TextRequest("Once upon a time", 20, 15);
  c = masked.mutable_sampler()->mutable_chain();
  c->add_stages("min_p");
  c->add_stages("temperature");
  c->add_stages("dist");
  c->set_min_p(0.01f);
  for (int id = 100; id < 6000; id += 7) masked.add_allowed_token_ids(id);
  requests.push_back(masked);
  // DRY breakers as strings, turned into ids by runnerd before either sampler.
  v1::GenerateRequest dry = TextRequest("The the the the the", 20, 16);
  c = dry.mutable_sampler()->mutable_chain();
  c->add_stages("dry");
  c->add_stages("dist");
  c->set_dry_multiplier(1.5f);
  c->set_dry_allowed_length(1);
  dry.add_dry_sequence_breakers("\n");
  dry.add_dry_sequence_breakers(" the");
  requests.push_back(dry);
  return requests;
}

TEST(RunnerdSamplerTest, LocalAndRemoteSamplersGiveTheSameTokens) {
  // Remote four times: the tensor bytes through shared memory and the steps
  // through shared-memory channels (the default for a loopback samplerd),
  // the same on one stream, the steps in the stream's messages, and
  // everything inline in the messages.
  std::unique_ptr<ServerProcess> samplerd = StartSamplerd();
  ASSERT_NE(samplerd, nullptr);
  const std::string sampler = absl::StrCat("--sampler=", samplerd->address());
  std::unique_ptr<ServerProcess> shared = StartRunnerd({sampler});
  std::unique_ptr<ServerProcess> one_stream = StartRunnerd({sampler, "--sampler_streams=1"});
  std::unique_ptr<ServerProcess> messages =
      StartRunnerd({sampler, "--sampler_streams=1", "--sampler_shm_channel=false"});
  std::unique_ptr<ServerProcess> inline_bytes =
      StartRunnerd({sampler, "--sampler_transport=inline"});
  std::unique_ptr<ServerProcess> local = StartRunnerd();
  ASSERT_NE(shared, nullptr);
  ASSERT_NE(one_stream, nullptr);
  ASSERT_NE(messages, nullptr);
  ASSERT_NE(inline_bytes, nullptr);
  ASSERT_NE(local, nullptr);
  auto local_stub = RunnerStub(*local);
  std::vector<std::unique_ptr<::runner::v1::Runner::Stub>> remote_stubs;
  for (ServerProcess* remote :
       {shared.get(), one_stream.get(), messages.get(), inline_bytes.get()}) {
    remote_stubs.push_back(RunnerStub(*remote));
  }
  for (const v1::GenerateRequest& request : SamplerRequests()) {
    SCOPED_TRACE(request.sampler().ShortDebugString());
    Generation a = Generate(local_stub.get(), request);
    ASSERT_TRUE(a.status.ok()) << Describe(a.status);
    for (size_t i = 0; i < remote_stubs.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("remote runnerd ", i));
      Generation b = Generate(remote_stubs[i].get(), request);
      ASSERT_TRUE(b.status.ok()) << Describe(b.status);
      ExpectSameTokens(a, b);
    }
  }
  // Which went through shared memory: with one stream, a region for the
  // tensors and one for the channel, or only the first; inline, none. The
  // regions go when runnerd stops.
  EXPECT_GE(RegionsOf(shared->pid()), 2);
  EXPECT_EQ(RegionsOf(one_stream->pid()), 2);
  EXPECT_EQ(RegionsOf(messages->pid()), 1);
  EXPECT_EQ(RegionsOf(inline_bytes->pid()), 0);
  const pid_t pid = shared->pid();
  EXPECT_EQ(shared->Stop(SIGTERM), 0);
  EXPECT_EQ(RegionsOf(pid), 0);
}

TEST(RunnerdSamplerTest, ASamplerdThatReadsNoSharedMemoryGetsTheBytesInline) {
  // samplerd --shared_memory=false: runnerd's auto transport falls back to
  // inline for good, says so once, and no row fails; with
  // --sampler_transport=shared_memory the refusal reaches the client.
  std::unique_ptr<ServerProcess> samplerd = StartSamplerd({"--shared_memory=false"});
  ASSERT_NE(samplerd, nullptr);
  const std::string log = StderrPath("fallback");
  std::remove(log.c_str());
  std::unique_ptr<ServerProcess> fallback =
      StartRunnerd({absl::StrCat("--sampler=", samplerd->address())}, log);
  std::unique_ptr<ServerProcess> strict = StartRunnerd(
      {absl::StrCat("--sampler=", samplerd->address()), "--sampler_transport=shared_memory"});
  std::unique_ptr<ServerProcess> local = StartRunnerd();
  ASSERT_NE(fallback, nullptr);
  ASSERT_NE(strict, nullptr);
  ASSERT_NE(local, nullptr);
  auto fallback_stub = RunnerStub(*fallback);
  auto local_stub = RunnerStub(*local);
  for (int i = 0; i < 2; ++i) {
    const v1::GenerateRequest request = TextRequest(kPrompt, 12, 31 + i);
    Generation a = Generate(local_stub.get(), request);
    Generation b = Generate(fallback_stub.get(), request);
    ASSERT_TRUE(a.status.ok()) << Describe(a.status);
    ASSERT_TRUE(b.status.ok()) << Describe(b.status);
    ExpectSameTokens(a, b);
  }
  EXPECT_EQ(RegionsOf(fallback->pid()), 0);
  const std::string errors = ReadTestFile(log);
  EXPECT_THAT(errors, HasSubstr(absl::StrCat("runnerd: sending tensors to samplerd at ",
                                             samplerd->address(),
                                             " in the messages, not through shared memory: ")))
      << errors;
  EXPECT_THAT(errors, HasSubstr("this server reads no shared memory")) << errors;
  // Said once, not per step.
  EXPECT_EQ(errors.find("not through shared memory"), errors.rfind("not through shared memory"));
  std::remove(log.c_str());

  auto strict_stub = RunnerStub(*strict);
  Generation refused = Generate(strict_stub.get(), TextRequest(kPrompt, 4, 1));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(refused.status);
  EXPECT_THAT(refused.status.error_message(),
              HasSubstr("logits.shared_memory: this server reads no shared memory from this "
                        "client (samplerd --shared_memory=false, or a client not on samplerd's "
                        "host)"));
  EXPECT_TRUE(refused.tokens.empty());
}

TEST(RunnerdSamplerTest, SamplerdKilledMidGenerationIsReplacedAndTheTokensMatch) {
  std::unique_ptr<ServerProcess> samplerd = StartSamplerd();
  ASSERT_NE(samplerd, nullptr);
  const int port = samplerd->port();
  const std::string log = StderrPath("kill");
  std::remove(log.c_str());
  // The dead samplerd must be noticed through its stream (the steps go
  // through a shared-memory channel), not by a step's response timeout:
  // that is longer than the generation's deadline here.
  std::unique_ptr<ServerProcess> runnerd = StartRunnerd(
      {absl::StrCat("--sampler=", samplerd->address()), "--sampler_timeout_s=600"}, log);
  ASSERT_NE(runnerd, nullptr);
  auto stub = RunnerStub(*runnerd);
  const v1::GenerateRequest request = TextRequest(kPrompt, 200, 21);
  Generation undisturbed = Generate(stub.get(), request);
  ASSERT_TRUE(undisturbed.status.ok()) << Describe(undisturbed.status);

  std::unique_ptr<ServerProcess> replacement;
  Generation disturbed =
      Generate(stub.get(), request, std::chrono::seconds(90), [&](grpc::ClientContext*, int i) {
        if (i != 0) return;
        // Freeze samplerd at once (the runner's next step then waits on
        // it), kill it, let the runner retry for a while, then start a new
        // samplerd on the same port.
        samplerd->Signal(SIGSTOP);
        samplerd->Stop(SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        replacement = StartSamplerd({absl::StrCat("--port=", port)});
      });
  ASSERT_NE(replacement, nullptr);
  ASSERT_TRUE(disturbed.status.ok()) << Describe(disturbed.status);
  EXPECT_EQ(disturbed.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  ExpectSameTokens(undisturbed, disturbed);
  // The stream did break during the generation.
  const std::string errors = ReadTestFile(log);
  EXPECT_THAT(errors, HasSubstr("reconnecting")) << errors;
  std::remove(log.c_str());
}

TEST(RunnerdSamplerTest, AnUnreachableSamplerFailsWithUnavailableNeverTruncated) {
  // A port nothing listens on: a samplerd started and stopped.
  std::unique_ptr<ServerProcess> samplerd = StartSamplerd();
  ASSERT_NE(samplerd, nullptr);
  const std::string address = samplerd->address();
  ASSERT_EQ(samplerd->Stop(SIGKILL), SIGKILL);
  std::unique_ptr<ServerProcess> runnerd =
      StartRunnerd({absl::StrCat("--sampler=", address), "--sampler_wait_s=1"});
  ASSERT_NE(runnerd, nullptr);
  auto stub = RunnerStub(*runnerd);

  // With a deadline: waits within it, then UNAVAILABLE (before the deadline).
  const auto start = std::chrono::steady_clock::now();
  Generation g = Generate(stub.get(), TextRequest(kPrompt, 8, 1), std::chrono::milliseconds(800));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(g.status);
  EXPECT_THAT(g.status.error_message(), HasSubstr(address));
  EXPECT_TRUE(g.tokens.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));

  // Without one: --sampler_wait_s.
  g = Generate(stub.get(), TextRequest(kPrompt, 8, 1), std::chrono::seconds(30));
  EXPECT_EQ(g.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(g.status);
  EXPECT_TRUE(g.tokens.empty());
}

// ---------------------------------------------------------------------------
// Concurrency, limits, cancellation.

// With --batch_invariant: without it a sequence's logits in a batch differ
// from its logits alone by roundings (batched matrix products sum in another
// order), and signals, and now and then a token, differ with them.
TEST(RunnerdBatchingTest, SixteenConcurrentClientsEachEqualTheirRunAlone) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--batch_invariant", "--max_batch=8"});
  ASSERT_NE(server, nullptr);
  auto stub = RunnerStub(*server);
  constexpr int kClients = 16;
  const std::vector<std::string> prompts = {"The jury said",    "It was a dark and stormy night",
                                            "The committee",    "In the morning",
                                            "He said that the", "Mr. Smith"};
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < kClients; ++i) {
    v1::GenerateRequest request = TextRequest(prompts[i % prompts.size()], 12 + i % 5, 100 + i);
    if (i % 4 == 3) request.mutable_sampler()->set_name("greedy");
    requests.push_back(request);
  }
  std::vector<Generation> alone;
  for (const auto& request : requests) {
    alone.push_back(Generate(stub.get(), request));
    ASSERT_TRUE(alone.back().status.ok()) << Describe(alone.back().status);
  }
  std::vector<Generation> together(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto own = v1::Runner::NewStub(server->NewChannel());
      together[i] = Generate(own.get(), requests[i]);
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(absl::StrCat("client ", i));
    ASSERT_TRUE(together[i].status.ok()) << Describe(together[i].status);
    ExpectSameTokens(alone[i], together[i]);
  }
}

TEST(RunnerdLimitsTest, AFullQueueAnswersResourceExhausted) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--max_batch=1", "--max_queue=1"});
  ASSERT_NE(server, nullptr);
  auto stub = RunnerStub(*server);
  // A runs (the batch is full), B waits (the queue is full), C is refused.
  std::atomic<bool> a_started{false};
  Generation a, b;
  std::thread a_thread([&] {
    a = Generate(stub.get(), TextRequest(kPrompt, kContext - 10, 1), std::chrono::seconds(120),
                 [&](grpc::ClientContext* context, int i) {
                   if (i == 0) a_started = true;
                   if (i == 200) context->TryCancel();
                 });
  });
  while (!a_started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread b_thread([&] { b = Generate(stub.get(), TextRequest(kPrompt, 3, 2)); });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    grpc::ClientContext context;
    v1::ModelInfoResponse info;
    ASSERT_TRUE(stub->ModelInfo(&context, {}, &info).ok());
    if (info.waiting() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Generation c = Generate(stub.get(), TextRequest(kPrompt, 3, 3));
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(c.status);
  EXPECT_EQ(c.status.error_message(), "queue full (1 waiting)");
  a_thread.join();
  b_thread.join();
  EXPECT_EQ(a.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(b.status.ok()) << Describe(b.status);
  EXPECT_EQ(b.tokens.size(), 3u);
}

TEST(RunnerdLimitsTest, ACancelledClientFreesItsSlot) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--max_batch=1"});
  ASSERT_NE(server, nullptr);
  auto stub = RunnerStub(*server);
  // A long generation in the only slot, cancelled by its client after a few
  // tokens: the next request gets the slot long before A would have ended.
  Generation a = Generate(stub.get(), TextRequest(kPrompt, kContext - 10, 1),
                          std::chrono::seconds(120), [](grpc::ClientContext* context, int i) {
                            if (i == 4) context->TryCancel();
                          });
  EXPECT_EQ(a.status.error_code(), grpc::StatusCode::CANCELLED);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Running(stub.get()) != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Running(stub.get()), 0);
  Generation b = Generate(stub.get(), TextRequest(kPrompt, 3, 2));
  EXPECT_TRUE(b.status.ok()) << Describe(b.status);
  EXPECT_EQ(b.tokens.size(), 3u);
  // Far less than the ~1000 steps A asked for.
  EXPECT_LT(a.tokens.size(), 200u);
}

// ---------------------------------------------------------------------------
// Start-up and shutdown.

TEST(RunnerdProcessTest, AnUnknownModelFolderExitsWithAClearMessage) {
  ProcessExit exit = RunToExit(RUNNERD_PATH, {"--model=/no/such/model", "--port=0"});
  ASSERT_TRUE(WIFEXITED(exit.status)) << exit.output;
  EXPECT_NE(WEXITSTATUS(exit.status), 0);
  EXPECT_THAT(exit.output, HasSubstr("--model=/no/such/model: no such folder"));

  exit =
      RunToExit(RUNNERD_PATH, {absl::StrCat("--model=", kTinyModel), "--port=0", "--max_batch=0"});
  ASSERT_TRUE(WIFEXITED(exit.status)) << exit.output;
  EXPECT_EQ(WEXITSTATUS(exit.status), 2);
  EXPECT_THAT(exit.output, HasSubstr("--max_batch must be >= 1, got 0"));

  // Bad values of the sampler and attention flags, each named.
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--sampler_streams=0", "--sampler_streams must be in [1, 64], got 0"},
           {"--sampler_workers=-1", "--sampler_workers must be >= 0, got -1"},
           {"--group_decode=maybe", "--group_decode must be auto, on or off, got \"maybe\""},
           {"--sampler_transport=fast",
            "--sampler_transport must be auto, inline or shared_memory, got \"fast\""}}) {
    exit = RunToExit(RUNNERD_PATH, {absl::StrCat("--model=", kTinyModel), "--port=0", flag});
    ASSERT_TRUE(WIFEXITED(exit.status)) << exit.output;
    EXPECT_EQ(WEXITSTATUS(exit.status), 2) << flag;
    EXPECT_THAT(exit.output, HasSubstr(message));
  }

  // A folder with a config.json but no tokenizer or weights: it listens,
  // fails to load, says why and exits 1.
  char dir[] = "/tmp/runnerd_test_model_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string config = absl::StrCat(dir, "/config.json");
  {
    std::ifstream in(absl::StrCat(kTinyModel, "/config.json"));
    std::ofstream out(config);
    out << in.rdbuf();
  }
  exit = RunToExit(RUNNERD_PATH, {absl::StrCat("--model=", dir), "--host=127.0.0.1", "--port=0"});
  ASSERT_TRUE(WIFEXITED(exit.status)) << exit.output;
  EXPECT_EQ(WEXITSTATUS(exit.status), 1);
  EXPECT_THAT(exit.output, HasSubstr(absl::StrCat("cannot load --model=", dir)));
  EXPECT_THAT(exit.output, HasSubstr("tokenizer.json"));
  std::remove(config.c_str());
  rmdir(dir);
}

TEST(RunnerdProcessTest, SigtermEndsGenerationsWithCancelledAndExitsZero) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--shutdown_grace_s=0"});
  ASSERT_NE(server, nullptr);
  Generation g;
  {
    auto stub = RunnerStub(*server);
    g = Generate(stub.get(), TextRequest(kPrompt, kContext - 10, 1), std::chrono::seconds(120),
                 [&](grpc::ClientContext*, int i) {
                   if (i == 0) server->Signal(SIGTERM);
                 });
  }
  EXPECT_TRUE(g.status.ok()) << Describe(g.status);
  ASSERT_FALSE(g.messages.empty());
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_LT(g.tokens.size(), static_cast<size_t>(kContext - 10));
  // With the client's connection closed (an idle one holds the server's
  // goodbye up to the client's 5 s backup poll, as samplerd's tests note),
  // the server is gone at once.
  const auto start = std::chrono::steady_clock::now();
  const int status = server->Stop(0, std::chrono::seconds(30));  // signal 0: just wait
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(RunnerdProcessTest, SigtermLetsShortGenerationsFinishWithinTheGrace) {
  std::unique_ptr<ServerProcess> server = StartRunnerd({"--shutdown_grace_s=30"});
  ASSERT_NE(server, nullptr);
  Generation g;
  {
    auto stub = RunnerStub(*server);
    g = Generate(stub.get(), TextRequest(kPrompt, 40, 1), std::chrono::seconds(120),
                 [&](grpc::ClientContext*, int i) {
                   if (i == 0) server->Signal(SIGTERM);
                 });
  }
  EXPECT_TRUE(g.status.ok()) << Describe(g.status);
  EXPECT_EQ(g.tokens.size(), 40u);
  EXPECT_EQ(g.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  const auto start = std::chrono::steady_clock::now();
  const int status = server->Stop(0, std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// ---------------------------------------------------------------------------
// samplerctl against runnerd.

TEST(SamplerctlGenerateTest, PrintsTheStreamedTextAndJsonRecords) {
  std::unique_ptr<ServerProcess> server = StartRunnerd();
  ASSERT_NE(server, nullptr);
  auto stub = RunnerStub(*server);
  Generation g = Generate(stub.get(), WithSampler(TextRequest(kPrompt, 16, 3), "greedy"));
  ASSERT_TRUE(g.status.ok()) << Describe(g.status);

  ProcessExit text =
      RunToExit(SAMPLERCTL_PATH, {"generate", absl::StrCat("--server=", server->address()),
                                  absl::StrCat("--prompt=", kPrompt), "--sampler=greedy",
                                  "--seed=3", "--max_new_tokens=16", "--ignore_eos"});
  ASSERT_TRUE(WIFEXITED(text.status));
  EXPECT_EQ(WEXITSTATUS(text.status), 0) << text.output;
  EXPECT_THAT(text.output, StartsWith(g.text() + "\n"));
  EXPECT_THAT(text.output, HasSubstr("[finish: length; 4 prompt + 16 generated tokens; seed 3;"));

  ProcessExit json = RunToExit(SAMPLERCTL_PATH,
                               {"generate", absl::StrCat("--server=", server->address()),
                                absl::StrCat("--prompt=", kPrompt), "--sampler=greedy", "--seed=3",
                                "--max_new_tokens=16", "--ignore_eos", "--json", "--show-modes"});
  EXPECT_EQ(WEXITSTATUS(json.status), 0) << json.output;
  // One line per token and a summary line.
  EXPECT_EQ(std::count(json.output.begin(), json.output.end(), '\n'), 17) << json.output;
  EXPECT_THAT(json.output, HasSubstr("\"mode\":\"MODE_GREEDY\""));
  EXPECT_THAT(json.output, HasSubstr("\"finish_reason\":\"FINISH_REASON_LENGTH\""));

  ProcessExit info =
      RunToExit(SAMPLERCTL_PATH, {"info", absl::StrCat("--server=", server->address())});
  EXPECT_EQ(WEXITSTATUS(info.status), 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("llama"));
  EXPECT_THAT(info.output, HasSubstr("chat template chatml"));
}

TEST(SamplerctlGenerateTest, ErrorsSayWhatIsWrong) {
  std::unique_ptr<ServerProcess> server = StartRunnerd();
  ASSERT_NE(server, nullptr);
  const std::string address = server->address();
  ProcessExit bad = RunToExit(SAMPLERCTL_PATH, {"generate", absl::StrCat("--server=", address),
                                                "--prompt=x", "--sampler=nucleus9"});
  EXPECT_EQ(WEXITSTATUS(bad.status), 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("INVALID_ARGUMENT: sampler.name: "));

  ProcessExit neither =
      RunToExit(SAMPLERCTL_PATH, {"generate", absl::StrCat("--server=", address)});
  EXPECT_EQ(WEXITSTATUS(neither.status), 2) << neither.output;
  EXPECT_THAT(neither.output, HasSubstr("--prompt"));

  ASSERT_EQ(server->Stop(SIGKILL), SIGKILL);
  ProcessExit down = RunToExit(SAMPLERCTL_PATH, {"generate", absl::StrCat("--server=", address),
                                                 "--prompt=x", "--timeout_ms=3000"});
  EXPECT_EQ(WEXITSTATUS(down.status), 1) << down.output;
  EXPECT_THAT(down.output, HasSubstr(absl::StrCat("cannot reach runnerd at ", address)));
}

}  // namespace
}  // namespace entroserve
