//! A simulated intruder: while the normal workload runs under faults, the
//! `attacker` host replays the denial matrix against the servers'
//! authenticated HTTP endpoints (the kit's real `http_router`, served on
//! simulated TCP with hyper), and keeps every byte it gets back. The leak
//! check then scans those bytes for any user id, email, name or transaction
//! of the dataset.
//!
//! The cases are `test_support::MATRIX`, the one denial matrix, which the
//! orchestrator's e2e tests send over loopback too; each probe must get its
//! case's status and challenge. The servers trust one simulated
//! authorization server, whose key is the test-only
//! `servers/test-support/keys/issuer-es256.pem`. The attacker holds what an
//! attacker plausibly has: tokens minted for the *other* server, for the
//! wrong scope, for its own (non-existent) user, expired or not yet valid
//! ones, tokens signed with a key of its own, and the id of the user it
//! wants to read.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use mcp_server_kit::{Access, AuthSettings, Authenticator, HttpOptions, JwtSettings, ServerSpec};
use test_support::{Refusal, Victim, World};

use crate::dataset::Dataset;

/// Every server's authenticated HTTP endpoint listens on this port.
pub(crate) const HTTP_PORT: u16 = 9080;
/// The simulation's epoch, in seconds since the Unix epoch (turmoil's clock
/// starts here).
pub(crate) const EPOCH_S: u64 = 1_700_000_000;
/// The simulated authorization server.
const ISSUER: &str = "https://auth.sim";
/// The id of the simulated issuer's key in the servers' JWKS.
const KEY_ID: &str = "sim";
/// The user the attacker's own token is bound to: not in any dataset.
const INTRUDER: &str = "intruder-0000";
/// How long one probe may take before it counts as unanswered.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of one response kept for the scan (a response is small; a
/// bigger one is itself suspicious and is kept up to this).
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// The resource URL of `server`'s HTTP endpoint: the audience its tokens name.
pub(crate) fn resource(server: &str) -> String {
    format!("http://{server}:{HTTP_PORT}/mcp")
}

/// The HTTP options a server host serves with under simulation: the kit's
/// authentication with the simulated issuer's key and simulated time, no
/// sessions (the denial matrix's cases are single requests), and `Host`
/// names of the simulated network. `no_auth` serves it open, to prove the
/// leak check catches what an open endpoint gives away.
fn http_options(spec: &ServerSpec, host: &str, no_auth: bool) -> HttpOptions {
    let access = if no_auth {
        Access::Open
    } else {
        Access::Protected(simulated_auth(spec, resource(host)))
    };
    HttpOptions {
        allowed_hosts: vec![host.to_owned()],
        allowed_origins: Vec::new(),
        access,
        sessions: false,
        // Stateless: rmcp never asks for an id; seeded all the same, so no
        // path of a simulated server can reach the OS's randomness.
        session_ids: Arc::new(mcp_server_kit::sessions::SeededIds::new(0)),
        // Its replies are plain JSON; and see `HttpOptions::sse_keep_alive`.
        sse_keep_alive: None,
    }
}

/// The kit's authentication as deployed, for the server whose resource URL
/// is `resource`: JWTs of the simulated issuer only, checked on simulated
/// time.
pub(crate) fn simulated_auth(spec: &ServerSpec, resource: String) -> Arc<Authenticator> {
    let auth = Authenticator::new(AuthSettings {
        resource,
        protection: spec.protection,
        static_tokens: Vec::new(),
        jwt: Some(JwtSettings {
            // The key set depends only on the issuer's key, not on the hosts.
            keys: test_support::jwks(&world(&Attacked {
                user: "",
                payment: "",
            })),
            issuer: ISSUER.into(),
        }),
        token_requests_max: 64,
        clock: Arc::new(|| EPOCH_S + turmoil::sim_elapsed().unwrap_or_default().as_secs()),
    })
    .expect("valid simulated auth settings");
    Arc::new(auth)
}

/// The token of the legitimate client `client` for the server whose
/// resource URL is `resource`: signed by the simulated issuer, every scope
/// the server knows, for no particular user, naming the client (each
/// client holds its own, as each deployment would).
pub(crate) fn client_token(spec: &ServerSpec, resource: &str, client: &str) -> String {
    let scopes = spec.protection.scopes_supported.join(" ");
    world(&Attacked {
        user: "",
        payment: "",
    })
    .client_token(resource, &scopes, client)
}

