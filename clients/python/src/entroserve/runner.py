"""Client of runnerd (runner.v1.Runner).

    runner = RunnerClient("localhost:50052")
    gen = runner.generate(prompt="The jury said", sampler="entropix", seed=7,
                          max_new_tokens=32)
    for token in gen:                      # streamed as runnerd sends them
        print(token.text, end="", flush=True)
    gen.finish_reason, gen.usage, gen.seed, gen.text, gen.token_ids

Input is one of prompt= (raw text), messages= (chat: [{"role": ..., "content":
...}], rendered with the model's template) or token_ids=.
"""

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import grpc

from entroserve._proto.runner.v1 import runner_pb2, runner_pb2_grpc
from entroserve.errors import EntroserveError
from entroserve.sampler import (DEFAULT_MAX_MESSAGE_MB, ChannelClient, Mode, SamplingParams,
                                Signals, SpecLike, make_spec)

FINISH_REASONS = {
    runner_pb2.FINISH_REASON_UNSPECIFIED: None,
    runner_pb2.FINISH_REASON_LENGTH: "length",
    runner_pb2.FINISH_REASON_EOS: "eos",
    runner_pb2.FINISH_REASON_STOP: "stop",
    runner_pb2.FINISH_REASON_CANCELLED: "cancelled",
    runner_pb2.FINISH_REASON_CONTEXT: "context",
}

MessagesLike = Sequence[Union[Mapping[str, str], Tuple[str, str]]]


@dataclass(frozen=True)
class GeneratedToken:
    """One generated token: `text` is the UTF-8 text it completes (possibly
    empty while a character is incomplete)."""
    id: int
    text: str
    index: int
    mode: Mode
    inserted: bool
    logprob: float
    signals: Signals
    params: SamplingParams
    proto: runner_pb2.GeneratedToken = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, message: runner_pb2.GeneratedToken) -> "GeneratedToken":
        try:
            mode = Mode(message.mode)
        except ValueError:
            mode = Mode.UNSPECIFIED
        return cls(id=message.id, text=message.text, index=message.index, mode=mode,
                   inserted=message.inserted, logprob=message.logprob,
                   signals=Signals.from_proto(message.signals),
                   params=SamplingParams.from_proto(message.params), proto=message)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    generated_tokens: int
    time_to_first_token_ms: float
    total_ms: float


class Tokenized(NamedTuple):
    ids: List[int]
    pieces: List[str]


class Generation:
    """A Generate call: iterate for its tokens as they arrive; after the last,
    finish_reason ("length", "eos", "stop", "cancelled", "context"), usage,
    seed and prompt_tokens are set. result() reads it to the end. Leaving a
    loop early leaves the call open: iterating again (or result()) goes on
    from the tokens already read; cancel() ends it."""

    def __init__(self, responses):
        self._responses = responses
        self.tokens: List[GeneratedToken] = []
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.seed: Optional[int] = None
        self.prompt_tokens: Optional[int] = None
        self._done = False

    def __iter__(self) -> Iterator[GeneratedToken]:
        index = 0
        while True:
            while index < len(self.tokens):
                yield self.tokens[index]
                index += 1
            if self._done or not self._read_one():
                return

    def _read_one(self) -> bool:
        """Reads one response into tokens; False at the end of the call."""
        try:
            response = next(self._responses)
        except StopIteration:
            self._done = True
            return False
        except grpc.RpcError as e:
            self._done = True
            raise EntroserveError.from_rpc(e) from None
        if self.seed is None and (response.seed or response.prompt_tokens):
            self.seed = response.seed
            self.prompt_tokens = response.prompt_tokens
        self.tokens.extend(GeneratedToken.from_proto(m) for m in response.tokens)
        if response.finish_reason != runner_pb2.FINISH_REASON_UNSPECIFIED:
            self.finish_reason = FINISH_REASONS.get(response.finish_reason, "unknown")
            u = response.usage
            self.usage = Usage(u.prompt_tokens, u.generated_tokens,
                               u.time_to_first_token_ms, u.total_ms)
        return True

    def result(self) -> "Generation":
        for _ in self:
            pass
        return self

    def cancel(self) -> None:
        self._responses.cancel()

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    @property
    def token_ids(self) -> List[int]:
        return [t.id for t in self.tokens]


