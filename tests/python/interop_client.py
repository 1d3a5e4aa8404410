"""A grpcio interop client: runs one case of gRPC's interop-test-descriptions.md
against a grpc.testing.TestService server (ours, in the Rust tests).

Protocol rule: the "Client" half of interop-test-descriptions.md. Each case
below follows its "Procedure" and checks its "Client asserts"; the flags are the
ones every interop client takes (--server_host, --server_port, --test_case,
--use_tls). On success it prints `PASS <case>` and exits 0; on any failed check
it prints `FAIL <case>: <reason>` to stderr and exits 1. Every call carries a
deadline (10 s unless the case sets its own), so no wait is unbounded.

Shape: one function per case, all sharing a `Peer` (channel, stubs). The
compression cases are defined by the compressed flag of each message, which
grpcio never shows its application, so for those cases the channel goes
through frame_tap.Relay, a byte-for-byte loopback relay that records the flag
of every message in both directions:

    grpcio channel --> frame_tap.Relay --> server under test
                          records (stream, compressed flag, bytes)

What it does not do: TLS (--use_tls=true is refused), the cloud-to-prod auth
cases, and per-message compression on the client side. grpcio's client API
compresses every message of a call or none, so client_compressed_streaming
cannot send the description's second, *uncompressed* message inside the gzip
call; it sends that message (45904 bytes) compressed and says so
(expect_compressed=true), because reference servers also reject a compressed
message marked expect_compressed=false. The aggregate (73086) and the flag of
every message on the wire are still checked; a stream that mixes flags is left
to a client that can write one.
"""

import argparse
import os
import queue
import sys
import threading

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "target", "py-gen")
sys.path.insert(0, HERE)
grpc.__path__.append(os.path.join(GEN, "grpc"))

from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

import frame_tap  # noqa: E402

TIMEOUT = 10.0
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class Failure(Exception):
    """A check of the case failed; the message says which."""


def check(condition, reason):
    if not condition:
        raise Failure(reason)


def zeros(n):
    return b"\0" * n


def payload(n):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=zeros(n))


def check_payload(p, size, what):
    check(len(p.body) == size, f"{what}: payload body is {len(p.body)} bytes, want {size}")
    check(p.body == zeros(size), f"{what}: payload body is not all zeros")


def expect_error(code, fn, what):
    """Runs fn, which must fail with `code`; returns the RpcError."""
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"{what}: status {e.code()} ({e.details()!r}), want {code}")
        return e
    raise Failure(f"{what}: call succeeded, want {code}")


class RequestQueue:
    """A request iterator fed one message at a time; `close()` half-closes.

    Every wait is bounded: a consumer left waiting TIMEOUT seconds ends the stream.
    """

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def send(self, message):
        self._q.put(message)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self._q.get(timeout=TIMEOUT)
        except queue.Empty:
            raise StopIteration
        if item is self._END:
            raise StopIteration
        return item


def held_open(first=None):
    """Requests that send `first` (if any) and then never half-close until
    `release.set()` (or TIMEOUT): for the cases that need a stream left open."""
    release = threading.Event()

    def gen():
        if first is not None:
            yield first
        release.wait(TIMEOUT)

    return gen(), release


class Peer:
    def __init__(self, host, port, tapped, tls=None):
        target_host, target_port = host, port
        self.tap = None
        options = []
        if tls is not None:
            # ssl_channel_credentials: the CA, the name to check, a client certificate (mTLS).
            creds, override = tls
            if override:
                options.append(("grpc.ssl_target_name_override", override))
            self.channel = grpc.secure_channel(f"{host}:{port}", creds, options=options)
            self._ready(host, port)
            return
        if tapped:
            self.tap = frame_tap.Relay(host, port)
            target_host, target_port = "127.0.0.1", self.tap.port
            options.append(("grpc.default_authority", f"{host}:{port}"))
        self.channel = grpc.insecure_channel(f"{target_host}:{target_port}", options=options)
        self._ready(host, port)

    def _ready(self, host, port):
        try:
            grpc.channel_ready_future(self.channel).result(timeout=TIMEOUT)
        except grpc.FutureTimeoutError:
            raise Failure(f"could not connect to {host}:{port} within {TIMEOUT} s")
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)
        self.unimplemented = test_pb2_grpc.UnimplementedServiceStub(self.channel)

    def close(self):
        self.channel.close()
        if self.tap is not None:
            self.tap.close()

    def wire(self, direction):
        return self.tap.messages(direction)


