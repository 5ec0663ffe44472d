//! Property: generated hostile traffic on a live session. Every line gets
//! exactly the JSON-RPC 2.0 answer the spec requires (code and id), or
//! silence where the spec says a notification gets none; the session keeps
//! serving (a ping after every line still gets its pong, and nothing extra
//! was written); requests that reuse an id, in flight or after it was
//! answered, each get a well-formed answer; and a second session
//! interleaved with it is never
//! disturbed. Over the kit's real line framing, on real TCP and on the
//! in-memory pipes stdio's framing runs on.
//!
//! Cases: `PROPTEST_CASES` if set, else 256 sequences of up to 12 lines
//! (1,000 run in about 3 s).

use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::{Value, json};

use crate::support::*;

/// What a line must get back.
#[derive(Debug, Clone)]
enum Expect {
    /// A JSON-RPC error with this code and id.
    Error(i64, Value),
    /// Nothing: a notification, or a blank line.
    Silence,
    /// The ping's own pong: the line was a valid (if odd) request.
    Pong,
    /// For requests that reuse an id, in flight or already answered: at
    /// least one and at most `most` answers with this id, each a result or
    /// an error, whichever the server chose, but a well-formed JSON-RPC
    /// response either way. (rmcp answers two requests in flight with one
    /// id once: the first answer retires the id, and the second request's
    /// answer is dropped. The client broke the rule that ids are unique,
    /// so one answer is acceptable; a malformed one or a stuck session is
    /// not.)
    Answers { id: Value, most: usize },
}

#[derive(Debug, Clone)]
struct Hostile {
    line: Vec<u8>,
    expect: Expect,
}

fn hostile(line: impl Into<Vec<u8>>, expect: Expect) -> Hostile {
    Hostile {
        line: line.into(),
        expect,
    }
}

