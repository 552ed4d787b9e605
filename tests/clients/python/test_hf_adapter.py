"""entroserve.hf without transformers: the logits processor's logic in a fake
generate loop equals SamplerClient called directly, and the attention capture
equals transformers' eager math (written out here) on the keys that exist."""

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from entroserve import Mode, SamplerClient  # noqa: E402
from entroserve import hf  # noqa: E402

VOCAB = 256
HEADS = 4
PAD = 0
CLARIFYING = 63
PAUSE = 64
SPECIAL = {"clarifying_question": CLARIFYING, "pause": PAUSE, "eos": 2}
# Step at which row 0's distribution is uniform: high entropy, no varentropy,
# so entropix inserts the clarifying token.
UNIFORM_STEP = 3


def fake_forward(input_ids, step):
    """Deterministic scores [B, V] and attention rows [H, keys] from each row's
    tokens (left padding excluded), as a model would give."""
    scores, attention = [], []
    for b, row in enumerate(input_ids.tolist()):
        start = 0
        while row[start] == PAD:
            start += 1
        real = row[start:]
        rng = np.random.default_rng(real)
        logits = rng.normal(size=VOCAB).astype(np.float32)
        logits[rng.integers(0, VOCAB, size=3)] += rng.uniform(2, 8, size=3).astype(np.float32)
        if b == 0 and step == UNIFORM_STEP:
            logits[:] = 0.0
        scores.append(logits)
        attention.append((2 * rng.normal(size=(HEADS, len(real)))).astype(np.float32))
    return torch.tensor(np.stack(scores)), attention


def fake_generate(processor, prompt_ids, new_tokens):
    """model.generate's loop: scores -> processors -> argmax -> append."""
    ids = torch.tensor(prompt_ids)
    captured = {}
    processor.attention = lambda: captured["rows"]
    for step in range(new_tokens):
        scores, captured["rows"] = fake_forward(ids, step)
        forced = processor(ids, scores)
        assert forced.shape == scores.shape and forced.dtype == scores.dtype
        finite = torch.isfinite(forced)
        assert finite.sum(dim=1).tolist() == [1] * ids.shape[0]
        ids = torch.cat([ids, forced.argmax(dim=-1, keepdim=True)], dim=1)
    return ids


@pytest.fixture(scope="module")
def client(samplerd):
    with SamplerClient(samplerd.address, timeout=20) as c:
        yield c


@pytest.mark.parametrize("stream", [True, False])
def test_processor_equals_sampler_client_called_directly(client, stream):
    prompts = [[5, 6, 7, 8], [PAD, PAD, 9, 10]]
    seeds = [21, 22]
    new_tokens = 8
    processor = hf.SamplerForcing(client, spec="entropix", seed=seeds, special_tokens=SPECIAL,
                                  pad_token_id=PAD, stream=stream)
    out = fake_generate(processor, prompts, new_tokens)

    # The same through SamplerClient, row by row, with the state fed back.
    for b, prompt in enumerate(prompts):
        real = [t for t in prompt if t != PAD]
        ids = torch.tensor([prompt])
        state = None
        for step in range(new_tokens):
            scores, attention = fake_forward(ids, step if b == 0 else -1)
            r = client.sample(scores[0].numpy(), attention[0], spec="entropix", state=state,
                              seed=seeds[b], special_tokens=SPECIAL,
                              appended_tokens=real if step == 0 else None)
            got = processor.history[b][step]
            assert got.token == r.token == int(out[b, len(prompt) + step])
            assert got.proto.params == r.proto.params and got.mode == r.mode
            assert got.proto.state == r.proto.state
            state = r.state
            ids = torch.cat([ids, torch.tensor([[r.token]])], dim=1)
    # Row 0's uniform step: entropix inserted the clarifying token, and the
    # forced scores made it the generated one.
    clarify = processor.history[0][UNIFORM_STEP]
    assert clarify.mode == Mode.CLARIFY and clarify.inserted and clarify.token == CLARIFYING
    assert int(out[0, len(prompts[0]) + UNIFORM_STEP]) == CLARIFYING
    assert processor.history[1][0].signals.attn_entropy is not None

    # A second generate starts afresh (state, step) and repeats itself.
    again = fake_generate(processor, prompts, new_tokens)
    assert torch.equal(again, out)
    assert len(processor.history[0]) == new_tokens
    processor.reset()