def large_request(**fields):
    return messages_pb2.SimpleRequest(
        response_type=messages_pb2.COMPRESSABLE, response_size=314159,
        payload=payload(271828), **fields)


def empty_unary(peer):
    response = peer.stub.EmptyCall(empty_pb2.Empty(), timeout=TIMEOUT)
    check(isinstance(response, empty_pb2.Empty), "response is not grpc.testing.Empty")
    check(response.ByteSize() == 0, "response Empty is not zero bytes")


def large_unary(peer):
    response = peer.stub.UnaryCall(large_request(), timeout=TIMEOUT)
    check_payload(response.payload, 314159, "response")


def client_streaming(peer):
    sizes = [27182, 8, 1828, 45904]
    requests = (messages_pb2.StreamingInputCallRequest(payload=payload(n)) for n in sizes)
    response = peer.stub.StreamingInputCall(requests, timeout=TIMEOUT)
    check(response.aggregated_payload_size == 74922,
          f"aggregated_payload_size is {response.aggregated_payload_size}, want 74922")


def server_streaming(peer):
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_type=messages_pb2.COMPRESSABLE,
        response_parameters=[messages_pb2.ResponseParameters(size=n) for n in sizes])
    call = peer.stub.StreamingOutputCall(request, timeout=TIMEOUT)
    responses = list(call)
    check(len(responses) == 4, f"got {len(responses)} responses, want 4")
    for i, (r, n) in enumerate(zip(responses, sizes)):
        check_payload(r.payload, n, f"response {i}")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}, want OK")


def ping_pong(peer):
    sizes = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    requests = RequestQueue()
    call = peer.stub.FullDuplexCall(requests, timeout=TIMEOUT)
    try:
        for i, (out_size, in_size) in enumerate(sizes):
            requests.send(messages_pb2.StreamingOutputCallRequest(
                response_type=messages_pb2.COMPRESSABLE,
                response_parameters=[messages_pb2.ResponseParameters(size=out_size)],
                payload=payload(in_size)))
            try:
                response = next(call)
            except StopIteration:
                raise Failure(f"stream ended after {i} responses, want 4")
            check_payload(response.payload, out_size, f"response {i}")
    finally:
        requests.close()
    rest = list(call)
    check(not rest, f"got {len(rest)} responses after the fourth, want none")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}, want OK")


def empty_stream(peer):
    call = peer.stub.FullDuplexCall(iter(()), timeout=TIMEOUT)
    responses = list(call)
    check(not responses, f"got {len(responses)} responses, want 0")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}, want OK")


def timeout_on_sleeping_server(peer):
    requests, release = held_open(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
    try:
        call = peer.stub.FullDuplexCall(requests, timeout=0.001)
        expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: list(call), "FullDuplexCall")
    finally:
        release.set()


def cancel_after_begin(peer):
    requests, release = held_open()
    try:
        future = peer.stub.StreamingInputCall.future(requests, timeout=TIMEOUT)
        future.cancel()
        check(future.code() == grpc.StatusCode.CANCELLED,
              f"status {future.code()}, want CANCELLED")
        check(future.cancelled(), "the call does not report itself cancelled")
    finally:
        release.set()


def cancel_after_first_response(peer):
    requests = RequestQueue()
    call = peer.stub.FullDuplexCall(requests, timeout=TIMEOUT)
    try:
        requests.send(messages_pb2.StreamingOutputCallRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_parameters=[messages_pb2.ResponseParameters(size=31415)],
            payload=payload(27182)))
        try:
            first = next(call)
        except StopIteration:
            raise Failure("stream ended before the first response")
        check_payload(first.payload, 31415, "first response")
        call.cancel()
        expect_error(grpc.StatusCode.CANCELLED, lambda: list(call), "after cancel")
        check(call.code() == grpc.StatusCode.CANCELLED, f"status {call.code()}, want CANCELLED")
    finally:
        requests.close()


