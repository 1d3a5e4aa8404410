//! `ecommerce.OrderManagement` (seed 001, *gRPC: Up and Running* chapter 3): one service with
//! each of the four call kinds, over orders kept in memory.
//!
//! ```text
//!  addOrder(Order)              -> StringValue         unary: the stored order's id
//!  getOrder(StringValue)        -> Order               unary
//!  searchOrders(StringValue)    -> stream Order        server streaming: orders with an item
//!                                                      containing the query, by id
//!  updateOrders(stream Order)   -> StringValue         client streaming: "102, 103"
//!  processOrders(stream StringValue)
//!                               -> stream CombinedShipment   bidirectional:
//!
//!    client: 102 ──▶ 104 ──▶ 106 ──▶ 103 ──▶ 105 ──▶ END_STREAM
//!    server:                  └─▶ shipment(Mountain View: 102 104 106, "full")
//!                                                          └─▶ shipment(San Jose: 103 105,
//!                                                                       "remainder")
//! ```
//!
//! Rules: an unknown id is `NOT_FOUND` naming the id (getOrder, updateOrders, processOrders);
//! addOrder of an id already stored is `ALREADY_EXISTS` (replacing is updateOrders' job); an
//! order without an id gets a fresh one. updateOrders is all or nothing: it reads the whole
//! stream, then checks every id and replaces them all under one lock, so a failed call changes
//! nothing. processOrders groups orders by destination and sends a shipment as soon as one
//! holds [`SHIPMENT_SIZE`] orders, the rest when the client half-closes; every id it was sent
//! is in exactly one shipment (an id sent twice is shipped once).
//!
//! Limits: a client stream of more than [`MAX_BATCH`] orders or ids is `RESOURCE_EXHAUSTED`,
//! so one call cannot make the server buffer without bound.
//!
//! The server starts with the book's five sample orders, 102 to 106.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bare_grpc::{Channel, Request, Response, ResponseSink, Status, Streaming};

use super::{Messages, lock};
use bare_grpc_contracts::ecommerce::order_management_grpc::{
    OrderManagement, OrderManagementClient, OrderManagementServer,
};
use bare_grpc_contracts::ecommerce::{CombinedShipment, Order};

/// Orders per shipment: a destination's shipment goes out as soon as it holds this many.
pub const SHIPMENT_SIZE: usize = 3;

/// The most orders (updateOrders) or ids (processOrders) one call may stream.
pub const MAX_BATCH: usize = 10_000;

/// The OrderManagement service.
#[derive(Debug)]
pub struct OrderManagementService {
    /// Orders by id, and the last generated id.
    orders: Mutex<Book>,
    /// Numbers shipments across all calls.
    last_shipment: AtomicU64,
}

/// The state behind the lock.
#[derive(Debug, Default)]
struct Book {
    /// The highest numeric id handed out or seen; fresh ids count up from it.
    last_id: u64,
    /// Every order, by id (a BTreeMap so searches answer in id order).
    orders: BTreeMap<String, Order>,
}

/// The book's five sample orders.
pub fn sample_orders() -> Vec<Order> {
    let order = |id: &str, items: &[&str], destination: &str, price: f32| Order {
        id: id.into(),
        items: items.iter().map(|s| s.to_string()).collect(),
        description: String::new(),
        price,
        destination: destination.into(),
    };
    vec![
        order(
            "102",
            &["Google Pixel 3A", "Mac Book Pro"],
            "Mountain View, CA",
            1800.0,
        ),
        order("103", &["Apple Watch S4"], "San Jose, CA", 400.0),
        order(
            "104",
            &["Google Home Mini", "Google Nest Hub"],
            "Mountain View, CA",
            400.0,
        ),
        order("105", &["Amazon Echo"], "San Jose, CA", 30.0),
        order(
            "106",
            &["Amazon Echo", "Apple iPhone XS"],
            "Mountain View, CA",
            300.0,
        ),
    ]
}

impl OrderManagementService {
    /// A service holding `orders`.
    pub fn with_orders(orders: Vec<Order>) -> OrderManagementService {
        let mut book = Book::default();
        for order in orders {
            book.note_id(&order.id);
            book.orders.insert(order.id.clone(), order);
        }
        OrderManagementService {
            orders: Mutex::new(book),
            last_shipment: AtomicU64::new(0),
        }
    }