/// A scalar id a server must echo: an integer or a string.
fn scalar_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..1_000_000).prop_map(Value::from),
        "[a-z0-9-]{1,12}".prop_map(Value::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    // Any characters but the newline that ends a frame.
    proptest::collection::vec(
        any::<char>().prop_filter("no newline", |c| *c != '\n'),
        1..60,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn line() -> impl Strategy<Value = Hostile> {
    let null = || Value::Null;
    prop_oneof![
        // Bad JSON: parse error, id null.
        text()
            .prop_filter("not JSON", |t| serde_json::from_str::<Value>(t).is_err()
                && !t.trim().is_empty()
                && t.trim_start_matches('\u{feff}').trim()
                    == t.trim_start_matches('\u{feff}').trim())
            .prop_map(move |t| hostile(t, Expect::Error(-32700, null()))),
        // A valid request cut short.
        (scalar_id(), 1usize..40).prop_map(move |(id, cut)| {
            let full = ping_with(id).to_string();
            let cut = cut.min(full.len() - 1);
            hostile(&full.as_bytes()[..cut], Expect::Error(-32700, null()))
        }),
        // JSON that is not a request object: invalid request, id null.
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            "\"[a-z]{0,10}\"".prop_map(|s| s),
            Just("true".to_owned()),
            Just("[]".to_owned()),
            scalar_id().prop_map(|id| format!("[{}]", ping_with(id))),
        ]
        .prop_map(move |t| hostile(t, Expect::Error(-32600, null()))),
        // A wrong or missing "jsonrpc": invalid request, with the id.
        (
            scalar_id(),
            prop_oneof![
                Just(Some(json!("1.0"))),
                Just(Some(json!("2"))),
                Just(Some(json!(2))),
                Just(Some(json!(2.0))),
                Just(Some(Value::Null)),
                Just(None),
            ]
        )
            .prop_map(|(id, version)| {
                let mut message = ping_with(id.clone());
                match version {
                    Some(v) => message["jsonrpc"] = v,
                    None => {
                        message.as_object_mut().unwrap().remove("jsonrpc");
                    }
                }
                hostile(message.to_string(), Expect::Error(-32600, id))
            }),
        // A null or non-scalar id: invalid request, id null.
        prop_oneof![
            Just(Value::Null),
            Just(json!({"x": 1})),
            Just(json!([1, 2])),
            Just(json!({})),
        ]
        .prop_map(move |id| {
            let mut message = ping(0);
            message["id"] = id;
            hostile(message.to_string(), Expect::Error(-32600, null()))
        }),
        // An unknown method: method not found, with the id.
        (scalar_id(), "[a-z]{1,8}/[a-z]{1,8}").prop_map(|(id, method)| {
            let message = json!({"jsonrpc": "2.0", "id": id, "method": format!("zz{method}")});
            hostile(message.to_string(), Expect::Error(-32601, id))
        }),
        // Parameters of the wrong type: invalid params, with the id.
        (
            scalar_id(),
            prop_oneof![
                Just(json!(5)),
                Just(json!("x")),
                Just(json!([1, 2])),
                Just(json!(true))
            ]
        )
            .prop_map(|(id, params)| {
                let message =
                    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
                hostile(message.to_string(), Expect::Error(-32602, id))
            }),
        // A notification's method with an id is a request for a method
        // that does not exist.
        (
            scalar_id(),
            prop_oneof![
                Just("notifications/initialized"),
                Just("notifications/cancelled")
            ]
        )
            .prop_map(|(id, method)| {
                let message = json!({"jsonrpc": "2.0", "id": id, "method": method});
                hostile(message.to_string(), Expect::Error(-32601, id))
            }),
        // Notifications, valid or not, get no answer.
        "[a-z]{1,12}".prop_map(|m| hostile(
            json!({"jsonrpc": "2.0", "method": format!("notifications/{m}")}).to_string(),
            Expect::Silence
        )),
        Just(hostile(
            r#"{"jsonrpc":"1.0","method":"notifications/x"}"#,
            Expect::Silence
        )),
        Just(hostile(r#"{"jsonrpc":"2.0","method":7}"#, Expect::Silence)),
        " {0,8}".prop_map(|s| hostile(s, Expect::Silence)),
        // Huge numbers and strings, deep nesting, inside a ping's _meta,
        // under the cap: still a ping.
        (
            scalar_id(),
            prop_oneof![
                Just(json!(1e308)),
                Just(json!(u64::MAX)),
                Just(json!(i64::MIN)),
                "[a-zA-Z0-9 ]{100,600}".prop_map(Value::from),
                (1usize..40).prop_map(nested),
            ]
        )
            .prop_map(|(id, value)| {
                let mut message = ping_with(id);
                message["params"] = json!({"_meta": {"x": value}});
                hostile(message.to_string(), Expect::Pong)
            }),
        // Duplicate ids in flight: two requests with one id in one write,
        // before the first is answered.
        (
            scalar_id(),
            proptest::sample::select(vec!["ping", "tools/list"]),
            proptest::sample::select(vec!["ping", "tools/list"]),
        )
            .prop_map(|(id, first, second)| {
                let request = |method: &str| json!({"jsonrpc": "2.0", "id": id, "method": method});
                hostile(
                    format!("{}\n{}", request(first), request(second)),
                    Expect::Answers { id, most: 2 },
                )
            }),
        // Duplicate ids in sequence: the id of the handshake (0) or of a
        // ping this session already had answered (`check`'s own, from
        // 1,000,000 up), used again.
        prop_oneof![Just(0i64), 1_000_000i64..1_000_004].prop_map(|id| hostile(
            ping_with(json!(id)).to_string(),
            Expect::Answers {
                id: json!(id),
                most: 1
            }
        )),
        // Oversized lines, up to 20 times the cap: refused whole, id null.
        (1usize..20 * SMALL_CAP).prop_map(move |extra| {
            let mut message = ping(0);
            message["params"] = json!({"_meta": {"pad": "x".repeat(SMALL_CAP + extra)}});
            hostile(message.to_string(), Expect::Error(-32600, null()))
        }),
    ]
}

/// A well-formed request of a method a client may send, other than ping
/// and initialize, with a scalar id.
fn early_request() -> impl Strategy<Value = (Value, Value)> {
    (
        scalar_id(),
        prop_oneof![
            Just("tools/list"),
            Just("tools/call"),
            Just("resources/list"),
            Just("prompts/list"),
            Just("logging/setLevel"),
        ],
    )
        .prop_map(|(id, method)| {
            let params = match method {
                "tools/call" => json!({"name": "anything", "arguments": {}}),
                "logging/setLevel" => json!({"level": "info"}),
                _ => json!({}),
            };
            let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            (message, id)
        })
}

fn ping_with(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(0), |inner, _| json!([inner]))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Over real TCP, with a second TCP session as the bystander.
async fn check_tcp(lines: Vec<Hostile>) -> Result<(), TestCaseError> {
    let server = TcpServer::start(small_limits()).await;
    let wire = Wire::tcp(server.addr).await;
    let bystander = Wire::tcp(server.addr).await;
    check(lines, wire, bystander).await?;
    server.stop().await;
    Ok(())
}

/// Over in-memory pipes through `serve_connection`, exactly the framing
/// stdio uses, with a second such session as the bystander.
async fn check_stdio_framing(lines: Vec<Hostile>) -> Result<(), TestCaseError> {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let session = || {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(server);
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ =
                mcp_server_kit::serve_connection(Bare, read, write, &small_limits(), token).await;
        });
        let (read, write) = tokio::io::split(client);
        Wire::new(read, write)
    };
    let (wire, bystander) = (session(), session());
    let result = check(lines, wire, bystander).await;
    shutdown.cancel();
    result
}

async fn check(
    lines: Vec<Hostile>,
    mut wire: Wire,
    mut bystander: Wire,
) -> Result<(), TestCaseError> {
    wire.initialize().await;
    bystander.initialize().await;
    for (n, hostile) in lines.iter().enumerate() {
        let shown =
            String::from_utf8_lossy(&hostile.line[..hostile.line.len().min(120)]).into_owned();
        let mut bytes = hostile.line.clone();
        bytes.push(b'\n');
        wire.send_raw(&bytes).await;
        match &hostile.expect {
            Expect::Error(code, id) => {
                let reply = wire.recv().await;
                prop_assert_eq!(&reply["jsonrpc"], "2.0", "{} -> {}", shown, reply);
                prop_assert_eq!(&reply["error"]["code"], code, "{} -> {}", shown, reply);
                prop_assert!(
                    reply["error"]["message"].is_string(),
                    "{} -> {}",
                    shown,
                    reply
                );
                prop_assert_eq!(
                    reply.get("id").unwrap_or(&Value::Null),
                    id,
                    "{} -> {}",
                    shown,
                    reply
                );
                prop_assert!(reply.get("result").is_none(), "{} -> {}", shown, reply);
            }
            Expect::Pong => {
                let reply = wire.recv().await;
                prop_assert_eq!(&reply["result"], &json!({}), "{} -> {}", shown, reply);
            }
            Expect::Answers { id, .. } => {
                let reply = wire.recv().await;
                answers(&reply, id, &shown)?;
            }
            Expect::Silence => {}
        }
        // The session still serves, and nothing extra was written (but for
        // further answers to a reused id, up to their limit).
        let marker = json!(1_000_000 + n as i64);
        wire.send(&ping_with(marker.clone())).await;
        let mut pong = wire.recv().await;
        if let Expect::Answers { id, most } = &hostile.expect {
            for _ in 1..*most {
                if pong["id"] == marker {
                    break;
                }
                answers(&pong, id, &shown)?;
                pong = wire.recv().await;
            }
        }
        prop_assert_eq!(
            &pong["id"],
            &json!(1_000_000 + n as i64),
            "after {}: {}",
            shown,
            pong
        );
        prop_assert_eq!(&pong["result"], &json!({}), "after {}: {}", shown, pong);
        // And the other session never notices.
        let theirs = bystander.ask(ping(n as i64)).await;
        prop_assert_eq!(
            &theirs["result"],
            &json!({}),
            "bystander after {}: {}",
            shown,
            theirs
        );
    }
    Ok(())
}

/// `reply` is a well-formed JSON-RPC answer to the request with `id`: a
/// result object or an error with a code and a message, never both.
fn answers(reply: &Value, id: &Value, shown: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&reply["id"], id, "{} -> {}", shown, reply);
    match (reply.get("result"), reply.get("error")) {
        (Some(result), None) => prop_assert!(result.is_object(), "{} -> {}", shown, reply),
        (None, Some(error)) => prop_assert!(
            error["code"].is_i64() && error["message"].is_string(),
            "{} -> {}",
            shown,
            reply
        ),
        _ => prop_assert!(
            false,
            "{} -> neither a result nor an error: {}",
            shown,
            reply
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hostile_lines_get_their_json_rpc_answer_and_no_session_is_harmed(
        lines in proptest::collection::vec(line(), 1..12)
    ) {
                block_on(check_tcp(lines))?;
    }

    /// Before `initialize`, a request other than ping is refused with
    /// invalid params (it would need the stateless `_meta`), ping is
    /// answered, and the handshake still works afterwards.
    #[test]
    fn requests_before_initialize_are_refused_and_the_handshake_still_works(
        early in proptest::collection::vec(early_request(), 1..8)
    ) {
                block_on(async {
            let server = TcpServer::start(small_limits()).await;
            let mut wire = Wire::tcp(server.addr).await;
            for (n, (message, id)) in early.into_iter().enumerate() {
                let reply = wire.ask(message.clone()).await;
                prop_assert_eq!(&reply["error"]["code"], -32602, "{} -> {}", message, reply);
                prop_assert_eq!(&reply["id"], &id, "{} -> {}", message, reply);
                let pong = wire.ask(ping(1_000 + n as i64)).await;
                prop_assert_eq!(&pong["result"], &json!({}), "{}", pong);
            }
            wire.initialize().await;
            let pong = wire.ask(ping(1)).await;
            prop_assert_eq!(&pong["result"], &json!({}), "{}", pong);
            server.stop().await;
            Ok(())
        })?;
    }

    #[test]
    fn hostile_lines_over_the_stdio_framing_get_the_same_answers(
        lines in proptest::collection::vec(line(), 1..12)
    ) {
                block_on(check_stdio_framing(lines))?;
    }
}
