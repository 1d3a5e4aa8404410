//! `ecommerce.ProductInfo` (seed 001, *gRPC: Up and Running* chapter 2): a catalogue in memory.
//!
//! ```text
//!  addProduct(Product)   -> ProductID   stores the product under a fresh id (the id the
//!                                       client put in Product.id is ignored, as in the book)
//!  getProduct(ProductID) -> Product     NOT_FOUND "no product with id \"7\"" for unknown ids
//! ```
//!
//! Why a counter under the catalogue's lock for ids: the id is taken and the product stored in
//! one critical section, so concurrent `addProduct` calls can never hand out the same id, and
//! an id is never visible before its product is (the book's Go map had neither property).
//! Ids are decimal strings ("1", "2", ...): unique for the life of one server, which is as
//! long as its products live.

use std::collections::HashMap;
use std::sync::Mutex;

use bare_grpc::{Channel, Request, Response, Status};

use super::lock;
use bare_grpc_contracts::ecommerce::product_info_grpc::{
    ProductInfo, ProductInfoClient, ProductInfoServer,
};
use bare_grpc_contracts::ecommerce::{Product, ProductId};

/// The ProductInfo service: a catalogue safe under concurrent calls.
#[derive(Debug, Default)]
pub struct ProductInfoService {
    /// Products by id, and the last id handed out.
    catalogue: Mutex<Catalogue>,
}

/// The state behind the lock.
#[derive(Debug, Default)]
struct Catalogue {
    /// The last id given out; 0 before the first product.
    last_id: u64,
    /// Every product stored, by id.
    products: HashMap<String, Product>,
}

impl ProductInfoService {
    /// An empty catalogue, wrapped for `Server::builder().add_service(..)`.
    pub fn server() -> ProductInfoServer<ProductInfoService> {
        ProductInfoServer::new(ProductInfoService::default())
    }
}

impl ProductInfo for ProductInfoService {
    async fn add_product(&self, request: Request<Product>) -> Result<Response<ProductId>, Status> {
        let mut product = request.into_inner();
        let mut catalogue = lock(&self.catalogue);
        catalogue.last_id += 1;
        product.id = catalogue.last_id.to_string();
        let id = product.id.clone();
        catalogue.products.insert(id.clone(), product);
        Ok(Response::new(ProductId { value: id }))
    }

    async fn get_product(&self, request: Request<ProductId>) -> Result<Response<Product>, Status> {
        let id = request.into_inner().value;
        match lock(&self.catalogue).products.get(&id) {
            Some(product) => Ok(Response::new(product.clone())),
            None => Err(Status::not_found(format!("no product with id {id:?}"))),
        }
    }
}

/// One product on one line: `"Apple iPhone 11" $699.00 (id 1): Meet Apple iPhone 11.`
pub fn describe(product: &Product) -> String {
    let id = if product.id.is_empty() {
        String::new()
    } else {
        format!(" (id {})", product.id)
    };
    format!(
        "{:?} ${:.2}{id}: {}",
        product.name, product.price, product.description
    )
}

/// The product the demo adds (the book's example).
pub fn sample_product() -> Product {
    Product {
        id: String::new(),
        name: "Apple iPhone 11".into(),
        description:
            "Meet Apple iPhone 11. All-new dual-camera system with Ultra Wide and Night mode."
                .into(),
        price: 699.0,
    }
}

/// The unary demo the tour and `product-info call` run: add a product, read it back, read an
/// id that does not exist. Reports each step through `say`; returns the new product's id.
pub async fn demo(
    channel: &Channel,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<String, Status> {
    let client = ProductInfoClient::new(channel.clone());
    let product = sample_product();
    say(format!("-> addProduct {}", describe(&product)));
    let id = client.add_product(product).await?.into_inner().value;
    say(format!("<- ProductID {id:?}"));

    say(format!("-> getProduct {id:?}"));
    let found = client
        .get_product(ProductId { value: id.clone() })
        .await?
        .into_inner();
    say(format!("<- Product {}", describe(&found)));

    // Ids count from 1, so "0" is never one.
    let missing = String::from("0");
    say(format!("-> getProduct {missing:?}"));
    match client.get_product(ProductId { value: missing }).await {
        Ok(product) => {
            return Err(Status::internal(format!(
                "expected NOT_FOUND, got {}",
                describe(product.get_ref())
            )));
        }
        Err(status) => say(format!("<- {} {}", status.code().name(), status.message())),
    }
    Ok(id)
}
