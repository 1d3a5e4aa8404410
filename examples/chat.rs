//! The chat seed (seed 003: `package grpc; service ChatServer`), server and terminal client.
//!
//! ```text
//! cargo run --release --example chat -- serve --port 11912
//! cargo run --release --example chat -- call --addr 127.0.0.1:11912 --name alice --send hi --send "how are you?"
//! cargo run --release --example chat -- call --addr 127.0.0.1:11912 --name bob      (interactive)
//! ```
//!
//! `serve` prints `[name] message` for each note, as the seed's server does. `call` subscribes
//! with ChatStream (the history arrives first) and prints each note as `R[name] message`:
//! - with `--send MSG` (repeatable) it posts those notes with SendNote and exits once the last
//!   one has come back through the stream;
//! - without, it is a chat client: each line typed on stdin is posted, until end of input.
//!
//! The seed's Python client (its gRPC code unchanged, Tk replaced by a small driver) is
//! `tests/python/seeds/chat_client.py`; it dials `localhost:11912`.

mod seeds;

use std::time::Duration;

use bare_grpc::Server;
use bare_grpc_contracts::chat::chat_server_grpc::ChatServerClient;
use bare_grpc_contracts::chat::{Empty, Note};
use seeds::chat::{self, ChatService};
use seeds::cli::{self, Args};

const USAGE: &str = "usage: chat serve --port N
       chat call --addr HOST:PORT --name NAME --send MESSAGE [--send MESSAGE]...
       chat call --addr HOST:PORT --name NAME          (interactive: one note per stdin line)";

/// How long a `--send` session waits for the room to deliver its notes back.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse("chat", USAGE, &["name", "send"]);
    if args.command == "serve" {
        let server = Server::builder()
            .add_service(ChatService::new(true).server())
            .build();
        return cli::serve(&args, server).await;
    }
    if let Some(action) = &args.action {
        args.fail(&format!("unexpected {action:?}\n\n{USAGE}"));
    }
    let name = args.require("name").to_owned();
    let channel = cli::connect(&args).await;
    let sends: Vec<String> = args.all("send").into_iter().map(String::from).collect();
    let result = if sends.is_empty() {
        interactive(&channel, &name).await
    } else {
        chat::session(&channel, &name, &sends, PATIENCE, &mut |line| {
            println!("{line}")
        })
        .await
        .map(drop)
    };
    if let Err(status) = result {
        cli::exit_with("chat", &status);
    }
    Ok(())
}

/// Prints the room as it goes and posts each stdin line, until end of input.
async fn interactive(channel: &bare_grpc::Channel, name: &str) -> Result<(), bare_grpc::Status> {
    let client = ChatServerClient::new(channel.clone());
    let mut notes = client.chat_stream(Empty {}).await?;
    let printer = tokio::spawn(async move {
        while let Ok(Some(note)) = notes.message().await {
            println!("R[{}] {}", note.name, note.message);
        }
    });
    // Blocking stdin reads stay off the runtime: a thread forwards lines over a channel.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(message) = lines.recv().await {
        if message.is_empty() {
            continue;
        }
        let note = Note {
            name: name.to_owned(),
            message,
        };
        client.send_note(note).await?;
    }
    printer.abort();
    Ok(())
}
