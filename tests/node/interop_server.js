'use strict';
// A grpc-js interop server: grpc.testing.TestService as interop-test-descriptions.md
// describes it, for our Rust interop client to be tested against.
//
// Protocol rule: the "Server" half of gRPC's interop-test-descriptions.md (EmptyCall,
// UnaryCall, CompressedRequest, StreamingInputCall, StreamingOutputCall, FullDuplexCall,
// Echo Status, Echo Metadata, Observe ResponseParameters.interval_us). HalfDuplexCall answers
// once the client has half-closed; UnimplementedCall is left to grpc-js's default handler,
// UNIMPLEMENTED, and UnimplementedService is not registered at all.
//
// Shape:
//
//   client --TCP--> frame_tap.Relay (public port, printed) --TCP--> grpc-js server
//                        | records each request's compressed flag, keyed by the
//                        | relay's upstream port (= call.getPeer()) and bytes
//                        v
//                   expect_compressed check in the handlers
//
// grpc-js does not tell a handler whether its request arrived compressed, so the
// CompressedRequest feature is checked against what the relay saw on the wire: the request
// deserializer keeps the exact (inflated) bytes grpc-js decoded, and the handler takes the
// oldest request message on its connection whose bytes are those.
//
// What grpc-js cannot do, and this server therefore does not: CompressedResponse. A grpc-js
// server never compresses a response (1.14's server-interceptors.js writes every message
// with the compressed flag 0 and answers `grpc-encoding: identity`), so `response_compressed`
// and `ResponseParameters.compressed` are ignored and every response goes out plain. The
// Rust tests pin exactly that (tests/interop_node_server.rs).
//
// Usage: interop_server.js --port N [--stop_on_stdin_eof]   (0 = any free port). Prints
// `listening on <port>` once it accepts calls; stops on SIGTERM/SIGINT, and on end of stdin
// with --stop_on_stdin_eof. Cleartext only; --use_tls=true is refused.

const { grpc, loadProto } = require('./load');
const frameTap = require('./frame_tap');

const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';
const WIRE = Symbol('wire bytes');
const Status = grpc.status;

const testing = loadProto('grpc/testing/test.proto').grpc.testing;

const payload = (size) => ({ type: 'COMPRESSABLE', body: Buffer.alloc(size) });
const sleep = (us) => new Promise((resolve) => setTimeout(resolve, us / 1000));

/** Echo Metadata: the initial key back as initial metadata; the -bin key kept for the trailers. */
function echoMetadata(call) {
  const initial = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_INITIAL)) initial.add(ECHO_INITIAL, value);
  call.sendMetadata(initial);
  const trailing = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_TRAILING)) trailing.add(ECHO_TRAILING, value);
  return trailing;
}

/** Echo Status: a non-OK response_status becomes the call's status (with the trailers). */
function echoStatus(request, trailers) {
  const s = request.response_status;
  if (s && s.code !== 0) return { code: s.code, details: s.message, metadata: trailers };
  return null;
}

function invalid(details, trailers) {
  return { code: Status.INVALID_ARGUMENT, details, metadata: trailers };
}

class TestService {
  constructor(relay) {
    this.relay = relay;
  }

  /**
   * CompressedRequest: a request whose compressed flag differs from its expect_compressed is
   * INVALID_ARGUMENT. The description names only the true-but-plain case; the other direction
   * is checked as well, as reference servers do. No expect_compressed: nothing is checked.
   */
  checkExpectCompressed(call, request, trailers) {
    if (!request.expect_compressed) return null;
    const want = request.expect_compressed.value;
    const peer = call.getPeer();
    const conn = this.relay.byUpstreamPort(Number(peer.slice(peer.lastIndexOf(':') + 1)));
    const seen = conn && conn.takeRequest(request[WIRE]);
    if (!seen) {
      return { code: Status.INTERNAL, details: 'interop server: request not found on the wire tap', metadata: trailers };
    }
    if (seen.compressed !== want) {
      return invalid(`expect_compressed is ${want} but the request was ${seen.compressed ? '' : 'not '}compressed`, trailers);
    }
    return null;
  }

  EmptyCall(call, callback) {
    const trailers = echoMetadata(call);
    callback(null, {}, trailers);
  }

