//! Property: generated hostile traffic on a live session. Every line gets
//! exactly the JSON-RPC 2.0 answer the spec requires (code and id), or
//! silence where the spec says a notification gets none; the session keeps
//! serving (a ping after every line still gets its pong, and nothing extra
//! was written); requests that reuse an id, in flight or after it was
//! answered, each get a well-formed answer; and a second session
//! interleaved with it is never disturbed. Over the kit's real line
//! framing, on real TCP and on the in-memory pipes stdio's framing runs on.
//!
//! The lines, and what each must get, are the probe's
//! ([`mcp_probe::hostile`]): the generator `harness probe` sends to any
//! server, here with the kit's cap and two requests in one write.
//!
//! Cases: `PROPTEST_CASES` if set, else 256 sequences of up to 12 lines
//! (1,000 run in 2 to 3 s over TCP in a debug build).

use mcp_probe::{
    CONTROL_ID_BASE,
    hostile::{self, Expect, Hostile, Lines, REUSABLE_CONTROL_IDS},
};
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::{Value, json};

use crate::support::*;

/// Every kind of hostile line the probe's generator makes.
fn line() -> BoxedStrategy<Hostile> {
    hostile::line(Lines {
        frame_cap: Some(SMALL_CAP),
        two_in_one_write: true,
    })
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
    spend_reusable_ids(&mut wire).await;
    for (n, hostile) in lines.iter().enumerate() {
        let shown: String = hostile.line.chars().take(120).collect();
        wire.send_raw(format!("{}\n", hostile.line).as_bytes())
            .await;
        answered(&mut wire, &hostile.expect, &shown).await?;
        still_serving(&mut wire, &hostile.expect, control_id(n), &shown).await?;
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

/// Has the control ids a generated line may reuse answered, as a probe's
/// session does, so that a line reusing one reuses an answered id.
async fn spend_reusable_ids(wire: &mut Wire) {
    for offset in 1..=REUSABLE_CONTROL_IDS {
        let id = json!(CONTROL_ID_BASE + offset);
        assert_pong(&wire.ask(hostile::ping_with(id)).await);
    }
}

/// The id of the control ping after the `n`th line: above those the
/// generator may reuse.
fn control_id(n: usize) -> Value {
    json!(CONTROL_ID_BASE + REUSABLE_CONTROL_IDS + 1 + n as i64)
}

/// The line's answer is the one `expect` names, if it names one.
async fn answered(wire: &mut Wire, expect: &Expect, shown: &str) -> Result<(), TestCaseError> {
    match expect {
        Expect::Silence => Ok(()),
        Expect::Error { code, id } => is_error(&wire.recv().await, *code, id, shown),
        Expect::Pong { id } => is_pong(&wire.recv().await, id, shown),
        Expect::Answers { id, .. } => answers(&wire.recv().await, id, shown),
    }
}

/// `reply` is the empty result of the ping with `id`.
fn is_pong(reply: &Value, id: &Value, shown: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&reply["id"], id, "{} -> {}", shown, reply);
    prop_assert_eq!(&reply["result"], &json!({}), "{} -> {}", shown, reply);
    Ok(())
}

/// `reply` is a JSON-RPC error with `code` and `id` (an unknown id, null,
/// may be left out) and a message, and no result.
fn is_error(reply: &Value, code: i64, id: &Value, shown: &str) -> Result<(), TestCaseError> {
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
    Ok(())
}

/// The session still serves, and nothing extra was written (but for
/// further answers to a reused id, up to their limit): the next message
/// read is the pong to a control ping with id `control`.
async fn still_serving(
    wire: &mut Wire,
    expect: &Expect,
    control: Value,
    shown: &str,
) -> Result<(), TestCaseError> {
    wire.send(&hostile::ping_with(control.clone())).await;
    let mut pong = wire.recv().await;
    if let Expect::Answers { id, most } = expect {
        for _ in 1..*most {
            if pong["id"] == control {
                break;
            }
            answers(&pong, id, shown)?;
            pong = wire.recv().await;
        }
    }
    prop_assert_eq!(&pong["id"], &control, "after {}: {}", shown, pong);
    prop_assert_eq!(&pong["result"], &json!({}), "after {}: {}", shown, pong);
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

/// Before `initialize`, a request other than ping is refused with invalid
/// params (it would need the stateless `_meta`), ping is answered, and the
/// handshake still works afterwards.
async fn check_before_initialize(early: Vec<(Value, Value)>) -> Result<(), TestCaseError> {
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hostile_lines_get_their_json_rpc_answer_and_no_session_is_harmed(
        lines in proptest::collection::vec(line(), 1..12)
    ) {
        block_on(check_tcp(lines))?;
    }

    #[test]
    fn requests_before_initialize_are_refused_and_the_handshake_still_works(
        early in proptest::collection::vec(hostile::early_request(), 1..8)
    ) {
        block_on(check_before_initialize(early))?;
    }

    #[test]
    fn hostile_lines_over_the_stdio_framing_get_the_same_answers(
        lines in proptest::collection::vec(line(), 1..12)
    ) {
        block_on(check_stdio_framing(lines))?;
    }
}
