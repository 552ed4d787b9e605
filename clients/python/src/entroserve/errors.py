"""The one exception the client raises, with the gRPC status code and the
server's message."""

from typing import Optional

import grpc

_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code(value: int) -> grpc.StatusCode:
    """The grpc.StatusCode of a numeric code (a RowError's), UNKNOWN if none."""
    return _CODES_BY_VALUE.get(int(value), grpc.StatusCode.UNKNOWN)


class EntroserveError(Exception):
    """A failed call or row.

    code     grpc.StatusCode (INVALID_ARGUMENT for a bad array, UNAVAILABLE for a
             server that is down, ...)
    message  the server's message as it sent it (or the client's own, for what
             it refuses before sending: see `from_server`)
    row      index of the row in its batch, for an in-band row error
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, row: Optional[int] = None,
                 from_server: bool = True):
        self.code = code
        self.message = message
        self.row = row
        self.from_server = from_server
        where = f"row {row}: " if row is not None else ""
        super().__init__(f"{code.name}: {where}{message}")

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "EntroserveError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")

    @classmethod
    def invalid(cls, message: str) -> "EntroserveError":
        """An argument the client refuses before sending anything."""
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message, from_server=False)
