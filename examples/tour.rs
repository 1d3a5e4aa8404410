//! The tour: all four seed services on one free loopback port, in one process, and one call of
//! each kind made with bare-grpc's own client over one HTTP/2 connection.
//!
//! ```text
//! cargo run --release --example tour
//! ```
//!
//! ```text
//!   this process
//!   ┌───────────────────────────────────────────────┐
//!   │ Server  127.0.0.1:<free port>                 │
//!   │   ecommerce.ProductInfo      seeds/product_info.rs
//!   │   ecommerce.OrderManagement  seeds/order_management.rs
//!   │   RouteGuide                 seeds/route_guide.rs
//!   │   grpc.ChatServer            seeds/chat.rs    │
//!   │        ▲ one HTTP/2 connection, one stream per call
//!   │ Channel ── the four generated clients         │
//!   └───────────────────────────────────────────────┘
//! ```
//!
//! `->` is what the client sent, `<-` what came back. It exits once the calls are done; every
//! service also has its own example with `serve` and `call` subcommands.

mod seeds;

use std::time::{Duration, Instant};

use bare_grpc::{Channel, Server, Status};
use bare_grpc_contracts::chat::Note;
use bare_grpc_contracts::chat::chat_server_grpc::ChatServerClient;
use seeds::chat::{self, ChatService};
use seeds::order_management::{self, OrderManagementService};
use seeds::product_info::{self, ProductInfoService};
use seeds::route_guide::{self, RouteGuideService};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        .add_service(ProductInfoService::server())
        .add_service(OrderManagementService::server())
        .add_service(RouteGuideService::server())
        .add_service(ChatService::new(false).server())
        .build();
    let services = server.service_names().join(", ");
    tokio::spawn(server.serve(listener));
    println!("serving {services} on {addr}");

    let channel = match Channel::connect(&addr.to_string()).await {
        Ok(channel) => channel,
        Err(status) => fail(&status),
    };
    if let Err(status) = calls(&channel).await {
        fail(&status);
    }
    println!(
        "\ndone in {} ms: every call above shared one HTTP/2 connection",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The calls, section by section.
async fn calls(channel: &Channel) -> Result<(), Status> {
    let mut say = |line: String| println!("  {line}");

    println!("\nProductInfo: unary calls (/ecommerce.ProductInfo/addProduct, getProduct)");
    product_info::demo(channel, &mut say).await?;

    println!(
        "\nOrderManagement: unary, server streaming (searchOrders), client streaming \
         (updateOrders), bidirectional (processOrders)"
    );
    order_management::demo(channel, &mut say).await?;

    println!("\nRouteGuide (no package): unary GetPerson, bidirectional GetPeople");
    route_guide::demo(channel, &mut say).await?;

    println!("\nChatServer (package grpc): SendNote (unary), ChatStream (server streaming)");
    let alice = Note {
        name: "alice".into(),
        message: "hi, is anyone here?".into(),
    };
    say(format!("-> SendNote S[{}] {}", alice.name, alice.message));
    ChatServerClient::new(channel.clone())
        .send_note(alice)
        .await?;
    let reply = [String::from("hello alice, bob here")];
    chat::session(channel, "bob", &reply, Duration::from_secs(5), &mut say).await?;
    Ok(())
}

fn fail(status: &Status) -> ! {
    eprintln!("tour: {} {}", status.code().name(), status.message());
    std::process::exit(1);
}
