//! Testing a service in-process, as a user of bare-grpc would (`docs/testing.md`, § "Testing
//! your own service in-process"): the service, a server holding it, and
//! `bare_grpc::testing::connect` for a channel to it over an in-memory pipe. No port, no sleep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::{Code, Metadata, Request, Response, Server, Status};
use bare_grpc_contracts::ecommerce::product_info_grpc::{
    ProductInfo, ProductInfoClient, ProductInfoServer,
};
use bare_grpc_contracts::ecommerce::{Product, ProductId};

/// The service under test: a catalogue keyed by a counter.
#[derive(Default)]
struct Catalogue {
    products: Mutex<HashMap<String, Product>>,
}

impl ProductInfo for Catalogue {
    async fn add_product(&self, request: Request<Product>) -> Result<Response<ProductId>, Status> {
        let mut product = request.into_inner();
        if product.name.is_empty() {
            return Err(Status::invalid_argument("a product needs a name"));
        }
        let mut products = self.products.lock().unwrap();
        product.id = (products.len() + 1).to_string();
        let id = product.id.clone();
        products.insert(id.clone(), product);
        Ok(Response::new(ProductId { value: id }))
    }

    async fn get_product(&self, request: Request<ProductId>) -> Result<Response<Product>, Status> {
        let id = request.into_inner().value;
        match self.products.lock().unwrap().get(&id) {
            Some(product) => Ok(Response::new(product.clone())),
            None => Err(Status::not_found(format!("no product with id {id:?}"))),
        }
    }
}

fn server() -> Server {
    Server::builder()
        .add_service(ProductInfoServer::new(Catalogue::default()))
        .build()
}

fn phone() -> Product {
    Product {
        id: String::new(),
        name: "Pixel 8".into(),
        description: "A phone".into(),
        price: 699.0,
    }
}

#[tokio::test]
async fn add_then_get_returns_the_stored_product() {
    let channel = bare_grpc::testing::connect(&server()).await.unwrap();
    let client = ProductInfoClient::new(channel);

    let id = client.add_product(phone()).await.unwrap().into_inner();
    assert_eq!(id.value, "1");
    let product = client.get_product(id).await.unwrap().into_inner();
    assert_eq!(product.name, "Pixel 8");
    assert_eq!(product.id, "1");
}

#[tokio::test]
async fn unknown_id_is_not_found_with_its_message() {
    let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
    let status = client
        .get_product(ProductId { value: "9".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no product with id \"9\"");
}

#[tokio::test]
async fn a_product_without_a_name_is_invalid() {
    let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
    let status = client.add_product(Product::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// The in-memory channel takes the channel's options like a networked one: here a receive
/// limit the product overflows, which fails on the client side as over TCP.
#[tokio::test]
async fn channel_options_apply_in_process() {
    let server = server();
    let channel = bare_grpc::testing::builder(&server)
        .max_receive_message_size(8)
        .connect()
        .await
        .unwrap();
    let client = ProductInfoClient::new(channel);
    client.add_product(phone()).await.unwrap();
    let status = client
        .get_product(ProductId { value: "1".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

/// Metadata and deadlines cross the pipe as HTTP/2 headers: an interceptor on the server sees
/// the request's metadata and a timeout.
#[tokio::test]
async fn metadata_and_deadline_reach_the_server() {
    struct Seen(std::sync::Arc<Mutex<Vec<String>>>);
    impl Interceptor for Seen {
        type State = ();
        fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
            let tenant = metadata.get("tenant").unwrap_or("-").to_owned();
            let timed = call.deadline().is_some();
            self.0.lock().unwrap().push(format!("{tenant} {timed}"));
            Ok(())
        }
    }
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let server = Server::builder()
        .interceptor(Seen(seen.clone()))
        .add_service(ProductInfoServer::new(Catalogue::default()))
        .build();
    let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server));
    let mut request = Request::new(phone());
    request.metadata_mut().insert("tenant", "acme").unwrap();
    request.set_timeout(Duration::from_secs(5));
    client.add_product(request).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["acme true".to_owned()]);
}

/// Many concurrent calls share the one in-memory connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_the_connection() {
    let client = ProductInfoClient::new(bare_grpc::testing::connect(&server()).await.unwrap());
    let calls = (0..200).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.add_product(phone()).await })
    });
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap().unwrap().into_inner().value);
    }
    ids.sort_by_key(|id| id.parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    assert_eq!(ids, expected);
}
