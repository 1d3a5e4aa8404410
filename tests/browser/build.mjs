// Builds the browser test's page (tests/browser.rs): generates the clients' code from proto/
// with Debian's protoc and two protoc plugins written in JavaScript, then bundles page.ts and
// everything it imports into one ES module with esbuild.
//
//   proto/ecommerce/{product_info,order_management}.proto
//     ── protoc --es_out (protoc-gen-es, Connect's messages + service descriptors) ──► <out>/gen/es
//     ── protoc --ts_out (protobuf-ts: messages + generic clients)               ──► <out>/gen/pbts
//   tests/browser/page.ts + <out>/gen + target/browser-node/node_modules
//     ── esbuild (bundle, browser, esm) ──────────────────────────────────────────► <out>/page.js
//
// Usage: node tests/browser/build.mjs <out dir>     (run from the repository root)
// Everything it writes is under <out> (the test passes a folder under target/); nothing is
// generated into the repository. The packages come from target/browser-node, which
// tests/peers/setup.sh fills with `npm ci` from tests/browser/package-lock.json.

import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = process.cwd();
const out = resolve(process.argv[2] ?? "target/browser");
const modules = join(root, "target/browser-node/node_modules");
const bin = join(modules, ".bin");
const gen = join(out, "gen");

rmSync(out, { recursive: true, force: true });
mkdirSync(join(gen, "es"), { recursive: true });
mkdirSync(join(gen, "pbts"), { recursive: true });

// Debian's protoc (never the wrapper @protobuf-ts/protoc puts in .bin, which would download
// one); google/protobuf/wrappers.proto comes from Debian's /usr/include.
const protoc = spawnSync(
  "/usr/bin/protoc",
  [
    "-I", join(root, "proto"),
    "-I", "/usr/include",
    `--plugin=protoc-gen-es=${join(bin, "protoc-gen-es")}`,
    `--es_out=${join(gen, "es")}`,
    "--es_opt=target=ts",
    `--plugin=protoc-gen-ts=${join(bin, "protoc-gen-ts")}`,
    `--ts_out=${join(gen, "pbts")}`,
    "--ts_opt=client_generic,optimize_code_size",
    "ecommerce/product_info.proto",
    "ecommerce/order_management.proto",
  ],
  { stdio: ["ignore", "inherit", "inherit"] },
);
if (protoc.status !== 0) {
  console.error(`build: protoc failed (${protoc.error ?? `exit ${protoc.status}`})`);
  process.exit(1);
}

// esbuild from target/browser-node: page.ts names the generated files as "es/..." and
// "pbts/...", and the npm packages by name; both resolve through nodePaths.
const esbuild = createRequire(join(modules, "esbuild/package.json"))("esbuild");
const result = await esbuild.build({
  entryPoints: [join(root, "tests/browser/page.ts")],
  outfile: join(out, "page.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  nodePaths: [gen, modules],
  logLevel: "warning",
});
if (result.errors.length > 0) process.exit(1);
console.log(`build: ${join(out, "page.js")}`);
