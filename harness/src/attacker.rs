//! A simulated intruder: while the normal workload runs under faults, the
//! `attacker` host replays the denial matrix against the servers'
//! authenticated HTTP endpoints (the kit's real `http_router`, served on
//! simulated TCP with hyper), and keeps every byte it gets back. The leak
//! check then scans those bytes for any user id, email, name or transaction
//! of the dataset.
//!
//! The servers trust one simulated authorization server, whose key is the
//! test-only `servers/test-support/keys/issuer-es256.pem`. The attacker
//! holds what an attacker plausibly has: tokens minted for the *other*
//! server, for the wrong scope, for its own (non-existent) user, expired or
//! not yet valid ones, tokens signed with a key of its own, and the id of
//! the user it wants to read.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_server_kit::{Access, AuthSettings, Authenticator, HttpOptions, JwtSettings, ServerSpec};
use serde_json::json;

use crate::dataset::Dataset;

/// Every server's authenticated HTTP endpoint listens on this port.
pub(crate) const HTTP_PORT: u16 = 9080;
/// The simulation's epoch, in seconds since the Unix epoch (turmoil's clock
/// starts here).
pub(crate) const EPOCH_S: u64 = 1_700_000_000;
/// The simulated authorization server.
const ISSUER: &str = "https://auth.sim";
const ISSUER_KEY: &[u8] = include_bytes!("../../servers/test-support/keys/issuer-es256.pem");
const FORGER_KEY: &[u8] = include_bytes!("../../servers/test-support/keys/forger-es256.pem");
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
/// sessions (rmcp draws session ids from the OS, which a replay must not
/// see), and `Host` names of the simulated network. `no_auth` serves it open,
/// to prove the leak check catches what an open endpoint gives away.
fn http_options(spec: &ServerSpec, host: &str, no_auth: bool) -> HttpOptions {
    let access = if no_auth {
        Access::Open
    } else {
        let key = EncodingKey::from_ec_pem(ISSUER_KEY).expect("the test issuer's key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("a P-256 JWK");
        jwk.common.key_id = Some("sim".into());
        let auth = Authenticator::new(AuthSettings {
            resource: resource(host),
            protection: spec.protection,
            static_tokens: Vec::new(),
            jwt: Some(JwtSettings {
                keys: jsonwebtoken::jwk::JwkSet { keys: vec![jwk] },
                issuer: ISSUER.into(),
            }),
            token_requests_max: 64,
            clock: Arc::new(|| EPOCH_S + turmoil::sim_elapsed().unwrap_or_default().as_secs()),
        })
        .expect("valid simulated auth settings");
        Access::Protected(Arc::new(auth))
    };
    HttpOptions {
        allowed_hosts: vec![host.to_owned()],
        allowed_origins: Vec::new(),
        access,
        sessions: false,
    }
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

/// One request of the denial matrix, and the status it must get.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) name: &'static str,
    pub(crate) server: &'static str,
    authorization: Option<String>,
    content_type: &'static str,
    body: String,
    pub(crate) expect: u16,
}

/// The denial matrix, aimed at the user with id `victim` and email
/// `victim_email` (taken from the dataset: the attacker knows its target).
pub(crate) fn matrix(victim: &str, victim_email: &str) -> Vec<Probe> {
    let now = EPOCH_S;
    let sign = |pem: &[u8], claims: serde_json::Value| {
        let key = EncodingKey::from_ec_pem(pem).expect("a test key");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("sim".into());
        jsonwebtoken::encode(&header, &claims, &key).expect("signs")
    };
    let claims = |server: &str, scope: &str, sub: Option<&str>| {
        let mut claims = json!({
            "iss": ISSUER, "aud": resource(server), "scope": scope,
            // Valid for far longer than any simulation runs.
            "exp": now + 86_400, "nbf": now - 60,
        });
        if let Some(sub) = sub {
            claims["sub"] = json!(sub);
        }
        claims
    };
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let with = |mut c: serde_json::Value, field: &str, value: serde_json::Value| {
        c[field] = value;
        c
    };
    let lookup = call("getUserIdByEmail", json!({ "email": victim_email }));
    let list = call("getTransactionsUsingUserId", json!({ "userId": victim }));
    let all_scopes = "users:read transactions:read";
    // The attacker's own, valid token: bound to a user no dataset has.
    let own = sign(
        ISSUER_KEY,
        claims("payment", "transactions:read", Some(INTRUDER)),
    );
    vec![
        probe("no token", "payment", None, &list, 401),
        probe("no token", "user", None, &lookup, 401),
        probe(
            "malformed header",
            "payment",
            Some("Bearer".into()),
            &list,
            401,
        ),
        probe(
            "wrong scheme",
            "user",
            Some("Basic aW50cnVkZXI6cGFzc3dvcmQ=".into()),
            &lookup,
            401,
        ),
        probe(
            "forged signature",
            "payment",
            bearer(sign(
                FORGER_KEY,
                claims("payment", "transactions:read transactions:read:any", None),
            )),
            &list,
            401,
        ),
        probe(
            "expired",
            "payment",
            bearer(sign(
                ISSUER_KEY,
                with(
                    claims("payment", "transactions:read transactions:read:any", None),
                    "exp",
                    json!(now - 3_600),
                ),
            )),
            &list,
            401,
        ),
        probe(
            "not yet valid",
            "user",
            bearer(sign(
                ISSUER_KEY,
                with(
                    claims("user", "users:read", None),
                    "nbf",
                    json!(now + 86_400),
                ),
            )),
            &lookup,
            401,
        ),
        probe(
            "wrong issuer",
            "user",
            bearer(sign(
                ISSUER_KEY,
                with(
                    claims("user", "users:read", None),
                    "iss",
                    json!("https://evil.sim"),
                ),
            )),
            &lookup,
            401,
        ),
        probe(
            "user-server token replayed at the payment server",
            "payment",
            bearer(sign(ISSUER_KEY, claims("user", all_scopes, None))),
            &list,
            401,
        ),
        probe(
            "payment-server token replayed at the user server",
            "user",
            bearer(sign(ISSUER_KEY, claims("payment", all_scopes, None))),
            &lookup,
            401,
        ),
        probe(
            "missing scope",
            "payment",
            bearer(sign(ISSUER_KEY, claims("payment", "users:read", None))),
            &list,
            403,
        ),
        probe(
            "own token asking for another user's transactions",
            "payment",
            bearer(own.clone()),
            &list,
            403,
        ),
        Probe {
            // rmcp takes any case of the media type: so must the checks.
            content_type: "Application/JSON; charset=utf-8",
            ..probe(
                "the same in a mixed-case Content-Type",
                "payment",
                bearer(own),
                &list,
                403,
            )
        },
    ]
}

fn probe(
    name: &'static str,
    server: &'static str,
    authorization: Option<String>,
    body: &str,
    expect: u16,
) -> Probe {
    Probe {
        name,
        server,
        authorization,
        content_type: "application/json",
        body: body.to_owned(),
        expect,
    }
}

fn call(tool: &str, arguments: serde_json::Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
    .to_string()
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
            Ok(Ok((status, bytes))) => {
                log.answered += 1;
                log.received.extend_from_slice(&bytes);
                if status != probe.expect {
                    log.unexpected.push(format!(
                        "{} at {}: {status}, expected {}",
                        probe.name, probe.server, probe.expect
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

/// Sends one probe on a fresh connection; returns the status and every
/// byte of the response (status line, headers and body).
async fn send(probe: &Probe) -> Result<(u16, Vec<u8>), String> {
    let stream = turmoil::net::TcpStream::connect((probe.server, HTTP_PORT))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let mut request = hyper::Request::post(resource(probe.server))
        .header("host", probe.server)
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
    Ok((status, bytes))
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
        let probes = matrix("b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f", "bob@example.com");
        assert!(probes.len() >= 10);
        assert!(probes.iter().all(|p| p.expect == 401 || p.expect == 403));
        assert!(probes.iter().any(|p| p.server == "user"));
        assert!(probes.iter().any(|p| p.server == "payment"));
    }
}