/// Serves `handler` behind the kit's HTTP router on [`HTTP_PORT`] of this
/// host, in the background, for as long as the host runs.
pub(crate) fn spawn_endpoint<S: rmcp::ServerHandler + Clone>(
    handler: S,
    spec: &ServerSpec,
    host: &str,
    no_auth: bool,
) {
    let router = mcp_server_kit::http_router(
        handler,
        &mcp_server_kit::Limits::DEFAULT,
        http_options(spec, host, no_auth),
        &tokio_util::sync::CancellationToken::new(),
    );
    tokio::spawn(serve_http(router));
}

/// Serves `router` on [`HTTP_PORT`] of this host, one hyper HTTP/1
/// connection per accepted stream, until the host stops.
async fn serve_http(router: axum::Router) -> std::io::Result<()> {
    let listener = turmoil::net::TcpListener::bind((
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        HTTP_PORT,
    ))
    .await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                // The Date header reads the wall clock.
                .auto_date_header(false)
                .header_read_timeout(None)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request of the denial matrix, and the refusal it must get.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) name: &'static str,
    /// The host it is sent to.
    pub(crate) server: String,
    authorization: Option<String>,
    content_type: &'static str,
    body: String,
    pub(crate) refusal: Refusal,
}

/// The simulated setting of the denial matrix: the simulated issuer's
/// ES256 key under one key id, simulated time, and neither static tokens
/// nor an RS256 key (the cases that need those do not apply).
fn world(hosts: &Attacked<'_>) -> World<'static> {
    World {
        issuer: ISSUER,
        rogue_issuer: "https://evil.sim",
        kid_es256: KEY_ID,
        kid_rs256: None,
        now: EPOCH_S,
        // Valid for far longer than any simulation runs.
        lifetime_s: 86_400,
        user_resource: resource(hosts.user),
        payment_resource: resource(hosts.payment),
        own_user: INTRUDER,
        static_tokens: None,
    }
}

/// The hosts the attacker aims at: the scenario's first server of each kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attacked<'a> {
    pub(crate) user: &'a str,
    pub(crate) payment: &'a str,
}

/// The denial matrix (`test_support::MATRIX`, the cases that apply here),
/// sent to the `hosts` and aimed at the user with id `victim` and email
/// `victim_email` (taken from the dataset: the attacker knows its target).
pub(crate) fn matrix(hosts: &Attacked<'_>, victim: &str, victim_email: &str) -> Vec<Probe> {
    let world = world(hosts);
    let victim = Victim {
        id: victim,
        email: victim_email,
    };
    test_support::MATRIX
        .iter()
        .filter(|case| world.applies(case))
        .map(|case| Probe {
            name: case.name,
            server: match case.server {
                test_support::Server::User => hosts.user.to_owned(),
                test_support::Server::Payment => hosts.payment.to_owned(),
            },
            authorization: world.authorization(case),
            content_type: case.content_type,
            body: case.body(&victim),
            refusal: case.refusal,
        })
        .collect()
}

/// What the attacker saw.
#[derive(Debug, Default)]
pub(crate) struct AttackLog {
    /// (simulated time, line) for the run's trace.
    pub(crate) events: Vec<(Duration, String)>,
    /// Every byte of every response: status line, headers, body.
    pub(crate) received: Vec<u8>,
    pub(crate) answered: u64,
    pub(crate) unanswered: u64,
    /// Probes answered with a status other than the one they must get.
    pub(crate) unexpected: Vec<String>,
}

