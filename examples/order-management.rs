//! The OrderManagement seed (`ecommerce.OrderManagement`, seed 001): the four call kinds.
//!
//! ```text
//! cargo run --release --example order-management -- serve --port 50052
//! cargo run --release --example order-management -- call --addr 127.0.0.1:50052
//! cargo run --release --example order-management -- call --addr 127.0.0.1:50052 search --query Google
//! cargo run --release --example order-management -- call --addr 127.0.0.1:50052 process --id 102 --id 103
//! ```
//!
//! The server starts with the book's sample orders 102..106. `call` with no action runs the
//! demo: one call of each kind. Actions, one call each:
//! `add` / `update` (an order from `--id --items a,b --destination --price --description`;
//! `update` takes `--id` and replaces that order), `get --id`, `search --query`,
//! `process --id ID [--id ID]...`. A failed call prints its status on stderr and exits 1.

mod seeds;

use bare_grpc::Server;
use bare_grpc_contracts::ecommerce::Order;
use bare_grpc_contracts::ecommerce::order_management_grpc::OrderManagementClient;
use seeds::Messages;
use seeds::cli::{self, Args};
use seeds::order_management::{self, OrderManagementService, describe, describe_shipment};

const USAGE: &str = "usage: order-management serve --port N
       order-management call --addr HOST:PORT            (demo: one call of each kind)
       order-management call --addr HOST:PORT add [--id ID] --items A,B --destination D [--price P] [--description T]
       order-management call --addr HOST:PORT update --id ID --items A,B --destination D [--price P] [--description T]
       order-management call --addr HOST:PORT get --id ID
       order-management call --addr HOST:PORT search --query TEXT
       order-management call --addr HOST:PORT process --id ID [--id ID]...";

/// The order described by the flags.
fn order_from(args: &Args) -> Order {
    Order {
        id: args.get("id").unwrap_or_default().to_owned(),
        items: args
            .require("items")
            .split(',')
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect(),
        description: args.get("description").unwrap_or_default().to_owned(),
        price: args.number("price").unwrap_or(0.0),
        destination: args.require("destination").to_owned(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(
        "order-management",
        USAGE,
        &[
            "id",
            "items",
            "destination",
            "price",
            "description",
            "query",
        ],
    );
    if args.command == "serve" {
        let server = Server::builder()
            .add_service(OrderManagementService::server())
            .build();
        return cli::serve(&args, server).await;
    }
    let channel = cli::connect(&args).await;
    let client = OrderManagementClient::new(channel.clone());
    let result = async {
        match args.action.as_deref() {
            None => order_management::demo(&channel, &mut |line| println!("{line}")).await?,
            Some("add") => println!("{}", client.add_order(order_from(&args)).await?.get_ref()),
            Some("update") => {
                args.require("id");
                let orders = Messages::new(vec![order_from(&args)]);
                let updated = client.update_orders(orders).await?;
                println!("{}", updated.get_ref());
            }
            Some("get") => {
                let order = client.get_order(args.require("id").to_owned()).await?;
                println!("{}", describe(order.get_ref()));
            }
            Some("search") => {
                let mut orders = client
                    .search_orders(args.require("query").to_owned())
                    .await?;
                while let Some(order) = orders.message().await? {
                    println!("{}", describe(&order));
                }
            }
            Some("process") => {
                let ids = args.all("id");
                if ids.is_empty() {
                    args.fail("process needs at least one --id");
                }
                let (mut sink, mut shipments) = client.process_orders(()).await?;
                for id in ids {
                    sink.send(id.to_owned()).await?;
                }
                sink.finish();
                while let Some(shipment) = shipments.message().await? {
                    println!("{}", describe_shipment(&shipment));
                }
            }
            Some(other) => args.fail(&format!("unknown action {other:?}\n\n{USAGE}")),
        }
        Ok::<(), bare_grpc::Status>(())
    }
    .await;
    if let Err(status) = result {
        cli::exit_with("order-management", &status);
    }
    Ok(())
}
