'use strict';
// A loopback TCP relay that watches the gRPC messages crossing it (the Node twin of
// tests/python/frame_tap.py).
//
// Protocol rule: PROTOCOL-HTTP2 § Length-Prefixed-Message. Every gRPC message travels in
// HTTP/2 DATA frames (RFC 9113 §6.1) behind a 5-byte prefix whose first byte is the
// Compressed-Flag:
//
//   HTTP/2 frame (RFC 9113 §4.1)            gRPC message (one or many per stream)
//   +-----------+------+-------+--------+    +------+-----------+-------------+
//   | length:24 | type | flags | id:31  |    | flag | length:32 | bytes ...   |
//   +-----------+------+-------+--------+    +------+-----------+-------------+
//   DATA = type 0; END_STREAM = 0x1;          flag 1 = compressed with the
//   PADDED = 0x8 (pad-length byte first)      stream's grpc-encoding
//
// Why it exists: grpc-js hides the compressed flag from applications on both sides (its
// compression filter strips the prefix before a handler or a client sees the message), yet
// the compression interop cases are defined by that flag. The relay sits between a grpc-js
// peer and the program under test, forwards every byte unchanged, and parses the frames of a
// chunk before forwarding it, so by the time a peer has received a message the relay has
// recorded its flag.
//
// What it does not do: it never edits, delays or reorders bytes; it does not decode HPACK
// (it knows stream ids, not paths or headers); cleartext HTTP/2 with prior knowledge only. A
// compressed message is inflated as gzip only (the one encoding the interop cases use);
// anything else is recorded with `plain = null`.

const net = require('net');
const zlib = require('zlib');

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_LEN = 9;
const TYPE_DATA = 0x0;
const TYPE_RST_STREAM = 0x3;
const FLAG_END_STREAM = 0x1;
const FLAG_PADDED = 0x8;
const GRPC_PREFIX_LEN = 5;

const TO_SERVER = 'to_server';
const TO_CLIENT = 'to_client';

function inflateGzip(data) {
  try {
    return zlib.gunzipSync(data);
  } catch (_) {
    return null;
  }
}

/** Splits one direction of a connection into frames, then into gRPC messages. */
class FrameReader {
  constructor(direction, expectPreface, onMessage, onStreamEnd) {
    this.direction = direction;
    this.needPreface = expectPreface;
    this.buf = Buffer.alloc(0);
    this.pending = new Map();
    this.onMessage = onMessage;
    this.onStreamEnd = onStreamEnd;
  }

  feed(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.needPreface) {
      if (this.buf.length < PREFACE.length) return;
      this.buf = this.buf.subarray(PREFACE.length);
      this.needPreface = false;
    }
    while (this.buf.length >= FRAME_HEADER_LEN) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < FRAME_HEADER_LEN + length) return;
      const type = this.buf[3];
      const flags = this.buf[4];
      const streamId = this.buf.readUInt32BE(5) & 0x7fffffff;
      let payload = this.buf.subarray(FRAME_HEADER_LEN, FRAME_HEADER_LEN + length);
      this.buf = this.buf.subarray(FRAME_HEADER_LEN + length);
      if (type === TYPE_DATA) {
        if (flags & FLAG_PADDED && payload.length > 0) {
          payload = payload.subarray(1, payload.length - payload[0]);
        }
        this.data(streamId, payload);
        if (flags & FLAG_END_STREAM) this.end(streamId);
      } else if (type === TYPE_RST_STREAM) {
        this.end(streamId);
      }
    }
  }

  data(streamId, payload) {
    let pending = this.pending.get(streamId) || Buffer.alloc(0);
    pending = Buffer.concat([pending, payload]);
    while (pending.length >= GRPC_PREFIX_LEN) {
      const size = pending.readUInt32BE(1);
      if (pending.length < GRPC_PREFIX_LEN + size) break;
      const compressed = pending[0] === 1;
      const wire = Buffer.from(pending.subarray(GRPC_PREFIX_LEN, GRPC_PREFIX_LEN + size));
      pending = pending.subarray(GRPC_PREFIX_LEN + size);
      const plain = compressed ? inflateGzip(wire) : wire;
      this.onMessage(this.direction, { streamId, compressed, wire, plain });
    }
    this.pending.set(streamId, pending);
  }

  end(streamId) {
    this.pending.delete(streamId);
    this.onStreamEnd(this.direction, streamId);
  }
}