/// The attacker host: one probe every `every`, cycling through `probes`,
/// until `until` (simulated time since the start).
pub(crate) async fn run(
    probes: Vec<Probe>,
    every: Duration,
    until: Duration,
    log: Arc<Mutex<AttackLog>>,
) -> turmoil::Result {
    let started = tokio::time::Instant::now();
    for (n, probe) in probes.iter().cycle().enumerate() {
        let at = every * u32::try_from(n).unwrap_or(u32::MAX);
        if at >= until {
            break;
        }
        tokio::time::sleep_until(started + at).await;
        let result = tokio::time::timeout(PROBE_TIMEOUT, send(probe)).await;
        let mut log = log.lock().expect("attack log");
        let line = match result {
            Ok(Ok(Reply {
                status,
                challenge,
                bytes,
            })) => {
                log.answered += 1;
                log.received.extend_from_slice(&bytes);
                if status != probe.refusal.status() || !probe.refusal.challenged_by(&challenge) {
                    log.unexpected.push(format!(
                        "{} at {}: {status} {challenge:?}, expected {} {:?}",
                        probe.name,
                        probe.server,
                        probe.refusal.status(),
                        probe.refusal
                    ));
                }
                format!("{status}")
            }
            Ok(Err(error)) => {
                log.unanswered += 1;
                format!("no answer ({error})")
            }
            Err(_) => {
                log.unanswered += 1;
                format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())
            }
        };
        log.events.push((
            started.elapsed(),
            format!("attacker: {} at {}: {line}", probe.name, probe.server),
        ));
    }
    Ok(())
}

/// What a probe got back.
struct Reply {
    status: u16,
    /// The `WWW-Authenticate` value, empty if none.
    challenge: String,
    /// Every byte of the response: status line, headers and body.
    bytes: Vec<u8>,
}

/// Sends one probe on a fresh connection.
async fn send(probe: &Probe) -> Result<Reply, String> {
    let stream = turmoil::net::TcpStream::connect((probe.server.as_str(), HTTP_PORT))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let mut request = hyper::Request::post(resource(&probe.server))
        .header("host", probe.server.as_str())
        .header("content-type", probe.content_type)
        .header("accept", "application/json, text/event-stream");
    if let Some(value) = &probe.authorization {
        request = request.header("authorization", value);
    }
    let request = request
        .body(Full::new(Bytes::from(probe.body.clone())))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let mut bytes = format!("HTTP {status}\n").into_bytes();
    for (name, value) in response.headers() {
        bytes.extend_from_slice(name.as_str().as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(b'\n');
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let Some(data) = frame.data_ref() {
            let room = RESPONSE_BYTES_MAX.saturating_sub(bytes.len());
            bytes.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Reply {
        status,
        challenge,
        bytes,
    })
}

/// The dataset records whose identifying text appears in `received`
/// (case-insensitively): user ids, emails and names, and transaction
/// descriptions. Text under 6 characters is skipped: it would match by
/// chance.
pub(crate) fn leaks(received: &[u8], dataset: &Dataset) -> Vec<String> {
    let haystack = String::from_utf8_lossy(received).to_lowercase();
    let mut found = Vec::new();
    let mut look = |what: &str, text: &str| {
        let needle = text.trim().to_lowercase();
        if needle.chars().count() >= 6 && haystack.contains(&needle) {
            let mut line = String::new();
            let _ = write!(line, "{what} {text:?}");
            found.push(line);
        }
    };
    for user in &dataset.users {
        look("user id", &user.id);
        look("email", &user.email);
        look("name", &user.name);
    }
    for transaction in &dataset.transactions {
        look("transaction", &transaction.description);
    }
    if haystack.contains("amountminor") {
        found.push("a transaction record (amountMinor)".into());
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_dataset_text_in_any_case_and_ignores_short_words() {
        let dataset = Dataset::demo();
        let clean = br#"HTTP 401
www-authenticate: Bearer error="invalid_token"
{"error":"invalid_token","error_description":"the token has expired"}"#;
        assert_eq!(leaks(clean, &dataset), Vec::<String>::new());
        let leaked = br#"{"transactions":[{"userId":"B1A7E8C2-1F2D-4E3A-9C4B-1A2B3C4D5E6F","amountMinor":5000,"description":"Coffee"}]}"#;
        let found = leaks(leaked, &dataset);
        assert!(found.iter().any(|f| f.starts_with("user id")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("amountMinor")), "{found:?}");
    }

    #[test]
    fn every_probe_is_a_denial() {
        let hosts = Attacked {
            user: "user",
            payment: "payment",
        };
        let probes = matrix(
            &hosts,
            "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f",
            "bob@example.com",
        );
        assert!(probes.len() >= 10);
        assert!(
            probes
                .iter()
                .all(|p| matches!(p.refusal.status(), 401 | 403))
        );
        assert!(probes.iter().any(|p| p.server == "user"));
        assert!(probes.iter().any(|p| p.server == "payment"));
    }
}
