#!/usr/bin/env python3
"""What kubelet's native gRPC probe does: grpc.health.v1.Health/Check on
HOST:PORT for SERVICE ("" or none: the server as a whole), plaintext, one
second per try. Prints each target's status; exits 0 when every one is
SERVING, 1 otherwise. --wait=SECONDS retries until they all are.

Usage: grpc_health.py [--wait=SECONDS] HOST:PORT[/SERVICE]...
"""
import sys
import time

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


def check(target, service):
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        try:
            status = decode_status(call(encode_request(service), timeout=1))
        except grpc.RpcError as e:
            return e.code().name
    return STATUS.get(status, str(status))


def main():
    wait = 0.0
    targets = []
    for arg in sys.argv[1:]:
        if arg.startswith("--wait="):
            wait = float(arg.split("=", 1)[1])
        else:
            address, _, service = arg.partition("/")
            targets.append((address, service))
    if not targets:
        print(__doc__)
        return 2
    deadline = time.monotonic() + wait
    while True:
        results = [check(address, service) for address, service in targets]
        if all(r == "SERVING" for r in results) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    for (address, service), result in zip(targets, results):
        print(f"{address} {service or '(server)'}: {result}")
    return 0 if all(r == "SERVING" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
