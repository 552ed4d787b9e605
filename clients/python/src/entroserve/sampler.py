"""Client of samplerd (sampler.v1.Sampler).

    client = SamplerClient("localhost:50051")
    r = client.sample(logits, attention, spec="entropix", seed=7)      # one row [V]
    r.token, r.mode, r.signals.entropy, r.params.temperature, r.state
    rs = client.sample(batch_logits, batch_attention, seed=[1, 2])     # [B, V] -> list

    session = client.session(batch_size=2, seed=7)   # keeps state, step, seed per row
    for _ in range(n):
        results = session.step(logits, attention)

Arrays: NumPy arrays, torch tensors or lists; logits [V] or [B, V], attention
[heads, keys] or [B, heads, keys] (or a list of B [heads, keys_b] arrays when the
rows have different key counts), pre-softmax scores over the keys that exist.
Sent as FLOAT32 unless `dtype="bfloat16"` or `"float16"`.

Errors: a bad row comes back in band (its RowError); `sample()` raises it as an
EntroserveError carrying the code, the server's message and the row index
(`check=False` returns the results with `.error` set instead). A failed call
(server down, deadline) raises EntroserveError with the gRPC status.
"""

import collections
import enum
import queue
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import grpc
import numpy as np
from google.protobuf import json_format, text_format

from entroserve._proto.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from entroserve.errors import EntroserveError, status_code
from entroserve.tensors import RawTensor, check_real, encode, to_numpy, wire_dtype

# Matches the servers' default --max_message_mb.
DEFAULT_MAX_MESSAGE_MB = 64
DEFAULT_TIMEOUT_S = 30.0

SpecLike = Union[str, Mapping[str, Any], sampler_pb2.SamplerSpec, None]
StateLike = Union[sampler_pb2.SamplerState, bytes, None]


class Mode(enum.IntEnum):
    """sampler.v1.Mode: how the token was chosen."""
    UNSPECIFIED = 0
    GREEDY = 1     # argmax by configuration
    SAMPLE = 2     # a fixed (non-adaptive) sampler drew the token
    FLOWING = 3    # entropix: low entropy, low varentropy -> argmax
    CLARIFY = 4    # entropix: high entropy, low varentropy -> insert or sample
    EXPLORE = 5    # entropix: low entropy, high varentropy
    RESAMPLE = 6   # entropix: high entropy, high varentropy
    ADAPTIVE = 7   # entropix: everything else
    ALPHA = 8      # AlphaSampler

    def __str__(self) -> str:
        return self.name.lower()


def _present(message, cls) -> dict:
    """The fields of dataclass `cls` that `message` has set."""
    out = {}
    for f in fields(cls):
        descriptor = message.DESCRIPTOR.fields_by_name[f.name]
        if not descriptor.has_presence or message.HasField(f.name):
            out[f.name] = getattr(message, f.name)
    return out


class _OptionalFields:
    """A dataclass read from a message: its set fields, None for the rest."""

    @classmethod
    def from_proto(cls, message):
        return cls(**_present(message, cls))


@dataclass(frozen=True)
class Signals(_OptionalFields):
    """What the sampler measured (bits, bits^2); attention fields only when
    attention was sent."""
    entropy: float
    varentropy: float
    attn_entropy: Optional[float] = None
    attn_varentropy: Optional[float] = None
    attn_entropy_spread: Optional[float] = None
    agreement: Optional[float] = None
    interaction_strength: Optional[float] = None