def test_a_new_prompt_one_token_longer_is_a_new_generation(client):
    # 4 prompt tokens + 3 steps: the last call saw length 6. A new prompt of
    # length 7 must not be taken for the continuation.
    def run(processor, prompt, steps):
        return fake_generate(processor, [prompt], steps)

    processor = hf.SamplerForcing(client, spec="entropix", seed=5, special_tokens=SPECIAL)
    run(processor, [5, 6, 7, 8], 3)
    second = [11, 12, 13, 14, 15, 16, 17]
    out = run(processor, second, 4)
    history = [(r.token, r.proto.state) for r in processor.history[0]]
    fresh = hf.SamplerForcing(client, spec="entropix", seed=5, special_tokens=SPECIAL)
    assert torch.equal(run(fresh, second, 4), out)
    assert [(r.token, r.proto.state) for r in fresh.history[0]] == history
    assert len(history) == 4
    processor.reset()
    fresh.reset()


def test_processor_without_attention_sends_none(client):
    processor = hf.SamplerForcing(client, spec="entropix", seed=1)
    scores, _ = fake_forward(torch.tensor([[5, 6]]), 0)
    forced = processor(torch.tensor([[5, 6]]), scores)
    result = processor.history[0][0]
    assert result.signals.attn_entropy is None
    assert int(forced.argmax()) == result.token
    processor.reset()


def test_recorder_without_a_recording_is_an_error():
    recorder = hf.AttentionRecorder(layer=3)
    with pytest.raises(RuntimeError, match="entroserve_eager"):
        recorder()


def eager_additive_mask(padding, q_len, kv_len):
    """transformers' eager mask: 0 where a query attends, the dtype's minimum
    elsewhere, [B, 1, Q, K]; `padding` [B, K] is 1 for real tokens."""
    minimum = torch.finfo(torch.float32).min
    q_pos = torch.arange(kv_len - q_len, kv_len)[:, None]
    k_pos = torch.arange(kv_len)[None, :]
    allowed = (k_pos <= q_pos)[None, None] & padding.bool()[:, None, None, :]
    return torch.where(allowed, torch.tensor(0.0), torch.tensor(minimum))


@pytest.mark.parametrize("q_len", [1, 3])
def test_capture_is_scaled_scores_of_the_last_query_over_real_keys(q_len):
    torch.manual_seed(0)
    batch, heads, kv_heads, keys, dim = 2, 8, 2, 6, 16
    groups = heads // kv_heads
    query = torch.randn(batch, heads, q_len, dim)
    key = torch.randn(batch, kv_heads, keys, dim)
    value = torch.randn(batch, kv_heads, keys, dim)
    padding = torch.tensor([[1] * keys, [0, 0] + [1] * (keys - 2)])  # row 1 left-padded
    mask = eager_additive_mask(padding, q_len, keys)
    scaling = dim ** -0.5
    module = types.SimpleNamespace(num_key_value_groups=groups, training=False)
    recorder = hf.AttentionRecorder(layer=0)
    setattr(module, hf._RECORDER_ATTRIBUTE, recorder)

    output, weights = hf.eager_attention_with_capture(module, query, key, value, mask, scaling)
    rows = recorder()

    for b in range(batch):
        real = padding[b].bool()
        assert rows[b].shape == (heads, int(real.sum()))
        for h in range(heads):
            # query head h reads key head h // groups (GQA)
            expected = (query[b, h, -1] @ key[b, h // groups].T) * scaling
            np.testing.assert_allclose(rows[b][h], expected[real].numpy(), rtol=1e-5, atol=1e-5)
        # The softmax of what was captured is the attention the layer used.
        probs = torch.softmax(torch.from_numpy(rows[b]), dim=-1)
        torch.testing.assert_close(probs, weights[b, :, -1, real])
        assert float(weights[b, :, -1, ~real].abs().sum()) == 0.0
    # The output is eager attention's.
    expanded_k = key.repeat_interleave(groups, dim=1)
    expanded_v = value.repeat_interleave(groups, dim=1)
    reference = torch.softmax(query @ expanded_k.transpose(2, 3) * scaling + mask, dim=-1)
    torch.testing.assert_close(output, (reference @ expanded_v).transpose(1, 2))


def test_capture_without_mask_keeps_every_key():
    module = types.SimpleNamespace(num_key_value_groups=1, training=False)
    recorder = hf.AttentionRecorder(layer=0)
    setattr(module, hf._RECORDER_ATTRIBUTE, recorder)
    q, k = torch.randn(1, 2, 1, 4), torch.randn(1, 2, 5, 4)
    hf.eager_attention_with_capture(module, q, k, k, None, 0.5)
    (row,) = recorder()
    np.testing.assert_allclose(row, (q[0, :, -1:] @ k[0].transpose(1, 2))[:, 0].numpy() * 0.5,
                               rtol=1e-6)


def test_module_imports_without_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            hf.logits_processor(None)
        with pytest.raises(ImportError):
            hf.register_attention()
    else:
        assert issubclass(hf.EntroserveLogitsProcessor, transformers.LogitsProcessor)
