'use strict';
// A chat client (chat.proto, seed 003) written the way a grpc-js user writes one: subscribe
// with ChatStream (server streaming) and print every note as it arrives, send each of the
// user's messages with SendNote (unary). The Node twin of the seed's Python chat client, with
// a tiny driver in place of a window:
//
//   node chat_client.js HOST:PORT NAME EXPECTED MESSAGE...
//
// Subscribes, sends each MESSAGE as NAME (printing `S[NAME] MESSAGE`), prints every note it
// receives as `R[name] message`, and once EXPECTED notes have arrived cancels the
// subscription (an RST_STREAM CANCEL on the wire) and exits 0. Exits 1 if they do not all
// arrive within 20 s or a call fails.

const path = require('path');
// grpc-js and proto-loader live in target/node (tests/peers/setup.sh), not beside this file.
const { grpc, protoLoader, PROTO_DIR } = require('../load');

const packageDefinition = protoLoader.loadSync(path.join(PROTO_DIR, 'chat.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const chat = grpc.loadPackageDefinition(packageDefinition).grpc;

const [address, name, expectedText, ...messages] = process.argv.slice(2);
const expected = Number(expectedText);

const client = new chat.ChatServer(address, grpc.credentials.createInsecure());

function fail(why) {
  console.error(`chat_client.js: ${why}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`got ${received} of ${expected} notes within 20 s`), 20000);
let received = 0;

const stream = client.ChatStream({});
stream.on('data', (note) => {
  console.log(`R[${note.name}] ${note.message}`);
  received += 1;
  if (received === expected) {
    clearTimeout(timer);
    stream.cancel();
  }
});
stream.on('error', (err) => {
  if (err.code === grpc.status.CANCELLED && received === expected) {
    client.close();
    process.exit(0);
  }
  fail(`ChatStream: ${err.code} ${err.details}`);
});

function sendNote(message) {
  return new Promise((resolve, reject) => {
    console.log(`S[${name}] ${message}`);
    client.SendNote({ name, message }, { deadline: Date.now() + 10000 }, (err) => (err ? reject(err) : resolve()));
  });
}

(async () => {
  for (const message of messages) await sendNote(message);
})().catch((err) => fail(`SendNote: ${err.code} ${err.details}`));