def _check_echo_status(peer, message):
    status = messages_pb2.EchoStatus(code=2, message=message)
    err = expect_error(
        grpc.StatusCode.UNKNOWN,
        lambda: peer.stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status),
                                    timeout=TIMEOUT),
        "UnaryCall")
    check(err.details() == message, f"UnaryCall message {err.details()!r}, want {message!r}")
    return status


def status_code_and_message(peer):
    message = "test status message"
    status = _check_echo_status(peer, message)
    request = messages_pb2.StreamingOutputCallRequest(response_status=status)
    call = peer.stub.FullDuplexCall(iter([request]), timeout=TIMEOUT)
    err = expect_error(grpc.StatusCode.UNKNOWN, lambda: list(call), "FullDuplexCall")
    check(err.details() == message,
          f"FullDuplexCall message {err.details()!r}, want {message!r}")


def special_status_message(peer):
    _check_echo_status(peer, SPECIAL_MESSAGE)


def _check_echoed_metadata(initial, trailing, what):
    initial = list(initial or ())
    trailing = list(trailing or ())
    check(ECHO_INITIAL in [tuple(m) for m in initial],
          f"{what}: initial metadata {initial} lacks {ECHO_INITIAL}")
    check(ECHO_TRAILING in [tuple(m) for m in trailing],
          f"{what}: trailing metadata {trailing} lacks {ECHO_TRAILING}")


def custom_metadata(peer):
    metadata = [ECHO_INITIAL, ECHO_TRAILING]
    response, call = peer.stub.UnaryCall.with_call(
        large_request(), metadata=metadata, timeout=TIMEOUT)
    check_payload(response.payload, 314159, "UnaryCall response")
    _check_echoed_metadata(call.initial_metadata(), call.trailing_metadata(), "UnaryCall")

    request = messages_pb2.StreamingOutputCallRequest(
        response_type=messages_pb2.COMPRESSABLE,
        response_parameters=[messages_pb2.ResponseParameters(size=314159)],
        payload=payload(271828))
    call = peer.stub.FullDuplexCall(iter([request]), metadata=metadata, timeout=TIMEOUT)
    responses = list(call)
    check(len(responses) == 1, f"FullDuplexCall: got {len(responses)} responses, want 1")
    check_payload(responses[0].payload, 314159, "FullDuplexCall response")
    check(call.code() == grpc.StatusCode.OK, f"FullDuplexCall status {call.code()}, want OK")
    _check_echoed_metadata(call.initial_metadata(), call.trailing_metadata(), "FullDuplexCall")


def unimplemented_method(peer):
    expect_error(grpc.StatusCode.UNIMPLEMENTED,
                 lambda: peer.stub.UnimplementedCall(empty_pb2.Empty(), timeout=TIMEOUT),
                 "TestService/UnimplementedCall")


def unimplemented_service(peer):
    expect_error(grpc.StatusCode.UNIMPLEMENTED,
                 lambda: peer.unimplemented.UnimplementedCall(empty_pb2.Empty(),
                                                              timeout=TIMEOUT),
                 "UnimplementedService/UnimplementedCall")


def _flags(messages):
    return [m.compressed for m in messages]


def client_compressed_unary(peer):
    def call(expect, compression, what):
        peer.tap.clear()
        request = large_request(expect_compressed=messages_pb2.BoolValue(value=expect))
        response = peer.stub.UnaryCall(request, compression=compression, timeout=TIMEOUT)
        check_payload(response.payload, 314159, what)
        return request

    peer.tap.clear()
    probe = large_request(expect_compressed=messages_pb2.BoolValue(value=True))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                 lambda: peer.stub.UnaryCall(probe, timeout=TIMEOUT),
                 "probe (uncompressed, expect_compressed=true)")
    sent = _flags(peer.wire(frame_tap.TO_SERVER))
    check(sent == [False], f"probe: request flags on the wire {sent}, want [False]")

    call(True, grpc.Compression.Gzip, "compressed call")
    sent = _flags(peer.wire(frame_tap.TO_SERVER))
    check(sent == [True], f"compressed call: request flags on the wire {sent}, want [True]")

    call(False, None, "uncompressed call")
    sent = _flags(peer.wire(frame_tap.TO_SERVER))
    check(sent == [False], f"uncompressed call: request flags on the wire {sent}, want [False]")


