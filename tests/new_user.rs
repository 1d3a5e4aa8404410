//! A new user, twice: crates written from scratch into a temporary folder, outside this
//! workspace, that depend on this repository's two crates the way a user's crate does, built
//! with `cargo build --offline` and run.
//!
//! - `getting_started_page_as_written`: every block of `docs/getting-started.md`, verbatim: the
//!   `cargo new` line is run, `Cargo.toml`'s end is the page's block, `build.rs`, the `.proto`,
//!   `src/lib.rs`, the server and the client are the page's files, then the page's `cargo run`
//!   lines are run and print what the page shows. The one addition: a `[patch.crates-io]` that
//!   points `bare-grpc` and `bare-grpc-codegen` at this repository (they are not on crates.io
//!   from here). The Rust files also pass `rustfmt --check`, and the code the page's `include!`
//!   brings in is the code `docs/codegen.md` shows.
//! - `own_crate_with_nested_package_and_well_known_type`: a crate of its own (path
//!   dependencies, a one-line `build.rs`, `package shop.v1` importing
//!   `google/protobuf/timestamp.proto`, a nested message, a server-streaming method, health and
//!   reflection from the descriptor set the build step wrote), run end to end; before that, its
//!   `cargo build` fails naming the file and line of a broken `.proto`, and names the protoc
//!   that `$PROTOC` points at when that is missing.
//!
//! Speed: the crates build in this workspace's own target directory (cargo has released its
//! lock by the time tests run), so the registry crates they share with the workspace, and
//! `bare-grpc-codegen` with its build, are reused; what differs in features (tokio, so h2 and
//! bare-grpc) is built once and then stays. `Cargo.lock` is this repository's, so the versions
//! are the ones already fetched and `--offline` needs no network.
//!
//! Every child process is killed if it outlives its bound, and the folders are removed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A cold build of the crate's dependencies on a loaded 2-core machine fits in this.
const BUILD_BOUND: Duration = Duration::from_secs(20 * 60);
/// Running an already-built program.
const RUN_BOUND: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// This workspace's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_path_buf()
}

/// A fresh folder outside the workspace (a crate below it would be taken for a member).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bare-grpc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo`, as the one running this test, with nothing of this test's build in its
/// environment but the shared target directory.
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let ours = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || key.starts_with("CARGO_CRATE_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_PRIMARY_")
            || key == "CARGO_TARGET_TMPDIR"
            || key == "OUT_DIR"
            || key == "PROTOC";
        if ours {
            command.env_remove(&key);
        }
    }
    command.env("CARGO_TARGET_DIR", target_dir());
    command
}

/// Waits for `child` at most `bound`, killing it past that; its whole output.
fn finish(mut child: Child, bound: Duration, what: &str) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {bound:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs `command` to the end within `bound`; panics with its output unless it succeeded.
fn run_ok(command: &mut Command, bound: Duration, what: &str) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let output = finish(child, bound, what);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A long-running program whose stdout we read line by line; killed when dropped.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(command: &mut Command, what: &str) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    fn next_line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(RUN_BOUND)
            .unwrap_or_else(|e| panic!("{what}: no line within {RUN_BOUND:?}: {e}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fenced blocks of a Markdown page: (info string, body).
fn fenced_blocks(page: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in page.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => current = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => blocks.push(current.take().expect("open block")),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "a fenced block is not closed");
    blocks
}

/// The file a block is, from its first line (`// src/lib.rs`, `# Cargo.toml`).
fn file_of(body: &str) -> Option<&str> {
    let first = body.lines().next()?;
    first
        .strip_prefix("// ")
        .or_else(|| first.strip_prefix("# "))
        .filter(|name| !name.contains(' '))
}

/// One `$ command` of a console block and the output shown under it.
struct Shown {
    command: Vec<String>,
    output: Vec<String>,
}

fn console(body: &str) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    for line in body.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            let command = command.split_whitespace().map(str::to_string).collect();
            shown.push(Shown {
                command,
                output: Vec::new(),
            });
        } else if let Some(last) = shown.last_mut() {
            last.output.push(line.to_string());
        }
    }
    shown
}

