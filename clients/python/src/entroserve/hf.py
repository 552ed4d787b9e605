"""Hugging Face transformers adapter: samplerd chooses each token of
`model.generate`.

    from entroserve import SamplerClient
    from entroserve import hf

    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    recorder = hf.attach(model)                 # eager attention that records scores
    processor = hf.logits_processor(SamplerClient("localhost:50051"), spec="entropix",
                                    seed=7, attention=recorder,
                                    special_tokens=hf.special_tokens_for(tokenizer),
                                    pad_token_id=tokenizer.pad_token_id)
    out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=64,
                         logits_processor=[processor])
    processor.history[0]      # row 0's SampleResults: mode, signals, params per token

At each step the processor sends every row's scores [V] and the last layer's
pre-softmax attention scores of the decoded query [heads, keys] to samplerd,
keeping each row's SamplerState, step and seed, and returns scores that are
-inf everywhere but the token samplerd chose (0 there), so greedy decoding takes
exactly that token; a token the policy inserts (entropix clarify) is forced the
same way. Give it no other processors or warpers before it (they would change
the scores samplerd sees): do_sample=False, no repetition_penalty etc.

Attention capture. transformers (>= 4.48, 5.x) dispatches attention through
AttentionInterface; attach() registers "entroserve_eager", transformers' eager
attention written out (repeat_kv for GQA, q.k^T * scaling + the additive mask,
float32 softmax, dropout, matmul) that also hands the pre-softmax scores of the
last query position of one layer (module.layer_idx; the last by default) to an
AttentionRecorder. It is registered with transformers' eager mask
(AttentionMaskInterface), so padding and the causal/sliding-window pattern come
as a 4D additive mask; the recorder keeps, per row, only the keys whose mask is
not masked: the keys that exist (left padding excluded), as entroserve's runner
captures them (model_runner/model/transformer.h). attach() switches the model to it
(model.set_attn_implementation); loading with
attn_implementation=hf.register_attention() does the same. Families whose
eager attention adds more than this (soft-capping, sinks) are not covered.

Without transformers, this module still imports: SamplerForcing (the
processor's logic: any callable attention source), AttentionRecorder and
eager_attention_with_capture work with torch alone.
"""

import functools
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from entroserve.sampler import SampleResult, SamplerClient, SamplerSession, SpecLike

ATTENTION_IMPLEMENTATION = "entroserve_eager"
# Attribute of the attention module whose scores are recorded.
_RECORDER_ATTRIBUTE = "_entroserve_attention_recorder"
# The texts whose single-token ids the policy may insert, as runnerd resolves
# them (model_runner/engine/served_model.cc: kClarifyingQuestionText, kPauseText).
CLARIFYING_QUESTION_TEXT = "?"
PAUSE_TEXT = "..."

AttentionSource = Callable[[], Optional[Sequence[Any]]]


class AttentionRecorder:
    """The last recorded pre-softmax scores of one layer's last query position:
    per row [heads, keys that exist]. Calling it returns them (a list of
    float32 arrays) and forgets them, so that a step that recorded nothing is an
    error rather than a stale answer."""

    def __init__(self, layer: int):
        self.layer = layer
        self._scores = None   # torch [B, H, K] float32, CPU
        self._valid = None    # torch [B, K] bool, or None: every key

    def record(self, scores, valid) -> None:
        self._scores = scores.detach().float().cpu()
        self._valid = None if valid is None else valid.detach().cpu()

    def __call__(self) -> List[np.ndarray]:
        if self._scores is None:
            raise RuntimeError(
                f"no attention scores were recorded for layer {self.layer}: is the model "
                f"running the {ATTENTION_IMPLEMENTATION!r} attention (hf.attach(model))?")
        scores, valid = self._scores, self._valid
        self._scores = self._valid = None
        rows = []
        for b in range(scores.shape[0]):
            row = scores[b]
            if valid is not None:
                row = row[:, valid[b if valid.shape[0] > 1 else 0]]
            rows.append(row.numpy())
        return rows