    /// The service with the sample orders, wrapped for `Server::builder().add_service(..)`.
    pub fn server() -> OrderManagementServer<OrderManagementService> {
        OrderManagementServer::new(OrderManagementService::with_orders(sample_orders()))
    }

    /// A copy of every order, by id (for tests).
    pub fn orders(&self) -> Vec<Order> {
        lock(&self.orders).orders.values().cloned().collect()
    }

    /// A new shipment for `destination`.
    fn shipment(&self, destination: &str) -> CombinedShipment {
        let number = self.last_shipment.fetch_add(1, Ordering::Relaxed) + 1;
        CombinedShipment {
            id: format!("shipment-{number} to {destination}"),
            status: String::new(),
            orders_list: Vec::new(),
        }
    }
}

impl Book {
    /// Keeps fresh ids above every numeric id stored.
    fn note_id(&mut self, id: &str) {
        if let Ok(n) = id.parse::<u64>() {
            self.last_id = self.last_id.max(n);
        }
    }

    /// An id no order has.
    fn fresh_id(&mut self) -> String {
        loop {
            self.last_id += 1;
            let id = self.last_id.to_string();
            if !self.orders.contains_key(&id) {
                return id;
            }
        }
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("no order with id {id:?}"))
}

fn too_many(what: &str) -> Status {
    Status::resource_exhausted(format!("more than {MAX_BATCH} {what} in one call"))
}

impl OrderManagement for OrderManagementService {
    async fn add_order(&self, request: Request<Order>) -> Result<Response<String>, Status> {
        let mut order = request.into_inner();
        let mut book = lock(&self.orders);
        if order.id.is_empty() {
            order.id = book.fresh_id();
        } else if book.orders.contains_key(&order.id) {
            return Err(Status::already_exists(format!(
                "order {:?} exists; updateOrders replaces orders",
                order.id
            )));
        }
        book.note_id(&order.id);
        let id = order.id.clone();
        book.orders.insert(id.clone(), order);
        Ok(Response::new(id))
    }

    async fn get_order(&self, request: Request<String>) -> Result<Response<Order>, Status> {
        let id = request.into_inner();
        match lock(&self.orders).orders.get(&id) {
            Some(order) => Ok(Response::new(order.clone())),
            None => Err(not_found(&id)),
        }
    }

    async fn search_orders(
        &self,
        request: Request<String>,
        mut sink: ResponseSink<Order>,
    ) -> Result<(), Status> {
        let query = request.into_inner();
        // Copy the matches out first: the lock is never held across an await.
        let matches: Vec<Order> = lock(&self.orders)
            .orders
            .values()
            .filter(|order| order.items.iter().any(|item| item.contains(&query)))
            .cloned()
            .collect();
        for order in matches {
            sink.send(order).await?;
        }
        Ok(())
    }

    async fn update_orders(
        &self,
        request: Request<Streaming<Order>>,
    ) -> Result<Response<String>, Status> {
        let mut stream = request.into_inner();
        let mut updates = Vec::new();
        while let Some(order) = stream.message().await? {
            if updates.len() == MAX_BATCH {
                return Err(too_many("orders"));
            }
            updates.push(order);
        }
        let mut book = lock(&self.orders);
        if let Some(unknown) = updates.iter().find(|o| !book.orders.contains_key(&o.id)) {
            return Err(not_found(&unknown.id));
        }
        let ids: Vec<String> = updates.iter().map(|o| o.id.clone()).collect();
        for order in updates {
            book.orders.insert(order.id.clone(), order);
        }
        Ok(Response::new(ids.join(", ")))
    }

    async fn process_orders(
        &self,
        request: Request<Streaming<String>>,
        mut sink: ResponseSink<CombinedShipment>,
    ) -> Result<(), Status> {
        let mut ids = request.into_inner();
        let mut seen = HashSet::new();
        // Open shipments, with their destination, in the order the destination first appeared.
        let mut open: Vec<(String, CombinedShipment)> = Vec::new();
        while let Some(id) = ids.message().await? {
            if seen.len() == MAX_BATCH {
                return Err(too_many("order ids"));
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            let order = lock(&self.orders)
                .orders
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found(&id))?;
            let at = match open.iter().position(|(to, _)| *to == order.destination) {
                Some(at) => at,
                None => {
                    open.push((order.destination.clone(), self.shipment(&order.destination)));
                    open.len() - 1
                }
            };
            open[at].1.orders_list.push(order);
            if open[at].1.orders_list.len() == SHIPMENT_SIZE {
                let (_, mut full) = open.remove(at);
                full.status = "full".into();
                sink.send(full).await?;
            }
        }
        for (_, mut rest) in open {
            rest.status = "remainder".into();
            sink.send(rest).await?;
        }
        Ok(())
    }
}

