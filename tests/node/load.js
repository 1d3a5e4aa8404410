'use strict';
// Loads @grpc/grpc-js and @grpc/proto-loader from target/node (where tests/peers/setup.sh
// installs the versions pinned in tests/node/package-lock.json; nothing is installed
// globally), and the .proto contracts from the repository's proto/ folder.
//
// The contracts are read at run time by proto-loader, as most grpc-js users do: nothing is
// generated, nothing is committed but the .proto files our own build also compiles.

const path = require('path');
const { createRequire } = require('module');

const ROOT = path.resolve(__dirname, '..', '..');
const NODE_DIR = path.join(ROOT, 'target', 'node');
const PROTO_DIR = path.join(ROOT, 'proto');

const fromTarget = createRequire(path.join(NODE_DIR, 'package.json'));

function load(name) {
  try {
    return fromTarget(name);
  } catch (e) {
    process.stderr.write(`${name} is not installed in ${NODE_DIR}: run tests/peers/setup.sh (${e.message})\n`);
    process.exit(3);
  }
}

const grpc = load('@grpc/grpc-js');
const protoLoader = load('@grpc/proto-loader');

/**
 * The package object of `file` (relative to proto/): field names as written in the .proto
 * (keepCase), enums as names, unset message fields as null and scalars as their defaults,
 * 64-bit integers as Numbers.
 */
function loadProto(file) {
  const definition = protoLoader.loadSync(path.join(PROTO_DIR, file), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  return grpc.loadPackageDefinition(definition);
}

module.exports = { grpc, protoLoader, loadProto, ROOT, PROTO_DIR };
