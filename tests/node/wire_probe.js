'use strict';
// Small grpc-js client programs whose only job is to show what grpc-js puts on the wire, or
// how it reads what it is sent, for tests/interop_node_wire.rs (which plays the server, either
// a raw h2 server that records each request or our interop server).
//
//   node wire_probe.js MODE HOST:PORT [N]
//
//   request    one EmptyCall with a 10 s deadline and the metadata key `X-Node-Mixed-Case`
//              written in mixed case, as a user might
//   cancel     a FullDuplexCall cancelled by call.cancel() once the response headers arrived
//   deadline   a FullDuplexCall with a 300 ms deadline that the server never answers
//   calls N    N EmptyCalls one after another, call i carrying the metadata `x-probe-call: i`
//              (the server ends each as it likes)
//   keepalive  a channel with grpc.keepalive_time_ms = 100 (and permit_without_calls): one
//              EmptyCall, 1 s idle, another EmptyCall on the same channel
//   idle       the same with grpc-js's default channel options
//   deflate    a channel that compresses with deflate (grpc.default_compression_algorithm 1):
//              three UnaryCalls of 1000 bytes each, one after another
//   limits     a UnaryCall sending 5 MiB, one asking for 5 MiB back (over grpc-js's 4 MiB
//              receive limit), then a 1000-byte UnaryCall
//
// Prints one line per call, `status <code> <details as JSON>`, and exits 0; the test decides
// what is right. Every call carries a deadline and the run is bounded by a 20 s timer.

const { grpc, loadProto } = require('./load');

const testing = loadProto('grpc/testing/test.proto').grpc.testing;
const [mode, target, countText] = process.argv.slice(2);

setTimeout(() => {
  process.stderr.write(`wire_probe.js ${mode}: no end within 20 s\n`);
  process.exit(1);
}, 20000).unref();

const print = (status) => process.stdout.write(`status ${status.code} ${JSON.stringify(status.details)}\n`);
const inMs = (ms) => ({ deadline: Date.now() + ms });

function emptyCall(client, metadata = new grpc.Metadata()) {
  return new Promise((resolve) => {
    const call = client.EmptyCall({}, metadata, inMs(10000), () => {});
    call.on('status', (status) => {
      print(status);
      resolve();
    });
  });
}

let deflatingClient = null;
function deflating(target) {
  deflatingClient = deflatingClient || new testing.TestService(target, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 1 });
  return deflatingClient;
}

function unaryCall(client, send, receive) {
  const request = { response_type: 'COMPRESSABLE', response_size: receive, payload: { body: Buffer.alloc(send) } };
  return new Promise((resolve) => {
    const call = client.UnaryCall(request, inMs(10000), (err, response) => {
      if (!err && response.payload.body.length !== receive) {
        process.stdout.write(`wrong size ${response.payload.body.length}\n`);
      }
    });
    call.on('status', (status) => {
      print(status);
      resolve();
    });
  });
}

function duplex(client, options, onCall) {
  return new Promise((resolve) => {
    const call = client.FullDuplexCall(options);
    call.on('data', () => {});
    call.on('error', () => {});
    call.on('status', (status) => {
      print(status);
      resolve();
    });
    onCall(call);
  });
}

async function main() {
  const options = {};
  if (mode === 'keepalive') {
    Object.assign(options, {
      'grpc.keepalive_time_ms': 100,
      'grpc.keepalive_timeout_ms': 2000,
      'grpc.keepalive_permit_without_calls': 1,
    });
  }
  const client = new testing.TestService(target, grpc.credentials.createInsecure(), options);
  switch (mode) {
    case 'request': {
      const metadata = new grpc.Metadata();
      metadata.add('X-Node-Mixed-Case', 'Value Kept As Written');
      await emptyCall(client, metadata);
      break;
    }
    case 'cancel':
      await duplex(client, inMs(10000), (call) => call.on('metadata', () => call.cancel()));
      break;
    case 'deadline':
      await duplex(client, inMs(300), () => {});
      break;
    case 'calls':
      for (let i = 0; i < Number(countText); i++) {
        const metadata = new grpc.Metadata();
        metadata.add('x-probe-call', String(i));
        await emptyCall(client, metadata);
      }
      break;
    case 'keepalive':
    case 'idle':
      await emptyCall(client);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await emptyCall(client);
      break;
    case 'deflate':
      for (let i = 0; i < 3; i++) await unaryCall(deflating(target), 1000, 1000);
      break;
    case 'limits':
      await unaryCall(client, 5 << 20, 0);
      await unaryCall(client, 0, 5 << 20);
      await unaryCall(client, 1000, 1000);
      break;
    default:
      process.stderr.write(`wire_probe.js: unknown mode ${mode}\n`);
      process.exit(2);
  }
  client.close();
  if (deflatingClient) deflatingClient.close();
}

// No process.exit: Node leaves once the closed channel's socket has flushed, so the last
// frames grpc-js wrote (a RST_STREAM after a cancel) reach the server before the TCP close.
main().then(() => {
  process.exitCode = 0;
});
