//! What the nginx suites share: Debian's nginx started by the test itself, unprivileged in
//! its own prefix under `target/nginx-test/<pid>-<n>/` (config, pid, temp and log paths all
//! there), on a free loopback port, with a generated config that `grpc_pass`es to an
//! `upstream` block of N bare-grpc instances. docs/deploy.md quotes [`Nginx::config`].
//!
//! Unprivileged: when the tests run as root (CI does), nginx is started through util-linux's
//! `setpriv --reuid --regid --clear-groups` as `nobody`, master and worker alike, and the prefix
//! (config, the copies of the TLS certificate and key, error pages, logs, temp paths) is
//! chowned to `nobody` first; the port is above 1024, so no privilege is needed anywhere. Not
//! root: nginx runs as the invoking user. [`Nginx::pids`] lets a test read the processes' ids.
//!
//! ```text
//!   client ──h2c or TLS──▶ nginx 127.0.0.1:<free>  ──grpc:// or grpcs://──▶ upstream grpc_backends
//!                          (listen … http2 [ssl])                              ├─ bare-grpc #1
//!                                                                              └─ bare-grpc #2
//! ```
//!
//! nginx cannot bind port 0 and report it, so a free port is found by binding 0 and closing
//! it; when another process takes it first nginx exits with "Address already in use" and we
//! try another one (three times). Readiness is the listen port accepting, polled with a
//! bound; the process is stopped (SIGQUIT, graceful, then SIGKILL after a bound) when the
//! handle drops.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common;

/// The nginx binary (Debian's package; `tests/peers/setup.sh` installs it).
const NGINX: &str = "/usr/sbin/nginx";

/// What the generated config says.
#[derive(Clone, Default)]
pub struct Options {
    /// The bare-grpc instances of the `upstream` block.
    pub upstreams: Vec<SocketAddr>,
    /// `grpc_pass grpcs://…` (our TLS server) instead of `grpc://…` (h2c); the test CA and
    /// the name nginx checks.
    pub upstream_tls: Option<(PathBuf, String)>,
    /// `listen … ssl http2` with this certificate and key, instead of h2c.
    pub listen_tls: Option<(PathBuf, PathBuf)>,
    /// `client_max_body_size` (nginx's default is 1m; gRPC's default message limit is 4 MiB).
    pub client_max_body_size: &'static str,
    /// `grpc_read_timeout` (nginx's default is 60s): how long nginx waits for the upstream.
    pub read_timeout: &'static str,
    /// More directives for the `server` block (`error_page` and its locations); paths in
    /// them are relative to the prefix.
    pub server_extra: String,
    /// Files written under the prefix's `html/` (`root html;` serves them), name and text.
    pub html: Vec<(&'static str, String)>,
}

/// A running nginx.
pub struct Nginx {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// The config it runs (for failure messages and the docs).
    pub config: String,
    /// Its prefix directory (logs are there).
    pub dir: PathBuf,
    child: Child,
}

impl Nginx {
    /// Starts nginx with a config generated from `options`.
    pub fn start(options: &Options) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: run tests/peers/setup.sh (Debian package `nginx`)"
        );
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let mut last_error = String::new();
        for _ in 0..3 {
            let dir = common::repo_root().join("target/nginx-test").join(format!(
                "{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(dir.join("logs")).expect("create nginx prefix");
            let options = &own_copies(options, &dir);
            let port = free_port();
            let config = config(options, &dir, port);
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, &config).expect("write nginx.conf");
            let mut command = match run_as() {
                None => Command::new(NGINX),
                Some(ids) => unprivileged(ids, &dir, &conf_path),
            };
            let mut child = command
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.join("logs/error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {NGINX}: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Nginx {
                        addr,
                        config,
                        dir,
                        child,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let log =
                        std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
                    last_error = format!("nginx exited ({status}):\n{log}\nconfig:\n{config}");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("nginx did not listen on {addr} within 20 s\nconfig:\n{config}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !last_error.contains("Address already in use") {
                break;
            }
        }
        panic!("{last_error}");
    }

    /// nginx's processes: the master and its children (the worker).
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        let tasks = std::fs::read_dir(format!("/proc/{master}/task")).expect("/proc/PID/task");
        for task in tasks {
            let children = std::fs::read_to_string(task.expect("task").path().join("children"))
                .unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .map(|pid| pid.parse::<u32>().unwrap()),
            );
        }
        pids
    }

    /// nginx's error log so far (to show in a failed assertion).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful shutdown of the master and its worker; then a bound.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The generated nginx.conf: everything under `dir`, one worker, `grpc_pass` to the
