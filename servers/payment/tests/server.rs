//! The payment server end to end: the rmcp handler over an in-memory duplex,
//! the kit's line framing over real TCP, the `payment-server` binary over
//! stdio (with and without `--data`), and streamable HTTP.
//!
//! Every wait is bounded by [`support::DEADLINE`], so a bug fails a test
//! instead of hanging it. Nothing sleeps.

use payment_server::{Ledger, PaymentServer, TransactionRecord};
use rmcp::{ServiceExt, model::ErrorCode, service::ServiceError};
use serde_json::{Value, json};
use support::*;

const BOB_ID: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";
const TOOL: &str = "getTransactionsUsingUserId";
const BOB_NEWEST_FIRST: [&str; 4] = ["Coffee", "Groceries", "Dinner", "Online Course"];

/// The server the shared support serves and spawns.
type Handler = PaymentServer;
const BIN: &str = env!("CARGO_BIN_EXE_payment-server");

#[path = "../../test-support/support.rs"]
mod support;

fn demo() -> PaymentServer {
    PaymentServer::new(Ledger::demo())
}

/// A `getTransactionsUsingUserId` request; `count: None` leaves it out.
fn history(id: i64, user_id: &str, count: Option<Value>) -> Value {
    let mut arguments = json!({"userId": user_id});
    if let Some(count) = count {
        arguments["count"] = count;
    }
    tool_call(id, TOOL, arguments)
}

/// Descriptions of the transactions in a structured result, in order.
fn descriptions(structured: &Value) -> Vec<&str> {
    structured["transactions"]
        .as_array()
        .unwrap_or_else(|| panic!("no transactions in {structured}"))
        .iter()
        .map(|t| t["description"].as_str().expect("description"))
        .collect()
}

