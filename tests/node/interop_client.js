'use strict';
// A grpc-js interop client: runs one case of gRPC's interop-test-descriptions.md against a
// grpc.testing.TestService server (ours, in the Rust tests).
//
// Protocol rule: the "Client" half of interop-test-descriptions.md. Each case below follows
// its "Procedure" and checks its "Client asserts"; the flags are the ones every interop client
// takes (--server_host, --server_port, --test_case, --use_tls). On success it prints
// `PASS <case>` and exits 0; on a failed check it prints `FAIL <case>: <reason>` to stderr and
// exits 1. Every call carries a deadline (10 s unless the case sets its own), and the whole
// run is bounded by a 30 s timer, so no wait is unbounded.
//
// It is written the way a grpc-js user writes a client: the contract loaded at run time by
// @grpc/proto-loader, the generic client constructor from grpc.loadPackageDefinition,
// callbacks for unary calls and Node streams for the others.
//
// Compression: grpc-js compresses what a channel sends when the channel option
// `grpc.default_compression_algorithm` is 2 (gzip); a streamed message can opt out with the
// write flag NoCompress (2) passed as `call.write(message, 2)`. grpc-js never shows the
// compressed flag of a received message, so the four compression cases route the channel
// through frame_tap.js, a byte-for-byte loopback relay that records the flag of every
// message in both directions:
//
//     grpc-js channel --> frame_tap.Relay --> server under test
//                            records (stream, compressed flag, bytes)
//
// What it does not do: TLS (--use_tls=true is refused) and the cloud-to-prod auth cases.
// All eighteen cases run as the description says, client_compressed_streaming included (its
// second message goes uncompressed inside the gzip call, through NoCompress).

const { grpc, loadProto } = require('./load');
const frameTap = require('./frame_tap');

const TIMEOUT_MS = 10000;
const RUN_BOUND_MS = 30000;
const ECHO_INITIAL = ['x-grpc-test-echo-initial', 'test_initial_metadata_value'];
const ECHO_TRAILING = ['x-grpc-test-echo-trailing-bin', Buffer.from([0xab, 0xab, 0xab])];
const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
const GZIP = 2;
const NO_COMPRESS = 2;

const testing = loadProto('grpc/testing/test.proto').grpc.testing;
const Status = grpc.status;

class Failure extends Error {}

function check(condition, reason) {
  if (!condition) throw new Failure(reason);
}

const deadline = (ms = TIMEOUT_MS) => ({ deadline: Date.now() + ms });
const zeros = (n) => Buffer.alloc(n);
const payload = (n) => ({ type: 'COMPRESSABLE', body: zeros(n) });
const codeName = (code) => Object.keys(Status).find((k) => Status[k] === code) || String(code);

function checkPayload(p, size, what) {
  check(p && p.body.length === size, `${what}: payload body is ${p ? p.body.length : 'absent'} bytes, want ${size}`);
  check(p.body.equals(zeros(size)), `${what}: payload body is not all zeros`);
}

/** A unary call as a promise of { error, response, headers, trailers }. */
function unary(client, method, request, { metadata = new grpc.Metadata(), options = deadline() } = {}) {
  return new Promise((resolve) => {
    let headers = null;
    let done = null;
    let trailers = null;
    const finish = () => {
      if (done && trailers) resolve({ ...done, headers, trailers });
    };
    const call = client[method](request, metadata, options, (error, response) => {
      done = { error, response };
      finish();
    });
    call.on('metadata', (m) => {
      headers = m;
    });
    call.on('status', (s) => {
      trailers = s.metadata;
      finish();
    });
  });
}

/** Checks that `outcome` (from unary or Reader.end) failed with `code`; returns the error. */
function expectError(outcome, code, what) {
  const error = outcome.error;
  check(error, `${what}: call succeeded, want ${codeName(code)}`);
  check(error.code === code, `${what}: status ${codeName(error.code)} (${JSON.stringify(error.details)}), want ${codeName(code)}`);
  return error;
}

/**
 * The responses of a streaming call, one `await next()` at a time, each wait bounded.
 * `next()` resolves to { message } or, at the end, { done: true, status, error }.
 */
