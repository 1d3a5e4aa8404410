"""A grpcio interop server: grpc.testing.TestService as interop-test-descriptions.md
describes it, for our Rust interop client to be tested against.

Protocol rule: the "Server" half of gRPC's interop-test-descriptions.md
(EmptyCall, UnaryCall, CompressedResponse, CompressedRequest, StreamingInputCall,
StreamingOutputCall, FullDuplexCall, Echo Status, Echo Metadata, Observe
ResponseParameters.interval_us). HalfDuplexCall answers once the client has
half-closed; UnimplementedCall is left to grpcio's default, UNIMPLEMENTED.

Shape:

    client --TCP--> frame_tap.Relay (public port, printed) --TCP--> grpcio server
                         | records each request's compressed flag, keyed by the
                         | relay's upstream port (= context.peer()) and bytes
                         v
                    expect_compressed check in the handlers

grpcio does not tell a handler whether its request arrived compressed, so the
CompressedRequest feature is checked against what the relay saw on the wire:
the handler looks up its connection by context.peer() and takes the oldest
request message on it whose inflated bytes equal the request re-serialized.

Usage: interop_server.py --port N   (0 = any free port). Prints
`listening on <port>` once it accepts calls; stops on SIGTERM/SIGINT.
Cleartext only; --use_tls=true is refused.
"""

import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "target", "py-gen")
sys.path.insert(0, HERE)
grpc.__path__.append(os.path.join(GEN, "grpc"))

from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

import frame_tap  # noqa: E402

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {code.value[0]: code for code in grpc.StatusCode}


def _payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def _echo_metadata(context):
    """Echo Metadata: the initial key back as initial metadata, the -bin key back
    as trailing metadata, exactly."""
    initial = []
    trailing = []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL:
            initial.append((key, value))
        elif key == ECHO_TRAILING:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def _echo_status(request, context):
    """Echo Status: a non-OK response_status closes the call with it."""
    if request.HasField("response_status") and request.response_status.code != 0:
        code = CODES.get(request.response_status.code, grpc.StatusCode.UNKNOWN)
        context.abort(code, request.response_status.message)


class TestService(test_pb2_grpc.TestServiceServicer):
    def __init__(self, relay):
        self._relay = relay

    def _check_expect_compressed(self, request, context):
        """CompressedRequest: a request whose compressed flag differs from its
        expect_compressed -> INVALID_ARGUMENT. The description names only the
        true-but-uncompressed case; the other direction is checked as well, as
        reference servers do, so a client that compresses what it marked plain is
        caught too. No expect_compressed field: nothing is checked."""
        if not request.HasField("expect_compressed"):
            return
        want = request.expect_compressed.value
        seen = self._seen_on_wire(request, context)
        if seen is None:
            context.abort(grpc.StatusCode.INTERNAL,
                          "interop server: request not found on the wire tap")
        if seen.compressed != want:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"expect_compressed is {str(want).lower()} but the request "
                          f"was {'' if seen.compressed else 'not '}compressed")

    def _seen_on_wire(self, request, context):
        if self._relay is None:  # TLS: no wire tap (the bytes are encrypted)
            return None
        peer = context.peer()
        port = int(peer.rsplit(":", 1)[1]) if peer.startswith("ipv4:") else None
        conn = self._relay.by_upstream_port(port) if port is not None else None
        if conn is None:
            return None
        return conn.take_request(request.SerializeToString())

    def EmptyCall(self, request, context):
        _echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        _echo_metadata(context)
        self._check_expect_compressed(request, context)
        _echo_status(request, context)
        if request.response_type != messages_pb2.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
        if request.response_size < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative response_size")
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        return messages_pb2.SimpleResponse(payload=_payload(request.response_size))

    def CacheableUnaryCall(self, request, context):
        _echo_metadata(context)
        body = str(time.time_ns()).encode()
        return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=body))

    def StreamingInputCall(self, request_iterator, context):
        _echo_metadata(context)
        total = 0
        for request in request_iterator:
            self._check_expect_compressed(request, context)
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def StreamingOutputCall(self, request, context):
        _echo_metadata(context)
        _echo_status(request, context)
        yield from self._respond(request, context)

    def FullDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        for request in request_iterator:
            _echo_status(request, context)
            yield from self._respond(request, context)

    def HalfDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            _echo_status(request, context)
            yield from self._respond(request, context)

    @staticmethod
    def _respond(request, context):
        """One response per ResponseParameters, each after its interval_us."""
        if request.response_type != messages_pb2.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        for params in request.response_parameters:
            if params.size < 0:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative size")
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1_000_000)
            if not params.compressed.value:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--use_tls", nargs="?", const="true", default="false",
                        choices=["false", "true"])
    parser.add_argument("--tls_cert_file")
    parser.add_argument("--tls_key_file")
    parser.add_argument("--tls_client_ca_file",
                        help="require client certificates signed by this CA (mutual TLS)")
    parser.add_argument(
        "--stop_on_stdin_eof",
        action="store_true",
        help="also stop when standard input closes (a test harness that exits stops us)",
    )
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    if args.use_tls == "true":
        # ssl_server_credentials; no wire tap, so the compression cases are not served.
        def read(path):
            with open(path, "rb") as f:
                return f.read()

        ca = read(args.tls_client_ca_file) if args.tls_client_ca_file else None
        creds = grpc.ssl_server_credentials(
            [(read(args.tls_key_file), read(args.tls_cert_file))],
            root_certificates=ca, require_client_auth=ca is not None)
        relay = None
        port = server.add_secure_port(f"127.0.0.1:{args.port}", creds)
    else:
        inner_port = server.add_insecure_port("127.0.0.1:0")
        relay = frame_tap.Relay("127.0.0.1", inner_port, keep_responses=False,
                                listen_port=args.port)
        port = relay.port
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(relay), server)
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.stop_on_stdin_eof:

        def wait_for_eof():
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=wait_for_eof, daemon=True).start()
    print(f"listening on {port}", flush=True)
    stop.wait()
    if relay is not None:
        relay.close()
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