/// Asserts `reply` answered a history request with Bob's newest `count`.
fn assert_bob(reply: &Value, count: usize) {
    let result = &reply["result"];
    assert_eq!(result["isError"], false, "{reply}");
    let structured = &result["structuredContent"];
    assert_eq!(
        descriptions(structured),
        BOB_NEWEST_FIRST[..count],
        "{reply}"
    );
    assert_eq!(structured["total"], 4, "{reply}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().expect("text"))
        .expect("the text is JSON");
    assert_eq!(text, structured["transactions"], "{reply}");
}

// ---- the handler, over an in-memory duplex -------------------------------------

#[tokio::test]
async fn lists_one_read_only_tool_with_an_output_schema() {
    let (client, server) = connect(demo()).await;
    let tools = within("tools/list", client.list_all_tools()).await.unwrap();
    assert_eq!(tools.len(), 1, "{tools:?}");
    let tool = &tools[0];
    assert_eq!(tool.name, TOOL);
    let annotations = tool.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(annotations.idempotent_hint, Some(true));
    let input = Value::Object((*tool.input_schema).clone());
    assert_eq!(input["required"], json!(["userId"]), "{input}");
    assert!(input["properties"].get("count").is_some(), "{input}");
    let output = Value::Object((*tool.output_schema.clone().expect("output schema")).clone());
    assert_eq!(output["type"], "object", "{output}");
    for field in ["userId", "transactions", "total"] {
        assert!(
            output["properties"].get(field).is_some(),
            "{field} in {output}"
        );
    }

    within("client to close", client.cancel()).await.unwrap();
    let served = within("server to end", server).await.unwrap();
    assert_eq!(
        served,
        Ok(()),
        "the session ends cleanly when the client leaves"
    );
}

#[tokio::test]
async fn lists_all_of_bobs_transactions_newest_first() {
    let (client, _server) = connect(demo()).await;
    let result = call(&client, TOOL, json!({"userId": BOB_ID}))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let transaction = |id: &str, amount: &str, minor: u64, description: &str, date: &str| {
        json!({
            "id": id, "userId": BOB_ID, "amount": amount, "amountMinor": minor,
            "currency": "GBP", "description": description, "date": date,
        })
    };
    let expected = json!([
        transaction("2", "50.00", 5000, "Coffee", "2023-01-16"),
        transaction("1", "100.00", 10000, "Groceries", "2023-01-15"),
        transaction("4", "75.00", 7500, "Dinner", "2023-01-14"),
        transaction("6", "120.00", 12000, "Online Course", "2023-01-12"),
    ]);
    assert_eq!(
        result.structured_content,
        Some(json!({"userId": BOB_ID, "transactions": expected, "total": 4}))
    );
    let text: Value = serde_json::from_str(text(&result)).expect("the text is a JSON array");
    assert_eq!(text, expected);
}

#[tokio::test]
async fn count_keeps_only_the_newest() {
    let (client, _server) = connect(demo()).await;
    for count in [json!(2), json!(2.0)] {
        let result = call(&client, TOOL, json!({"userId": BOB_ID, "count": count}))
            .await
            .unwrap();
        let structured = result.structured_content.as_ref().expect("structured");
        assert_eq!(descriptions(structured), ["Coffee", "Groceries"], "{count}");
        assert_eq!(structured["total"], 4, "total counts before the cut");
    }
    let result = call(&client, TOOL, json!({"userId": BOB_ID, "count": 1000}))
        .await
        .unwrap();
    let structured = result.structured_content.as_ref().expect("structured");
    assert_eq!(descriptions(structured), BOB_NEWEST_FIRST);
}

#[tokio::test]
async fn an_unknown_user_has_an_empty_history_not_an_error() {
    let (client, _server) = connect(demo()).await;
    let result = call(&client, TOOL, json!({"userId": "no-such-user", "count": 3}))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text(&result), "[]");
    assert_eq!(
        result.structured_content,
        Some(json!({"userId": "no-such-user", "transactions": [], "total": 0}))
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_session_keeps_answering() {
    let (client, _server) = connect(demo()).await;
    let good = async || {
        let result = call(&client, TOOL, json!({"userId": BOB_ID, "count": 1}))
            .await
            .unwrap();
        let structured = result.structured_content.expect("structured");
        assert_eq!(descriptions(&structured), ["Coffee"]);
    };

    for (count, shown) in [
        (json!(0), "0"),
        (json!(-1), "-1"),
        (json!(1001), "1001"),
        (json!(2.5), "2.5"),
        (json!(1e30), "1e+30"),
        (json!("2"), "\"2\""),
        (json!([2]), "[2]"),
    ] {
        let result = call(&client, TOOL, json!({"userId": BOB_ID, "count": count}))
            .await
            .unwrap();
        assert_tool_error(
            &result,
            &format!("count must be an integer between 1 and 1000, got {shown}"),
        );
        good().await;
    }

    let result = call(&client, TOOL, json!({"userId": ""})).await.unwrap();
    assert_tool_error(&result, "userId must be 1 to 128 bytes");
    good().await;

    let result = call(&client, TOOL, json!({"count": 2})).await.unwrap();
    assert_tool_error(
        &result,
        "failed to deserialize parameters: missing field `userId`",
    );
    good().await;

    let result = call(&client, TOOL, json!({"userId": BOB_ID, "limit": 2}))
        .await
        .unwrap();
    assert_tool_error(
        &result,
        "failed to deserialize parameters: unknown field `limit`, expected `userId` or `count`",
    );
    good().await;

    let result = call(&client, TOOL, json!({"userId": 7})).await.unwrap();
    assert_tool_error_starts(&result, "failed to deserialize parameters: invalid type");
    good().await;

    let error = call(&client, "getBalance", json!({"userId": BOB_ID}))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(error.message, "tool not found");
    good().await;
}

#[tokio::test]
async fn answers_from_the_ledger_it_is_given() {
    let record = |id: &str, amount: &str, currency: &str, date: &str| TransactionRecord {
        id: id.into(),
        user_id: "u".into(),
        amount: amount.into(),
        currency: currency.into(),
        description: id.into(),
        date: date.into(),
    };
    let ledger = Ledger::from_records(vec![
        record("yen", "500", "JPY", "2024-02-29"),
        record("dinar", "1.25", "KWD", "2024-03-01"),
    ])
    .unwrap();
    let (client, _server) = connect(PaymentServer::new(ledger)).await;
    let result = call(&client, TOOL, json!({"userId": "u"})).await.unwrap();
    let structured = result.structured_content.expect("structured");
    let amounts: Vec<(&Value, &Value, &Value)> = structured["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (&t["amount"], &t["amountMinor"], &t["currency"]))
        .collect();
    assert_eq!(
        amounts,
        [
            (&json!("1.250"), &json!(1250), &json!("KWD")),
            (&json!("500"), &json!(500), &json!("JPY")),
        ]
    );
    let result = call(&client, TOOL, json!({"userId": BOB_ID}))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["total"], 0);
}

// ---- the kit's line framing, over real TCP ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_bad_lines_with_json_rpc_errors_and_serves_everyone_else() {
    let server = TcpServer::start(demo(), small_limits()).await;
    let mut bad = Wire::tcp(server.addr).await;
    let mut good = Wire::tcp(server.addr).await;
    bad.initialize().await;
    good.initialize().await;

    bad.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\n").await;
    assert_rpc_error(&bad.recv().await, -32700, Value::Null);
    assert_bob(&good.ask(history(1, BOB_ID, None)).await, 4);

    let wrong_version = json!({"jsonrpc": "1.0", "id": "v1", "method": "tools/list"});
    assert_rpc_error(&bad.ask(wrong_version).await, -32600, json!("v1"));
    assert_bob(&good.ask(history(2, BOB_ID, Some(json!(3)))).await, 3);

    // Longer than the cap, sent in pieces so the server sees it stream in.
    let huge = history(8, &"u".repeat(SMALL_CAP), None);
    let huge = serde_json::to_vec(&huge).unwrap();
    assert!(huge.len() > SMALL_CAP);
    for chunk in huge.chunks(1000) {
        bad.send_raw(chunk).await;
    }
    bad.send_raw(b"\n").await;
    let reply = bad.recv().await;
    assert_rpc_error(&reply, -32600, Value::Null);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("4096-byte limit"), "{message}");
    assert_bob(&bad.ask(history(9, BOB_ID, Some(json!(2)))).await, 2);

    let reply = bad.ask(request(10, "payments/refund", json!({}))).await;
    assert_rpc_error(&reply, -32601, json!(10));

    // A count far beyond any integer type, written out in full on the wire.
    bad.send_raw(
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\",\"params\":\
             {{\"name\":\"{TOOL}\",\"arguments\":{{\"userId\":\"{BOB_ID}\",\
             \"count\":1000000000000000000000000000000}}}}}}\n"
        )
        .as_bytes(),
    )
    .await;
    let reply = bad.recv().await;
    assert_eq!(reply["id"], 11, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "count must be an integer between 1 and 1000, got 1e+30"
    );
    assert_bob(&bad.ask(history(12, BOB_ID, None)).await, 4);
    assert_bob(&good.ask(history(3, BOB_ID, Some(json!(1)))).await, 1);

    server.stop().await;
}

