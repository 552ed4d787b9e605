"""entroserve.SamplerClient against a real samplerd: rows equal samplerctl's,
bad arrays come back as EntroserveError with the server's message, and a
session keeps each row's state."""

import os
import signal
import socket
import time

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

import entroserve
from conftest import Server, log_dir, run_samplerctl
from entroserve import EntroserveError, Mode, RawTensor, SamplerClient
from entroserve._proto.sampler.v1 import sampler_pb2, tensor_pb2

VOCAB = 512
HEADS = 8
KEYS = 13


def peaked_logits(rng, vocab=VOCAB, scale=3.0):
    """Logits of a trained-model-like shape: a few likely tokens."""
    logits = rng.normal(size=vocab).astype(np.float32)
    logits[rng.integers(0, vocab, size=4)] += scale * rng.random(4).astype(np.float32) * 3
    return logits


@pytest.fixture(scope="module")
def client(samplerd):
    with SamplerClient(samplerd.address, timeout=20) as c:
        yield c


def samplerctl_sample(samplerd, logits_bytes, attention_bytes, dtype, spec, seed, step):
    folder = log_dir()
    logits_path = os.path.join(folder, f"row-{os.getpid()}.logits")
    attention_path = os.path.join(folder, f"row-{os.getpid()}.attention")
    with open(logits_path, "wb") as f:
        f.write(logits_bytes)
    with open(attention_path, "wb") as f:
        f.write(attention_bytes)
    out = run_samplerctl(["sample", f"--server={samplerd.address}", f"--logits={logits_path}",
                          f"--attention={attention_path}", f"--heads={HEADS}",
                          f"--dtype={dtype}", f"--spec={spec}", f"--seed={seed}",
                          f"--step={step}", "--json"])
    return json_format.Parse(out.strip(), sampler_pb2.SampleResult())


@pytest.mark.parametrize("spec", ["entropix {}", "chain { temperature: 0.8 top_k: 40 }",
                                  "alpha {}", "mirostat_v2 { tau: 4 }"])
def test_row_equals_samplerctl_sample(samplerd, client, spec):
    rng = np.random.default_rng(abs(hash(spec)) % 2**32)
    for trial in range(3):
        logits = peaked_logits(rng, scale=float(trial))
        attention = (2 * rng.normal(size=(HEADS, KEYS))).astype(np.float32)
        seed, step = 1000 + trial, 0  # later steps need the state samplerctl has not
        expected = samplerctl_sample(samplerd, logits.astype("<f4").tobytes(),
                                     attention.astype("<f4").tobytes(), "f32", spec, seed, step)
        got = client.sample(logits, attention, spec=spec, seed=seed, step=step,
                            sequence_id="samplerctl")
        assert expected.error.message == ""
        assert got.token == expected.token_id
        assert got.mode == Mode(expected.mode)
        assert got.params == entroserve.SamplingParams.from_proto(expected.params)
        assert got.params.temperature is not None
        assert got.proto == expected  # signals, logprob, state and seed too


