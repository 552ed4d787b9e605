"""Arrays to the wire's tensors: raw row-major little-endian bytes with a dtype
and an int64 shape (proto/sampler/v1/tensor.proto).

NumPy arrays, torch tensors (when torch is importable: moved to the CPU, bf16
and f16 converted exactly) and nested lists are accepted; each is sent as
FLOAT32 (default), FLOAT16 or BFLOAT16 (round to nearest even, as the servers
round). A `RawTensor` is sent exactly as given, for data the client would
refuse (the server's own checks then answer).
"""

from dataclasses import dataclass
from typing import Any, Sequence, Tuple

import numpy as np

from entroserve._proto.sampler.v1 import tensor_pb2
from entroserve.errors import EntroserveError

# Wire dtype names accepted by the `dtype=` arguments.
WIRE_DTYPES = {
    "float32": tensor_pb2.DTYPE_FLOAT32,
    "float16": tensor_pb2.DTYPE_FLOAT16,
    "bfloat16": tensor_pb2.DTYPE_BFLOAT16,
}
_ALIASES = {"f32": "float32", "fp32": "float32", "f16": "float16", "fp16": "float16",
            "half": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class RawTensor:
    """Bytes sent as they are: `dtype` is the wire enum value (tensor_pb2.DType,
    any int), `shape` the int64 dimensions."""
    dtype: int
    shape: Tuple[int, ...]
    data: bytes

    @classmethod
    def from_array(cls, array: np.ndarray, dtype: int = tensor_pb2.DTYPE_FLOAT32,
                   shape: Sequence[int] = ()) -> "RawTensor":
        """The array's own bytes labelled `dtype` (e.g. int64 values sent as
        FLOAT32), with its shape unless `shape` is given."""
        array = np.ascontiguousarray(array)
        return cls(int(dtype), tuple(int(d) for d in (shape or array.shape)), array.tobytes())

    def to_proto(self) -> tensor_pb2.Tensor:
        return tensor_pb2.Tensor(dtype=self.dtype, shape=list(self.shape), data=self.data)


def wire_dtype(name: str) -> int:
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in WIRE_DTYPES:
        raise EntroserveError.invalid(f"dtype must be float32, float16 or bfloat16, got {name!r}")
    return WIRE_DTYPES[key]


def to_numpy(value: Any, field: str) -> np.ndarray:
    """A NumPy view of `value` (a NumPy array, a torch tensor or a list)."""
    if isinstance(value, np.ndarray):
        return value
    module = type(value).__module__
    if module.startswith("torch"):
        tensor = value.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()  # exact: NumPy has no bfloat16
        return tensor.numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as e:
        raise EntroserveError.invalid(f"{field}: not an array ({e})") from None


def check_real(array: np.ndarray, field: str) -> None:
    """Refuses what is not a real floating-point array (int, complex, bool,
    object): the wire carries floats only."""
    if array.dtype.kind != "f":
        raise EntroserveError.invalid(
            f"{field}: dtype {array.dtype} is not a real floating-point type; send "
            "float32, float16 or bfloat16 values (or a RawTensor to send bytes as they are)")


def _bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, round to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounded = ((u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16).astype("<u2")
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | np.uint32(0x40)).astype("<u2")
    return rounded


def encode(array: np.ndarray, dtype: int) -> tensor_pb2.Tensor:
    """A float array as a wire tensor of `dtype` (a tensor_pb2.DType)."""
    if dtype == tensor_pb2.DTYPE_FLOAT32:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    elif dtype == tensor_pb2.DTYPE_FLOAT16:
        data = np.ascontiguousarray(array, dtype="<f2").tobytes()
    elif dtype == tensor_pb2.DTYPE_BFLOAT16:
        data = _bfloat16_bits(np.asarray(array, dtype=np.float32)).tobytes()
    else:
        raise EntroserveError.invalid(f"unknown wire dtype {dtype}")
    return tensor_pb2.Tensor(dtype=dtype, shape=[int(d) for d in array.shape], data=data)


def decode(tensor: tensor_pb2.Tensor) -> np.ndarray:
    """A wire tensor back to a float32 array (tests, tools)."""
    shape = tuple(tensor.shape)
    if tensor.dtype == tensor_pb2.DTYPE_FLOAT32:
        return np.frombuffer(tensor.data, dtype="<f4").reshape(shape).astype(np.float32)
    if tensor.dtype == tensor_pb2.DTYPE_FLOAT16:
        return np.frombuffer(tensor.data, dtype="<f2").reshape(shape).astype(np.float32)
    if tensor.dtype == tensor_pb2.DTYPE_BFLOAT16:
        bits = np.frombuffer(tensor.data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    raise EntroserveError.invalid(f"unknown wire dtype {tensor.dtype}")