/// One order on one line: `102 [Google Pixel 3A, Mac Book Pro] to Mountain View, CA, $1800.00`.
pub fn describe(order: &Order) -> String {
    let description = if order.description.is_empty() {
        String::new()
    } else {
        format!(" ({})", order.description)
    };
    let id = if order.id.is_empty() {
        "(no id)"
    } else {
        &order.id
    };
    format!(
        "{id} [{}] to {}, ${:.2}{description}",
        order.items.join(", "),
        order.destination,
        order.price
    )
}

/// One shipment on one line: `shipment-1 to Mountain View, CA (full): 102, 104, 106`.
pub fn describe_shipment(shipment: &CombinedShipment) -> String {
    let ids: Vec<&str> = shipment.orders_list.iter().map(|o| o.id.as_str()).collect();
    format!("{} ({}): {}", shipment.id, shipment.status, ids.join(", "))
}

/// The demo the tour and `order-management call` run, one call of each kind against the
/// sample orders: addOrder, getOrder (unary), searchOrders (server streaming), updateOrders
/// (client streaming), processOrders (bidirectional). Reports each step through `say`.
pub async fn demo(channel: &Channel, say: &mut (dyn FnMut(String) + Send)) -> Result<(), Status> {
    let client = OrderManagementClient::new(channel.clone());

    let new_order = Order {
        id: String::new(),
        items: vec!["Amazon Echo Dot".into()],
        description: "gift".into(),
        price: 49.99,
        destination: "Seattle, WA".into(),
    };
    say(format!("-> addOrder {}", describe(&new_order)));
    let id = client.add_order(new_order).await?.into_inner();
    say(format!("<- StringValue {id:?}"));
    say(format!("-> getOrder {id:?}"));
    let order = client.get_order(id).await?.into_inner();
    say(format!("<- Order {}", describe(&order)));

    say("-> searchOrders \"Google\"".into());
    let mut found = client.search_orders(String::from("Google")).await?;
    while let Some(order) = found.message().await? {
        say(format!("<- Order {}", describe(&order)));
    }
    say("<- end of stream".into());

    let mut updates = sample_orders();
    updates.truncate(2);
    updates[0].items.push("Google Pixel Buds".into());
    updates[0].price += 179.0;
    updates[1].description = "gift wrapped".into();
    for order in &updates {
        say(format!("-> updateOrders {}", describe(order)));
    }
    say("-> (half-close)".into());
    let updated = client.update_orders(Messages::new(updates)).await?;
    say(format!("<- StringValue {:?}", updated.get_ref()));

    let (mut ids, mut shipments) = client.process_orders(()).await?;
    for id in ["102", "104", "106"] {
        say(format!("-> processOrders {id:?}"));
        ids.send(id.into()).await?;
    }
    // With the sample orders those three fill Mountain View's shipment, which the server sends
    // while the call is still open; the bound keeps the demo going if someone moved them.
    match tokio::time::timeout(Duration::from_secs(2), shipments.message()).await {
        Ok(Ok(Some(shipment))) => say(format!(
            "<- CombinedShipment {}",
            describe_shipment(&shipment)
        )),
        Ok(Ok(None)) => {
            return Err(Status::internal(
                "processOrders ended before the half-close",
            ));
        }
        Ok(Err(status)) => return Err(status),
        Err(_) => say("<- (no full shipment yet)".into()),
    }
    for id in ["103", "105"] {
        say(format!("-> processOrders {id:?}"));
        ids.send(id.into()).await?;
    }
    say("-> (half-close)".into());
    ids.finish();
    while let Some(shipment) = shipments.message().await? {
        say(format!(
            "<- CombinedShipment {}",
            describe_shipment(&shipment)
        ));
    }
    say("<- end of stream".into());
    Ok(())
}