def test_bfloat16_row_equals_samplerctl_with_torch_rounded_file(samplerd, client):
    """The client's bf16 encoding equals torch's round-to-nearest-even, as the
    file samplerctl sends."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    logits = peaked_logits(rng)
    attention = rng.normal(size=(HEADS, KEYS)).astype(np.float32)

    def bf16_bytes(a):
        return torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().astype(
            "<i2").tobytes()
    expected = samplerctl_sample(samplerd, bf16_bytes(logits), bf16_bytes(attention), "bf16",
                                 "entropix {}", 77, 0)
    got = client.sample(logits, attention, spec="entropix", seed=77, sequence_id="samplerctl",
                        dtype="bfloat16")
    assert got.proto == expected
    # torch tensors (bf16 included) go through the same path.
    got_torch = client.sample(torch.from_numpy(logits).to(torch.bfloat16),
                              torch.from_numpy(attention), spec="entropix", seed=77,
                              sequence_id="samplerctl", dtype="bfloat16")
    assert got_torch.proto == expected


def test_batch_rows_equal_single_rows(client):
    rng = np.random.default_rng(11)
    logits = np.stack([peaked_logits(rng) for _ in range(3)])
    attention = rng.normal(size=(3, HEADS, KEYS)).astype(np.float32)
    batch = client.sample(logits, attention, spec="entropix", seed=[1, 2, 3])
    assert [r.sequence_id for r in batch] == ["0", "1", "2"]
    for i, r in enumerate(batch):
        alone = client.sample(logits[i], attention[i], spec="entropix", seed=i + 1,
                              sequence_id=str(i))
        assert alone.proto == r.proto


def expect_server_error(call, fragment):
    with pytest.raises(EntroserveError) as info:
        call()
    error = info.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.from_server, error
    assert fragment in error.message, error.message
    return error


def test_bad_arrays_raise_the_servers_message_and_it_keeps_serving(samplerd, client):
    good = peaked_logits(np.random.default_rng(3))
    # What the client refuses itself (integers, complex numbers, a rank it
    # cannot read as rows)...
    for bad in (np.arange(VOCAB, dtype=np.int64), good.astype(np.complex64),
                np.zeros((2, 3, VOCAB), np.float32)):
        with pytest.raises(EntroserveError) as info:
            client.sample(bad)
        assert not info.value.from_server
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    # ...sent raw, so that samplerd's checks answer.
    int64 = RawTensor.from_array(np.arange(VOCAB, dtype=np.int64))
    e = expect_server_error(lambda: client.sample(int64), "logits.data has")
    assert e.row == 0 and str(VOCAB * 8) in e.message
    expect_server_error(lambda: client.sample(RawTensor.from_array(good.astype(np.complex64))),
                        "logits.data has")
    expect_server_error(lambda: client.sample(RawTensor.from_array(good, dtype=9)), "dtype")
    expect_server_error(
        lambda: client.sample(RawTensor.from_array(np.zeros((2, 3, VOCAB), np.float32))),
        "logits must have shape [V]")
    nan = good.copy()
    nan[17] = np.nan
    expect_server_error(lambda: client.sample(nan), "logits[17] is NaN")
    expect_server_error(lambda: client.sample(good, np.full((HEADS, KEYS), np.inf, np.float32)),
                        "attention")
    expect_server_error(
        lambda: client.sample(good, RawTensor.from_array(np.ones(HEADS * KEYS, np.float32))),
        "attention")
    # One bad row of a batch: the others are answered (check=False).
    results = client.sample(np.stack([good, nan, good]), spec="greedy", check=False)
    assert results[1].error is not None and "NaN" in results[1].error.message
    assert results[1].error.row == 1
    assert results[0].error is None and results[0].token == int(np.argmax(good))
    assert results[2].token == results[0].token
    # The server is still up and serving.
    assert samplerd.alive()
    assert client.sample(good, spec="greedy").token == int(np.argmax(good))


def test_unreachable_server_raises_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SamplerClient(f"127.0.0.1:{port}", timeout=5) as dead:
        with pytest.raises(EntroserveError) as info:
            dead.samplers()
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_samplers_lists_every_sampler_with_defaults(client):
    infos = {i.name: i for i in client.samplers()}
    assert {"greedy", "chain", "entropix", "alpha"} <= set(infos)
    assert infos["entropix"].uses_attention
    assert infos["entropix"].defaults.entropix.HasField("temperature")


def step_logits(rng_seed, row, step, previous):
    """Each step's logits depend on the row, the step and the previous token."""
    rng = np.random.default_rng([rng_seed, row, step, previous])
    return peaked_logits(rng, scale=1.0 + (step % 3)), rng.normal(
        size=(HEADS, KEYS + step)).astype(np.float32)


@pytest.mark.parametrize("spec", ["alpha", "mirostat_v2", "chain { repetition_penalty: 1.3 }"])
def test_session_keeps_each_rows_state(client, spec):
    """A 2-row batch over several steps equals each row alone; the state
    carried matters (alpha's window, mirostat's mu, the penalties' history)."""
    steps, seeds, prompts = 8, [5, 9], [[1, 2, 3], [4, 5]]
    batch = client.session(2, spec=spec, seed=seeds, prompts=prompts)
    alone = [client.session(1, spec=spec, seed=seeds[i], prompts=[prompts[i]],
                            stream=(i == 1)) for i in range(2)]
    previous = [0, 0]
    for step in range(steps):
        inputs = [step_logits(3, row, step, previous[row]) for row in range(2)]
        got = batch.step(np.stack([x[0] for x in inputs]), [x[1] for x in inputs])
        for row in range(2):
            single = alone[row].step(inputs[row][0], inputs[row][1])
            assert single.proto.token_id == got[row].proto.token_id
            assert single.proto.params == got[row].proto.params
            assert single.proto.state == got[row].proto.state
            assert got[row].step == step and got[row].state.next_step == step + 1
            assert got[row].seed == seeds[row]
            previous[row] = got[row].token
    for s in [batch] + alone:
        s.close()
    # Each row's state holds its own history: its prompt, then its tokens.
    for row in range(2):
        tokens = [r.token for r in batch.history[row]]
        assert list(batch.states[row].recent_tokens) == prompts[row] + tokens
        assert batch.states[row].next_step == steps


def test_session_without_seed_keeps_the_servers_seed(client):
    rng = np.random.default_rng(2)
    session = client.session(1, spec="entropix")
    first = session.step(peaked_logits(rng))
    second = session.step(peaked_logits(rng))
    assert first.seed != 0 and second.seed == first.seed
    assert second.step == 1