@dataclass(frozen=True)
class SamplingParams(_OptionalFields):
    """The parameters the sampler used; None where it has no such parameter."""
    temperature: Optional[float] = None
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    min_p: Optional[float] = None
    typical_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    candidate_size: Optional[int] = None
    samples: Optional[int] = None
    mirostat_mu: Optional[float] = None
    top_n_sigma: Optional[float] = None
    xtc_threshold: Optional[float] = None
    xtc_probability: Optional[float] = None
    dry_multiplier: Optional[float] = None
    alpha: Optional[float] = None
    smoothed_alpha: Optional[float] = None
    candidates: Optional[int] = None

    def as_dict(self) -> Dict[str, Union[int, float]]:
        """The parameters that are set."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class SampleResult:
    """One row's answer. `state` goes back with the sequence's next row (a
    SamplerSession does that); `error` is set (and nothing else) for a bad row
    when sampled with check=False."""
    sequence_id: str
    step: int
    token: int
    mode: Mode
    inserted: bool
    logprob: float
    seed: int
    signals: Signals
    params: SamplingParams
    state: sampler_pb2.SamplerState = field(repr=False)
    error: Optional[EntroserveError] = None
    proto: sampler_pb2.SampleResult = field(default=None, repr=False, compare=False)

    @classmethod
    def from_proto(cls, message: sampler_pb2.SampleResult, row: int) -> "SampleResult":
        error = None
        if message.HasField("error"):
            error = EntroserveError(status_code(message.error.code), message.error.message,
                                    row=row)
        try:
            mode = Mode(message.mode)
        except ValueError:  # a newer server's mode
            mode = Mode.UNSPECIFIED
        return cls(sequence_id=message.sequence_id, step=message.step, token=message.token_id,
                   mode=mode, inserted=message.inserted, logprob=message.logprob,
                   seed=message.seed, signals=Signals.from_proto(message.signals),
                   params=SamplingParams.from_proto(message.params), state=message.state,
                   error=error, proto=message)


@dataclass(frozen=True)
class SamplerInfo:
    name: str
    description: str
    uses_attention: bool
    stateful: bool
    defaults: sampler_pb2.SamplerSpec = field(repr=False)


def make_spec(spec: SpecLike) -> sampler_pb2.SamplerSpec:
    """A SamplerSpec from a sampler name ("entropix"), protobuf text
    ('entropix { temperature: 0.7 }'), a dict ({"entropix": {"temperature": 0.7}}
    or {"name": "chain", "chain": {...}}) or a SamplerSpec (copied)."""
    if spec is None:
        return sampler_pb2.SamplerSpec(name="entropix")
    if isinstance(spec, sampler_pb2.SamplerSpec):
        out = sampler_pb2.SamplerSpec()
        out.CopyFrom(spec)
        return out
    if isinstance(spec, str):
        if "{" in spec or ":" in spec:
            try:
                return text_format.Parse(spec, sampler_pb2.SamplerSpec())
            except text_format.ParseError as e:
                raise EntroserveError.invalid(f"spec: {e}") from None
        return sampler_pb2.SamplerSpec(name=spec)
    if isinstance(spec, Mapping):
        try:
            return json_format.ParseDict(dict(spec), sampler_pb2.SamplerSpec())
        except json_format.ParseError as e:
            raise EntroserveError.invalid(f"spec: {e}") from None
    raise EntroserveError.invalid(f"spec must be a name, text, dict or SamplerSpec, got {spec!r}")


def make_state(state: StateLike) -> Optional[sampler_pb2.SamplerState]:
    if state is None or isinstance(state, sampler_pb2.SamplerState):
        return state
    if isinstance(state, (bytes, bytearray)):
        return sampler_pb2.SamplerState.FromString(bytes(state))
    raise EntroserveError.invalid(f"state must be a SamplerState or its bytes, got {type(state)}")


def make_special_tokens(special: Any) -> Optional[sampler_pb2.SpecialTokens]:
    """SpecialTokens from a dict {"clarifying_question": id, "pause": id,
    "eos": id} (None values skipped) or the message itself."""
    if special is None or isinstance(special, sampler_pb2.SpecialTokens):
        return special
    if isinstance(special, Mapping):
        return sampler_pb2.SpecialTokens(
            **{k: int(v) for k, v in special.items() if v is not None})
    raise EntroserveError.invalid(f"special_tokens must be a dict or SpecialTokens, got "
                                  f"{special!r}")


def _varint_bytes(value: int) -> int:
    return max(1, (int(value).bit_length() + 6) // 7)


def make_allowed_tokens(ids: Sequence[int], vocab_size: int) -> sampler_pb2.AllowedTokens:
    """The allowed-token set of a row of `vocab_size` logits in whichever form
    is smaller on the wire: the ids (ascending, repeats dropped) or a bitmask
    of ceil(V / 8) bytes (bit i % 8 of byte i / 8 allows token i)."""
    unique = sorted({int(t) for t in ids})
    for t in unique:
        if not 0 <= t < vocab_size:
            raise EntroserveError.invalid(
                f"allowed_tokens has token {t}, outside the vocabulary [0, {vocab_size})")
    out = sampler_pb2.AllowedTokens()
    if sum(_varint_bytes(t) for t in unique) < (vocab_size + 7) // 8:
        out.ids.ids.extend(unique)
        return out
    mask = bytearray((vocab_size + 7) // 8)
    for t in unique:
        mask[t // 8] |= 1 << (t % 8)
    out.bitmask = bytes(mask)
    return out


@dataclass
class Row:
    """One sequence's step, as sent. `step` defaults to the state's next_step
    (0 without a state)."""
    logits: Any
    attention: Any = None
    spec: SpecLike = "entropix"
    state: StateLike = None
    seed: Optional[int] = None
    step: Optional[int] = None
    sequence_id: str = ""
    special_tokens: Any = None
    appended_tokens: Sequence[int] = ()
    # The tokens the sampler may choose (ids); None allows every token.
    allowed_tokens: Optional[Sequence[int]] = None


def _tensor(value: Any, rank: int, field: str, dtype: int):
    if isinstance(value, RawTensor):
        return value.to_proto()
    array = to_numpy(value, field)
    check_real(array, field)
    if array.ndim != rank:
        want = "[V]" if rank == 1 else "[heads, keys]"
        raise EntroserveError.invalid(f"{field} must be {want}, got shape {list(array.shape)}")
    return encode(array, dtype)


def build_row(row: Row, dtype: int) -> sampler_pb2.SampleRow:
    """The wire form of `row` (arrays encoded as `dtype`, a tensor_pb2.DType)."""
    out = sampler_pb2.SampleRow(sequence_id=row.sequence_id)
    out.spec.CopyFrom(make_spec(row.spec))
    state = make_state(row.state)
    if state is not None:
        out.state.CopyFrom(state)
    out.step = int(row.step) if row.step is not None else (state.next_step if state else 0)
    if row.seed is not None:
        out.seed = int(row.seed)
    out.logits.CopyFrom(_tensor(row.logits, 1, "logits", dtype))
    if row.attention is not None:
        out.attention.CopyFrom(_tensor(row.attention, 2, "attention", dtype))
    special = make_special_tokens(row.special_tokens)
    if special is not None:
        out.special_tokens.CopyFrom(special)
    out.appended_tokens.extend(int(t) for t in row.appended_tokens)
    if row.allowed_tokens is not None:
        vocab_size = out.logits.shape[0] if out.logits.shape else 0
        out.allowed_tokens.CopyFrom(make_allowed_tokens(row.allowed_tokens, vocab_size))
    return out


def _per_row(value: Any, count: int, name: str) -> list:
    """`value` for each of `count` rows: a list/tuple/array of that length, or
    one value for all."""
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        if len(value) != count:
            raise EntroserveError.invalid(f"{name} has {len(value)} entries for {count} rows")
        return list(value)
    return [value] * count


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds "authorization: Bearer TOKEN" to every call. An interceptor rather
    than call credentials: gRPC sends those over TLS only, and the daemons
    also take tokens in plaintext."""

    class _Details(collections.namedtuple(
            "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
        pass

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        metadata = list(details.metadata or []) + [self._header]
        return self._Details(details.method, details.timeout, metadata, details.credentials,
                             details.wait_for_ready, getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class ChannelClient:
    """A client of one server over its own channel, with explicit message size
    limits; usable as a context manager (closes the channel).

    Security (keyword arguments of every client): `tls_ca_file` (PEM CA that
    signed the server's certificate) turns TLS on; `tls_cert_file` and
    `tls_key_file` add this client's certificate (mutual TLS);
    `tls_server_name` is the name the certificate must carry when it is not
    the address's host; `token` is sent on every call as
    "authorization: Bearer TOKEN" (the daemons' --auth_token_file)."""

    def __init__(self, address: str, timeout: Optional[float], max_message_mb: int, *,
                 tls_ca_file: Optional[str] = None, tls_cert_file: Optional[str] = None,
                 tls_key_file: Optional[str] = None, tls_server_name: Optional[str] = None,
                 token: Optional[str] = None):
        self.address = address
        self.timeout = timeout
        limit = int(max_message_mb) * 1024 * 1024
        options = [
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit),
        ]
        if (tls_cert_file is None) != (tls_key_file is None):
            raise EntroserveError.invalid("tls_cert_file and tls_key_file go together")
        if tls_ca_file is not None or tls_cert_file is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca_file), private_key=_read(tls_key_file),
                certificate_chain=_read(tls_cert_file))
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        if token:
            self._channel = grpc.intercept_channel(self._channel, _BearerToken(token))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SampleStream:
    """One long-lived SampleStream: each send() is a batch, answered in order.
    `timeout`: seconds for the whole stream (None: none); `answer_timeout`:
    seconds send() waits for each answer (None: forever), after which the
    stream is cancelled and send() raises DEADLINE_EXCEEDED.
    Not for concurrent use from several threads."""

    def __init__(self, stub: sampler_pb2_grpc.SamplerStub, timeout: Optional[float],
                 answer_timeout: Optional[float] = None):
        self._requests: "queue.Queue[Optional[sampler_pb2.SampleRequest]]" = queue.Queue()
        self._responses = stub.SampleStream(iter(self._requests.get, None), timeout=timeout)
        self._answers: "queue.Queue[tuple]" = queue.Queue()
        self._answer_timeout = answer_timeout
        self._lock = threading.Lock()
        self._closed = False
        # gRPC's iterator has no per-message wait limit: a thread reads it.
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="entroserve-sample-stream")
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._responses:
                self._answers.put(("answer", response))
            self._answers.put(("end", None))
        except grpc.RpcError as e:
            self._answers.put(("error", e))

    def _fail(self) -> None:
        self._closed = True
        self._requests.put(None)  # ends gRPC's request-reading thread

    def send(self, request: sampler_pb2.SampleRequest) -> sampler_pb2.SampleResponse:
        with self._lock:
            if self._closed:
                raise EntroserveError(grpc.StatusCode.FAILED_PRECONDITION, "stream closed",
                                      from_server=False)
            self._requests.put(request)
            try:
                kind, value = self._answers.get(timeout=self._answer_timeout)
            except queue.Empty:
                self._fail()
                self._responses.cancel()
                raise EntroserveError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no answer from samplerd within {self._answer_timeout} s",
                    from_server=False) from None
            if kind == "answer":
                return value
            self._fail()
            if kind == "error":
                raise EntroserveError.from_rpc(value) from None
            raise EntroserveError(grpc.StatusCode.UNAVAILABLE, "samplerd ended the stream",
                                  from_server=False)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._requests.put(None)
            self._reader.join(self._answer_timeout)
            if self._reader.is_alive():
                self._responses.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check(results: List[SampleResult]) -> List[SampleResult]:
    for result in results:
        if result.error is not None:
            raise result.error
    return results


