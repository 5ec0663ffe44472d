//! Property: generated bad HTTP requests to the streamable HTTP endpoint,
//! each wrong in one way, get the status the transport spec and JSON-RPC
//! call for, never a 5xx; a body that is not a usable message gets its
//! JSON-RPC error too; and a valid client is served afterwards.

use std::net::SocketAddr;

use mcp_server_kit::HttpOptions;
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::*;

/// One request, wrong in at most one way, and what it must get.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// The JSON-RPC error code the body must carry, if any.
    code: Option<i64>,
}

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post(body: Vec<u8>, status: u16, code: Option<i64>) -> Case {
    Case {
        method: "POST",
        headers: vec![(ACCEPT.0, ACCEPT.1.into()), (JSON.0, JSON.1.into())],
        body,
        status,
        code,
    }
}

fn case() -> impl Strategy<Value = Case> {
    let text = proptest::collection::vec(any::<char>(), 1..80)
        .prop_map(|c| c.into_iter().collect::<String>())
        .prop_filter("not JSON", |t| {
            // A body that is only a byte-order mark is blank to the kit (it
            // drops a leading BOM) and gets its plain 400, not -32700.
            serde_json::from_str::<Value>(t).is_err()
                && !t.trim_start_matches('\u{feff}').trim().is_empty()
        });
    prop_oneof![
        // Not JSON: 400 and -32700.
        text.prop_map(|t| post(t.into_bytes(), 400, Some(-32700))),
        // JSON but not a message object: 400 and -32600.
        prop_oneof![
            Just(json!([1, 2])),
            Just(json!(42)),
            Just(json!("x")),
            Just(json!([initialize()]))
        ]
        .prop_map(|v| post(v.to_string().into_bytes(), 400, Some(-32600))),
        // A known method with parameters of the wrong type: 400 and -32602.
        prop_oneof![Just(json!(5)), Just(json!("x")), Just(json!([1]))].prop_map(|params| {
            let mut message = initialize();
            message["params"] = params;
            post(message.to_string().into_bytes(), 400, Some(-32602))
        }),
        // A wrong or missing Content-Type: 415.
        prop_oneof![
            Just(Some("text/plain")),
            Just(Some("application/xml")),
            Just(None)
        ]
        .prop_map(|ct| {
            let mut case = post(initialize().to_string().into_bytes(), 415, None);
            case.headers.retain(|(name, _)| *name != "Content-Type");
            if let Some(ct) = ct {
                case.headers.push(("Content-Type", ct.into()));
            }
            case
        }),
        // An Accept without both JSON and SSE: 406.
        prop_oneof![
            Just(Some("application/json")),
            Just(Some("text/event-stream")),
            Just(Some("text/html")),
            Just(None)
        ]
        .prop_map(|accept| {
            let mut case = post(initialize().to_string().into_bytes(), 406, None);
            case.headers.retain(|(name, _)| *name != "Accept");
            if let Some(accept) = accept {
                case.headers.push(("Accept", accept.into()));
            }
            case
        }),
        // A foreign Host or Origin: 403 (DNS-rebinding protection).
        "[a-z]{1,10}\\.(example|com|net)".prop_map(|host| {
            let mut case = post(initialize().to_string().into_bytes(), 403, None);
            case.headers.push(("Host", host));
            case
        }),
        "[a-z]{1,10}\\.(example|com|net)".prop_map(|host| {
            let mut case = post(initialize().to_string().into_bytes(), 403, None);
            case.headers.push(("Origin", format!("https://{host}")));
            case
        }),
        // An unknown session: 404. No session on a non-initialize request: 400.
        "[a-zA-Z0-9-]{1,40}".prop_map(|session| {
            let mut case = post(tools_list().to_string().into_bytes(), 404, None);
            case.headers.push(("Mcp-Session-Id", session));
            case
        }),
        Just(post(tools_list().to_string().into_bytes(), 400, None)),
        // Methods the endpoint does not serve: 405.
        prop_oneof![Just("PUT"), Just("PATCH")].prop_map(|method| Case {
            method,
            ..post(initialize().to_string().into_bytes(), 405, None)
        }),
        // A body over the cap: 413.
        (1usize..8 * SMALL_CAP).prop_map(|extra| {
            let mut message = initialize();
            message["params"]["clientInfo"]["name"] = json!("x".repeat(SMALL_CAP + extra));
            post(message.to_string().into_bytes(), 413, None)
        }),
        // And a valid initialize: 200.
        Just(post(initialize().to_string().into_bytes(), 200, None)),
    ]
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "kit-http-property", "version": "0"},
        },
    })
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

/// Sends one raw HTTP/1.1 request on a fresh connection; returns the
/// status and the body.
async fn send(addr: SocketAddr, case: &Case) -> (u16, String) {
    let mut stream = within("connect", TcpStream::connect(addr))
        .await
        .expect("connects");
    let mut head = format!("{} /mcp HTTP/1.1\r\n", case.method);
    if !case.headers.iter().any(|(name, _)| *name == "Host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in &case.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        case.body.len()
    ));
    within("write", stream.write_all(head.as_bytes()))
        .await
        .expect("write head");
    // The server may answer and close before reading a refused body.
    let _ = within("write", stream.write_all(&case.body)).await;
    let mut response = Vec::new();
    let _ = within("read", stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn check(cases: Vec<Case>) -> Result<(), TestCaseError> {
    let (addr, shutdown) = start_http(HttpOptions::unauthenticated()).await;
    for case in &cases {
        let (status, body) = send(addr, case).await;
        let shown = format!(
            "{} {:?} {}",
            case.method,
            case.headers,
            String::from_utf8_lossy(&case.body[..case.body.len().min(100)])
        );
        prop_assert!(status < 500, "{} -> {} {}", shown, status, body);
        prop_assert_eq!(status, case.status, "{} -> {}", shown, body);
        if let Some(code) = case.code {
            let reply: Value = serde_json::from_str(body.trim())
                .map_err(|e| TestCaseError::fail(format!("{shown} -> not JSON ({e}): {body}")))?;
            prop_assert_eq!(&reply["jsonrpc"], "2.0", "{} -> {}", shown, body);
            prop_assert_eq!(&reply["error"]["code"], code, "{} -> {}", shown, body);
        }
    }
    // Whatever came before, a valid client is still served.
    let (status, body) = send(
        addr,
        &post(initialize().to_string().into_bytes(), 200, None),
    )
    .await;
    prop_assert_eq!(status, 200, "{}", body);
    shutdown.cancel();
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn bad_http_requests_get_the_status_the_spec_asks_for_and_never_a_5xx(
        cases in proptest::collection::vec(case(), 1..10)
    ) {
                block_on(check(cases))?;
    }
}
