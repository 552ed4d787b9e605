#include "services/openai/request.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model_runner/engine/engine.h"
#include "services/openai/api_error.h"
#include "services/openai/generation.h"
#include "services/openai/response.h"

namespace entroserve::openai {
namespace {

using nlohmann::json;

json Completion(json extra) {
  json body = {{"model", "tiny"}, {"prompt", "Hello"}};
  body.update(extra);
  return body;
}

json Chat(json extra) {
  json body = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  body.update(extra);
  return body;
}

// The error of parsing `body`, which must be a 400.
ApiError ErrorOf(Endpoint endpoint, const json& body) {
  OpenAIRequest request;
  MaybeError error = ParseRequestJson(endpoint, body, &request);
  EXPECT_TRUE(error.has_value()) << body.dump();
  if (!error) return ApiError();
  EXPECT_EQ(error->status, 400) << body.dump();
  EXPECT_EQ(error->type, "invalid_request_error");
  return *error;
}

TEST(ParseRequest, EveryBadFieldIsA400NamingIt) {
  const std::vector<std::pair<json, std::string>> completions = {
      {Completion({{"temperature", 2.5}}), "temperature"},
      {Completion({{"temperature", "hot"}}), "temperature"},
      {Completion({{"top_p", 0}}), "top_p"},
      {Completion({{"top_k", -2}}), "top_k"},
      {Completion({{"top_k", 1.5}}), "top_k"},
      {Completion({{"min_p", 1}}), "min_p"},
      {Completion({{"presence_penalty", 3}}), "presence_penalty"},
      {Completion({{"frequency_penalty", -2.1}}), "frequency_penalty"},
      {Completion({{"repetition_penalty", 0}}), "repetition_penalty"},
      {Completion({{"logit_bias", {{"abc", 1}}}}), "logit_bias"},
      {Completion({{"logit_bias", {{"5", 101}}}}), "logit_bias"},
      {Completion({{"logit_bias", json::array()}}), "logit_bias"},
      {Completion({{"seed", -1}}), "seed"},
      {Completion({{"seed", "1"}}), "seed"},
      {Completion({{"stop", ""}}), "stop"},
      {Completion({{"stop", {"a", 3}}}), "stop[1]"},
      {Completion({{"stop", json::array({"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11",
                                         "12", "13", "14", "15", "16", "17"})}}),
       "stop"},
      {Completion({{"n", 0}}), "n"},
      {Completion({{"n", 129}}), "n"},
      {Completion({{"max_tokens", 0}}), "max_tokens"},
      {Completion({{"max_tokens", "16"}}), "max_tokens"},
      {Completion({{"logprobs", 21}}), "logprobs"},
      {Completion({{"logprobs", true}}), "logprobs"},
      {Completion({{"stream", 1}}), "stream"},
      {Completion({{"stream_options", {{"include_usage", true}}}}), "stream_options"},
      {Completion({{"stream", true}, {"stream_options", {{"continuous", true}}}}),
       "stream_options.continuous"},
      {Completion({{"stream", true}, {"stream_options", {{"include_usage", 1}}}}),
       "stream_options.include_usage"},
      {Completion({{"user", 5}}), "user"},
      {Completion({{"sampler", 5}}), "sampler"},
      {Completion({{"sampler_spec", "entropix"}}), "sampler_spec"},
      {Completion({{"sampler", "entropix"}, {"sampler_spec", {{"name", "alpha"}}}}),
       "sampler_spec"},
      {Completion({{"sampler_details", "yes"}}), "sampler_details"},
      {Completion({{"ignore_eos", 0}}), "ignore_eos"},
      {Completion({{"stop_token_ids", {1, -1}}}), "stop_token_ids[1]"},
      {Completion({{"allowed_token_ids", 5}}), "allowed_token_ids"},
      {Completion({{"allowed_token_ids", {4, "5"}}}), "allowed_token_ids[1]"},
      {Completion({{"dry_sequence_breakers", {"\n", ""}}}), "dry_sequence_breakers[1]"},
      {Completion({{"dry_sequence_breakers", 3}}), "dry_sequence_breakers"},
      {Completion({{"echo", true}}), "echo"},
      {Completion({{"best_of", 2}}), "best_of"},
      {Completion({{"suffix", "x"}}), "suffix"},
      {Completion({{"prompt", 5}}), "prompt"},
      {Completion({{"prompt", json::array()}}), "prompt"},
      {Completion({{"prompt", {"a", "b"}}}), "prompt"},
      {Completion({{"prompt", {1, -3}}}), "prompt[1]"},
      {Completion({{"model", 3}}), "model"},
      {json{{"prompt", "x"}}, "model"},
      {json{{"model", "tiny"}}, "prompt"},
      {Completion({{"messages", json::array()}}), "messages"},
      {Completion({{"top_logprobs", 2}}), "top_logprobs"},
      {Completion({{"max_completion_tokens", 2}}), "max_completion_tokens"},
      {Completion({{"frobnicate", true}}), "frobnicate"},
  };
  for (const auto& [body, param] : completions) {
    EXPECT_EQ(ErrorOf(Endpoint::kCompletions, body).param.value_or("<none>"), param) << body.dump();
  }
  const std::vector<std::pair<json, std::string>> chats = {
      {Chat({{"messages", json::array()}}), "messages"},
      {Chat({{"messages", "hi"}}), "messages"},
      {Chat({{"messages", {"hi"}}}), "messages[0]"},
      {Chat({{"messages", {{{"content", "hi"}}}}}), "messages[0].role"},
      {Chat({{"messages", {{{"role", "tool"}, {"content", "hi"}}}}}), "messages[0].role"},
      {Chat({{"messages", {{{"role", "user"}, {"content", 3}}}}}), "messages[0].content"},
      {Chat({{"messages", {{{"role", "user"}, {"content", "a"}, {"extra", 1}}}}}),
       "messages[0].extra"},
      {Chat({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}),
       "messages[0].content[0]"},
      {Chat({{"logprobs", 1}}), "logprobs"},
      {Chat({{"top_logprobs", 21}}), "top_logprobs"},
      {Chat({{"top_logprobs", 3}}), "top_logprobs"},
      {Chat({{"max_completion_tokens", 0}}), "max_completion_tokens"},
      {Chat({{"tools", json::array()}}), "tools"},
      {Chat({{"response_format", {{"type", "json_object"}}}}), "response_format"},
      {Chat({{"prompt", "x"}}), "prompt"},
      {Chat({{"echo", false}}), "echo"},
      {json{{"model", "tiny"}}, "messages"},
  };
  for (const auto& [body, param] : chats) {
    EXPECT_EQ(ErrorOf(Endpoint::kChat, body).param.value_or("<none>"), param) << body.dump();
  }
}

TEST(ParseRequest, BodiesThatAreNotJsonObjects) {
  OpenAIRequest request;
  MaybeError error = ParseRequest(Endpoint::kChat, "{\"model\": ", &request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, 400);
  EXPECT_FALSE(error->param.has_value());
  error = ParseRequest(Endpoint::kChat, "[1, 2]", &request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, 400);
  error = ParseRequest(Endpoint::kChat, "{\"model\": \"\xff\"}", &request);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->status, 400);
}

TEST(ParseRequest, EveryFieldLandsWhereItShould) {
  OpenAIRequest r;
  const json body = Chat({{"max_tokens", 9},
                          {"max_completion_tokens", 7},
                          {"temperature", 0.5},
                          {"top_p", 0.9},
                          {"top_k", -1},
                          {"min_p", 0.05},
                          {"presence_penalty", 0.1},
                          {"frequency_penalty", -0.1},
                          {"repetition_penalty", 1.1},
                          {"logit_bias", {{"42", -100}}},
                          {"seed", 18446744073709551615ull},
                          {"stop", "\n"},
                          {"n", 3},
                          {"logprobs", true},
                          {"top_logprobs", 4},
                          {"stream", true},
                          {"stream_options", {{"include_usage", true}}},
                          {"user", "u"},
                          {"sampler", "entropix"},
                          {"sampler_details", true},
                          {"ignore_eos", true},
                          {"stop_token_ids", {2}},
                          {"allowed_token_ids", {9, 3, 9}},
                          {"dry_sequence_breakers", {"\n", "Bob:"}}});
  ASSERT_FALSE(ParseRequestJson(Endpoint::kChat, body, &r).has_value());
  EXPECT_EQ(r.allowed_token_ids, (std::vector<int32_t>{9, 3, 9}));
  EXPECT_EQ(r.dry_sequence_breakers, (std::vector<std::string>{"\n", "Bob:"}));
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(r.max_tokens_field, "max_completion_tokens");
  EXPECT_FLOAT_EQ(*r.sampling.temperature, 0.5f);
  EXPECT_EQ(*r.sampling.top_k, -1);
  EXPECT_FLOAT_EQ(r.sampling.logit_bias->at(42), -100.0f);
  EXPECT_EQ(*r.seed, 18446744073709551615ull);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 4);
  EXPECT_TRUE(r.stream && r.include_usage && r.sampler_details && r.ignore_eos);
  EXPECT_EQ(*r.sampler, "entropix");
  EXPECT_EQ(r.messages.size(), 1u);

