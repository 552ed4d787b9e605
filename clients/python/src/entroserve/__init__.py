"""Python client of entroserve: samplerd (SamplerClient, SamplerSession),
runnerd (RunnerClient), and a Hugging Face transformers adapter (entroserve.hf,
imported on its own: it needs torch).

    from entroserve import SamplerClient, RunnerClient, EntroserveError
"""

from entroserve.errors import EntroserveError
from entroserve.runner import GeneratedToken, Generation, RunnerClient, Tokenized, Usage
from entroserve.sampler import (Mode, Row, SampleResult, SamplerClient, SamplerInfo,
                                SamplerSession, SampleStream, SamplingParams, Signals, make_spec)
from entroserve.tensors import RawTensor

__version__ = "0.1.0"

__all__ = [
    "EntroserveError", "GeneratedToken", "Generation", "Mode", "RawTensor", "Row",
    "RunnerClient", "SampleResult", "SampleStream", "SamplerClient", "SamplerInfo",
    "SamplerSession", "SamplingParams", "Signals", "Tokenized", "Usage", "make_spec",
]
