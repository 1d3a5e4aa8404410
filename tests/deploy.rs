//! What deploy/kubernetes/ promises, checked against a running server: the manifests validate
//! offline against Kubernetes' schemas; the exec probes' exact commands (and the native `grpc`
//! probes' port and service) answer as a kubelet needs; SIGTERM drains in the order a load
//! balancer needs (NOT_SERVING first, then GOAWAY with the calls in flight finishing, then exit 0).
//!
//! ```text
//!   cargo test ──spawn──▶ interop-server --port 0 --shutdown_delay_ms 1500   (the example binary)
//!        │                 ▲ health-probe -addr=… (the manifest's command, port substituted)
//!        │                 ▲ a StreamingOutputCall in flight (2 × 1 s)
//!        └──kill -TERM────▶ "health NOT_SERVING" → probe exit 4 → "GOAWAY" → the call ends OK
//!                          → "drained, exiting", exit 0, the port refuses connections
//! ```
//!
//! The rules: gRPC's health-checking.md (Check, NOT_SERVING, NOT_FOUND), RFC 9113 §6.8 (GOAWAY
//! lets the streams already started finish), Kubernetes' pod termination (SIGTERM, then SIGKILL
//! after terminationGracePeriodSeconds).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bare_grpc::{Channel, Request};
use bare_grpc_contracts::grpc_testing::test_service_grpc::TestServiceClient;
use bare_grpc_contracts::grpc_testing::{ResponseParameters, StreamingOutputCallRequest};