  UnaryCall(call, callback) {
    const trailers = echoMetadata(call);
    const request = call.request;
    const error =
      this.checkExpectCompressed(call, request, trailers) ||
      echoStatus(request, trailers) ||
      (request.response_type !== 'COMPRESSABLE' ? invalid('unsupported response_type', trailers) : null) ||
      (request.response_size < 0 ? invalid('negative response_size', trailers) : null);
    if (error) return callback(error);
    // response_compressed is ignored: a grpc-js server cannot compress (see the header).
    callback(null, { payload: payload(request.response_size) }, trailers);
  }

  CacheableUnaryCall(call, callback) {
    const trailers = echoMetadata(call);
    callback(null, { payload: { type: 'COMPRESSABLE', body: Buffer.from(String(process.hrtime.bigint())) } }, trailers);
  }

  StreamingInputCall(call, callback) {
    const trailers = echoMetadata(call);
    let total = 0;
    let failed = null;
    call.on('data', (request) => {
      if (failed) return;
      failed = this.checkExpectCompressed(call, request, trailers);
      if (failed) return callback(failed);
      total += request.payload ? request.payload.body.length : 0;
    });
    call.on('end', () => {
      if (!failed) callback(null, { aggregated_payload_size: total }, trailers);
    });
  }

  StreamingOutputCall(call) {
    const trailers = echoMetadata(call);
    const error = echoStatus(call.request, trailers);
    if (error) return call.emit('error', error);
    respond(call, call.request, trailers).then((failed) => {
      if (failed) call.emit('error', failed);
      else call.end(trailers);
    });
  }

  FullDuplexCall(call) {
    const trailers = echoMetadata(call);
    // One request at a time, in order: each waits for the previous one's responses.
    let chain = Promise.resolve(null);
    call.on('data', (request) => {
      chain = chain.then((failed) => failed || echoStatus(request, trailers) || respond(call, request, trailers));
    });
    call.on('end', () => {
      chain.then((failed) => {
        if (failed) call.emit('error', failed);
        else call.end(trailers);
      });
    });
  }

  HalfDuplexCall(call) {
    const trailers = echoMetadata(call);
    const requests = [];
    call.on('data', (request) => requests.push(request));
    call.on('end', async () => {
      for (const request of requests) {
        const failed = echoStatus(request, trailers) || (await respond(call, request, trailers));
        if (failed) return call.emit('error', failed);
      }
      call.end(trailers);
    });
  }
}

/** One response per ResponseParameters, each after its interval_us; an error, or null. */
async function respond(call, request, trailers) {
  if (request.response_type !== 'COMPRESSABLE') return invalid('unsupported response_type', trailers);
  for (const params of request.response_parameters) {
    if (params.size < 0) return invalid('negative size', trailers);
    if (params.interval_us > 0) await sleep(params.interval_us);
    if (call.cancelled) return null;
    call.write({ payload: payload(params.size) });
  }
  return null;
}

/** The service definition with each request deserializer keeping the bytes it decoded. */
function keepingWireBytes(definition) {
  const out = {};
  for (const [name, method] of Object.entries(definition)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes) => {
        const message = method.requestDeserialize(bytes);
        Object.defineProperty(message, WIRE, { value: Buffer.from(bytes) });
        return message;
      },
    };
  }
  return out;
}

function parseArgs(argv) {
  const args = { use_tls: 'false', stop_on_stdin_eof: false };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z_]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    if (m[1] === 'stop_on_stdin_eof') args.stop_on_stdin_eof = true;
    else args[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.port === undefined || args.use_tls !== 'false') {
    process.stderr.write('usage: interop_server.js --port N [--stop_on_stdin_eof] (cleartext only)\n');
    process.exit(2);
  }
  const server = new grpc.Server();
  const innerPort = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))),
  );
  const relay = new frameTap.Relay('127.0.0.1', innerPort, { keepResponses: false, listenPort: Number(args.port) });
  server.addService(keepingWireBytes(testing.TestService.service), new TestService(relay));
  const port = await relay.listening;

  const stop = () => {
    relay.close();
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (args.stop_on_stdin_eof) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
  process.stdout.write(`listening on ${port}\n`);
}

main().catch((e) => {
  process.stderr.write(`interop_server.js: ${e.stack}\n`);
  process.exit(1);
});