// ---- the binary, over stdio ------------------------------------------------------

#[tokio::test]
async fn stdio_binary_refuses_an_oversized_line_and_answers_the_next() {
    let mut binary = Binary::spawn(&[]);
    binary.wire.initialize().await;

    let over_cap = vec![b' '; mcp_server_kit::MESSAGE_BYTES_MAX + 1];
    binary.wire.send_raw(&over_cap).await;
    binary.wire.send_raw(b"\n").await;
    let reply = binary.wire.recv().await;
    assert_rpc_error(&reply, -32600, Value::Null);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("1048576-byte limit"), "{message}");

    assert_bob(
        &binary.wire.ask(history(1, BOB_ID, Some(json!(2)))).await,
        2,
    );
    let stderr = binary.finish().await;
    assert!(
        stderr.contains("serving MCP on stdio"),
        "logs belong on stderr: {stderr:?}"
    );
}

#[tokio::test]
async fn stdio_binary_answers_from_a_data_file() {
    let file = dataset_file(&json!({
        // The user server's part may share the file.
        "users": [{"id": "u-1", "email": "dana@example.org", "name": "Dana"}],
        "transactions": [
            {"id": "t1", "userId": "u-1", "amount": "12.50", "currency": "GBP",
             "description": "Tea", "date": "2023-01-15"},
            {"id": "t2", "userId": "u-1", "amount": "3", "currency": "EUR",
             "description": "Cake", "date": "2023-01-16"},
        ],
    }));
    let path = file.path().to_str().unwrap();
    let mut binary = Binary::spawn(&["--data", path]);
    binary.wire.initialize().await;

    let reply = binary.wire.ask(history(1, "u-1", None)).await;
    let structured = &reply["result"]["structuredContent"];
    assert_eq!(descriptions(structured), ["Cake", "Tea"], "{reply}");
    assert_eq!(structured["transactions"][1]["amount"], "12.50");
    assert_eq!(structured["transactions"][1]["amountMinor"], 1250);
    assert_eq!(structured["transactions"][0]["currency"], "EUR");
    // The demo ledger is not there.
    let reply = binary.wire.ask(history(2, BOB_ID, None)).await;
    assert_eq!(reply["result"]["structuredContent"]["total"], 0, "{reply}");
    binary.finish().await;
}