def _repeat_kv(states, groups: int):
    """[B, kv_heads, T, D] -> [B, kv_heads * groups, T, D], query head h
    reading key head h // groups (transformers' repeat_kv)."""
    if groups == 1:
        return states
    batch, kv_heads, length, dim = states.shape
    expanded = states[:, :, None, :, :].expand(batch, kv_heads, groups, length, dim)
    return expanded.reshape(batch, kv_heads * groups, length, dim)


def _valid_keys(mask):
    """[B, K] bool of the keys the last query attends to, from a 4D mask
    (additive float: masked = the dtype's minimum or -inf; or bool: True
    attends); None when there is no mask (every key)."""
    if mask is None:
        return None
    import torch
    last = mask[:, 0, -1, :]
    if last.dtype == torch.bool:
        return last
    return last > torch.finfo(last.dtype).min / 2


def eager_attention_with_capture(module, query, key, value, attention_mask, scaling,
                                 dropout: float = 0.0, **kwargs):
    """transformers' eager attention (query [B, H, Q, D], key/value [B, KV, K, D])
    that also records the pre-softmax scores (+ mask) of the last query on the
    module's AttentionRecorder, when attach() gave it one."""
    import torch
    from torch import nn
    key_states = _repeat_kv(key, getattr(module, "num_key_value_groups", 1))
    value_states = _repeat_kv(value, getattr(module, "num_key_value_groups", 1))
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    causal_mask = None
    if attention_mask is not None:
        causal_mask = attention_mask[:, :, :, : key_states.shape[-2]]
        attn_weights = attn_weights + causal_mask
    recorder = getattr(module, _RECORDER_ATTRIBUTE, None)
    if recorder is not None:
        recorder.record(attn_weights[:, :, -1, :], _valid_keys(causal_mask))
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    return attn_output, attn_weights


def register_attention() -> str:
    """Registers "entroserve_eager" with transformers (attention function and
    eager mask); returns the name, for attn_implementation=."""
    from transformers import AttentionInterface
    AttentionInterface.register(ATTENTION_IMPLEMENTATION, eager_attention_with_capture)
    try:
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:  # before 4.53 models build the 4D additive mask themselves
        return ATTENTION_IMPLEMENTATION
    AttentionMaskInterface.register(ATTENTION_IMPLEMENTATION, eager_mask)
    return ATTENTION_IMPLEMENTATION


def attention_modules(model) -> dict:
    """The model's attention modules by layer index (modules with layer_idx and
    num_key_value_groups, as Llama, Qwen2 and Mistral have)."""
    found = {}
    for module in model.modules():
        if hasattr(module, "layer_idx") and hasattr(module, "num_key_value_groups"):
            found[int(module.layer_idx)] = module
    return found


def attach(model, layer: int = -1) -> AttentionRecorder:
    """Switches `model` to "entroserve_eager" and records `layer`'s scores
    (negative: from the end; -1 the last layer, what the sampler expects)."""
    name = register_attention()
    modules = attention_modules(model)
    if not modules:
        raise ValueError("no attention modules with layer_idx and num_key_value_groups found")
    index = layer if layer >= 0 else max(modules) + 1 + layer
    if index not in modules:
        raise ValueError(f"layer {layer}: the model has attention layers {sorted(modules)}")
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:  # transformers < 4.56
        model.config._attn_implementation = name
    recorder = AttentionRecorder(index)
    for i, module in modules.items():
        if i == index:
            setattr(module, _RECORDER_ATTRIBUTE, recorder)
        elif hasattr(module, _RECORDER_ATTRIBUTE):
            delattr(module, _RECORDER_ATTRIBUTE)
    return recorder


def special_tokens_for(tokenizer) -> dict:
    """The ids runnerd would send for this tokenizer: "?" and "..." when each
    is one token, and the first EOS id."""
    def single(text: str) -> Optional[int]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        return int(ids[0]) if len(ids) == 1 else None
    eos = tokenizer.eos_token_id
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    return {"clarifying_question": single(CLARIFYING_QUESTION_TEXT),
            "pause": single(PAUSE_TEXT), "eos": eos}


