#!/usr/bin/env bash
# Installs the real peers the interop tests talk to, only when they are missing:
#   - grpc-go and its code generators from Debian's packages (GOPATH mode, no module proxy);
#   - protoc from Debian (only to prove the plugin works under a real protoc);
#   - h2load (nghttp2-client) for the benchmark harness (bench/run calls this script when a tool is missing);
#   - nginx, which the nginx suites start themselves (tests/nginx.rs, tests/nginx_tls.rs);
#   - kubernetes-validate from PyPI in target/venv, the offline manifest check (tests/deploy.rs);
#   - the Rust target x86_64-unknown-linux-musl (rustup), for the image's static binaries;
#   - Python grpcio (+ grpcio-tools, prometheus_client) from PyPI in target/venv;
#   - Node (Debian's nodejs + npm, only when no node/npm is on the PATH) and @grpc/grpc-js +
#     @grpc/proto-loader from the npm registry into target/node (npm ci from tests/node's lock);
#   - Debian's chromium, and the browser test's npm packages (gRPC-Web clients, code generators,
#     esbuild, playwright-core) into target/browser-node (npm ci from tests/browser's lock).
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/../.."

debs=(golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
      protoc-gen-go protoc-gen-go-grpc protobuf-compiler grpc-proto nghttp2-client
      nginx)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv=target/venv
pkgs=(grpcio grpcio-tools protobuf prometheus_client)
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import grpc, grpc_tools, prometheus_client" 2>/dev/null; then
  echo "setup: installing ${pkgs[*]} into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}"
fi
# kubernetes-validate: Kubernetes' JSON schemas shipped in the package, so the manifests in
# deploy/kubernetes/ validate offline (tests/deploy.rs).
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "setup: installing kubernetes-validate into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate
fi
# The musl target of the toolchain the tests run with: deploy/build-static.sh builds the image's
# static binaries for it, and tests/deploy.rs runs them in an empty root.
if command -v rustup >/dev/null \
   && ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding the Rust target x86_64-unknown-linux-musl (rustup)"
  rustup target add x86_64-unknown-linux-musl
fi

# grpc-js: the versions pinned in tests/node/package.json, exactly as its committed lock file
# says (npm ci), into target/node; never a global install. Reinstalled when the lock changed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup: installing Debian packages: nodejs npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
node_dir=target/node
if ! cmp -s tests/node/package-lock.json "$node_dir/package-lock.json" \
   || [ ! -f "$node_dir/node_modules/@grpc/grpc-js/package.json" ] \
   || [ ! -f "$node_dir/node_modules/@grpc/proto-loader/package.json" ]; then
  echo "setup: installing @grpc/grpc-js and @grpc/proto-loader into $node_dir (npm ci)"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp tests/node/package.json tests/node/package-lock.json "$node_dir/"
  (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# The browser test (tests/browser.rs): Debian's Chromium, driven headless by playwright-core
# (which never downloads a browser here). A failed install does not stop the other peers: the
# test then skips, saying why.
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Debian package: chromium"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
    echo "setup: WARNING: chromium could not be installed; tests/browser.rs will skip"
  fi
fi
browser_dir=target/browser-node
if ! cmp -s tests/browser/package-lock.json "$browser_dir/package-lock.json" \
   || [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ] \
   || [ ! -f "$browser_dir/node_modules/@connectrpc/connect-web/package.json" ]; then
  echo "setup: installing the browser test's npm packages into $browser_dir (npm ci)"
  rm -rf "$browser_dir"
  mkdir -p "$browser_dir"
  cp tests/browser/package.json tests/browser/package-lock.json "$browser_dir/"
  (cd "$browser_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
grpc_js=$(node -p "require('./$node_dir/node_modules/@grpc/grpc-js/package.json').version")

echo "setup: peers ready (go: $(go version | cut -d' ' -f3), grpcio: $("$venv/bin/python" -c 'import grpc; print(grpc.__version__)'), node: $(node --version), grpc-js: $grpc_js)"
