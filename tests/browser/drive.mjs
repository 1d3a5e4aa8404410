// Drives the browser test's page (tests/browser.rs) in Debian's Chromium, headless, through
// playwright-core (the driver only: it never downloads a browser).
//
//   tests/browser.rs                 this script        Chromium (/usr/bin/chromium)     bare-grpc
//   ────────────────                 ───────────        ────────────────────────────     ─────────
//   static server 127.0.0.1:S ◄──────────────────────── GET /  GET /page.js
//                                    --url A [--url B]   page.js: gRPC-Web calls ── CORS ──► :G
//                                    waits for body[data-done], reads <pre id="results">
//   judges the JSON ◄──────────────  "RESULTS <n> <json>" per URL; closes the browser and
//                                    deletes its profile folder
//
// Usage: node tests/browser/drive.mjs --url <page URL> [--url <page URL>]... [--timeout-ms N]
//        [--chromium /usr/bin/chromium] [--trust-cert <server certificate PEM>]
//        (run from the repository root)
// Chromium runs with a fresh, empty profile in a temporary folder and without network services
// of its own (no QUIC, sync, component updates or background requests), so the only traffic
// is the test's, on loopback. Exit 0 once every page finished and its results are printed (the
// Rust test judges them); 1 when a page never finished. The page's console, its failed
// requests and every response's status go to stderr, to explain a failure.

import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback !== undefined) return fallback;
  console.error(`drive: --${name} is required`);
  process.exit(2);
}

const urls = process.argv.flatMap((a, i) => (a === "--url" ? [process.argv[i + 1]] : []));
if (urls.length === 0) {
  console.error("drive: at least one --url is required");
  process.exit(2);
}
const timeoutMs = Number(arg("timeout-ms", "60000"));
// --trust-cert <PEM>: Chromium accepts exactly this certificate's key over HTTPS (the SHA-256
// of its SubjectPublicKeyInfo, base64, in --ignore-certificate-errors-spki-list), not any.
const trustCert = arg("trust-cert", "");
const trustArgs = [];
if (trustCert) {
  const spki = new X509Certificate(readFileSync(trustCert)).publicKey.export({
    type: "spki",
    format: "der",
  });
  const pin = createHash("sha256").update(spki).digest("base64");
  trustArgs.push(`--ignore-certificate-errors-spki-list=${pin}`);
}
const chromiumPath = arg("chromium", "/usr/bin/chromium");

const modules = join(process.cwd(), "target/browser-node/node_modules");
const { chromium } = createRequire(join(modules, "playwright-core/package.json"))("playwright-core");

// A last bound of its own: on expiry exit, and playwright's exit handler kills the browser.
setTimeout(() => {
  console.error("drive: out of time");
  process.exit(1);
}, timeoutMs * (urls.length + 1)).unref();

const profile = mkdtempSync(join(tmpdir(), "bare-grpc-chromium-"));
process.on("exit", () => rmSync(profile, { recursive: true, force: true }));
let context;
let code = 1;
const log = [];
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    timeout: timeoutMs,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...trustArgs,
    ],
  });
  const version = context.browser()?.version() ?? "(version unknown)";
  for (const [n, url] of urls.entries()) {
    const page = await context.newPage();
    page.on("console", (m) => log.push(`page ${n}: console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log.push(`page ${n}: error: ${e}`));
    page.on("requestfailed", (r) =>
      log.push(`page ${n}: failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`),
    );
    page.on("request", (r) => {
      const type = r.headers()["content-type"];
      if (r.method() === "POST") log.push(`page ${n}: sent POST ${r.url()} content-type=${type}`);
    });
    page.on("response", (r) =>
      log.push(
        `page ${n}: got ${r.status()} ${r.request().method()} ${r.url()}` +
          ` content-type=${r.headers()["content-type"]}`,
      ),
    );
    // Chromium's own view of each response (DevTools protocol): the HTTP version it spoke and
    // the CORS preflights, which playwright's page events do not show.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    cdp.on("Network.responseReceived", ({ type, response: r }) =>
      log.push(`page ${n}: chromium ${type} ${r.status} ${r.protocol} ${r.url}`),
    );
    await page.goto(url, { timeout: timeoutMs });
    await page.waitForSelector("body[data-done]", { timeout: timeoutMs });
    const results = JSON.parse(await page.locator("#results").textContent());
    results.browser = `Chromium ${version}`;
    console.log(`RESULTS ${n} ${JSON.stringify(results)}`);
    await page.close();
  }
  code = 0;
} catch (e) {
  console.error(`drive: a page did not finish: ${e}`);
} finally {
  for (const line of log) console.error(`drive: ${line}`);
  await context?.close().catch(() => {});
}
process.exit(code);