  ASSERT_FALSE(ParseRequestJson(Endpoint::kCompletions,
                                Completion({{"prompt", json::array({json::array({1, 2, 3})})},
                                            {"logprobs", 0},
                                            {"seed", 5},
                                            {"echo", false},
                                            {"suffix", nullptr}}),
                                &r)
                   .has_value());
  EXPECT_EQ(*r.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  EXPECT_EQ(*r.seed, 5u);

  ASSERT_FALSE(
      ParseRequestJson(
          Endpoint::kChat,
          Chat({{"messages",
                 {{{"role", "developer"}, {"content", nullptr}},
                  {{"role", "user"},
                   {"content",
                    {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}}}),
          &r)
          .has_value());
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
}

OpenAIRequest Parsed(const json& body) {
  OpenAIRequest r;
  EXPECT_FALSE(ParseRequestJson(Endpoint::kCompletions, body, &r).has_value()) << body.dump();
  return r;
}

TEST(BuildSamplerConfig, OpenAIFieldsConfigureChain) {
  SamplerConfig config;
  ASSERT_FALSE(
      BuildSamplerConfig(
          Parsed(Completion({{"temperature", 0.7}, {"top_k", 40}, {"logit_bias", {{"3", 5}}}})),
          100, &config)
          .has_value());
  const auto& chain = std::get<ChainConfig>(config);
  EXPECT_FLOAT_EQ(chain.temperature, 0.7f);
  EXPECT_EQ(chain.top_k, 40);
  EXPECT_FLOAT_EQ(chain.logit_bias.at(3), 5.0f);
  // temperature 0: greedy as chain with top_k 1.
  ASSERT_FALSE(
      BuildSamplerConfig(Parsed(Completion({{"temperature", 0}, {"top_k", 7}})), 100, &config)
          .has_value());
  EXPECT_EQ(std::get<ChainConfig>(config).top_k, 1);
  // Nothing given: chain's defaults.
  ASSERT_FALSE(BuildSamplerConfig(Parsed(Completion(json::object())), 100, &config).has_value());
  EXPECT_TRUE(std::holds_alternative<ChainConfig>(config));
}

TEST(BuildSamplerConfig, NamedSamplerAndSpec) {
  SamplerConfig config;
  ASSERT_FALSE(
      BuildSamplerConfig(Parsed(Completion({{"sampler", "entropix"}, {"temperature", 0.5}})), 100,
                         &config)
          .has_value());
  EXPECT_FLOAT_EQ(std::get<EntropixConfig>(config).temperature, 0.5f);
  ASSERT_FALSE(
      BuildSamplerConfig(
          Parsed(Completion({{"sampler_spec", {{"entropix", {{"topK", 12}}}}}, {"min_p", 0.1}})),
          100, &config)
          .has_value());
  EXPECT_EQ(std::get<EntropixConfig>(config).top_k, 12);
  EXPECT_FLOAT_EQ(std::get<EntropixConfig>(config).min_p, 0.1f);

  const std::vector<std::pair<json, std::string>> bad = {
      {Completion({{"sampler", "nucleus"}}), "sampler"},
      {Completion({{"sampler", "greedy"}, {"temperature", 1}}), "temperature"},
      {Completion({{"sampler", "entropix"}, {"temperature", 0}}), "temperature"},
      {Completion({{"sampler", "entropix"}, {"logit_bias", {{"1", 1}}}}), "logit_bias"},
      {Completion({{"sampler_spec", {{"chain", {{"top_k", 3}}}}}, {"top_k", 4}}), "top_k"},
      {Completion({{"sampler_spec", {{"chain", {{"temperature", -1}}}}}}), "sampler_spec"},
      {Completion({{"sampler_spec", {{"chain", {{"bogus", 1}}}}}}), "sampler_spec"},
      {Completion({{"sampler_spec", {{"name", "alpha"}, {"chain", json::object()}}}}),
       "sampler_spec"},
      {Completion({{"logit_bias", {{"100", 1}}}}), "logit_bias"},
  };
  for (const auto& [body, param] : bad) {
    MaybeError error = BuildSamplerConfig(Parsed(body), 100, &config);
    ASSERT_TRUE(error.has_value()) << body.dump();
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->param.value_or("<none>"), param) << body.dump() << ": " << error->message;
  }
}

TEST(SubmitError, NamesTheClientsFields) {
  OpenAIRequest r = Parsed(Completion({{"max_tokens", 5000}}));
  ApiError e = SubmitError(absl::InvalidArgumentError("max_new_tokens is 5000, but ..."), r);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(*e.param, "max_tokens");
  EXPECT_EQ(e.message, "max_tokens is 5000, but ...");
  e = SubmitError(absl::ResourceExhaustedError("queue full (3 waiting)"), r);
  EXPECT_EQ(e.status, 429);
  e = SubmitError(absl::UnavailableError("the server is shutting down"), r);
  EXPECT_EQ(e.status, 503);
  e = SubmitError(absl::InvalidArgumentError("n is 9; must be in [1, 8]"), r);
  EXPECT_EQ(*e.param, "n");
}

TEST(ErrorJson, OpenAIsShape) {
  const json body = ErrorJson(BadField("top_p", "top_p must be in (0, 1], got 2"));
  EXPECT_EQ(body, json::parse(R"({"error": {"message": "top_p must be in (0, 1], got 2",
      "type": "invalid_request_error", "param": "top_p", "code": null}})"));
}

TEST(ChunkWriter, ChatChunksAndTheEnd) {
  ResponseContext context;
  context.endpoint = Endpoint::kChat;
  context.id = "chatcmpl-1";
  context.created = 7;
  context.model = "tiny";
  context.include_usage = true;
  ChunkWriter writer(context);
  EXPECT_EQ(writer.Start(),
            "data: {\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},"
            "\"finish_reason\":null,\"index\":0,\"logprobs\":null}],\"created\":7,"
            "\"id\":\"chatcmpl-1\",\"model\":\"tiny\",\"object\":\"chat.completion.chunk\","
            "\"seed\":0,\"usage\":null}\n\n");
  TokenOutput token;
  token.text = "Hi";
  EXPECT_NE(writer.Token(token).find("\"delta\":{\"content\":\"Hi\"}"), std::string::npos);
  token.text = "";
  EXPECT_EQ(writer.Token(token), "");  // held back: nothing to say yet
  EXPECT_EQ(writer.ChoiceEnded({0, FinishReason::kCancelled, 1}), "");
  EXPECT_NE(writer.ChoiceEnded({0, FinishReason::kEos, 1}).find("\"finish_reason\":\"stop\""),
            std::string::npos);
  GenerationEnd end;
  end.prompt_tokens = 3;
  end.generated_tokens = 1;
  const std::string last = writer.Finish(end);
  EXPECT_NE(last.find("\"choices\":[]"), std::string::npos);
  EXPECT_NE(last.find("\"total_tokens\":4"), std::string::npos);
  EXPECT_EQ(last.substr(last.size() - 14), "data: [DONE]\n\n");
}

}  // namespace
}  // namespace entroserve::openai