/// `upstream` block, forwarding headers set the way a user sets them.
pub fn config(options: &Options, dir: &Path, port: u16) -> String {
    let dir = dir.display();
    let servers: String = options
        .upstreams
        .iter()
        .map(|addr| format!("        server {addr};\n"))
        .collect();
    let (listen, listen_tls) = match &options.listen_tls {
        None => (format!("127.0.0.1:{port} http2"), String::new()),
        Some((cert, key)) => (
            format!("127.0.0.1:{port} ssl http2"),
            format!(
                "        ssl_certificate {};\n        ssl_certificate_key {};\n        \
                 ssl_protocols TLSv1.2 TLSv1.3;\n",
                cert.display(),
                key.display()
            ),
        ),
    };
    let (scheme, upstream_tls) = match &options.upstream_tls {
        None => ("grpc", String::new()),
        Some((ca, name)) => (
            "grpcs",
            format!(
                "            grpc_ssl_verify on;\n            grpc_ssl_trusted_certificate {};\n            \
                 grpc_ssl_name {name};\n            grpc_ssl_server_name on;\n",
                ca.display()
            ),
        ),
    };
    let body = if options.client_max_body_size.is_empty() {
        "8m"
    } else {
        options.client_max_body_size
    };
    let read_timeout = if options.read_timeout.is_empty() {
        "60s"
    } else {
        options.read_timeout
    };
    // No `user` directive: the master is started unprivileged (as `nobody` under root, see
    // `run_as`), and its worker keeps the master's user.
    let extra = &options.server_extra;
    format!(
        "# Generated by tests/nginx_support for one test run.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream grpc_backends {{
{servers}        # nginx runs one call at a time per upstream connection: keep as many idle
        # connections as calls run at once, or each call beyond them opens a new connection.
        keepalive 128;
    }}

    server {{
        listen {listen};
{listen_tls}        # gRPC messages up to 4 MiB (gRPC's default limit) plus framing.
        client_max_body_size {body};
        # nginx ends a client's HTTP/2 connection (GOAWAY) after 1000 calls by default.
        keepalive_requests 1000000;

        location / {{
            grpc_pass {scheme}://grpc_backends;
{upstream_tls}            grpc_read_timeout {read_timeout};
            grpc_send_timeout {read_timeout};
            grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            grpc_set_header Forwarded \"for=$remote_addr;proto=$scheme\";
        }}
{extra}    }}
}}
"
    )
}

/// Who nginx runs as when the tests run as root: `nobody`'s user and group ids from
/// /etc/passwd; `None` when not root (nginx keeps the invoking user).
pub fn run_as() -> Option<(u32, u32)> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1)?.parse::<u32>().ok())
        .expect("effective uid");
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let nobody = passwd
        .lines()
        .find(|line| line.starts_with("nobody:"))
        .expect("a `nobody` user in /etc/passwd");
    let fields: Vec<&str> = nobody.split(':').collect();
    Some((
        fields[2].parse().expect("nobody's uid"),
        fields[3].parse().expect("nobody's gid"),
    ))
}

/// `setpriv` starting nginx as `ids`, after handing the prefix to them and checking they can
/// reach it (every directory above it must be searchable by others).
fn unprivileged((uid, gid): (u32, u32), dir: &Path, conf: &Path) -> Command {
    chown_tree(dir, uid, gid);
    let setpriv = |program: &str| {
        let mut command = Command::new("setpriv");
        command.args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            program,
        ]);
        command
    };
    let reachable = setpriv("test")
        .arg("-r")
        .arg(conf)
        .status()
        .expect("setpriv (util-linux) runs");
    assert!(
        reachable.success(),
        "uid {uid} cannot read {}: nginx runs unprivileged, so every directory above the \
         prefix needs o+x",
        conf.display()
    );
    setpriv(NGINX)
}

/// The prefix and everything in it, owned by `uid:gid` (logs and temp paths writable by it).
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown the nginx prefix");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read the nginx prefix") {
            chown_tree(&entry.expect("entry").path(), uid, gid);
        }
    }
}

/// `options` with the TLS files copied into the prefix (`tls/`, the key 0600: readable by
/// nginx's user only) and the error pages written into `html/`.
fn own_copies(options: &Options, dir: &Path) -> Options {
    use std::os::unix::fs::PermissionsExt;
    let mut options = options.clone();
    let copy = |from: &PathBuf, mode: u32| {
        std::fs::create_dir_all(dir.join("tls")).expect("create tls/");
        let to = dir.join("tls").join(from.file_name().expect("a file name"));
        std::fs::copy(from, &to).expect("copy a TLS file into the prefix");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
        to
    };
    if let Some((cert, key)) = &mut options.listen_tls {
        *cert = copy(cert, 0o644);
        *key = copy(key, 0o600);
    }
    if let Some((ca, _)) = &mut options.upstream_tls {
        *ca = copy(ca, 0o644);
    }
    if !options.html.is_empty() {
        std::fs::create_dir_all(dir.join("html")).expect("create html/");
        for (name, text) in &options.html {
            std::fs::write(dir.join("html").join(name), text).expect("write an error page");
        }
    }
    options
}

/// Starts `count` in-process bare-grpc interop servers (TestService over h2c) on free
/// loopback ports, each in its own runtime thread for the life of the test binary.
pub fn start_backends(count: usize) -> Vec<SocketAddr> {
    (0..count).map(|_| spawn_backend(None)).collect()
}

/// A hook that configures one backend's builder (the TLS suite adds `.tls(…)`).
pub type Configure =
    Box<dyn FnOnce(bare_grpc::server::Builder) -> bare_grpc::server::Builder + Send>;

/// One in-process interop server; `tls` configures TLS on it (the TLS suite passes one).
pub fn spawn_backend(tls: Option<Configure>) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = std_listener.local_addr().expect("local addr");
    std_listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let mut builder = bare_grpc::Server::builder();
            if let Some(tls) = tls {
                builder = tls(builder);
            }
            builder
                .add_service(common::test_service::test_service())
                .build()
                .serve(listener)
                .await
                .expect("interop server behind nginx");
        });
    });
    addr
}
