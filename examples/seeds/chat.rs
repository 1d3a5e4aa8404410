//! `grpc.ChatServer` (seed 003, a Python chat program): one room; `SendNote` posts, and every
//! `ChatStream` subscriber receives every note, in one order, starting with the history.
//!
//! ```text
//!             SendNote(Note) ──lock──▶ history: [n0 n1 n2 n3 ...]   (append-only, one order)
//!                                  └─▶ appended: watch<len>  ── wakes ──┐
//!                                                                       ▼
//!  ChatStream(Empty) ─▶ subscriber: next = 0; loop { copy history[next..]; send each;
//!                                                    next = len; wait for `appended` }
//! ```
//!
//! Why this shape, against the seed's server (each subscriber spins on `len(self.chats)`):
//! - every subscriber reads the one history with its own cursor, so all see the same order,
//!   a new subscriber starts with everything said so far, and a slow subscriber costs only its
//!   cursor: there is no per-subscriber queue to grow or to drop notes from (a broadcast
//!   channel would lag and lose them);
//! - a `watch` wakes subscribers without spinning: a subscriber marks the version seen
//!   *before* copying, so a note appended after the copy always wakes it again;
//! - many senders at once are serialised by the history's lock: each note gets its place
//!   under it, so none is lost or reordered against another.
//!
//! A subscriber that goes away: the client's RST_STREAM (or lost connection) makes the runtime
//! drop the handler future (`src/server/drive.rs`); with it go the subscriber's cursor, its
//! `watch` receiver and its [`Subscription`], which counts live subscribers down. No task is
//! spawned per subscriber, so nothing else is left behind; `tests/seeds.rs` checks the count
//! returns to zero.
//!
//! Not done: history trimming (the room keeps every note, as the seed does), rooms, names
//! checked against anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bare_grpc::{Channel, Request, Response, ResponseSink, ResponseStream, Status};
use tokio::sync::watch;

use super::lock;
use bare_grpc_contracts::chat::chat_server_grpc::{ChatServer, ChatServerClient, ChatServerServer};
use bare_grpc_contracts::chat::{Empty, Note};

/// The chat room. Clones share the room, so a test can keep one to watch the subscribers.
#[derive(Clone, Debug)]
pub struct ChatService {
    room: Arc<Room>,
}

/// What every handler of one room shares.
#[derive(Debug)]
struct Room {
    /// Every note, in the order the room accepted them.
    history: Mutex<Vec<Note>>,
    /// The history's length, bumped after each append: what wakes subscribers.
    appended: watch::Sender<usize>,
    /// How many `ChatStream` handlers are alive.
    subscribers: watch::Sender<usize>,
    /// Print `[name] message` for each note, as the seed's server does.
    echo: bool,
}

/// Counts one live subscriber for as long as it exists.
struct Subscription(Arc<Room>);

impl Subscription {
    fn new(room: &Arc<Room>) -> Subscription {
        room.subscribers.send_modify(|n| *n += 1);
        Subscription(room.clone())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.subscribers.send_modify(|n| *n -= 1);
    }
}

impl Default for ChatService {
    fn default() -> Self {
        ChatService::new(false)
    }
}

impl ChatService {
    /// An empty room; with `echo`, each note is printed as `[name] message` when it arrives.
    pub fn new(echo: bool) -> ChatService {
        ChatService {
            room: Arc::new(Room {
                history: Mutex::new(Vec::new()),
                appended: watch::Sender::new(0),
                subscribers: watch::Sender::new(0),
                echo,
            }),
        }
    }

    /// This room, wrapped for `Server::builder().add_service(..)`.
    pub fn server(&self) -> ChatServerServer<ChatService> {
        ChatServerServer::new(self.clone())
    }

    /// The number of live `ChatStream` handlers, as a `watch` to await changes on.
    pub fn subscribers(&self) -> watch::Receiver<usize> {
        self.room.subscribers.subscribe()
    }

    /// A copy of the history.
    pub fn history(&self) -> Vec<Note> {
        lock(&self.room.history).clone()
    }
}

impl ChatServer for ChatService {
    async fn chat_stream(
        &self,
        _request: Request<Empty>,
        mut sink: ResponseSink<Note>,
    ) -> Result<(), Status> {
        let _subscription = Subscription::new(&self.room);
        let mut appended = self.room.appended.subscribe();
        // Headers now, so the client sees the call accepted even while the room is silent.
        sink.send_headers().await?;
        let mut next = 0;
        loop {
            appended.borrow_and_update();
            let fresh: Vec<Note> = lock(&self.room.history)[next..].to_vec();
            if fresh.is_empty() {
                // Ends only if the room is gone, which cannot happen while we hold it.
                if appended.changed().await.is_err() {
                    return Ok(());
                }
                continue;
            }
            next += fresh.len();
            for note in fresh {
                sink.send(note).await?;
            }
        }
    }

    async fn send_note(&self, request: Request<Note>) -> Result<Response<Empty>, Status> {
        let note = request.into_inner();
        if self.room.echo {
            println!("[{}] {}", note.name, note.message);
        }
        let mut history = lock(&self.room.history);
        history.push(note);
        self.room.appended.send_replace(history.len());
        Ok(Response::new(Empty {}))
    }
}

/// A chat client session, non-interactive: subscribes, posts `messages` as `name`, and reports
/// every note the stream delivers (the history first) until its own last note comes back.
/// Lines read like the seed client's debug prints: `S[name] message` sent, `R[name] message`
/// received. Gives up with DEADLINE_EXCEEDED if the room goes quiet for `patience`.
pub async fn session(
    channel: &Channel,
    name: &str,
    messages: &[String],
    patience: Duration,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<Vec<Note>, Status> {
    let client = ChatServerClient::new(channel.clone());
    say("-> ChatStream (subscribe)".into());
    let mut notes: ResponseStream<Note> = client.chat_stream(Empty {}).await?;
    for message in messages {
        let note = Note {
            name: name.into(),
            message: message.clone(),
        };
        say(format!("-> SendNote S[{name}] {message}"));
        client.send_note(note).await?;
    }
    let mut received = Vec::new();
    let mut mine = 0;
    while mine < messages.len() {
        let note = match tokio::time::timeout(patience, notes.message()).await {
            Ok(note) => note?,
            Err(_) => return Err(Status::deadline_exceeded("the room went quiet")),
        };
        let Some(note) = note else {
            return Err(Status::unavailable("the server ended the chat stream"));
        };
        say(format!("<- Note R[{}] {}", note.name, note.message));
        if note.name == name && messages.get(mine) == Some(&note.message) {
            mine += 1;
        }
        received.push(note);
    }
    // Dropping the stream cancels the subscription (RST_STREAM), which frees it on the server.
    say("-> (cancel the subscription)".into());
    Ok(received)
}