class SamplerForcing:
    """The logits processor's logic: __call__(input_ids [B, T], scores [B, V])
    -> scores forcing samplerd's token for each row.

    attention: a callable returning, per row, the [heads, keys] pre-softmax
    scores of this step (an AttentionRecorder), or None to send none.
    seed: one for every row, a list per row, or None (the server picks; kept).
    pad_token_id: stripped from the left of each prompt before it is sent as
    the rows' appended tokens (left-padded batches).
    A call whose input is not the previous call's plus the tokens it forced
    (or pad_token_id, for a row generate() has finished) starts a new
    generation (fresh states, step 0); reset() does so explicitly.
    """

    def __init__(self, client: SamplerClient, *, spec: SpecLike = "entropix", seed: Any = None,
                 attention: Optional[AttentionSource] = None, special_tokens: Any = None,
                 dtype: str = "float32", pad_token_id: Optional[int] = None,
                 stream: bool = True):
        self.client = client
        self.spec = spec
        self.seed = seed
        self.attention = attention
        self.special_tokens = special_tokens
        self.dtype = dtype
        self.pad_token_id = pad_token_id
        self.stream = stream
        self.session: Optional[SamplerSession] = None
        self._previous = None  # the last call's input_ids (CPU) and forced tokens
        self._forced = None

    @property
    def history(self) -> List[List[SampleResult]]:
        """Per row, the SampleResult of each step of the current generation."""
        return self.session.history if self.session is not None else []

    def reset(self) -> None:
        if self.session is not None:
            self.session.close()
        self.session = None
        self._previous = None
        self._forced = None

    def _prompt(self, ids: Sequence[int]) -> List[int]:
        ids = [int(t) for t in ids]
        start = 0
        if self.pad_token_id is not None:
            while start < len(ids) - 1 and ids[start] == self.pad_token_id:
                start += 1
        return ids[start:]

    def _continues(self, ids) -> bool:
        """Whether `ids` (CPU) is the previous call's input plus its tokens."""
        import torch
        previous, forced = self._previous, self._forced
        if (self.session is None or previous is None or ids.shape[0] != previous.shape[0]
                or ids.shape[1] != previous.shape[1] + 1
                or not torch.equal(ids[:, :-1], previous)):
            return False
        last = ids[:, -1]
        ok = last == forced
        if self.pad_token_id is not None:
            ok |= last == self.pad_token_id
        return bool(ok.all())

    def __call__(self, input_ids, scores):
        import torch
        batch = int(input_ids.shape[0])
        ids = input_ids.detach().to("cpu")
        if not self._continues(ids):
            self.reset()
            prompts = [self._prompt(row) for row in input_ids.tolist()]
            self.session = SamplerSession(self.client, batch, spec=self.spec, seed=self.seed,
                                          special_tokens=self.special_tokens, prompts=prompts,
                                          dtype=self.dtype, stream=self.stream)
        attention = self.attention() if self.attention is not None else None
        results = self.session.step(scores, attention)
        chosen = torch.tensor([r.token for r in results], dtype=torch.long)
        self._previous, self._forced = ids, chosen
        tokens = chosen.to(scores.device)
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, tokens[:, None], 0.0)
        return forced

    def __del__(self):
        try:
            self.reset()
        except Exception:  # interpreter shutdown
            pass


@functools.lru_cache(maxsize=None)
def _processor_class():
    from transformers import LogitsProcessor

    class EntroserveLogitsProcessor(SamplerForcing, LogitsProcessor):
        """A transformers LogitsProcessor that forces samplerd's token (see
        SamplerForcing)."""

    return EntroserveLogitsProcessor


def logits_processor(client: SamplerClient, **kwargs):
    """An EntroserveLogitsProcessor (a transformers LogitsProcessor subclass)
    with SamplerForcing's arguments."""
    return _processor_class()(client, **kwargs)


def __getattr__(name: str):
    if name == "EntroserveLogitsProcessor":
        return _processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
