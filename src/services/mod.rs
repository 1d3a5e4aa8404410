//! Services every production server wants beside its own: health checking and server
//! reflection, each a generated service with a hand-written implementation.
//!
//! | module | service | for |
//! |---|---|---|
//! | [`health`] | `grpc.health.v1.Health` | load balancers, Kubernetes probes, `grpc_health_probe` |
//! | [`reflection`] | `grpc.reflection.v1` / `v1alpha` `ServerReflection` | grpcurl, grpc_cli, Postman |
//!
//! Both are generated from our own copies of the official contracts (`proto/grpc/health/`,
//! `proto/grpc/reflection/`) by the same build step as any application's services, and are
//! added to a server the same way: `Server::builder().add_service(...)`. Nothing here is wired
//! into the server's core; a server that adds neither pays nothing for them.
//!
//! What they deliberately do not do: health does not watch the other services by itself (the
//! application says when a service is up or down, through a [`health::HealthReporter`]), and
//! reflection only knows the descriptors it is given.

pub mod health;
pub mod reflection;

mod descriptors;
