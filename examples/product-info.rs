//! The ProductInfo seed (`ecommerce.ProductInfo`, seed 001): a server and its client.
//!
//! ```text
//! cargo run --release --example product-info -- serve --port 50051
//! cargo run --release --example product-info -- call --addr 127.0.0.1:50051
//! cargo run --release --example product-info -- call --addr 127.0.0.1:50051 add \
//!     --name "Pixel 8" --description "A phone" --price 699
//! cargo run --release --example product-info -- call --addr 127.0.0.1:50051 get --id 1
//! ```
//!
//! `call` with no action runs the demo (add a product, get it back, get an unknown id).
//! The service is in `seeds/product_info.rs`; exit status 1 and the status on stderr when a
//! call fails (`NOT_FOUND no product with id "9"`).

mod seeds;

use bare_grpc::Server;
use bare_grpc_contracts::ecommerce::product_info_grpc::ProductInfoClient;
use bare_grpc_contracts::ecommerce::{Product, ProductId};
use seeds::cli::{self, Args};
use seeds::product_info::{self, ProductInfoService};

const USAGE: &str = "usage: product-info serve --port N
       product-info call --addr HOST:PORT                 (demo: add, get, get unknown)
       product-info call --addr HOST:PORT add --name NAME [--description TEXT] [--price P]
       product-info call --addr HOST:PORT get --id ID";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse(
        "product-info",
        USAGE,
        &["name", "description", "price", "id"],
    );
    if args.command == "serve" {
        let server = Server::builder()
            .add_service(ProductInfoService::server())
            .build();
        return cli::serve(&args, server).await;
    }
    let channel = cli::connect(&args).await;
    let client = ProductInfoClient::new(channel.clone());
    let result = match args.action.as_deref() {
        None => product_info::demo(&channel, &mut |line| println!("{line}"))
            .await
            .map(drop),
        Some("add") => {
            let product = Product {
                id: String::new(),
                name: args.require("name").to_owned(),
                description: args.get("description").unwrap_or_default().to_owned(),
                price: args.number("price").unwrap_or(0.0),
            };
            client.add_product(product).await.map(|id| {
                println!("{}", id.get_ref().value);
            })
        }
        Some("get") => {
            let id = ProductId {
                value: args.require("id").to_owned(),
            };
            client.get_product(id).await.map(|product| {
                println!("{}", product_info::describe(product.get_ref()));
            })
        }
        Some(other) => args.fail(&format!("unknown action {other:?}\n\n{USAGE}")),
    };
    if let Err(status) = result {
        cli::exit_with("product-info", &status);
    }
    Ok(())
}