class SamplerClient(ChannelClient):
    """samplerd at `address` ("host:port"). `timeout`: seconds per unary call."""

    def __init__(self, address: str, timeout: Optional[float] = DEFAULT_TIMEOUT_S,
                 max_message_mb: int = DEFAULT_MAX_MESSAGE_MB, **security):
        super().__init__(address, timeout, max_message_mb, **security)
        self._stub = sampler_pb2_grpc.SamplerStub(self._channel)

    # -- calls ---------------------------------------------------------------

    def samplers(self) -> List[SamplerInfo]:
        """The samplers the server knows, with every default filled in."""
        try:
            response = self._stub.ListSamplers(sampler_pb2.ListSamplersRequest(),
                                               timeout=self.timeout)
        except grpc.RpcError as e:
            raise EntroserveError.from_rpc(e) from None
        return [SamplerInfo(i.name, i.description, i.uses_attention, i.stateful, i.defaults)
                for i in response.samplers]

    def sample_rows(self, rows: Sequence[Union[Row, sampler_pb2.SampleRow]],
                    dtype: str = "float32", check: bool = True,
                    stream: Optional[SampleStream] = None) -> List[SampleResult]:
        """Sends `rows` as one batch (over `stream` when given, else the unary
        Sample) and returns one result per row, in order."""
        wire = wire_dtype(dtype)
        request = sampler_pb2.SampleRequest(
            rows=[r if isinstance(r, sampler_pb2.SampleRow) else build_row(r, wire)
                  for r in rows])
        if stream is not None:
            response = stream.send(request)
        else:
            try:
                response = self._stub.Sample(request, timeout=self.timeout)
            except grpc.RpcError as e:
                raise EntroserveError.from_rpc(e) from None
        if len(response.results) != len(request.rows):
            raise EntroserveError(grpc.StatusCode.INTERNAL,
                                  f"samplerd answered {len(response.results)} results for "
                                  f"{len(request.rows)} rows", from_server=False)
        results = [SampleResult.from_proto(r, i) for i, r in enumerate(response.results)]
        return _check(results) if check else results

    def sample(self, logits: Any, attention: Any = None, *, spec: SpecLike = "entropix",
               state: Any = None, seed: Any = None, step: Any = None,
               sequence_id: Any = None, special_tokens: Any = None,
               appended_tokens: Any = None, dtype: str = "float32", check: bool = True,
               stream: Optional[SampleStream] = None, allowed_tokens: Any = None
               ) -> Union[SampleResult, List[SampleResult]]:
        """Samples one row (logits [V], attention [heads, keys]) or a batch
        (logits [B, V], attention [B, heads, keys] or a list of B [heads, keys_b]).
        For a batch, state, seed, step, sequence_id and appended_tokens are
        lists with an entry per row (seed and step may also be one value for
        all). allowed_tokens: the ids the sampler may choose (None: all); for a
        batch a list with an entry (ids or None) per row. Returns a
        SampleResult, or a list of them for a batch."""
        if isinstance(logits, RawTensor):
            row = Row(logits, attention, spec, state, seed, step, sequence_id or "",
                      special_tokens, () if appended_tokens is None else appended_tokens,
                      allowed_tokens)
            return self.sample_rows([row], dtype, check, stream)[0]
        array = to_numpy(logits, "logits")
        if array.ndim == 1:
            row = Row(array, attention, spec, state, seed, step, sequence_id or "",
                      special_tokens, () if appended_tokens is None else appended_tokens,
                      allowed_tokens)
            return self.sample_rows([row], dtype, check, stream)[0]
        if array.ndim != 2:
            raise EntroserveError.invalid(
                f"logits must be [V] (one row) or [B, V] (a batch), got shape {list(array.shape)}")
        count = array.shape[0]
        attentions = [None] * count if attention is None else list(attention)
        if len(attentions) != count:
            raise EntroserveError.invalid(f"attention has {len(attentions)} rows for {count}")
        states = [None] * count if state is None else _per_row(state, count, "state")
        appended = ([()] * count if appended_tokens is None
                    else _per_row(appended_tokens, count, "appended_tokens"))
        ids = ([str(i) for i in range(count)] if sequence_id is None
               else _per_row(sequence_id, count, "sequence_id"))
        allowed = ([None] * count if allowed_tokens is None
                   else _per_row(list(allowed_tokens), count, "allowed_tokens"))
        rows = [Row(array[i], attentions[i], spec, states[i], s, t, ids[i], special_tokens,
                    () if appended[i] is None else appended[i], allowed[i])
                for i, (s, t) in enumerate(zip(_per_row(seed, count, "seed"),
                                               _per_row(step, count, "step")))]
        return self.sample_rows(rows, dtype, check, stream)

    def stream(self, timeout: Optional[float] = None,
               answer_timeout: Optional[float] = -1.0) -> SampleStream:
        """A long-lived SampleStream (`timeout`: seconds for the whole stream;
        `answer_timeout`: for each answer, the client's timeout by default)."""
        if answer_timeout is not None and answer_timeout < 0:
            answer_timeout = self.timeout
        return SampleStream(self._stub, timeout, answer_timeout)

    def session(self, batch_size: int = 1, **kwargs) -> "SamplerSession":
        """A SamplerSession over this client (see SamplerSession)."""
        return SamplerSession(self, batch_size, **kwargs)


