//! Access control over real HTTP: the denial matrix against both servers
//! with real JWTs, what the orchestrator does with refusals, and that no
//! token ever reaches a log, an error or a trace.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_server_kit::{AuthSettings, JwtSettings, Secret};
use orchestrator::{
    AskError, CallError, ConnectError, Connector, Credential, HttpRefusal, Orchestrator, Policy,
    PolicySettings, Token, TransportConfig,
};
use reference_servers::{Access, Data, Role, Transport};
use serde_json::json;
use test_support::{MATRIX, Server, Victim, World};

const ISSUER: &str = "https://auth.example.test";
const BOB: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";
const ALICE: &str = "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d";
const NOW: u64 = 1_900_000_000;

const ES256: &[u8] = include_bytes!("../../../../servers/test-support/keys/issuer-es256.pem");
const RS256: &[u8] = include_bytes!("../../../../servers/test-support/keys/issuer-rs256.pem");

/// Everything a case's body must never contain: the demo's users and
/// transactions.
const DATA: &[&str] = &[
    BOB,
    ALICE,
    "c3d4e5f6-7a8b-9c0d-1e2f-3a4b5c6d7e8f",
    "bob@example.com",
    "alice@example.com",
    "Groceries",
    "Coffee",
    "Concert Tickets",
    "Online Course",
    "amountMinor",
];

fn sign(pem: &[u8], alg: Algorithm, kid: &str, claims: serde_json::Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        _ => EncodingKey::from_ec_pem(pem),
    }
    .expect("a test key");
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &key).expect("signs")
}

fn jwks() -> jsonwebtoken::jwk::JwkSet {
    let jwk = |pem, alg, kid: &str| {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            _ => EncodingKey::from_ec_pem(pem),
        }
        .unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk
    };
    jsonwebtoken::jwk::JwkSet {
        keys: vec![
            jwk(ES256, Algorithm::ES256, "es"),
            jwk(RS256, Algorithm::RS256, "rs"),
        ],
    }
}

/// Both servers on loopback HTTP, accepting the test issuer's JWTs and one
/// static token each. They stop when this is dropped.
struct Servers {
    user: SocketAddr,
    payment: SocketAddr,
    /// The user server's static token; the payment server's is `payment_static`.
    static_token: String,
    payment_static: String,
    _running: reference_servers::Servers,
}

async fn servers(token_requests_max: usize) -> Servers {
    let static_token = "static-token-of-the-user-server-0123456789".to_owned();
    let payment_static = "static-token-of-the-payment-server-012345".to_owned();
    let tokens = (static_token.clone(), payment_static.clone());
    let access = Access::Settings(Arc::new(move |role, resource| {
        let own = match role {
            Role::User => &tokens.0,
            Role::Payment => &tokens.1,
        };
        AuthSettings {
            resource,
            protection: role.spec().protection,
            static_tokens: vec![Secret::new(own.clone())],
            jwt: Some(JwtSettings {
                keys: jwks(),
                issuer: ISSUER.into(),
            }),
            token_requests_max,
            clock: Arc::new(|| NOW),
        }
    }));
    let running = reference_servers::Servers::start(&Transport::Http(access), &Data::demo())
        .await
        .unwrap();
    Servers {
        user: running.addr(Role::User).unwrap(),
        payment: running.addr(Role::Payment).unwrap(),
        static_token,
        payment_static,
        _running: running,
    }
}

fn resource(addr: SocketAddr) -> String {
    format!("http://{addr}/mcp")
}

/// Claims of a token the issuer would mint for `audience`.
fn claims(audience: &str, scope: &str, sub: Option<&str>) -> serde_json::Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": audience, "scope": scope,
        "exp": NOW + 600, "nbf": NOW - 60, "iat": NOW - 60,
    });
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    claims
}

fn es(claims: serde_json::Value) -> String {
    sign(ES256, Algorithm::ES256, "es", claims)
}

fn call_body(tool: &str, arguments: serde_json::Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
    .to_string()
}

/// POSTs `body` to `addr`'s `/mcp` with `authorization`, if any. Returns the
/// status, the `WWW-Authenticate` value and the body.
async fn post(
    addr: SocketAddr,
    authorization: Option<&str>,
    body: String,
) -> (u16, String, String) {
    post_as(addr, authorization, "application/json", body).await
}