/** The record of one relayed connection: messages per direction, in arrival order. */
class Connection {
  constructor(prune) {
    this.prune = prune;
    this.messages = { [TO_SERVER]: [], [TO_CLIENT]: [] };
    this.upstreamLocalPort = null;
  }

  onStreamEnd(direction, streamId) {
    // A stream the server has finished can no longer be asked about.
    if (!this.prune || direction !== TO_CLIENT) return;
    this.messages[TO_SERVER] = this.messages[TO_SERVER].filter((m) => m.streamId !== streamId);
  }

  /** Removes and returns the oldest request message whose bytes equal `plain`. */
  takeRequest(plain) {
    const list = this.messages[TO_SERVER];
    const i = list.findIndex((m) => m.plain !== null && m.plain.equals(plain));
    return i < 0 ? null : list.splice(i, 1)[0];
  }
}

/**
 * Listens on 127.0.0.1:`listenPort` (0 = any) and relays each accepted connection to the
 * target. `keepResponses: true` (client side) keeps everything until `clear()`;
 * `keepResponses: false` (server side) keeps only the requests of live streams, so a
 * long-running server holds no history. Call `await relay.listening` before using `port`.
 */
class Relay {
  constructor(targetHost, targetPort, { keepResponses = true, listenPort = 0 } = {}) {
    this.keepResponses = keepResponses;
    this.connections = [];
    this.sockets = new Set();
    this.server = net.createServer((down) => this.accept(down, targetHost, targetPort));
    this.listening = new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(listenPort, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this.port);
      });
    });
  }

  accept(down, targetHost, targetPort) {
    const conn = new Connection(!this.keepResponses);
    down.pause();
    const up = net.connect(targetPort, targetHost);
    this.sockets.add(down);
    this.sockets.add(up);
    const onMessage = (direction, message) => {
      if (this.keepResponses || direction === TO_SERVER) conn.messages[direction].push(message);
    };
    const onEnd = (direction, id) => conn.onStreamEnd(direction, id);
    const toServer = new FrameReader(TO_SERVER, true, onMessage, onEnd);
    const toClient = new FrameReader(TO_CLIENT, false, onMessage, onEnd);
    up.once('connect', () => {
      conn.upstreamLocalPort = up.localPort;
      this.connections.push(conn);
      down.resume();
    });
    for (const s of [down, up]) s.setNoDelay(true);
    down.on('data', (chunk) => {
      toServer.feed(chunk);
      up.write(chunk);
    });
    up.on('data', (chunk) => {
      toClient.feed(chunk);
      down.write(chunk);
    });
    const closeBoth = () => {
      down.destroy();
      up.destroy();
      this.sockets.delete(down);
      this.sockets.delete(up);
      if (!this.keepResponses) this.connections = this.connections.filter((c) => c !== conn);
    };
    down.on('end', () => up.end());
    up.on('end', () => down.end());
    down.on('close', closeBoth);
    up.on('close', closeBoth);
    down.on('error', closeBoth);
    up.on('error', closeBoth);
  }

  byUpstreamPort(port) {
    return this.connections.find((c) => c.upstreamLocalPort === port) || null;
  }

  /** All messages seen in `direction`, across connections, in arrival order per connection. */
  messages(direction) {
    return this.connections.flatMap((c) => c.messages[direction]);
  }

  clear() {
    for (const c of this.connections) {
      c.messages[TO_SERVER] = [];
      c.messages[TO_CLIENT] = [];
    }
  }

  close() {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

module.exports = { Relay, TO_SERVER, TO_CLIENT };