def server_compressed_unary(peer):
    for compressed in (True, False):
        peer.tap.clear()
        request = large_request(response_compressed=messages_pb2.BoolValue(value=compressed))
        response = peer.stub.UnaryCall(request, timeout=TIMEOUT)
        what = f"response_compressed={compressed}"
        check_payload(response.payload, 314159, what)
        got = _flags(peer.wire(frame_tap.TO_CLIENT))
        check(got == [compressed],
              f"{what}: response flags on the wire {got}, want [{compressed}]")


def client_compressed_streaming(peer):
    def request(expect, size):
        return messages_pb2.StreamingInputCallRequest(
            expect_compressed=messages_pb2.BoolValue(value=expect), payload=payload(size))

    peer.tap.clear()
    expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                 lambda: peer.stub.StreamingInputCall(iter([request(True, 27182)]),
                                                      timeout=TIMEOUT),
                 "probe (uncompressed, expect_compressed=true)")
    sent = _flags(peer.wire(frame_tap.TO_SERVER))
    check(sent == [False], f"probe: request flags on the wire {sent}, want [False]")

    peer.tap.clear()
    response = peer.stub.StreamingInputCall(
        iter([request(True, 27182), request(True, 45904)]),
        compression=grpc.Compression.Gzip, timeout=TIMEOUT)
    check(response.aggregated_payload_size == 73086,
          f"aggregated_payload_size is {response.aggregated_payload_size}, want 73086")
    sent = _flags(peer.wire(frame_tap.TO_SERVER))
    check(sent == [True, True], f"request flags on the wire {sent}, want [True, True]")


def server_compressed_streaming(peer):
    params = [(True, 31415), (False, 92653)]
    peer.tap.clear()
    request = messages_pb2.StreamingOutputCallRequest(
        response_type=messages_pb2.COMPRESSABLE,
        response_parameters=[
            messages_pb2.ResponseParameters(
                size=n, compressed=messages_pb2.BoolValue(value=c)) for c, n in params])
    call = peer.stub.StreamingOutputCall(request, timeout=TIMEOUT)
    responses = list(call)
    check(len(responses) == 2, f"got {len(responses)} responses, want 2")
    for i, (r, (_, n)) in enumerate(zip(responses, params)):
        check_payload(r.payload, n, f"response {i}")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}, want OK")
    got = _flags(peer.wire(frame_tap.TO_CLIENT))
    want = [c for c, _ in params]
    check(got == want, f"response flags on the wire {got}, want {want}")


CASES = {f.__name__: f for f in [
    empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
    timeout_on_sleeping_server, cancel_after_begin, cancel_after_first_response,
    status_code_and_message, special_status_message, custom_metadata,
    unimplemented_method, unimplemented_service, client_compressed_unary,
    server_compressed_unary, client_compressed_streaming, server_compressed_streaming,
]}
TAPPED = {"client_compressed_unary", "server_compressed_unary",
          "client_compressed_streaming", "server_compressed_streaming"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True, choices=sorted(CASES))
    flag = dict(nargs="?", const="true", default="false", choices=["false", "true"])
    parser.add_argument("--use_tls", **flag)
    parser.add_argument("--use_test_ca", **flag)
    parser.add_argument("--ca_file")
    parser.add_argument("--server_host_override")
    parser.add_argument("--client_cert_file")
    parser.add_argument("--client_key_file")
    args = parser.parse_args()
    case = args.test_case
    tls = None
    if args.use_tls == "true":
        if case in TAPPED:
            print(f"FAIL {case}: needs the plaintext wire tap", file=sys.stderr)
            return 2

        def read(path):
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca_file) if args.use_test_ca == "true" else None,
            private_key=read(args.client_key_file) if args.client_key_file else None,
            certificate_chain=read(args.client_cert_file) if args.client_cert_file else None)
        tls = (creds, args.server_host_override)

    peer = None
    try:
        peer = Peer(args.server_host, args.server_port, case in TAPPED, tls)
        CASES[case](peer)
    except Failure as e:
        print(f"FAIL {case}: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"FAIL {case}: unexpected status {e.code()} ({e.details()!r})", file=sys.stderr)
        return 1
    finally:
        if peer is not None:
            peer.close()
    print(f"PASS {case}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