/// [`post`] with this `Content-Type`.
async fn post_as(
    addr: SocketAddr,
    authorization: Option<&str>,
    content_type: &str,
    body: String,
) -> (u16, String, String) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(resource(addr))
        .header("content-type", content_type)
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_denial_matrix_gets_its_status_and_never_any_data() {
    let s = servers(64).await;
    let users = resource(s.user);
    let payments = resource(s.payment);
    let lookup = call_body("getUserIdByEmail", json!({"email": "bob@example.com"}));
    let user_token = es(claims(&users, "users:read", None));
    let bob_token = es(claims(&payments, "transactions:read", Some(BOB)));
    // The one denial matrix (the harness's intruder sends it too), here
    // with every key and static token it can use: bob's own token is the
    // attacker's, alice the victim.
    let world = World {
        issuer: ISSUER,
        rogue_issuer: "https://evil.example.test",
        kid_es256: "es",
        kid_rs256: Some("rs"),
        now: NOW,
        lifetime_s: 600,
        user_resource: users.clone(),
        payment_resource: payments.clone(),
        own_user: BOB,
        static_tokens: Some((s.static_token.as_str(), s.payment_static.as_str())),
    };
    let victim = Victim {
        id: ALICE,
        email: "alice@example.com",
    };
    for case in &MATRIX {
        assert!(world.applies(case), "{}", case.name);
        let addr = match case.server {
            Server::User => s.user,
            Server::Payment => s.payment,
        };
        let authorization = world.authorization(case);
        let (got, got_challenge, got_body) = post_as(
            addr,
            authorization.as_deref(),
            case.content_type,
            case.body(&victim),
        )
        .await;
        let name = case.name;
        assert_eq!(got, case.refusal.status(), "{name}: {got_body}");
        assert!(
            case.refusal.challenged_by(&got_challenge),
            "{name}: {got_challenge}"
        );
        for datum in DATA {
            assert!(
                !got_body.contains(datum),
                "{name}: the body leaks {datum}: {got_body}"
            );
        }
    }

    // A session belongs to the token that opened it: its id is worth
    // nothing with another valid token.
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    let opened = reqwest::Client::new()
        .post(&users)
        .header("authorization", format!("Bearer {user_token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status().as_u16(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let in_session = |token: String| {
        let session = session.clone();
        let users = users.clone();
        async move {
            reqwest::Client::new()
                .post(&users)
                .header("authorization", format!("Bearer {token}"))
                .header("mcp-session-id", session)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        in_session(s.static_token.clone()).await,
        404,
        "another token"
    );
    assert_eq!(
        in_session(user_token.clone()).await,
        202,
        "the token that opened it"
    );

    // DNS-rebinding protection stays on behind authentication: a valid
    // token with a foreign Host is still refused.
    let rebound = reqwest::Client::new()
        .post(&users)
        .header("host", "evil.example.test")
        .header("authorization", format!("Bearer {user_token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(lookup.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    let body = rebound.text().await.unwrap();
    assert!(!body.contains(BOB), "{body}");

    // The metadata every challenge points to, open to all.
    let metadata: serde_json::Value = reqwest::get(format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        s.payment
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["resource"], json!(payments));
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(
        metadata["scopes_supported"],
        json!(["transactions:read", "transactions:read:any"])
    );

    // The allowed cases get data, through the real client.
    let ask = |user: Credential, payment: Credential| {
        let orchestrator = orchestrator_for(&s, Some(user), Some(payment));
        async move { ask_seed(&orchestrator).await }
    };
    let token = |t: &str| Credential::Value(Token::new(t));
    let (answer, _) = ask(token(&user_token), token(&bob_token)).await;
    assert!(
        answer
            .expect("bob's own transactions")
            .render()
            .contains("Coffee"),
        "a user-bound token reads its own user's transactions"
    );
    let (answer, _) = ask(token(&s.static_token), token(&s.payment_static)).await;
    assert!(answer.is_ok(), "a static token grants everything");
    let alice_token = es(claims(&payments, "transactions:read", Some(ALICE)));
    let (answer, trace) = ask(token(&user_token), token(&alice_token)).await;
    match answer {
        Err(AskError::Call {
            step: 2,
            source:
                CallError::Denied {
                    source: ConnectError::Denied { refusal, .. },
                },
            ..
        }) => assert_eq!(
            refusal,
            HttpRefusal::Forbidden {
                scope: Some("transactions:read:any".into())
            }
        ),
        other => panic!("alice's token reads bob's transactions: {other:?}"),
    }
    assert_eq!(trace[1].attempts, 1, "a refusal is never retried");
}

/// Asks the seed question; returns the answer and the steps' trace.
async fn ask_seed(
    orchestrator: &Orchestrator,
) -> (
    Result<orchestrator::Answer, AskError>,
    Vec<orchestrator::StepTrace>,
) {
    let mut trace = Vec::new();
    let result = orchestrator.ask(super::SEED_QUESTION, &mut trace).await;
    (result, trace)
}

fn orchestrator_for(
    s: &Servers,
    user: Option<Credential>,
    payment: Option<Credential>,
) -> Orchestrator {
    let connector = |addr, credential| -> Arc<dyn Connector> {
        TransportConfig::Http {
            url: resource(addr),
            credential,
            revision: orchestrator::HttpRevision::default(),
        }
        .connector()
    };
    Orchestrator::new(
        vec![
            ("user".into(), connector(s.user, user)),
            ("payment".into(), connector(s.payment, payment)),
        ],
        super::policy(2_000, 5_000),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_question_with_the_server_and_reason_named() {
    let s = servers(64).await;
    let payments = resource(s.payment);
    let orchestrator = orchestrator_for(
        &s,
        // A payment-server token replayed at the user server.
        Some(Credential::Value(Token::new(es(claims(
            &payments,
            "users:read",
            None,
        ))))),
        Some(Credential::Env(
            "ORCHESTRATOR_TEST_NO_SUCH_TOKEN_VARIABLE".into(),
        )),
    );
    let error = orchestrator
        .ask(super::SEED_QUESTION, &mut Vec::new())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(!error.is_transient(), "{text}");
    assert!(
        text.contains(&format!(
            "user: http://{}/mcp: access denied (HTTP 401): the token was issued for another resource",
            s.user
        )),
        "{text}"
    );
    assert!(
        text.contains("payment: ")
            && text.contains(
                "environment variable ORCHESTRATOR_TEST_NO_SUCH_TOKEN_VARIABLE is not set"
            ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_token_gets_429_and_the_orchestrator_waits_as_retry_after_says() {
    let s = servers(1).await;
    // Pin the static token's only slot: headers of a POST whose body never
    // comes (the server holds the slot while it waits for the body).
    let mut pin = tokio::net::TcpStream::connect(s.user).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: 100\r\n\r\n",
        s.static_token
    );
    tokio::io::AsyncWriteExt::write_all(&mut pin, head.as_bytes())
        .await
        .unwrap();
    let mut tries = 0;
    let (status, _, _) = loop {
        tries += 1;
        assert!(tries < 10_000, "the pinned slot never produced a 429");
        let answer = post(
            s.user,
            Some(&format!("Bearer {}", s.static_token)),
            call_body("getUserIdByEmail", json!({"email": "bob@example.com"})),
        )
        .await;
        // The pin may not have reached the server yet.
        if answer.0 == 429 {
            break answer;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(status, 429);

    let credential = || Some(Credential::Value(Token::new(s.static_token.clone())));
    let policy = Policy::new(PolicySettings {
        attempts_max: 2,
        ..super::settings(2_000, 5_000)
    })
    .unwrap();
    let user = TransportConfig::Http {
        url: resource(s.user),
        credential: credential(),
        revision: orchestrator::HttpRevision::default(),
    };
    let orchestrator = Orchestrator::new(vec![("user".into(), user.connector())], policy, 1);
    let started = std::time::Instant::now();
    let (_, down) = orchestrator.catalog().await;
    let waited = started.elapsed();
    match &down[..] {
        [
            (
                _,
                CallError::RateLimited {
                    attempts: 2,
                    refusal,
                },
            ),
        ] => assert_eq!(
            *refusal,
            HttpRefusal::RateLimited {
                retry_after: Some(Duration::from_secs(1))
            }
        ),
        other => panic!("expected two rate-limited attempts, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_secs(1),
        "the retry came after Retry-After (1 s), not {waited:?}"
    );
    drop(pin);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_reach_logs_errors_or_traces() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = servers(64).await;
    let users = resource(s.user);
    let payments = resource(s.payment);
    let good_user = es(claims(&users, "users:read", None));
    let good_payment = es(claims(
        &payments,
        "transactions:read transactions:read:any",
        None,
    ));
    let replayed = es(claims(&users, "transactions:read", None));
    let mut seen = Vec::new();
    for (user, payment) in [
        (good_user.clone(), good_payment.clone()),
        (good_user.clone(), replayed.clone()),
        (
            "wrong-static-token-0123456789abcdef".to_owned(),
            good_payment.clone(),
        ),
    ] {
        let orchestrator = orchestrator_for(
            &s,
            Some(Credential::Value(Token::new(user))),
            Some(Credential::Value(Token::new(payment))),
        );
        let (result, trace) = ask_seed(&orchestrator).await;
        seen.push(format!("{result:?}"));
        if let Err(error) = &result {
            seen.push(error.to_string());
        }
        seen.push(format!("{trace:?}"));
        seen.push(serde_json::to_string(&trace).unwrap());
        seen.push(format!("{orchestrator:?}"));
        orchestrator.shutdown().await;
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 1000,
        "the capture saw the run: {} bytes",
        logs.len()
    );
    let everything = format!("{logs}\n{}", seen.join("\n"));
    let wrong = "wrong-static-token-0123456789abcdef".to_owned();
    for secret in [
        &good_user,
        &good_payment,
        &replayed,
        &s.static_token,
        &s.payment_static,
        &wrong,
    ] {
        // The signature part of a JWT is what makes it a credential.
        let tail = secret.rsplit('.').next().unwrap();
        assert!(!everything.contains(tail), "a token leaked");
    }
    assert!(
        seen.iter()
            .any(|s| s.contains("issued for another resource"))
    );
}
