"""A loopback TCP relay that watches the gRPC messages crossing it.

Protocol rule: PROTOCOL-HTTP2 § Length-Prefixed-Message. Every gRPC message
travels in HTTP/2 DATA frames behind a 5-byte prefix whose first byte is the
Compressed-Flag:

    HTTP/2 frame (RFC 9113 §4.1)            gRPC message (one or many per stream)
    +-----------+------+-------+--------+    +------+-----------+-------------+
    | length:24 | type | flags | id:31  |    | flag | length:32 | bytes ...   |
    +-----------+------+-------+--------+    +------+-----------+-------------+
    DATA = type 0; END_STREAM = 0x1;          flag 1 = compressed with the
    PADDED = 0x8 (pad-length byte first)      stream's grpc-encoding

Why it exists: grpcio hides the compressed flag from applications on both
sides (it also filters grpc-encoding out of the metadata it hands over), yet
the compression interop cases are defined by that flag. The relay sits
between a grpcio peer and the program under test, forwards every byte
unchanged, and before forwarding a chunk it parses the frames in it, so by
the time a peer has received a message the relay has recorded its flag.

What it does not do: it never edits, delays or reorders bytes; it does not
decode HPACK header blocks (so it knows stream ids, not paths or headers);
it speaks cleartext HTTP/2 with prior knowledge only (no TLS, no h2c
upgrade). A compressed message is inflated only as gzip, the one encoding the
interop cases use; anything else is recorded with `plain=None`.
"""

import socket
import threading
import zlib

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER_LEN = 9
TYPE_DATA = 0x0
TYPE_RST_STREAM = 0x3
FLAG_END_STREAM = 0x1
FLAG_PADDED = 0x8
GRPC_PREFIX_LEN = 5

TO_SERVER = "to_server"
TO_CLIENT = "to_client"


class Message:
    """One gRPC message seen on the wire."""

    def __init__(self, stream_id, compressed, wire, plain):
        self.stream_id = stream_id
        self.compressed = compressed
        self.wire = wire
        self.plain = plain

    def __repr__(self):
        return (f"Message(stream={self.stream_id}, compressed={self.compressed}, "
                f"wire_len={len(self.wire)})")


def _inflate_gzip(data):
    try:
        return zlib.decompress(data, wbits=31)
    except zlib.error:
        return None


class _FrameReader:
    """Splits one direction of a connection into frames, then into gRPC messages."""

    def __init__(self, direction, expect_preface, on_message, on_stream_end):
        self._direction = direction
        self._need_preface = expect_preface
        self._buf = bytearray()
        self._pending = {}
        self._on_message = on_message
        self._on_stream_end = on_stream_end

    def feed(self, chunk):
        self._buf += chunk
        if self._need_preface:
            if len(self._buf) < len(PREFACE):
                return
            del self._buf[:len(PREFACE)]
            self._need_preface = False
        while len(self._buf) >= FRAME_HEADER_LEN:
            length = int.from_bytes(self._buf[0:3], "big")
            if len(self._buf) < FRAME_HEADER_LEN + length:
                return
            ftype = self._buf[3]
            flags = self._buf[4]
            stream_id = int.from_bytes(self._buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self._buf[FRAME_HEADER_LEN:FRAME_HEADER_LEN + length])
            del self._buf[:FRAME_HEADER_LEN + length]
            if ftype == TYPE_DATA:
                if flags & FLAG_PADDED and payload:
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                self._data(stream_id, payload)
                if flags & FLAG_END_STREAM:
                    self._end(stream_id)
            elif ftype == TYPE_RST_STREAM:
                self._end(stream_id)

    def _data(self, stream_id, payload):
        pending = self._pending.setdefault(stream_id, bytearray())
        pending += payload
        while len(pending) >= GRPC_PREFIX_LEN:
            size = int.from_bytes(pending[1:5], "big")
            if len(pending) < GRPC_PREFIX_LEN + size:
                break
            compressed = pending[0] == 1
            wire = bytes(pending[GRPC_PREFIX_LEN:GRPC_PREFIX_LEN + size])
            del pending[:GRPC_PREFIX_LEN + size]
            plain = _inflate_gzip(wire) if compressed else wire
            self._on_message(self._direction, Message(stream_id, compressed, wire, plain))

    def _end(self, stream_id):
        self._pending.pop(stream_id, None)
        self._on_stream_end(self._direction, stream_id)


class Connection:
    """The record of one relayed connection: messages per direction, in arrival order."""

    def __init__(self, prune):
        self.lock = threading.Lock()
        self._prune = prune
        self.messages = {TO_SERVER: [], TO_CLIENT: []}
        self.upstream_local_port = None

    def _on_message(self, direction, message):
        with self.lock:
            self.messages[direction].append(message)

    def _on_stream_end(self, direction, stream_id):
        """A stream that the server has finished can no longer be asked about."""
        if not self._prune or direction != TO_CLIENT:
            return
        with self.lock:
            self.messages[TO_SERVER] = [
                m for m in self.messages[TO_SERVER] if m.stream_id != stream_id]

    def take_request(self, plain):
        """Removes and returns the oldest request message whose bytes equal `plain`."""
        with self.lock:
            for i, m in enumerate(self.messages[TO_SERVER]):
                if m.plain == plain:
                    return self.messages[TO_SERVER].pop(i)
        return None


class Relay:
    """Listens on 127.0.0.1:`listen_port` (0 = any) and relays each accepted connection to `target`.

    `keep_responses=True` (client side) keeps everything until `clear()`.
    `keep_responses=False` (server side) drops server-to-client records at once and
    keeps only requests of live streams, so a long-running server holds no history.
    """

    def __init__(self, target_host, target_port, keep_responses=True, listen_port=0):
        self._target = (target_host, target_port)
        self._keep_responses = keep_responses
        self._listener = socket.create_server(("127.0.0.1", listen_port))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections = []
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def connections(self):
        with self._lock:
            return list(self._connections)

    def by_upstream_port(self, port):
        with self._lock:
            for c in self._connections:
                if c.upstream_local_port == port:
                    return c
        return None

    def messages(self, direction):
        """All messages seen in `direction`, across connections, in arrival order per
        connection."""
        out = []
        for c in self.connections():
            with c.lock:
                out.extend(c.messages[direction])
        return out

    def clear(self):
        for c in self.connections():
            with c.lock:
                c.messages[TO_SERVER].clear()
                c.messages[TO_CLIENT].clear()

    def close(self):
        self._closed = True
        self._listener.close()

    def _accept_loop(self):
        while not self._closed:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self._target, timeout=10)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(prune=not self._keep_responses)
            conn.upstream_local_port = up.getsockname()[1]
            on_message = conn._on_message
            if not self._keep_responses:
                def on_message(direction, message, conn=conn):
                    if direction == TO_SERVER:
                        conn._on_message(direction, message)
            with self._lock:
                self._connections.append(conn)
            to_server = _FrameReader(TO_SERVER, True, on_message, conn._on_stream_end)
            to_client = _FrameReader(TO_CLIENT, False, on_message, conn._on_stream_end)
            done = threading.Semaphore(0)
            threading.Thread(target=self._pump, args=(down, up, to_server, done),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, to_client, done),
                             daemon=True).start()
            threading.Thread(target=self._reap, args=(conn, down, up, done),
                             daemon=True).start()

    def _reap(self, conn, down, up, done):
        done.acquire()
        done.acquire()
        down.close()
        up.close()
        with self._lock:
            if not self._keep_responses and conn in self._connections:
                self._connections.remove(conn)

    @staticmethod
    def _pump(src, dst, reader, done):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                reader.feed(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            done.release()