#[tokio::test]
async fn stdio_binary_refuses_a_data_file_with_a_bad_record() {
    let transaction = |id: &str, date: &str| {
        json!({"id": id, "userId": "u-1", "amount": "1.00", "currency": "GBP",
               "description": "d", "date": date})
    };
    let file = dataset_file(&json!({"transactions": [
        transaction("a", "2023-02-28"),
        transaction("x", "2023-02-30"),
    ]}));
    let path = file.path().to_str().unwrap();
    let (ok, stderr) = run_to_exit(&["--data", path]).await;
    assert!(!ok, "a bad dataset must stop the server; stderr: {stderr}");
    assert!(stderr.contains(path), "names the file: {stderr}");
    assert!(
        stderr.contains(
            "transactions[1] (id \"x\"): date \"2023-02-30\" is not a calendar date written YYYY-MM-DD"
        ),
        "names the record: {stderr}"
    );

    let file = dataset_file(&json!({"transactions": [
        transaction("a", "2023-02-28"),
        transaction("a", "2023-03-01"),
    ]}));
    let path = file.path().to_str().unwrap();
    let (ok, stderr) = run_to_exit(&["--data", path]).await;
    assert!(!ok, "stderr: {stderr}");
    assert!(
        stderr.contains("transactions[1] (id \"a\"): id already used by transactions[0]"),
        "{stderr}"
    );
}

// ---- streamable HTTP --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_calls_the_tool() {
    let (addr, shutdown) = start_http(demo(), small_limits()).await;
    let transport =
        rmcp::transport::StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = within("initialize over HTTP", ().serve(transport))
        .await
        .unwrap();
    let result = call(&client, TOOL, json!({"userId": BOB_ID, "count": 2}))
        .await
        .unwrap();
    let structured = result.structured_content.expect("structured");
    assert_eq!(descriptions(&structured), ["Coffee", "Groceries"]);
    let _ = within("client to close", client.cancel()).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_a_foreign_host_and_an_oversized_body() {
    let (addr, shutdown) = start_http(demo(), small_limits()).await;
    let initialize = serde_json::to_vec(&request(
        1,
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-http-test", "version": "0"},
        }),
    ))
    .unwrap();
    let local = addr.to_string();

    assert_eq!(http_post_status(addr, &local, &initialize).await, 200);
    assert_eq!(
        http_post_status(addr, "evil.example.com", &initialize).await,
        403
    );
    let body = serde_json::to_vec(&history(2, &"u".repeat(SMALL_CAP), None)).unwrap();
    assert!(body.len() > SMALL_CAP);
    assert_eq!(http_post_status(addr, &local, &body).await, 413);

    let transport =
        rmcp::transport::StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = within("initialize over HTTP", ().serve(transport))
        .await
        .unwrap();
    let result = call(&client, TOOL, json!({"userId": BOB_ID}))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["total"], 4);
    let _ = within("client to close", client.cancel()).await;
    shutdown.cancel();
}
