//! The RouteGuide seed (seed 002: `person.proto`, `route_guide.proto`, no package).
//!
//! ```text
//! cargo run --release --example route-guide -- serve --port 50051
//! cargo run --release --example route-guide -- call --addr 127.0.0.1:50051
//! cargo run --release --example route-guide -- call --addr 127.0.0.1:50051 person --name Bob
//! cargo run --release --example route-guide -- call --addr 127.0.0.1:50051 people --name Alice --name Zoe
//! ```
//!
//! `call` with no action does what the seed's `client.py` does (GetPerson Alice, then
//! GetPeople over Alice, Bob, Charlie). The seed's Python client itself runs against
//! `serve --port 50051` unchanged: it dials `localhost:50051`.

mod seeds;

use bare_grpc::Server;
use bare_grpc_contracts::route_guide::Name;
use bare_grpc_contracts::route_guide::route_guide_grpc::RouteGuideClient;
use seeds::cli::{self, Args};
use seeds::route_guide::{self, RouteGuideService, describe};

const USAGE: &str = "usage: route-guide serve --port N
       route-guide call --addr HOST:PORT                  (demo: what the seed's client.py does)
       route-guide call --addr HOST:PORT person --name NAME
       route-guide call --addr HOST:PORT people --name NAME [--name NAME]...";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse("route-guide", USAGE, &["name"]);
    if args.command == "serve" {
        let server = Server::builder()
            .add_service(RouteGuideService::server())
            .build();
        return cli::serve(&args, server).await;
    }
    let channel = cli::connect(&args).await;
    let client = RouteGuideClient::new(channel.clone());
    let result = async {
        match args.action.as_deref() {
            None => route_guide::demo(&channel, &mut |line| println!("{line}")).await?,
            Some("person") => {
                let name = Name {
                    name: args.require("name").to_owned(),
                };
                println!("{}", describe(client.get_person(name).await?.get_ref()));
            }
            Some("people") => {
                let (mut names, mut people) = client.get_people(()).await?;
                for name in args.all("name") {
                    names
                        .send(Name {
                            name: name.to_owned(),
                        })
                        .await?;
                }
                names.finish();
                while let Some(person) = people.message().await? {
                    println!("{}", describe(&person));
                }
            }
            Some(other) => args.fail(&format!("unknown action {other:?}\n\n{USAGE}")),
        }
        Ok::<(), bare_grpc::Status>(())
    }
    .await;
    if let Err(status) = result {
        cli::exit_with("route-guide", &status);
    }
    Ok(())
}
