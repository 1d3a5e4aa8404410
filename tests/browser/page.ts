// The page of the browser test (tests/browser.rs): runs one scenario against bare-grpc's
// gRPC-Web server through three real gRPC-Web clients from the npm registry, and writes what
// each client observed, as JSON, into <pre id="results">. It judges nothing itself: the Rust
// test compares every observation with what the server's handlers did.
//
//   client                                   content-type sent
//   Connect (@connectrpc/connect-web)        application/grpc-web+proto   (createGrpcWebTransport,
//                                                                          useBinaryFormat: true)
//   protobuf-ts (@protobuf-ts/grpcweb-...)   application/grpc-web-text    (format "text": base64)
//   protobuf-ts                              application/grpc-web+proto   (format "binary")
//
// The page's origin is the test's static server; the gRPC server is on another port, so every
// call is cross-origin: the browser sends a CORS preflight (the content types and the x-shop-*
// headers are not CORS-safelisted) and hides response headers the server does not expose.
//
// The scenario, per client (the server's services are the seed ProductInfo and OrderManagement
// behind a wrapper that reads and writes metadata; see tests/browser.rs):
//   addProduct     unary, request headers x-shop-user + x-shop-token-bin; the page records the
//                  id, the response header x-shop-seen-user and the trailers x-shop-products and
//                  x-shop-token-bin (the token's bytes as the handler saw them)
//   getProduct     unary, the product just added (unicode name and description round trip)
//   large          addProduct then getProduct of a product with a 1 MiB description: the page
//                  records the id, the length read back and whether it equals what it sent
//   searchOrders   server streaming: every order with an item containing "Google"
//   streamError    server streaming with the header x-shop-then-fail: the orders with an
//                  "Amazon" item, then ABORTED (the status in the trailer frame after data)
//   notFound       getProduct of an unknown id with non-ASCII characters: NOT_FOUND, message
//   unauthenticated addProduct without x-shop-user: UNAUTHENTICATED with a unicode message
//                  (tab, CR LF, BMP and non-BMP characters, percent-encoded on the wire)

import { Code, ConnectError, createClient, decodeBinaryHeader, encodeBinaryHeader } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { GrpcWebFetchTransport, GrpcStatusCode } from "@protobuf-ts/grpcweb-transport";
import { RpcError, type RpcMetadata } from "@protobuf-ts/runtime-rpc";

import { ProductInfo, ProductSchema, ProductIDSchema } from "es/ecommerce/product_info_pb";
import { OrderManagement } from "es/ecommerce/order_management_pb";
import { ProductInfoClient } from "pbts/ecommerce/product_info.client";
import { OrderManagementClient } from "pbts/ecommerce/order_management.client";