class SamplerSession:
    """Keeps `batch_size` sequences' SamplerState, step and seed across calls.

    seed: one seed for every row, a list with one per row, or None (the server
    picks each row's at its first step; it is kept from then on).
    prompts: the token ids of each row's prompt, sent as appended_tokens with
    its first step (penalties read them). stream=True sends every step over one
    long-lived SampleStream instead of unary calls.
    """

    def __init__(self, client: SamplerClient, batch_size: int = 1, *,
                 spec: SpecLike = "entropix", seed: Any = None, special_tokens: Any = None,
                 prompts: Optional[Sequence[Sequence[int]]] = None, dtype: str = "float32",
                 sequence_ids: Optional[Sequence[str]] = None, stream: bool = False):
        if batch_size < 1:
            raise EntroserveError.invalid(f"batch_size must be >= 1, got {batch_size}")
        self.client = client
        self.batch_size = batch_size
        self.spec = make_spec(spec)
        self.special_tokens = make_special_tokens(special_tokens)
        self.dtype = dtype
        self.seeds: List[Optional[int]] = _per_row(seed, batch_size, "seed")
        self.states: List[Optional[sampler_pb2.SamplerState]] = [None] * batch_size
        self.steps: List[int] = [0] * batch_size
        self.sequence_ids = (list(sequence_ids) if sequence_ids is not None
                             else [str(i) for i in range(batch_size)])
        self._pending = ([list(p) for p in prompts] if prompts is not None
                         else [[] for _ in range(batch_size)])
        if len(self._pending) != batch_size or len(self.sequence_ids) != batch_size:
            raise EntroserveError.invalid("prompts and sequence_ids need one entry per row")
        self.history: List[List[SampleResult]] = [[] for _ in range(batch_size)]
        self._stream = client.stream() if stream else None

    def append(self, row: int, tokens: Sequence[int]) -> None:
        """Tokens added to row's sequence that the sampler did not choose
        (forced ones): sent with its next step."""
        self._pending[row].extend(int(t) for t in tokens)

    def step(self, logits: Any, attention: Any = None) -> Union[SampleResult, List[SampleResult]]:
        """Samples the next token of every row: logits [B, V] (or [V] when
        batch_size is 1), attention [B, heads, keys] or a list per row. Raises
        EntroserveError on a bad row (no state advances then)."""
        array = to_numpy(logits, "logits")
        single = array.ndim == 1
        if single:
            array = array[None, :]
            attention = None if attention is None else [attention]
        if array.ndim != 2 or array.shape[0] != self.batch_size:
            raise EntroserveError.invalid(
                f"logits must be [{self.batch_size}, V], got shape {list(array.shape)}")
        attentions = [None] * self.batch_size if attention is None else list(attention)
        rows = [Row(array[i], attentions[i], self.spec, self.states[i], self.seeds[i],
                    self.steps[i], self.sequence_ids[i], self.special_tokens, self._pending[i])
                for i in range(self.batch_size)]
        results = self.client.sample_rows(rows, self.dtype, check=True, stream=self._stream)
        for i, result in enumerate(results):
            self.states[i] = result.state
            self.steps[i] = result.state.next_step or self.steps[i] + 1
            self.seeds[i] = result.seed
            self._pending[i] = []
            self.history[i].append(result)
        return results[0] if single else results

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __enter__(self) -> "SamplerSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