/// `cargo run --bin x` from the page, run as written plus `--offline` and `-- <args>`.
fn cargo_run(dir: &Path, shown: &Shown, args: &[&str]) -> Command {
    assert_eq!(shown.command[..2], ["cargo", "run"], "a cargo run line");
    let mut command = cargo(dir);
    command
        .args(&shown.command[1..])
        .arg("--offline")
        .arg("--quiet")
        .arg("--")
        .args(args);
    command
}

/// Writes `text` to `dir/rel`, creating its folders.
fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create folder");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `cargo build --offline` of the crate in `dir`, with this repository's lock file; the
/// `OUT_DIR` its build script wrote to.
fn build(dir: &Path) -> PathBuf {
    // `path+file:///tmp/…/hello-grpc#0.1.0`, or `…/shop#new-user-shop@0.1.0`.
    let package_id = format!(r#""package_id":"path+file://{}#"#, dir.display());
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    let output = run_ok(
        cargo(dir).args([
            "build",
            "--offline",
            "--message-format=json-render-diagnostics",
        ]),
        BUILD_BOUND,
        "cargo build --offline",
    );
    // `build-script-executed` names the folder the crate's build.rs wrote to.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(r#""reason":"build-script-executed""#) && l.contains(&package_id))
        .unwrap_or_else(|| panic!("no build-script-executed for {package_id}:\n{stdout}"));
    let at = line.find(r#""out_dir":""#).expect("out_dir in the message") + 11;
    let end = line[at..].find('"').expect("end of out_dir");
    PathBuf::from(&line[at..at + end])
}

/// `cargo build --offline` of the crate in `dir` that must fail (with `PROTOC` set when
/// given); its stderr.
fn failed_build(dir: &Path, protoc: Option<&Path>) -> String {
    let mut command = cargo(dir);
    command.args(["build", "--offline"]);
    if let Some(protoc) = protoc {
        command.env("PROTOC", protoc);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cargo build");
    let output = finish(child, BUILD_BOUND, "cargo build --offline (to fail)");
    assert!(!output.status.success(), "the build should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn getting_started_page_as_written() {
    let page = std::fs::read_to_string(repo().join("docs/getting-started.md"))
        .expect("read docs/getting-started.md");
    let blocks = fenced_blocks(&page);
    let scratch = Scratch::new("getting-started");

    // 1. The shell block: `cargo new NAME`, then `cd NAME`.
    let (_, shell) = blocks
        .iter()
        .find(|(info, _)| info == "sh")
        .expect("a sh block");
    let mut lines = shell.lines();
    let new: Vec<&str> = lines
        .next()
        .expect("cargo new")
        .split_whitespace()
        .collect();
    assert_eq!(new[..2], ["cargo", "new"]);
    run_ok(
        cargo(&scratch.0).args(&new[1..]).arg("--offline"),
        RUN_BOUND,
        "cargo new",
    );
    assert_eq!(lines.next(), Some(format!("cd {}", new[2]).as_str()));
    let dir = scratch.0.join(new[2]);

    // 2.-7. The files. Cargo.toml's block replaces the empty `[dependencies]` cargo new
    // ends it with; every other block is a whole file.
    let mut files = Vec::new();
    for (info, body) in &blocks {
        let Some(name) = file_of(body) else { continue };
        if name == "Cargo.toml" {
            assert_eq!(info, "toml");
            let manifest = std::fs::read_to_string(dir.join(name)).expect("cargo new's manifest");
            let end = manifest
                .strip_suffix("[dependencies]\n")
                .expect("cargo new ends the manifest with an empty [dependencies]");
            let block = body.split_once('\n').expect("a body").1;
            let patch = format!(
                "\n# Added by the test, not on the page: the crates come from this repository.\n\
                 [patch.crates-io]\n\
                 bare-grpc = {{ path = {:?} }}\n\
                 bare-grpc-codegen = {{ path = {:?} }}\n",
                repo(),
                repo().join("codegen")
            );
            write(&dir, name, &format!("{end}{block}{patch}"));
        } else {
            write(&dir, name, body);
        }
        files.push(name.to_string());
    }
    assert_eq!(
        files,
        [
            "Cargo.toml",
            "build.rs",
            "proto/helloworld.proto",
            "src/lib.rs",
            "src/bin/server.rs",
            "src/bin/client.rs"
        ]
    );
    // The Rust on the page is what rustfmt writes.
    let rust_files: Vec<&String> = files.iter().filter(|f| f.ends_with(".rs")).collect();
    run_ok(
        Command::new("rustfmt")
            .current_dir(&dir)
            .args(["--check", "--edition", "2024"])
            .args(&rust_files),
        RUN_BOUND,
        "rustfmt --check on the page's Rust",
    );

    let out_dir = build(&dir);

    // What the page's include! brings in is what docs/codegen.md shows.
    let generated =
        std::fs::read_to_string(out_dir.join("helloworld.rs")).expect("helloworld.rs in OUT_DIR");
    let codegen_page =
        std::fs::read_to_string(repo().join("docs/codegen.md")).expect("read docs/codegen.md");
    assert!(
        fenced_blocks(&codegen_page)
            .iter()
            .any(|(_, body)| *body == generated),
        "docs/codegen.md does not show OUT_DIR/helloworld.rs as generated now; it is:\n{generated}"
    );
    assert!(out_dir.join("file_descriptor_set.bin").is_file());

    // 8. The console blocks: the server's line, then the client's answer.
    let consoles: Vec<Vec<Shown>> = blocks
        .iter()
        .filter(|(info, _)| info == "console")
        .map(|(_, body)| console(body))
        .collect();
    assert_eq!(consoles.len(), 2, "a server block and a client block");
    let (server_shown, client_shown) = (&consoles[0][0], &consoles[1][0]);
    let server = Running::start(
        &mut cargo_run(&dir, server_shown, &["127.0.0.1:0"]),
        "the page's server",
    );
    let listening = server.next_line("the page's server");
    let expected = &server_shown.output[0];
    let (prefix, _) = expected.rsplit_once(':').expect("an address on the page");
    let addr = listening
        .strip_prefix("listening on ")
        .expect("the server says where it listens");
    assert!(
        listening.starts_with(prefix),
        "{listening:?} vs the page's {expected:?}"
    );

    let answer = run_ok(
        &mut cargo_run(&dir, client_shown, &[addr]),
        RUN_BOUND,
        "the page's client",
    );
    let printed: Vec<String> = String::from_utf8_lossy(&answer.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        printed, client_shown.output,
        "the client prints what the page shows"
    );

    // The page says: no server there, and the client exits 1 with UNAVAILABLE.
    drop(server);
    let child = cargo_run(&dir, client_shown, &[addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let refused = finish(child, RUN_BOUND, "the client with no server");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("code: Unavailable"), "{stderr}");
}

const SHOP_PROTO: &str = r#"syntax = "proto3";

package shop.v1;

import "google/protobuf/timestamp.proto";

// Takes orders and lists them back.
service Orders {
  // Places one order and says when it was taken.
  rpc Place(Order) returns (Receipt);
  // Every line of every order placed so far, one message each.
  rpc Lines(ListLines) returns (stream Order.Line);
}

message Order {
  message Line {
    string item = 1;
    uint32 count = 2;
  }
  repeated Line lines = 1;
}

message Receipt {
  uint64 id = 1;
  google.protobuf.Timestamp taken_at = 2;
}

message ListLines {}
"#;

const SHOP_MAIN: &str = r#"use std::sync::Mutex;

use bare_grpc::services::health::{self, HealthClient, HealthCheckRequest};
use bare_grpc::services::reflection::Reflection;
use bare_grpc::{Channel, Request, Response, ResponseSink, Server, Status};

mod shop {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/shop.v1.rs"));
    }
}
use shop::v1::orders_grpc::{Orders, OrdersClient, OrdersServer};
use shop::v1::{ListLines, Order, Receipt, order::Line};

const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

#[derive(Default)]
struct Shop {
    lines: Mutex<Vec<Line>>,
}

impl Orders for Shop {
    async fn place(&self, request: Request<Order>) -> Result<Response<Receipt>, Status> {
        let mut lines = self.lines.lock().unwrap();
        lines.extend(request.into_inner().lines);
        let taken_at = prost_types::Timestamp { seconds: 1_700_000_000 + lines.len() as i64, nanos: 0 };
        Ok(Response::new(Receipt { id: lines.len() as u64, taken_at: Some(taken_at) }))
    }

    async fn lines(&self, _: Request<ListLines>, mut sink: ResponseSink<Line>) -> Result<(), Status> {
        let lines = self.lines.lock().unwrap().clone();
        for line in &lines {
            sink.send(line).await?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reflection = Reflection::builder().file_descriptor_set(DESCRIPTORS)?.build()?;
    println!("reflection: {}", reflection.service_names().join(", "));
    let (reporter, health) = health::health_service();
    reporter.set_serving("shop.v1.Orders");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let server = Server::builder()
        .add_service(OrdersServer::new(Shop::default()))
        .add_service(health)
        .add_service(reflection.v1())
        .build();
    tokio::spawn(server.serve(listener));

    let channel = Channel::connect(&addr).await?;
    let client = OrdersClient::new(channel.clone());
    let order = Order { lines: vec![Line { item: "tea".into(), count: 2 }, Line { item: "cake".into(), count: 1 }] };
    let receipt = client.place(order).await?.into_inner();
    let taken = receipt.taken_at.unwrap_or_default();
    println!("receipt {} taken at {}", receipt.id, taken.seconds);
    let mut lines = client.lines(ListLines {}).await?;
    while let Some(line) = lines.message().await? {
        println!("line {} x{}", line.item, line.count);
    }
    let health = HealthClient::new(channel);
    let check = HealthCheckRequest { service: "shop.v1.Orders".into() };
    let status = health.check(check).await?.into_inner().status();
    println!("health {status:?}");
    let missing = client.place(Request::new(Order::default())).await;
    println!("empty order: {:?}", missing.map(|r| r.into_inner().id));
    Ok(())
}
"#;

#[test]
fn own_crate_with_nested_package_and_well_known_type() {
    let scratch = Scratch::new("new-user");
    let dir = scratch.0.join("shop");
    let manifest = format!(
        r#"[package]
name = "new-user-shop"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
bare-grpc = {{ path = {:?} }}
prost = "0.14"
prost-types = "0.14"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "net"] }}

[build-dependencies]
bare-grpc-codegen = {{ path = {:?} }}
"#,
        repo(),
        repo().join("codegen")
    );
    write(&dir, "Cargo.toml", &manifest);
    write(
        &dir,
        "build.rs",
        "fn main() { bare_grpc_codegen::compile_protos(&[\"proto/shop/v1/orders.proto\"], &[\"proto\"]).unwrap() }\n",
    );
    write(&dir, "src/main.rs", SHOP_MAIN);
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");

    // What a user sees from `cargo build` when protoc rejects the .proto: the file and line
    // (the `;` missing at the end of line 18 is found at the `}` of line 19).
    let broken = SHOP_PROTO.replace("uint32 count = 2;", "uint32 count = 2");
    write(&dir, "proto/shop/v1/orders.proto", &broken);
    let stderr = failed_build(&dir, None);
    assert!(
        stderr.contains("proto/shop/v1/orders.proto:19:3: Expected \";\"."),
        "{stderr}"
    );

    // `$PROTOC` is honoured: a protoc that is not there fails the build, naming it.
    write(&dir, "proto/shop/v1/orders.proto", SHOP_PROTO);
    let missing = dir.join("no-protoc-here");
    let stderr = failed_build(&dir, Some(&missing));
    assert!(
        stderr.contains(&format!("could not run protoc at {}", missing.display())),
        "{stderr}"
    );

    let out_dir = build(&dir);
    // The build script told cargo what to watch: the .proto it read, and $PROTOC.
    let said = std::fs::read_to_string(out_dir.with_file_name("output")).expect("build output");
    assert!(
        said.lines().eq([
            "cargo:rerun-if-changed=proto/shop/v1/orders.proto",
            "cargo:rerun-if-env-changed=PROTOC",
        ]),
        "{said}"
    );
    let generated = std::fs::read_to_string(out_dir.join("shop.v1.rs")).expect("shop.v1.rs");
    assert!(generated.contains("::core::option::Option<::prost_types::Timestamp>"));
    assert!(
        generated.contains("ResponseSink<super::order::Line>"),
        "{generated}"
    );

    let output = run_ok(
        &mut Command::new(target_dir().join("debug/new-user-shop")),
        RUN_BOUND,
        "the new user's program",
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed,
        "reflection: grpc.reflection.v1.ServerReflection, grpc.reflection.v1alpha.ServerReflection, shop.v1.Orders\n\
         receipt 2 taken at 1700000002\n\
         line tea x2\n\
         line cake x1\n\
         health Serving\n\
         empty order: Ok(2)\n"
    );
}
