//! The command line every seed example shares: `serve --port N` and `call --addr HOST:PORT
//! [ACTION] [--flag value]...`, and the serve loop behind `serve`.
//!
//! ```text
//!  argv:  serve --port 50051
//!         call  --addr 127.0.0.1:50051 get --id 1
//!         ^cmd  ^flags (--name value or --name=value, repeatable)  ^action: the one bare word
//! ```
//!
//! Why hand-rolled: five small binaries with a handful of flags each do not earn a parser
//! dependency. What it rejects: an unknown flag, a flag without a value, a second bare word.

use std::net::SocketAddr;

use bare_grpc::Server;
use tokio::net::TcpListener;

/// A parsed command line.
#[derive(Debug)]
pub struct Args {
    /// The example's name, for messages.
    program: &'static str,
    /// `serve` or `call`.
    pub command: String,
    /// The optional bare word after the command (`get`, `search`, ...).
    pub action: Option<String>,
    /// Flags in order, repeated ones kept.
    flags: Vec<(String, String)>,
}

impl Args {
    /// Parses `std::env::args()`; exits with the usage text on a malformed line. `known` lists
    /// the flags this example takes (without `--`).
    pub fn parse(program: &'static str, usage: &str, known: &[&str]) -> Args {
        match Args::try_parse(program, std::env::args().skip(1), known) {
            Ok(args) => args,
            Err(error) => {
                eprintln!("{program}: {error}\n\n{usage}");
                std::process::exit(2);
            }
        }
    }

    /// Parses `argv` (without the program name).
    pub fn try_parse(
        program: &'static str,
        argv: impl IntoIterator<Item = String>,
        known: &[&str],
    ) -> Result<Args, String> {
        let mut argv = argv.into_iter();
        let command = argv.next().ok_or("missing command: serve or call")?;
        if command != "serve" && command != "call" {
            return Err(format!(
                "unknown command {command:?}: expected serve or call"
            ));
        }
        let mut args = Args {
            program,
            command,
            action: None,
            flags: Vec::new(),
        };
        while let Some(word) = argv.next() {
            let Some(flag) = word.strip_prefix("--") else {
                if let Some(action) = &args.action {
                    return Err(format!("unexpected {word:?} after action {action:?}"));
                }
                args.action = Some(word);
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = argv.next().ok_or(format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            if name != "port" && name != "addr" && !known.contains(&name.as_str()) {
                return Err(format!("unknown flag --{name}"));
            }
            args.flags.push((name, value));
        }
        Ok(args)
    }

    /// The last value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `--name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `--name`, or an exit with a message naming it.
    pub fn require(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| self.fail(&format!("--{name} is required")))
    }

    /// `--name` parsed as a number, when given.
    pub fn number<N: std::str::FromStr>(&self, name: &str) -> Option<N> {
        self.get(name).map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| self.fail(&format!("--{name} takes a number, not {value:?}")))
        })
    }

    /// Prints `message` and exits with status 2 (a usage error).
    pub fn fail(&self, message: &str) -> ! {
        eprintln!("{}: {message}", self.program);
        std::process::exit(2);
    }
}

/// `serve --port N`: listens on every local address of both IP families (so `localhost`
/// works whichever family it resolves to), prints `listening on HOST:PORT`, serves until killed.
pub async fn serve(args: &Args, server: Server) -> std::io::Result<()> {
    let port: u16 = args
        .number("port")
        .unwrap_or_else(|| args.fail("--port is required"));
    let listener = match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?,
    };
    println!("{}: listening on {}", args.program, listener.local_addr()?);
    server.serve(listener).await
}

/// `call --addr HOST:PORT`: a connected channel, or an exit that says why not.
pub async fn connect(args: &Args) -> bare_grpc::Channel {
    let addr = args.require("addr");
    match bare_grpc::Channel::connect(addr).await {
        Ok(channel) => channel,
        Err(status) => {
            eprintln!("{}: cannot reach {addr}: {status}", args.program);
            std::process::exit(1);
        }
    }
}

/// Prints a failed call's status the way the examples report them, and exits with status 1.
pub fn exit_with(program: &str, status: &bare_grpc::Status) -> ! {
    eprintln!("{program}: {} {}", status.code().name(), status.message());
    std::process::exit(1);
}
