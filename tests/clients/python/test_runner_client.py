"""entroserve.RunnerClient against runnerd on models/tiny (sampling through a
real samplerd): generations equal samplerctl generate --json's."""

import json

import grpc
import pytest
from google.protobuf import json_format

from conftest import run_samplerctl
from entroserve import EntroserveError, Mode, RunnerClient
from entroserve._proto.runner.v1 import runner_pb2

PROMPT = "The jury said"


@pytest.fixture(scope="module")
def runner(runnerd):
    with RunnerClient(runnerd.address, timeout=120) as r:
        yield r


def samplerctl_generate(runnerd, sampler, seed, max_new_tokens):
    out = run_samplerctl(["generate", f"--server={runnerd.address}", f"--prompt={PROMPT}",
                          f"--sampler={sampler}", f"--seed={seed}",
                          f"--max_new_tokens={max_new_tokens}", "--ignore_eos", "--json"])
    lines = [l for l in out.splitlines() if l.strip()]
    tokens = [json_format.Parse(l, runner_pb2.GeneratedToken()) for l in lines[:-1]]
    summary = json_format.Parse(lines[-1], runner_pb2.GenerateResponse())
    return tokens, summary


@pytest.mark.parametrize("sampler,seed", [("entropix", 7), ("alpha", 11), ("chain", 3)])
def test_generation_equals_samplerctl_generate_json(runnerd, runner, sampler, seed):
    expected, summary = samplerctl_generate(runnerd, sampler, seed, 24)
    gen = runner.generate(prompt=PROMPT, sampler=sampler, seed=seed, max_new_tokens=24,
                          ignore_eos=True)
    streamed = [t for t in gen]
    assert len(expected) == 24
    assert [t.id for t in streamed] == [t.id for t in expected]
    assert [t.mode for t in streamed] == [Mode(t.mode) for t in expected]
    for got, want in zip(streamed, expected):
        assert got.proto.params == want.params and got.proto.signals == want.signals
        assert got.text == want.text and got.inserted == want.inserted
    assert gen.finish_reason == "length"
    assert gen.seed == summary.seed == seed
    assert gen.prompt_tokens == summary.prompt_tokens
    assert gen.usage.generated_tokens == 24 == summary.usage.generated_tokens
    assert gen.text == "".join(t.text for t in expected)


def test_token_ids_input_equals_text_input(runner):
    ids = runner.tokenize(PROMPT).ids
    by_text = runner.generate(prompt=PROMPT, sampler="entropix", seed=5, max_new_tokens=12,
                              ignore_eos=True).result()
    by_ids = runner.generate(token_ids=ids, sampler="entropix", seed=5, max_new_tokens=12,
                             ignore_eos=True).result()
    assert by_ids.token_ids == by_text.token_ids
    assert by_ids.prompt_tokens == len(ids) == by_text.prompt_tokens


def test_chat_messages_and_stop_strings(runner):
    gen = runner.generate(messages=[{"role": "system", "content": "You are brief."},
                                    ("user", "Tell me about Texas.")],
                          sampler="greedy", max_new_tokens=16).result()
    assert 1 <= len(gen.tokens) <= 16
    assert gen.finish_reason in ("length", "eos")
    assert gen.usage.generated_tokens == len(gen.tokens)
    assert all(t.mode == Mode.GREEDY for t in gen.tokens)
    # A stop string found in the greedy text ends the generation before it.
    full = runner.generate(prompt=PROMPT, sampler="greedy", max_new_tokens=24,
                           ignore_eos=True).result()
    stop = full.text.strip().split()[1] if len(full.text.split()) > 2 else None
    if stop:
        stopped = runner.generate(prompt=PROMPT, sampler="greedy", max_new_tokens=24,
                                  ignore_eos=True, stop=[stop]).result()
        assert stopped.finish_reason == "stop"
        assert stop not in stopped.text and full.text.startswith(stopped.text)


def test_info_tokenize_detokenize(runner):
    info = runner.info()
    assert info.family == "llama" and info.vocab_size > 0 and info.layers > 0
    tokenized = runner.tokenize(PROMPT)
    assert len(tokenized.ids) == len(tokenized.pieces) > 1
    assert runner.detokenize(tokenized.ids, skip_special_tokens=True) == PROMPT
    chat = runner.tokenize(messages=[{"role": "user", "content": "Hi"}])
    assert len(chat.ids) > 1


def test_bad_requests_raise_the_servers_message(runner, runnerd):
    with pytest.raises(EntroserveError) as info:
        runner.generate(prompt=PROMPT, max_new_tokens=0).result()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_new_tokens" in info.value.message and info.value.from_server
    with pytest.raises(EntroserveError) as info:
        runner.generate(token_ids=[10**7], max_new_tokens=2).result()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(EntroserveError) as info:
        runner.generate(prompt=PROMPT, sampler="chain { temperature: -1 }",
                        max_new_tokens=2).result()
    assert "temperature" in info.value.message
    with pytest.raises(EntroserveError) as info:
        runner.generate(prompt=PROMPT, messages=[("user", "x")])
    assert not info.value.from_server
    assert runnerd.alive()
    assert len(runner.generate(prompt=PROMPT, max_new_tokens=2).result().tokens) == 2


def test_generation_summary_is_json_serialisable(runner):
    gen = runner.generate(prompt=PROMPT, sampler="entropix", seed=1, max_new_tokens=4).result()
    record = {"ids": gen.token_ids, "modes": [str(t.mode) for t in gen.tokens],
              "params": [t.params.as_dict() for t in gen.tokens]}
    assert json.loads(json.dumps(record))["ids"] == gen.token_ids
    assert all(m in {"flowing", "clarify", "explore", "resample", "adaptive"}
               for m in record["modes"])


def test_a_loop_left_early_resumes_where_it_stopped(runner):
    whole = runner.generate(prompt=PROMPT, sampler="entropix", seed=9, max_new_tokens=16,
                            ignore_eos=True).result()
    gen = runner.generate(prompt=PROMPT, sampler="entropix", seed=9, max_new_tokens=16,
                          ignore_eos=True)
    first = []
    for token in gen:
        first.append(token.id)
        if len(first) == 3:
            break
    assert gen.finish_reason is None
    assert [t.id for t in gen] == whole.token_ids  # again from the start, then on
    assert gen.finish_reason == "length" and gen.usage.generated_tokens == 16
    assert first == whole.token_ids[:3]


def test_allowed_token_ids_and_dry_breakers_reach_runnerd(runner):
    allowed = [17, 250, 251, 4000]
    generation = runner.generate("The jury said", max_new_tokens=8, seed=3,
                                 sampler={"chain": {"stages": ["dry", "dist"],
                                                    "dry_multiplier": 0.8}},
                                 allowed_token_ids=allowed,
                                 dry_sequence_breakers=["\n", ":"]).result()
    assert all(t in allowed for t in generation.token_ids)
    assert len(generation.token_ids) == 8
