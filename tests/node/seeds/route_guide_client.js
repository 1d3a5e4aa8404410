'use strict';
// A RouteGuide client (route_guide.proto, seed 002) written the way a grpc-js user writes one:
// the .proto loaded at run time by @grpc/proto-loader, a unary call with a callback, a
// bidirectional call driven by Node stream events. The Node twin of the seed's Python
// client.py, with the same calls: GetPerson("Alice"), then GetPeople(Alice, Bob, Charlie).
//
//   node route_guide_client.js HOST:PORT
//
// Prints one line per answer (`GetPerson: …`, `GetPeople: …`) and exits 0; any error is
// printed to stderr and exits 1. Each call carries a 10 s deadline.

const path = require('path');
// grpc-js and proto-loader live in target/node (tests/peers/setup.sh), not beside this file.
const { grpc, protoLoader, PROTO_DIR } = require('../load');

const packageDefinition = protoLoader.loadSync(path.join(PROTO_DIR, 'route_guide.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});
const routeguide = grpc.loadPackageDefinition(packageDefinition);

function describe(person) {
  const address = person.address || { street: '', city: '' };
  return `${person.name}, Age: ${person.age}, Gender: ${person.gender}, Hobbies: ${person.hobbies.join(', ')}, Address: ${address.street}, ${address.city}`;
}

const deadline = () => Date.now() + 10000;

function getPerson(client, name) {
  return new Promise((resolve, reject) => {
    client.GetPerson({ name }, { deadline: deadline() }, (err, person) => {
      if (err) return reject(err);
      console.log(`GetPerson: ${describe(person)}`);
      resolve();
    });
  });
}

function getPeople(client, names) {
  return new Promise((resolve, reject) => {
    const call = client.GetPeople({ deadline: deadline() });
    call.on('data', (person) => console.log(`GetPeople: ${describe(person)}`));
    call.on('error', reject);
    call.on('end', resolve);
    for (const name of names) call.write({ name });
    call.end();
  });
}

async function main() {
  const client = new routeguide.RouteGuide(process.argv[2], grpc.credentials.createInsecure());
  try {
    await getPerson(client, 'Alice');
    await getPeople(client, ['Alice', 'Bob', 'Charlie']);
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`route_guide_client.js: ${err.code} ${err.details || err.message}`);
    process.exit(1);
  },
);