def _chat(messages: MessagesLike, add_generation_prompt: Optional[bool]) -> runner_pb2.ChatMessages:
    chat = runner_pb2.ChatMessages()
    for m in messages:
        role, content = (m["role"], m["content"]) if isinstance(m, Mapping) else m
        chat.messages.add(role=role, content=content)
    if add_generation_prompt is not None:
        chat.add_generation_prompt = add_generation_prompt
    return chat


class RunnerClient(ChannelClient):
    """runnerd at `address` ("host:port"). `timeout`: seconds per call (a
    generation included); None waits as long as it takes."""

    def __init__(self, address: str, timeout: Optional[float] = None,
                 max_message_mb: int = DEFAULT_MAX_MESSAGE_MB, **security):
        super().__init__(address, timeout, max_message_mb, **security)
        self._stub = runner_pb2_grpc.RunnerStub(self._channel)

    def generate(self, prompt: Optional[str] = None, *, messages: Optional[MessagesLike] = None,
                 token_ids: Optional[Sequence[int]] = None, sampler: SpecLike = None,
                 seed: Optional[int] = None, max_new_tokens: Optional[int] = None,
                 stop: Sequence[str] = (), stop_token_ids: Sequence[int] = (),
                 ignore_eos: bool = False, add_generation_prompt: Optional[bool] = None,
                 allowed_token_ids: Sequence[int] = (),
                 dry_sequence_breakers: Sequence[str] = (),
                 timeout: Optional[float] = None) -> Generation:
        """Starts a generation (see Generation). sampler: a name, text, dict or
        SamplerSpec (a chain's stage list: {"chain": {"stages": ["top_k",
        "dist"], "top_k": 40}}); None leaves runnerd's default (entropix).
        allowed_token_ids: the tokens every step may produce (empty: all).
        dry_sequence_breakers: DRY's breakers as strings, tokenized by runnerd."""
        if sum(x is not None for x in (prompt, messages, token_ids)) != 1:
            raise EntroserveError.invalid("generate needs one of prompt=, messages= or token_ids=")
        request = runner_pb2.GenerateRequest(stop=list(stop),
                                             stop_token_ids=[int(t) for t in stop_token_ids],
                                             ignore_eos=ignore_eos,
                                             allowed_token_ids=[int(t) for t in allowed_token_ids],
                                             dry_sequence_breakers=list(dry_sequence_breakers))
        if prompt is not None:
            request.text = prompt
        elif messages is not None:
            request.chat.CopyFrom(_chat(messages, add_generation_prompt))
        else:
            request.tokens.ids.extend(int(t) for t in token_ids)
        if sampler is not None:
            request.sampler.CopyFrom(make_spec(sampler))
        if seed is not None:
            request.seed = int(seed)
        if max_new_tokens is not None:
            request.max_new_tokens = int(max_new_tokens)
        responses = self._stub.Generate(request, timeout=timeout or self.timeout)
        return Generation(responses)

    def info(self) -> runner_pb2.ModelInfoResponse:
        """The model and the engine's limits (runner.v1.ModelInfoResponse)."""
        return self._unary(self._stub.ModelInfo, runner_pb2.ModelInfoRequest())

    def tokenize(self, text: Optional[str] = None, *, messages: Optional[MessagesLike] = None,
                 add_special_tokens: Optional[bool] = None,
                 add_generation_prompt: Optional[bool] = None) -> Tokenized:
        request = runner_pb2.TokenizeRequest()
        if (text is None) == (messages is None):
            raise EntroserveError.invalid("tokenize needs one of text or messages=")
        if text is not None:
            request.text = text
        else:
            request.chat.CopyFrom(_chat(messages, add_generation_prompt))
        if add_special_tokens is not None:
            request.add_special_tokens = add_special_tokens
        response = self._unary(self._stub.Tokenize, request)
        return Tokenized(list(response.ids), list(response.pieces))

    def detokenize(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        request = runner_pb2.DetokenizeRequest(ids=[int(i) for i in ids],
                                               skip_special_tokens=skip_special_tokens)
        return self._unary(self._stub.Detokenize, request).text

    def _unary(self, method, request) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise EntroserveError.from_rpc(e) from None
