//! `health-probe`: a Kubernetes exec probe for gRPC servers, flag- and exit-code-compatible
//! with the common `grpc_health_probe` tool, for clusters older than Kubernetes' native `grpc`
//! probes (docs/deploy.md, deploy/kubernetes/).
//!
//! ```text
//! health-probe -addr=127.0.0.1:10000 [-service=NAME] [-connect-timeout=1s] [-rpc-timeout=1s]
//!
//!   Check(service) ──▶ SERVING       exit 0  "status: SERVING"
//!                  ──▶ other status  exit 4  "service unhealthy (responded with NOT_SERVING)"
//!   cannot connect in time           exit 2
//!   the RPC fails or times out       exit 3  (NOT_FOUND for an unknown service among them)
//!   bad flags                        exit 1
//! ```
//!
//! The rule: the health protocol of `grpc.health.v1.Health/Check` (gRPC's
//! health-checking.md): the empty service name asks about the server as a whole, an unknown
//! name is NOT_FOUND. It uses bare-grpc's own client and health stubs, nothing else.

use std::process::ExitCode;
use std::time::Duration;

use bare_grpc::services::health::{HealthCheckRequest, HealthClient, ServingStatus};
use bare_grpc::{Channel, Request};

fn usage(error: &str) -> ExitCode {
    eprintln!(
        "health-probe: {error}\nusage: health-probe -addr=HOST:PORT [-service=NAME] \
         [-connect-timeout=DURATION] [-rpc-timeout=DURATION]   (DURATION: 1s, 500ms)"
    );
    ExitCode::from(1)
}

/// `1s`, `250ms`, `2m`.
fn duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number * 60)),
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut addr = None;
    let mut service = String::new();
    let mut connect_timeout = Duration::from_secs(1);
    let mut rpc_timeout = Duration::from_secs(1);
    for arg in std::env::args().skip(1) {
        // `-flag=value` and `--flag=value`, as Go's flag package accepts.
        let arg = arg.trim_start_matches('-');
        let Some((name, value)) = arg.split_once('=') else {
            return usage(&format!("-{arg} needs =VALUE"));
        };
        match name {
            "addr" => addr = Some(value.to_owned()),
            "service" => service = value.to_owned(),
            "connect-timeout" | "rpc-timeout" => {
                let Some(parsed) = duration(value).filter(|d| !d.is_zero()) else {
                    return usage(&format!("-{name}={value}: not a duration"));
                };
                if name == "connect-timeout" {
                    connect_timeout = parsed;
                } else {
                    rpc_timeout = parsed;
                }
            }
            _ => return usage(&format!("unknown flag -{name}")),
        }
    }
    let Some(addr) = addr.filter(|a| !a.is_empty()) else {
        return usage("-addr is required");
    };

    let channel = match Channel::builder(&addr) {
        Ok(builder) => builder.connect_timeout(connect_timeout).connect().await,
        Err(status) => Err(status),
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(status) => {
            eprintln!(
                "error: failed to connect to {addr} within {connect_timeout:?}: {}",
                status.message()
            );
            return ExitCode::from(2);
        }
    };
    let mut request = Request::new(HealthCheckRequest {
        service: service.clone(),
    });
    request.set_timeout(rpc_timeout);
    match HealthClient::new(channel).check(request).await {
        Ok(response) => {
            let status = response.into_inner().status();
            if status == ServingStatus::Serving {
                println!("status: SERVING");
                ExitCode::SUCCESS
            } else {
                println!(
                    "service unhealthy (responded with {})",
                    status.as_str_name()
                );
                ExitCode::from(4)
            }
        }
        Err(status) => {
            eprintln!(
                "error: health rpc failed: {:?}: {}",
                status.code(),
                status.message()
            );
            ExitCode::from(3)
        }
    }
}
