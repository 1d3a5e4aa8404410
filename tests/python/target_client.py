"""A grpcio client for tests/balancing_peers.rs: `calls` UnaryCalls to any gRPC target string
(`unix:///path`, `ipv4:...`), optionally with a load-balancing policy, printing PASS.

usage: target_client.py TARGET CALLS [LB_POLICY]

For a `unix:` target grpcio's default `:authority` is the socket path percent-encoded
(`tmp%2Fx.sock`), which the `http` crate under h2 refuses (a `%` in a host), so h2 resets the
stream with PROTOCOL_ERROR before bare-grpc sees it; this client sets `localhost`, what
naming.md gives `unix:` targets (tests/balancing_peers.rs checks the refusal itself).
"""

import json
import os
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "target", "py-gen")
# The generated grpc.testing modules live beside grpcio's own `grpc` package.
grpc.__path__.append(os.path.join(GEN, "grpc"))

from grpc.testing import messages_pb2, test_pb2_grpc  # noqa: E402


def main():
    target, calls = sys.argv[1], int(sys.argv[2])
    options = []
    if target.startswith("unix:"):
        options.append(("grpc.default_authority", "localhost"))
    if len(sys.argv) > 3:
        config = {"loadBalancingConfig": [{sys.argv[3]: {}}]}
        options.append(("grpc.service_config", json.dumps(config)))
    with grpc.insecure_channel(target, options=options) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for i in range(calls):
            reply = stub.UnaryCall(
                messages_pb2.SimpleRequest(
                    response_size=1000, payload=messages_pb2.Payload(body=b"\0" * 100)
                ),
                timeout=10,
                wait_for_ready=True,
            )
            if len(reply.payload.body) != 1000:
                print(f"FAIL call {i}: {len(reply.payload.body)} bytes")
                sys.exit(1)
    print("PASS target_client")


if __name__ == "__main__":
    main()