/// Builds one example with the cargo that runs the tests; returns its executable.
fn example(name: &'static str) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(common::repo_root()).args([
        "build",
        "--quiet",
        "--example",
        name,
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = common::run_peer(cmd, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo build --example {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marker = format!("\"name\":\"{name}\"");
    stdout
        .lines()
        .filter(|line| line.contains(&marker))
        .find_map(|line| {
            let key = "\"executable\":\"";
            let rest = &line[line.find(key)? + key.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .unwrap_or_else(|| panic!("no executable for {name}:\n{stdout}"))
}

fn interop_server() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example("interop-server"))
}

fn health_probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example("health-probe"))
}

/// A running interop-server process and its stdout lines.
struct Running {
    child: Child,
    port: u16,
    lines: Receiver<String>,
}

impl Running {
    fn start(delay_ms: u64) -> Running {
        Running::spawn(Command::new(interop_server()), delay_ms)
    }

    /// `command` (the interop-server, or something that execs it) with the test's flags.
    fn spawn(mut command: Command, delay_ms: u64) -> Running {
        let mut child = command
            .args(["--port", "0", "--shutdown_delay_ms", &delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start interop-server");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Running {
            child,
            port: 0,
            lines,
        };
        let first = running.next_line(Duration::from_secs(60));
        // "interop-server: listening on [::]:PORT" (or 0.0.0.0:PORT without IPv6).
        running.port = first
            .rsplit(':')
            .next()
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        running
    }

    fn next_line(&self, bound: Duration) -> String {
        self.lines
            .recv_timeout(bound)
            .unwrap_or_else(|e| panic!("no line from interop-server within {bound:?}: {e}"))
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a probe command (argv) with a bound; returns (exit code, stdout + stderr).
fn probe(argv: &[String]) -> (i32, String) {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let out = common::run_peer(cmd, Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The exec probes' commands in a manifest, as written: `command: ["/health-probe", …]`.
fn exec_commands(manifest: &str) -> Vec<Vec<String>> {
    manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("command: ["))
        .map(|list| {
            list.trim_end_matches(']')
                .split(", ")
                .map(|word| word.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

/// The manifest's probe, pointed at the test's server: the binary path and the port are
/// the only things substituted.
fn localize(argv: &[String], port: u16) -> Vec<String> {
    argv.iter()
        .map(|word| {
            if word == "/health-probe" {
                health_probe().display().to_string()
            } else {
                word.replace("127.0.0.1:10000", &format!("127.0.0.1:{port}"))
            }
        })
        .collect()
}

fn manifest(name: &str) -> String {
    std::fs::read_to_string(common::repo_root().join("deploy/kubernetes").join(name))
        .expect("read manifest")
}

/// The manifests validate offline against Kubernetes' own schemas (PyPI's
/// kubernetes-validate, installed into target/venv by tests/peers/setup.sh), strictly:
/// an unknown field is an error.
#[test]
fn manifests_validate_against_kubernetes_schemas() {
    let validator = common::repo_root().join("target/venv/bin/kubernetes-validate");
    assert!(
        validator.exists(),
        "{} is missing: run tests/peers/setup.sh",
        validator.display()
    );
    let dir = common::repo_root().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    let mut cmd = Command::new(&validator);
    cmd.arg("--strict").args(&files);
    let out = common::run_peer(cmd, Duration::from_secs(120));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(" passed for resource ").count(), 4, "{text}");
}

/// Both Deployments start the server the way this test does, and the exec probes are the two
/// this test runs.
#[test]
fn manifests_say_what_the_tests_run() {
    for name in ["deployment.yaml", "deployment-exec-probes.yaml"] {
        let text = manifest(name);
        assert!(
            text.contains(r#"args: ["--port", "10000", "--shutdown_delay_ms", "5000"]"#),
            "{name}"
        );
        assert!(text.contains("terminationGracePeriodSeconds: 30"), "{name}");
    }
    let native = manifest("deployment.yaml");
    assert!(native.contains(
        "grpc:\n              port: 10000\n              service: grpc.testing.TestService"
    ));
    assert_eq!(
        exec_commands(&manifest("deployment-exec-probes.yaml")).len(),
        2
    );
    assert!(manifest("service-headless.yaml").contains("clusterIP: None"));
}

/// The exec probes' exact commands against a running server: SERVING, exit 0. The native
/// `grpc` probes ask the same Check (port 10000; readiness with service
/// grpc.testing.TestService, liveness with the empty name), which the same binary shows.
/// And every way a probe can fail has its own exit code.
#[test]
fn probe_commands_answer_against_a_running_server() {
    let server = Running::start(0);
    let commands = exec_commands(&manifest("deployment-exec-probes.yaml"));
    for argv in &commands {
        let (code, text) = probe(&localize(argv, server.port));
        assert_eq!(code, 0, "{argv:?}: {text}");
        assert_eq!(text.trim(), "status: SERVING");
    }
    let bin = health_probe().display().to_string();
    let run = |args: &[&str]| {
        let mut argv = vec![bin.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        probe(&argv)
    };
    let addr = format!("-addr={}", server.addr());
    // The native probes' two questions.
    assert_eq!(run(&[&addr, "-service=grpc.testing.TestService"]).0, 0);
    assert_eq!(run(&[&addr]).0, 0);
    // An unknown service: the RPC fails with NOT_FOUND, exit 3.
    let (code, text) = run(&[&addr, "-service=no.Such"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("NotFound"), "{text}");
    // Nobody listening: exit 2.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, text) = run(&[&format!("-addr={down}"), "-connect-timeout=500ms"]);
    assert_eq!(code, 2, "{text}");
    // Bad flags: exit 1.
    assert_eq!(run(&[]).0, 1);
    assert_eq!(run(&[&addr, "-rpc-timeout=soon"]).0, 1);
    assert_eq!(run(&[&addr, "-bogus=1"]).0, 1);
}

/// SIGTERM mid-call: health says NOT_SERVING first (the readiness probe fails with exit 4),
/// the call in flight finishes OK after GOAWAY, the process exits 0 and the port closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flips_health_then_drains_then_exits() {
    // Built before the clock starts: the probe must run inside the 1.5 s delay.
    tokio::task::spawn_blocking(health_probe).await.unwrap();
    let mut server = Running::start(1500);
    let channel = Channel::builder(&server.addr())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let client = TestServiceClient::new(channel);
    // Two responses 1 s apart: the call is in flight across the whole drain.
    let request = StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                size: 10,
                interval_us: 1_000_000,
                ..Default::default()
            };
            2
        ],
        ..Default::default()
    };
    let mut stream = client
        .streaming_output_call(Request::new(request))
        .await
        .expect("call starts");

    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        server.next_line(Duration::from_secs(10)),
        "interop-server: SIGTERM: health NOT_SERVING"
    );
    // During the delay the readiness probe (the manifest's command) fails: exit 4.
    let readiness = &exec_commands(&manifest("deployment-exec-probes.yaml"))[0];
    let argv = localize(readiness, server.port);
    let (code, text) = tokio::task::spawn_blocking(move || probe(&argv))
        .await
        .unwrap();
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("NOT_SERVING"), "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "probe ran after the delay"
    );

    assert_eq!(
        server.next_line(Duration::from_secs(10)),
        "interop-server: SIGTERM: GOAWAY, draining calls in flight"
    );
    let mut received = 0;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("bounded")
        .expect("the call in flight ends OK")
    {
        assert_eq!(message.payload.unwrap().body.len(), 10);
        received += 1;
    }
    assert_eq!(received, 2);
    assert_eq!(
        server.next_line(Duration::from_secs(20)),
        "interop-server: SIGTERM: drained, exiting"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    assert!(std::net::TcpStream::connect(server.addr()).is_err());
    // Well inside terminationGracePeriodSeconds (30 s).
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The user the image runs as (`USER 65532:65532` in deploy/Dockerfile).
const IMAGE_USER: &str = "65532:65532";

/// The image's two binaries, built by deploy/build-static.sh (the script the Dockerfile's build
/// stage runs, so the same flags) into target/deploy-static/out.
fn static_binaries() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let root = common::repo_root();
        let target = root.join("target/deploy-static");
        let out = target.join("out");
        let mut cmd = Command::new(root.join("deploy/build-static.sh"));
        cmd.current_dir(&root)
            .arg(&out)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO", env!("CARGO"));
        let built = common::run_peer(cmd, Duration::from_secs(1800));
        assert!(
            built.status.success(),
            "deploy/build-static.sh (needs the Rust target x86_64-unknown-linux-musl: \
             tests/peers/setup.sh adds it):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        out
    })
}

/// The ELF program header types of `bytes` (ELF64, little-endian: x86_64).
fn program_header_types(bytes: &[u8]) -> Vec<u32> {
    assert_eq!(
        &bytes[..6],
        b"\x7fELF\x02\x01",
        "an ELF64 little-endian file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let at = phoff + i * phentsize;
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
        })
        .collect()
}

/// The Dockerfile's build runs deploy/build-static.sh and copies only its two outputs into
/// `scratch`, as uid 65532: what `static_binaries_serve_from_an_empty_root` runs.
#[test]
fn dockerfile_builds_with_the_tested_script() {
    let text = std::fs::read_to_string(common::repo_root().join("deploy/Dockerfile")).unwrap();
    for line in [
        "RUN rustup target add x86_64-unknown-linux-musl",
        "RUN deploy/build-static.sh /out",
        "FROM scratch",
        "COPY --from=build /out/interop-server /out/health-probe /",
        &format!("USER {IMAGE_USER}"),
        r#"CMD ["--port", "10000", "--shutdown_delay_ms", "5000"]"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "deploy/Dockerfile lacks {line:?}"
        );
    }
    let runs = text.lines().filter(|l| l.starts_with("RUN ")).count();
    assert_eq!(runs, 2, "the build stage is the script, nothing else");
}

/// The image without Docker: deploy/build-static.sh's two binaries are static (no ELF
/// interpreter: nothing to load from a /lib the image lacks), and, when the tests run as root,
/// they run in an empty root holding only them (`chroot --userspec=65532:65532`, as `scratch`
/// with `USER 65532:65532`): the server listens, the manifest's exec probe (the binary inside
/// that root) answers SERVING, and SIGTERM drains to exit 0. Not root: they run on the host,
/// and the empty-root part is skipped with the reason printed.
#[test]
fn static_binaries_serve_from_an_empty_root() {
    let out = static_binaries();
    for bin in ["interop-server", "health-probe"] {
        let bytes = std::fs::read(out.join(bin)).unwrap();
        let types = program_header_types(&bytes);
        // PT_INTERP (3): a dynamic loader's path. A static executable has none.
        assert!(
            !types.contains(&3),
            "{bin} asks for a dynamic loader: {types:?}"
        );
        println!("{bin}: {} bytes, static, stripped", bytes.len());
    }
    let root_user = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"));
    let (server, probe_argv) = if root_user {
        // The empty root: a fresh directory with the two files and nothing else.
        let root = common::repo_root()
            .join("target/deploy-static")
            .join(format!("root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        for bin in ["interop-server", "health-probe"] {
            std::fs::copy(out.join(bin), root.join(bin)).unwrap();
        }
        let mut listing: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listing.sort();
        assert_eq!(listing, ["health-probe", "interop-server"]);
        let chroot = |bin: &str| {
            let mut cmd = Command::new("chroot");
            cmd.arg(format!("--userspec={IMAGE_USER}"))
                .arg(&root)
                .arg(format!("/{bin}"));
            cmd
        };
        let server = Running::spawn(chroot("interop-server"), 500);
        let probe = vec![
            "chroot".to_owned(),
            format!("--userspec={IMAGE_USER}"),
            root.display().to_string(),
            "/health-probe".to_owned(),
        ];
        (server, probe)
    } else {
        println!(
            "skipped the empty root: chroot needs root, the tests run as uid {}; the static \
             binaries run on the host instead",
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .unwrap_or("?")
                .trim()
        );
        let server = Running::spawn(Command::new(out.join("interop-server")), 500);
        (server, vec![out.join("health-probe").display().to_string()])
    };
    if root_user {
        // The process is the server itself (chroot execs it), with the image's user.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        assert!(status.contains("Name:\tinterop-server"), "{status}");
        assert!(
            status.contains("Uid:\t65532\t65532\t65532\t65532"),
            "{status}"
        );
    }
    // The manifest's exec probes, their binary being the image's.
    for argv in exec_commands(&manifest("deployment-exec-probes.yaml")) {
        let mut full = probe_argv.clone();
        full.extend(
            argv[1..]
                .iter()
                .map(|w| w.replace("127.0.0.1:10000", &server.addr())),
        );
        let (code, text) = probe(&full);
        assert_eq!(code, 0, "{full:?}: {text}");
        assert_eq!(text.trim(), "status: SERVING");
    }
    // SIGTERM: the same three steps as on the host, then exit 0.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for line in [
        "interop-server: SIGTERM: health NOT_SERVING",
        "interop-server: SIGTERM: GOAWAY, draining calls in flight",
        "interop-server: SIGTERM: drained, exiting",
    ] {
        assert_eq!(server.next_line(Duration::from_secs(10)), line);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of draining");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