def test_spec_forms_agree(client):
    logits = peaked_logits(np.random.default_rng(8))
    forms = ["chain { temperature: 0.5 top_k: 3 }",
             {"chain": {"temperature": 0.5, "top_k": 3}},
             sampler_pb2.SamplerSpec(chain=sampler_pb2.ChainConfig(temperature=0.5, top_k=3))]
    results = [client.sample(logits, spec=f, seed=4) for f in forms]
    assert all(r.proto == results[0].proto for r in results)
    assert results[0].params.top_k == 3
    with pytest.raises(EntroserveError):
        client.sample(logits, spec="chain { no_such_field: 1 }")


def test_tensor_encoding_round_trips():
    from entroserve import tensors
    values = np.array([0.0, -1.5, 3.14159, 1e-8, -np.inf, 65504.0], np.float32)
    for name in ("float32", "float16", "bfloat16"):
        wire = tensors.encode(values, tensors.wire_dtype(name))
        assert list(wire.shape) == [6]
        back = tensors.decode(wire)
        assert back[4] == -np.inf
        assert np.allclose(back[:4], values[:4], rtol=1e-2, atol=1e-7)
    assert tensors.encode(values, tensor_pb2.DTYPE_FLOAT32).data == values.astype("<f4").tobytes()


def test_a_stream_whose_samplerd_hangs_fails_after_the_answer_timeout():
    server = Server("samplerd", ["--host=127.0.0.1", "--port=0", "--workers=1"])
    try:
        with SamplerClient(server.address, timeout=1.5) as client:
            logits = np.linspace(-3, 3, 50).astype(np.float32)
            session = client.session(spec="greedy", stream=True)
            assert session.step(logits).token == 49
            os.kill(server.process.pid, signal.SIGSTOP)
            # kill() returns before the stop takes effect: wait until it has.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(f"/proc/{server.process.pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "T":
                        break
                time.sleep(0.01)
            try:
                start = time.monotonic()
                with pytest.raises(EntroserveError) as e:
                    session.step(logits)
                waited = time.monotonic() - start
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no answer from samplerd within 1.5 s" in str(e.value)
            assert 1.4 < waited < 10
            # The session's stream is closed; a new one works again.
            again = client.session(spec="greedy", stream=True)
            assert again.step(logits).token == 49
            again.close()
            session.close()
    finally:
        server.stop()


def test_appended_tokens_may_be_arrays_including_one_token_zero(samplerd):
    # Token 0 leads token 1 by a little; a repetition penalty on the prompt's
    # tokens turns that around only if the prompt (token 0) reaches samplerd.
    logits = np.zeros(16, dtype=np.float32)
    logits[0], logits[1] = 3.0, 2.5
    spec = "chain { repetition_penalty: 2.0 top_k: 1 }"
    with SamplerClient(samplerd.address, timeout=20) as client:
        assert client.sample(logits, spec=spec, seed=1).token == 0
        for prompt in ([0], np.array([0]), np.array([0], dtype=np.int64)):
            assert client.sample(logits, spec=spec, seed=1, appended_tokens=prompt).token == 1
        batch = np.stack([logits, logits])
        got = client.sample(batch, spec=spec, seed=1, appended_tokens=np.array([[0], [5]]))
        assert [r.token for r in got] == [1, 0]


def test_allowed_tokens_travel_in_the_smaller_form_and_restrict_every_sampler(client):
    few = entroserve.sampler.make_allowed_tokens([3, 500, 3], VOCAB)
    assert list(few.ids.ids) == [3, 500]  # 1 + 2 varint bytes < 64 bytes of bitmask
    many = entroserve.sampler.make_allowed_tokens(range(0, VOCAB, 2), VOCAB)
    assert many.WhichOneof("set") == "bitmask" and many.bitmask[:1] == b"\x55"
    rng = np.random.default_rng(5)
    allowed = [7, 100, 101, 300]
    for spec in ["entropix {}", "alpha {}", "greedy {}",
                 'chain { stages: ["top_k", "temperature", "dist"] top_k: 2 temperature: 0.7 }']:
        for seed in range(20):
            result = client.sample(peaked_logits(rng), spec=spec, seed=seed,
                                   allowed_tokens=allowed)
            assert result.token in allowed, spec


def test_a_set_allowing_nothing_and_a_bad_stage_list_are_named(client):
    logits = np.zeros(VOCAB, dtype=np.float32)
    with pytest.raises(EntroserveError, match=r"rows\[0\]\.allowed_tokens allows no token"):
        client.sample(logits, spec="greedy", allowed_tokens=[])
    with pytest.raises(EntroserveError, match=r'chain\.stages\[0\] \("dist"\) is a selector'):
        client.sample(logits, spec={"chain": {"stages": ["dist", "top_k"]}})
