"""A grpcio client for tests/async_auth.rs: one grpc.health.v1.Health/Check("") call with
`authorization: Bearer <token>` (when given) under a deadline.

    auth_client.py --addr HOST:PORT [--token T] [--timeout SECONDS]

Prints "status <n>" (the ServingStatus number; 1 is SERVING) or "error <CODE>: <message>".
The messages are written and read by hand (HealthCheckRequest{service: ""} is zero bytes;
the response is field 1, a varint), so no generated stubs are needed.
"""

import argparse

import grpc


def serving_status(data: bytes) -> int:
    # HealthCheckResponse: field 1 (status), wire type 0 -> tag byte 0x08, then a varint.
    if not data:
        return 0
    if data[0] != 0x08 or len(data) < 2:
        raise ValueError(f"unexpected HealthCheckResponse bytes {data!r}")
    return data[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    metadata = [("authorization", "Bearer " + args.token)] if args.token else []
    with grpc.insecure_channel(args.addr) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            response = check(b"", metadata=metadata, timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"error {error.code().name}: {error.details()}")
            return
        print(f"status {serving_status(response)}")


if __name__ == "__main__":
    main()