class Reader {
  constructor(call) {
    this.call = call;
    this.items = [];
    this.waiters = [];
    this.headers = null;
    this.status = null;
    this.ended = false;
    this.finished = false;
    call.on('metadata', (m) => {
      this.headers = m;
    });
    call.on('data', (message) => this.push({ message }));
    call.on('error', (error) => {
      this.error = error;
    });
    call.on('end', () => {
      this.ended = true;
      this.maybeFinish();
    });
    call.on('status', (status) => {
      this.status = status;
      this.maybeFinish();
    });
  }

  maybeFinish() {
    // OK: after the last message ('end'); an error ends the call whatever was left unread.
    if (this.finished || !this.status || (this.status.code === Status.OK && !this.ended)) return;
    this.finished = true;
    this.push({ done: true, status: this.status, error: this.status.code === Status.OK ? null : this.error });
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(what = 'next response') {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Failure(`${what}: nothing within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      this.waiters.push((item) => {
        clearTimeout(timer);
        resolve(item);
      });
    });
  }

  /** Reads to the end: { messages, status, error }. */
  async all() {
    const messages = [];
    for (;;) {
      const item = await this.next('end of stream');
      if (item.done) return { messages, status: item.status, error: item.error };
      messages.push(item.message);
    }
  }
}

/** A client-streaming call: the call plus a promise of { error, response, trailers }. */
function clientStream(client, method, { metadata = new grpc.Metadata(), options = deadline() } = {}) {
  let resolveDone;
  const done = new Promise((resolve) => {
    resolveDone = resolve;
  });
  let outcome = null;
  let trailers = null;
  const finish = () => {
    if (outcome && trailers) resolveDone({ ...outcome, trailers });
  };
  const call = client[method](metadata, options, (error, response) => {
    outcome = { error, response };
    finish();
  });
  call.on('status', (s) => {
    trailers = s.metadata;
    finish();
  });
  return { call, done };
}

class Peer {
  constructor(host, port, tapped) {
    this.host = host;
    this.port = port;
    this.tapped = tapped;
    this.clients = [];
  }

  async open() {
    let target = `${this.host}:${this.port}`;
    this.options = {};
    if (this.tapped) {
      this.tap = new frameTap.Relay(this.host, this.port);
      await this.tap.listening;
      this.options['grpc.default_authority'] = target;
      target = `127.0.0.1:${this.tap.port}`;
    }
    this.target = target;
    this.stub = this.client(testing.TestService);
    await new Promise((resolve, reject) =>
      this.stub.waitForReady(Date.now() + TIMEOUT_MS, (e) =>
        e ? reject(new Failure(`could not connect to ${this.host}:${this.port}: ${e.message}`)) : resolve(),
      ),
    );
    this.unimplemented = this.client(testing.UnimplementedService);
  }

  /** A client of `Service` on this peer's target; `options` adds channel options. */
  client(Service, options = {}) {
    const c = new Service(this.target, grpc.credentials.createInsecure(), { ...this.options, ...options });
    this.clients.push(c);
    return c;
  }

  /** A TestService client whose channel compresses what it sends with gzip. */
  gzipStub() {
    return this.client(testing.TestService, { 'grpc.default_compression_algorithm': GZIP });
  }

  wire(direction) {
    return this.tap.messages(direction);
  }

  close() {
    for (const c of this.clients) c.close();
    if (this.tap) this.tap.close();
  }
}

const largeRequest = (fields = {}) => ({
  response_type: 'COMPRESSABLE',
  response_size: 314159,
  payload: payload(271828),
  ...fields,
});

const outputRequest = (sizes, requestSize, fields = {}) => ({
  response_type: 'COMPRESSABLE',
  response_parameters: sizes.map((size) => ({ size })),
  payload: requestSize > 0 ? payload(requestSize) : null,
  ...fields,
});

function okOutcome(outcome, what) {
  if (outcome.error) {
    throw new Failure(`${what}: status ${codeName(outcome.error.code)} (${JSON.stringify(outcome.error.details)})`);
  }
  return outcome.response;
}

function okEnd(end, what) {
  check(end.status.code === Status.OK, `${what}: status ${codeName(end.status.code)} (${JSON.stringify(end.status.details)}), want OK`);
}

const cases = {
  async empty_unary(peer) {
    const response = okOutcome(await unary(peer.stub, 'EmptyCall', {}), 'EmptyCall');
    check(response && Object.keys(response).length === 0, `response is not an empty grpc.testing.Empty: ${JSON.stringify(response)}`);
  },

  async large_unary(peer) {
    const response = okOutcome(await unary(peer.stub, 'UnaryCall', largeRequest()), 'UnaryCall');
    checkPayload(response.payload, 314159, 'response');
  },

  async client_streaming(peer) {
    const { call, done } = clientStream(peer.stub, 'StreamingInputCall');
    for (const n of [27182, 8, 1828, 45904]) call.write({ payload: payload(n) });
    call.end();
    const response = okOutcome(await done, 'StreamingInputCall');
    check(response.aggregated_payload_size === 74922, `aggregated_payload_size is ${response.aggregated_payload_size}, want 74922`);
  },

  async server_streaming(peer) {
    const sizes = [31415, 9, 2653, 58979];
    const reader = new Reader(peer.stub.StreamingOutputCall(outputRequest(sizes, 0), deadline()));
    const end = await reader.all();
    okEnd(end, 'StreamingOutputCall');
    check(end.messages.length === 4, `got ${end.messages.length} responses, want 4`);
    end.messages.forEach((m, i) => checkPayload(m.payload, sizes[i], `response ${i}`));
  },

  async ping_pong(peer) {
    const call = peer.stub.FullDuplexCall(deadline());
    const reader = new Reader(call);
    const steps = [
      [31415, 27182],
      [9, 8],
      [2653, 1828],
      [58979, 45904],
    ];
    for (const [i, [out, inSize]] of steps.entries()) {
      call.write(outputRequest([out], inSize));
      const item = await reader.next(`response ${i}`);
      check(!item.done, `stream ended after ${i} responses, want 4`);
      checkPayload(item.message.payload, out, `response ${i}`);
    }
    call.end();
    const end = await reader.all();
    check(end.messages.length === 0, `got ${end.messages.length} responses after the fourth, want none`);
    okEnd(end, 'FullDuplexCall');
  },

  async empty_stream(peer) {
    const call = peer.stub.FullDuplexCall(deadline());
    const reader = new Reader(call);
    call.end();
    const end = await reader.all();
    check(end.messages.length === 0, `got ${end.messages.length} responses, want 0`);
    okEnd(end, 'FullDuplexCall');
  },

  async timeout_on_sleeping_server(peer) {
    // grpc-js sends this 1 ms deadline as `grpc-timeout: 1m` (it always uses milliseconds
    // rounded up) and also enforces it itself.
    const call = peer.stub.FullDuplexCall(deadline(1));
    const reader = new Reader(call);
    call.write({ payload: payload(27182) });
    const end = await reader.all();
    expectError(end, Status.DEADLINE_EXCEEDED, 'FullDuplexCall');
    call.end();
  },

  async cancel_after_begin(peer) {
    const { call, done } = clientStream(peer.stub, 'StreamingInputCall');
    call.cancel();
    expectError(await done, Status.CANCELLED, 'StreamingInputCall');
  },

  async cancel_after_first_response(peer) {
    const call = peer.stub.FullDuplexCall(deadline());
    const reader = new Reader(call);
    call.write(outputRequest([31415], 27182));
    const first = await reader.next('first response');
    check(!first.done, 'stream ended before the first response');
    checkPayload(first.message.payload, 31415, 'first response');
    call.cancel();
    const end = await reader.all();
    expectError(end, Status.CANCELLED, 'after cancel');
  },

  async status_code_and_message(peer) {
    const message = 'test status message';
    const status = { code: 2, message };
    const outcome = await unary(peer.stub, 'UnaryCall', { response_status: status });
    check(expectError(outcome, Status.UNKNOWN, 'UnaryCall').details === message, `UnaryCall message ${JSON.stringify(outcome.error.details)}, want ${JSON.stringify(message)}`);

    const call = peer.stub.FullDuplexCall(deadline());
    const reader = new Reader(call);
    call.write({ response_status: status });
    call.end();
    const end = await reader.all();
    check(expectError(end, Status.UNKNOWN, 'FullDuplexCall').details === message, `FullDuplexCall message ${JSON.stringify(end.error.details)}, want ${JSON.stringify(message)}`);
  },

  async special_status_message(peer) {
    const outcome = await unary(peer.stub, 'UnaryCall', { response_status: { code: 2, message: SPECIAL_MESSAGE } });
    const error = expectError(outcome, Status.UNKNOWN, 'UnaryCall');
    check(error.details === SPECIAL_MESSAGE, `message ${JSON.stringify(error.details)}, want ${JSON.stringify(SPECIAL_MESSAGE)}`);
  },

  async custom_metadata(peer) {
    const metadata = () => {
      const m = new grpc.Metadata();
      m.add(...ECHO_INITIAL);
      m.add(...ECHO_TRAILING);
      return m;
    };
    const checkEcho = (headers, trailers, what) => {
      const initial = headers ? headers.get(ECHO_INITIAL[0]) : [];
      check(initial.length === 1 && initial[0] === ECHO_INITIAL[1], `${what}: initial metadata ${ECHO_INITIAL[0]} is ${JSON.stringify(initial)}`);
      const trailing = trailers ? trailers.get(ECHO_TRAILING[0]) : [];
      check(trailing.length === 1 && Buffer.isBuffer(trailing[0]) && trailing[0].equals(ECHO_TRAILING[1]), `${what}: trailing metadata ${ECHO_TRAILING[0]} is ${JSON.stringify(trailing)}`);
    };
    const outcome = await unary(peer.stub, 'UnaryCall', largeRequest(), { metadata: metadata() });
    checkPayload(okOutcome(outcome, 'UnaryCall').payload, 314159, 'UnaryCall response');
    checkEcho(outcome.headers, outcome.trailers, 'UnaryCall');

    const call = peer.stub.FullDuplexCall(metadata(), deadline());
    const reader = new Reader(call);
    call.write(outputRequest([314159], 271828));
    call.end();
    const end = await reader.all();
    okEnd(end, 'FullDuplexCall');
    check(end.messages.length === 1, `FullDuplexCall: got ${end.messages.length} responses, want 1`);
    checkPayload(end.messages[0].payload, 314159, 'FullDuplexCall response');
    checkEcho(reader.headers, end.status.metadata, 'FullDuplexCall');
  },

  async unimplemented_method(peer) {
    expectError(await unary(peer.stub, 'UnimplementedCall', {}), Status.UNIMPLEMENTED, 'TestService/UnimplementedCall');
  },

  async unimplemented_service(peer) {
    expectError(await unary(peer.unimplemented, 'UnimplementedCall', {}), Status.UNIMPLEMENTED, 'UnimplementedService/UnimplementedCall');
  },

  async client_compressed_unary(peer) {
    const gzip = peer.gzipStub();
    const sentFlags = () => peer.wire(frameTap.TO_SERVER).map((m) => m.compressed);

    peer.tap.clear();
    const probe = largeRequest({ expect_compressed: { value: true } });
    expectError(await unary(peer.stub, 'UnaryCall', probe), Status.INVALID_ARGUMENT, 'probe (uncompressed, expect_compressed=true)');
    check(JSON.stringify(sentFlags()) === '[false]', `probe: request flags on the wire ${JSON.stringify(sentFlags())}, want [false]`);

    for (const [stub, compressed] of [
      [gzip, true],
      [peer.stub, false],
    ]) {
      peer.tap.clear();
      const what = compressed ? 'compressed call' : 'uncompressed call';
      const outcome = await unary(stub, 'UnaryCall', largeRequest({ expect_compressed: { value: compressed } }));
      checkPayload(okOutcome(outcome, what).payload, 314159, what);
      const flags = JSON.stringify(sentFlags());
      check(flags === `[${compressed}]`, `${what}: request flags on the wire ${flags}, want [${compressed}]`);
    }
  },

  async server_compressed_unary(peer) {
    for (const compressed of [true, false]) {
      peer.tap.clear();
      const what = `response_compressed=${compressed}`;
      const outcome = await unary(peer.stub, 'UnaryCall', largeRequest({ response_compressed: { value: compressed } }));
      checkPayload(okOutcome(outcome, what).payload, 314159, what);
      const flags = JSON.stringify(peer.wire(frameTap.TO_CLIENT).map((m) => m.compressed));
      check(flags === `[${compressed}]`, `${what}: response flags on the wire ${flags}, want [${compressed}]`);
    }
  },

  async client_compressed_streaming(peer) {
    const gzip = peer.gzipStub();
    const request = (expect, size) => ({ expect_compressed: { value: expect }, payload: payload(size) });
    const sentFlags = () => JSON.stringify(peer.wire(frameTap.TO_SERVER).map((m) => m.compressed));

    peer.tap.clear();
    const probe = clientStream(peer.stub, 'StreamingInputCall');
    probe.call.write(request(true, 27182));
    probe.call.end();
    expectError(await probe.done, Status.INVALID_ARGUMENT, 'probe (uncompressed, expect_compressed=true)');
    check(sentFlags() === '[false]', `probe: request flags on the wire ${sentFlags()}, want [false]`);

    peer.tap.clear();
    const { call, done } = clientStream(gzip, 'StreamingInputCall');
    call.write(request(true, 27182));
    call.write(request(false, 45904), NO_COMPRESS);
    call.end();
    const response = okOutcome(await done, 'StreamingInputCall');
    check(response.aggregated_payload_size === 73086, `aggregated_payload_size is ${response.aggregated_payload_size}, want 73086`);
    check(sentFlags() === '[true,false]', `request flags on the wire ${sentFlags()}, want [true,false]`);
  },

  async server_compressed_streaming(peer) {
    const params = [
      [true, 31415],
      [false, 92653],
    ];
    peer.tap.clear();
    const request = {
      response_type: 'COMPRESSABLE',
      response_parameters: params.map(([compressed, size]) => ({ size, compressed: { value: compressed } })),
    };
    const end = await new Reader(peer.stub.StreamingOutputCall(request, deadline())).all();
    okEnd(end, 'StreamingOutputCall');
    check(end.messages.length === 2, `got ${end.messages.length} responses, want 2`);
    end.messages.forEach((m, i) => checkPayload(m.payload, params[i][1], `response ${i}`));
    const flags = JSON.stringify(peer.wire(frameTap.TO_CLIENT).map((m) => m.compressed));
    check(flags === '[true,false]', `response flags on the wire ${flags}, want [true,false]`);
  },
};

const TAPPED = new Set(['client_compressed_unary', 'server_compressed_unary', 'client_compressed_streaming', 'server_compressed_streaming']);

function parseArgs(argv) {
  const args = { server_host: 'localhost', use_tls: 'false' };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z_]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Failure(`unexpected argument ${argv[i]}`);
    args[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return args;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`interop_client.js: ${e.message}\n`);
    return 2;
  }
  const testCase = args.test_case;
  if (!cases[testCase] || !args.server_port || args.use_tls !== 'false') {
    process.stderr.write(`usage: interop_client.js --server_host H --server_port N --test_case CASE [--use_tls=false]\ncases: ${Object.keys(cases).join(' ')}\n`);
    return 2;
  }
  const peer = new Peer(args.server_host, Number(args.server_port), TAPPED.has(testCase));
  try {
    await peer.open();
    await cases[testCase](peer);
  } catch (e) {
    process.stderr.write(`FAIL ${testCase}: ${e instanceof Failure ? e.message : e.stack}\n`);
    return 1;
  } finally {
    peer.close();
  }
  process.stdout.write(`PASS ${testCase}\n`);
  return 0;
}

const bound = setTimeout(() => {
  process.stderr.write(`FAIL: the run took longer than ${RUN_BOUND_MS} ms\n`);
  process.exit(1);
}, RUN_BOUND_MS);
main().then((code) => {
  clearTimeout(bound);
  process.exitCode = code;
  // Channels close asynchronously; leave once stdout has flushed.
  process.stdout.write('', () => process.exit(code));
});
