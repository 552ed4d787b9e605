#!/usr/bin/env python3
"""What kubelet's native gRPC probe does: grpc.health.v1.Health/Check on
HOST:PORT for SERVICE ("" is the server as a whole), plaintext. Prints the
status and exits 0 when it is SERVING, 1 otherwise (2: no answer).

Usage: grpc_health.py HOST:PORT [SERVICE] [--timeout=SECONDS]
"""
import sys

import grpc

STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def encode_request(service):
    # HealthCheckRequest { string service = 1; }
    data = service.encode()
    if not data:
        return b""
    assert len(data) < 128
    return b"\x0a" + bytes([len(data)]) + data


def decode_status(reply):
    # HealthCheckResponse { ServingStatus status = 1; } (0 is omitted)
    if len(reply) >= 2 and reply[0] == 0x08:
        return reply[1]
    return 0


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--timeout=")]
    timeout = float(next((a.split("=", 1)[1] for a in sys.argv[1:]
                          if a.startswith("--timeout=")), "1"))
    target, service = args[0], (args[1] if len(args) > 1 else "")
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        try:
            status = decode_status(check(encode_request(service), timeout=timeout))
        except grpc.RpcError as e:
            print(f"{target} {service or '(server)'}: {e.code().name}")
            return 2
    print(f"{target} {service or '(server)'}: {STATUS.get(status, status)}")
    return 0 if status == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
