//! `RouteGuide` (seed 002, a Python tutorial): the seed's `person.proto` and `route_guide.proto`
//! exactly, so the seed's own `client.py` runs against this server unchanged.
//!
//! ```text
//!  GetPerson(Name) -> Person                 unary: "Alice" -> Alice; unknown -> Person{name:
//!                                            "Not Found"} (status OK, as the seed's server)
//!  GetPeople(stream Name) -> stream Person   bidirectional: each known name is answered as it
//!                                            arrives, in order; unknown names are skipped
//! ```
//!
//! The protos have no `package`, so the paths are `/RouteGuide/GetPerson` and
//! `/RouteGuide/GetPeople` (PROTOCOL-HTTP2 § Requests: `:path` is `/` Service-Name `/`
//! method-name, and the service name is fully qualified only when there is a package).
//!
//! Why GetPeople answers per message rather than after the half-close: it is what the seed's
//! Python server does (a generator that yields as it reads), and what makes it bidirectional.

use bare_grpc::{Channel, Request, Response, ResponseSink, Status, Streaming};

use bare_grpc_contracts::route_guide::person::{Address, Gender};
use bare_grpc_contracts::route_guide::route_guide_grpc::{
    RouteGuide, RouteGuideClient, RouteGuideServer,
};
use bare_grpc_contracts::route_guide::{Name, Person};

/// The RouteGuide service over the seed's two people.
#[derive(Debug)]
pub struct RouteGuideService {
    /// Alice and Bob, as in the seed's server.
    people: Vec<Person>,
}

/// The seed's data.
pub fn seed_people() -> Vec<Person> {
    let person =
        |name: &str, age, gender: Gender, hobbies: [&str; 2], street: &str, city: &str| Person {
            name: name.into(),
            age,
            gender: gender as i32,
            hobbies: hobbies.iter().map(|s| s.to_string()).collect(),
            address: Some(Address {
                street: street.into(),
                city: city.into(),
            }),
        };
    vec![
        person(
            "Alice",
            30,
            Gender::Female,
            ["reading", "swimming"],
            "123 Main St",
            "New York",
        ),
        person(
            "Bob",
            25,
            Gender::Male,
            ["gaming", "cycling"],
            "456 Elm St",
            "Los Angeles",
        ),
    ]
}

impl RouteGuideService {
    /// The service over the seed's data, wrapped for `Server::builder().add_service(..)`.
    pub fn server() -> RouteGuideServer<RouteGuideService> {
        RouteGuideServer::new(RouteGuideService {
            people: seed_people(),
        })
    }

    fn find(&self, name: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.name == name)
    }
}

impl RouteGuide for RouteGuideService {
    async fn get_person(&self, request: Request<Name>) -> Result<Response<Person>, Status> {
        let name = request.into_inner().name;
        let person = self.find(&name).cloned().unwrap_or_else(|| Person {
            name: "Not Found".into(),
            ..Person::default()
        });
        Ok(Response::new(person))
    }

    async fn get_people(
        &self,
        request: Request<Streaming<Name>>,
        mut sink: ResponseSink<Person>,
    ) -> Result<(), Status> {
        let mut names = request.into_inner();
        while let Some(name) = names.message().await? {
            if let Some(person) = self.find(&name.name) {
                // By reference: the sink encodes at once, so no clone is needed.
                sink.send(person).await?;
            }
        }
        Ok(())
    }
}

/// One person on one line, in the words of the seed client's print:
/// `Alice, Age: 30, Gender: FEMALE, Hobbies: reading, swimming, Address: 123 Main St, New York`.
pub fn describe(person: &Person) -> String {
    let gender = Gender::try_from(person.gender).map_or("?", |g| g.as_str_name());
    let address = person
        .address
        .as_ref()
        .map_or(String::new(), |a| format!("{}, {}", a.street, a.city));
    format!(
        "{}, Age: {}, Gender: {gender}, Hobbies: {}, Address: {address}",
        person.name,
        person.age,
        person.hobbies.join(", ")
    )
}

/// What the seed's `client.py` does, with our client: GetPerson("Alice"), then GetPeople over
/// Alice, Bob, Charlie (Charlie is unknown and skipped). Reports through `say`.
pub async fn demo(channel: &Channel, say: &mut (dyn FnMut(String) + Send)) -> Result<(), Status> {
    let client = RouteGuideClient::new(channel.clone());
    say("-> GetPerson \"Alice\"".into());
    let person = client
        .get_person(Name {
            name: "Alice".into(),
        })
        .await?
        .into_inner();
    say(format!("<- Person {}", describe(&person)));

    let (mut names, mut people) = client.get_people(()).await?;
    for name in ["Alice", "Bob", "Charlie"] {
        say(format!("-> GetPeople {name:?}"));
        names.send(Name { name: name.into() }).await?;
    }
    say("-> (half-close)".into());
    names.finish();
    while let Some(person) = people.message().await? {
        say(format!("<- Person {}", describe(&person)));
    }
    say("<- end of stream".into());
    Ok(())
}