/** What the page sends; the Rust test holds the same values. */
const USER = "ada-lovelace";
const TOKEN = new Uint8Array([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
const PRODUCT = {
  name: "Çaydanlık ☕ kettle",
  description: "Boils water — für Tee, 茶 and 🫖.",
  price: 12.5,
};
// A description of 64 Ki 4-character groups (1 MiB of UTF-8: 4-byte, 3-byte, 2-byte and ASCII
// characters): its messages span many HTTP chunks, and in -text many base64 blocks, both ways.
const BIG = "😀茶ü-".repeat(64 * 1024);
const QUERY = "Google";
const UNKNOWN_ID = "nø-such-id ✓ 🚀";
const FAILING_QUERY = "Amazon";

type Observed = Record<string, unknown>;

/** A failed call as the client reported it: the gRPC code number, its name and the message. */
interface Failure {
  code: number;
  codeName: string;
  message: string;
}

function connectFailure(e: unknown): Failure {
  const err = ConnectError.from(e);
  return { code: err.code, codeName: Code[err.code], message: err.rawMessage };
}

function pbtsFailure(e: unknown): Failure {
  if (e instanceof RpcError) {
    const code = (GrpcStatusCode as unknown as Record<string, number>)[e.code];
    return { code: code ?? -1, codeName: e.code, message: e.message };
  }
  return { code: -1, codeName: "not an RpcError", message: String(e) };
}

/** Runs `step`, recording its result or the failure it threw, so one broken step hides none. */
async function step(
  into: Observed,
  name: string,
  fail: (e: unknown) => Failure,
  body: () => Promise<unknown>,
): Promise<void> {
  try {
    into[name] = { ok: await body() };
  } catch (e) {
    into[name] = { error: fail(e) };
  }
}

function bytesOf(base64: string): number[] {
  return Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function base64Of(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** The scenario through Connect's gRPC-Web transport (binary). */
async function viaConnect(server: string): Promise<Observed> {
  const transport = createGrpcWebTransport({ baseUrl: server, useBinaryFormat: true });
  const products = createClient(ProductInfo, transport);
  const orders = createClient(OrderManagement, transport);
  const out: Observed = { client: "connect-web grpc-web+proto" };
  let id = "";

  await step(out, "addProduct", connectFailure, async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const reply = await products.addProduct(create(ProductSchema, PRODUCT), {
      headers: { "x-shop-user": USER, "x-shop-token-bin": encodeBinaryHeader(TOKEN) },
      onHeader: (h) => (header = h),
      onTrailer: (t) => (trailer = t),
    });
    id = reply.value;
    const token = trailer?.get("x-shop-token-bin");
    return {
      id: reply.value,
      seenUser: header?.get("x-shop-seen-user") ?? null,
      products: trailer?.get("x-shop-products") ?? null,
      token: token == null ? null : Array.from(decodeBinaryHeader(token)),
    };
  });
  await step(out, "getProduct", connectFailure, async () => {
    const p = await products.getProduct(create(ProductIDSchema, { value: id }));
    return { id: p.id, name: p.name, description: p.description, price: p.price };
  });
  await step(out, "large", connectFailure, async () => {
    const headers = { "x-shop-user": USER, "x-shop-token-bin": encodeBinaryHeader(TOKEN) };
    const big = create(ProductSchema, { ...PRODUCT, description: BIG });
    const added = await products.addProduct(big, { headers });
    const p = await products.getProduct(create(ProductIDSchema, { value: added.value }));
    return { id: p.id, length: p.description.length, same: p.description === BIG };
  });
  await step(out, "searchOrders", connectFailure, async () => {
    const found = [];
    for await (const o of orders.searchOrders(create(StringValueSchema, { value: QUERY }))) {
      found.push({ id: o.id, items: o.items, destination: o.destination, price: o.price });
    }
    return found;
  });
  await step(out, "streamError", connectFailure, async () => {
    const received = [];
    const call = orders.searchOrders(create(StringValueSchema, { value: FAILING_QUERY }), {
      headers: { "x-shop-then-fail": "1" },
    });
    try {
      for await (const o of call) {
        received.push({ id: o.id, items: o.items, destination: o.destination, price: o.price });
      }
    } catch (e) {
      return { received, error: connectFailure(e) };
    }
    return { received, error: null };
  });
  await step(out, "notFound", connectFailure, async () => {
    return await products.getProduct(create(ProductIDSchema, { value: UNKNOWN_ID }));
  });
  await step(out, "unauthenticated", connectFailure, async () => {
    return await products.addProduct(create(ProductSchema, PRODUCT));
  });
  return out;
}

function metaValue(meta: RpcMetadata | undefined, key: string): string | null {
  const v = meta?.[key];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(",") : v;
}

/** The scenario through protobuf-ts's gRPC-Web transport, text (base64) or binary. */
async function viaProtobufTs(server: string, format: "text" | "binary"): Promise<Observed> {
  const transport = new GrpcWebFetchTransport({ baseUrl: server, format });
  const products = new ProductInfoClient(transport);
  const orders = new OrderManagementClient(transport);
  const out: Observed = {
    client: `protobuf-ts ${format === "text" ? "grpc-web-text" : "grpc-web+proto"}`,
  };
  let id = "";

  await step(out, "addProduct", pbtsFailure, async () => {
    const call = products.addProduct(
      { id: "", ...PRODUCT },
      { meta: { "x-shop-user": USER, "x-shop-token-bin": base64Of(TOKEN) } },
    );
    const header = await call.headers;
    const reply = await call.response;
    const trailer = await call.trailers;
    id = reply.value;
    const token = metaValue(trailer, "x-shop-token-bin");
    return {
      id: reply.value,
      seenUser: metaValue(header, "x-shop-seen-user"),
      products: metaValue(trailer, "x-shop-products"),
      token: token == null ? null : bytesOf(token),
    };
  });
  await step(out, "getProduct", pbtsFailure, async () => {
    const p = await products.getProduct({ value: id }).response;
    return { id: p.id, name: p.name, description: p.description, price: p.price };
  });
  await step(out, "large", pbtsFailure, async () => {
    const meta = { "x-shop-user": USER, "x-shop-token-bin": base64Of(TOKEN) };
    const added = await products.addProduct({ id: "", ...PRODUCT, description: BIG }, { meta })
      .response;
    const p = await products.getProduct({ value: added.value }).response;
    return { id: p.id, length: p.description.length, same: p.description === BIG };
  });
  await step(out, "searchOrders", pbtsFailure, async () => {
    const found = [];
    const call = orders.searchOrders({ value: QUERY });
    for await (const o of call.responses) {
      found.push({ id: o.id, items: o.items, destination: o.destination, price: o.price });
    }
    await call.status;
    return found;
  });
  await step(out, "streamError", pbtsFailure, async () => {
    const received = [];
    const call = orders.searchOrders(
      { value: FAILING_QUERY },
      { meta: { "x-shop-then-fail": "1" } },
    );
    try {
      for await (const o of call.responses) {
        received.push({ id: o.id, items: o.items, destination: o.destination, price: o.price });
      }
      await call.status;
    } catch (e) {
      return { received, error: pbtsFailure(e) };
    }
    return { received, error: null };
  });
  await step(out, "notFound", pbtsFailure, async () => {
    return await products.getProduct({ value: UNKNOWN_ID }).response;
  });
  await step(out, "unauthenticated", pbtsFailure, async () => {
    return await products.addProduct({ id: "", ...PRODUCT }).response;
  });
  return out;
}

async function main(): Promise<void> {
  const server = new URLSearchParams(location.search).get("server");
  const results: Observed = { origin: location.origin, server, runs: [] };
  try {
    if (!server) throw new Error("no ?server= in the page's URL");
    const runs = results.runs as Observed[];
    // One client after another: the catalogue's ids and counts then follow a known order.
    runs.push(await viaConnect(server));
    runs.push(await viaProtobufTs(server, "text"));
    runs.push(await viaProtobufTs(server, "binary"));
  } catch (e) {
    results.fatal = String(e);
  }
  const pre = document.getElementById("results")!;
  pre.textContent = JSON.stringify(results, null, 2);
  document.body.dataset.done = "1";
}

void main();
