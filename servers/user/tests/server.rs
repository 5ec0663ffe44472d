//! The user server end to end: the rmcp handler over an in-memory duplex, the
//! kit's line framing over real TCP, the `user-server` binary over stdio
//! (with and without `--data`), and streamable HTTP.
//!
//! Every wait is bounded by [`support::DEADLINE`], so a bug fails a test
//! instead of hanging it. Nothing sleeps.

use rmcp::{ServiceExt, model::ErrorCode, service::ServiceError};
use serde_json::{Value, json};
use support::*;
use user_server::{UserServer, UserStore};

const BOB_ID: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";
const TOOL: &str = "getUserIdByEmail";

/// The server the shared support serves and spawns.
type Handler = UserServer;
const BIN: &str = env!("CARGO_BIN_EXE_user-server");

#[path = "../../test-support/support.rs"]
mod support;

fn demo() -> UserServer {
    UserServer::new(UserStore::demo())
}

fn lookup(id: i64, email: &str) -> Value {
    tool_call(id, TOOL, json!({"email": email}))
}

/// Asserts `reply` answered a lookup with Bob's id.
fn assert_bob(reply: &Value) {
    let result = &reply["result"];
    assert_eq!(result["isError"], false, "{reply}");
    assert_eq!(result["content"][0]["text"], BOB_ID, "{reply}");
    assert_eq!(result["structuredContent"]["userId"], BOB_ID);
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
    assert_eq!(input["required"], json!(["email"]), "{input}");
    let output = Value::Object((*tool.output_schema.clone().expect("output schema")).clone());
    assert_eq!(output["type"], "object", "{output}");
    for field in ["userId", "email", "name"] {
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
async fn finds_bob_ignoring_case_and_surrounding_whitespace() {
    let (client, _server) = connect(demo()).await;
    let result = call(&client, TOOL, json!({"email": "  BOB@Example.com "}))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text(&result), BOB_ID);
    assert_eq!(
        result.structured_content,
        Some(json!({"userId": BOB_ID, "email": "bob@example.com", "name": "Bob"}))
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_session_keeps_answering() {
    let (client, _server) = connect(demo()).await;
    let good = async || {
        let result = call(&client, TOOL, json!({"email": "alice@example.com"}))
            .await
            .unwrap();
        assert_eq!(text(&result), "a2b3c4d5-6e7f-8a9b-0c1d-2e3f4a5b6c7d");
    };

    let result = call(&client, TOOL, json!({"email": "bob.example.com"}))
        .await
        .unwrap();
    assert_tool_error(
        &result,
        "Invalid email address \"bob.example.com\": missing separator character '@'",
    );
    good().await;

    let result = call(&client, TOOL, json!({"email": " nobody@example.com "}))
        .await
        .unwrap();
    assert_tool_error(&result, "User with email nobody@example.com not found");
    good().await;

    let result = call(&client, TOOL, json!({})).await.unwrap();
    assert_tool_error(
        &result,
        "failed to deserialize parameters: missing field `email`",
    );
    good().await;

    let result = call(
        &client,
        TOOL,
        json!({"email": "bob@example.com", "admin": true}),
    )
    .await
    .unwrap();
    assert_tool_error(
        &result,
        "failed to deserialize parameters: unknown field `admin`, expected `email`",
    );
    good().await;

    let result = call(&client, TOOL, json!({"email": 42})).await.unwrap();
    assert_tool_error_starts(&result, "failed to deserialize parameters: invalid type");
    good().await;

    let error = call(&client, "getUserIdByName", json!({"name": "Bob"}))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(error.message, "tool not found");
    good().await;
}

// ---- the kit's line framing, over real TCP ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_answers_bad_lines_with_json_rpc_errors_and_serves_everyone_else() {
    let server = TcpServer::start(demo(), small_limits()).await;
    let mut bad = Wire::tcp(server.addr).await;
    let mut good = Wire::tcp(server.addr).await;
    bad.initialize().await;
    good.initialize().await;

    bad.send_raw(b"{this is not json\n").await;
    assert_rpc_error(&bad.recv().await, -32700, Value::Null);
    assert_bob(&good.ask(lookup(1, "bob@example.com")).await);

    let wrong_version = json!({"jsonrpc": "1.0", "id": 7, "method": "tools/list"});
    assert_rpc_error(&bad.ask(wrong_version).await, -32600, json!(7));
    assert_bob(&good.ask(lookup(2, "Bob@Example.com")).await);

    // Longer than the cap, sent in pieces so the server sees it stream in.
    let huge = lookup(8, &format!("{}@example.com", "b".repeat(SMALL_CAP)));
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
    assert_bob(&bad.ask(lookup(9, "bob@example.com")).await);

    let reply = bad.ask(request(10, "tools/frobnicate", json!({}))).await;
    assert_rpc_error(&reply, -32601, json!(10));
    assert_bob(&good.ask(lookup(3, "bob@example.com")).await);

    // A line of exactly the cap is accepted.
    let mut exact = lookup(11, "bob@example.com");
    exact["params"]["_meta"] = json!({"pad": ""});
    let padding = SMALL_CAP - serde_json::to_vec(&exact).unwrap().len();
    exact["params"]["_meta"]["pad"] = json!("x".repeat(padding));
    assert_eq!(serde_json::to_vec(&exact).unwrap().len(), SMALL_CAP);
    assert_bob(&bad.ask(exact).await);

    server.stop().await;
}

#[tokio::test]
async fn tcp_refuses_requests_before_initialize_but_allows_ping() {
    let server = TcpServer::start(demo(), small_limits()).await;
    let mut wire = Wire::tcp(server.addr).await;

    // rmcp answers ping before initialize, as the MCP lifecycle allows.
    let reply = wire.ask(request(1, "ping", json!({}))).await;
    assert_eq!(reply["result"], json!({}), "{reply}");
    // Any other request is refused: without initialize it would need the
    // stateless (2026-07-28) `_meta`, which this client does not send.
    let reply = wire.ask(lookup(2, "bob@example.com")).await;
    assert_rpc_error(&reply, -32602, json!(2));
    // The connection is still usable: the handshake works afterwards.
    wire.initialize().await;
    assert_bob(&wire.ask(lookup(3, "bob@example.com")).await);

    server.stop().await;
}

#[tokio::test]
async fn tcp_notification_before_initialize_ends_only_that_session() {
    let server = TcpServer::start(demo(), small_limits()).await;
    let mut early = Wire::tcp(server.addr).await;
    let mut other = Wire::tcp(server.addr).await;

    // rmcp gives up on a session whose first message is a notification: it
    // closes the connection without a reply, even to a request sent after.
    early
        .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    early.send(&request(1, "ping", json!({}))).await;
    assert_eq!(early.rest().await, "");

    // Nobody else notices.
    other.initialize().await;
    assert_bob(&other.ask(lookup(2, "bob@example.com")).await);
    server.stop().await;
}

// ---- the binary, over stdio ------------------------------------------------------

#[tokio::test]
async fn stdio_binary_refuses_an_oversized_line_and_answers_the_next() {
    let mut binary = Binary::spawn(&[]);
    binary.wire.initialize().await;

    let over_cap = vec![b'x'; mcp_server_kit::MESSAGE_BYTES_MAX + 1];
    binary.wire.send_raw(&over_cap).await;
    binary.wire.send_raw(b"\n").await;
    let reply = binary.wire.recv().await;
    assert_rpc_error(&reply, -32600, Value::Null);
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("1048576-byte limit"), "{message}");

    assert_bob(&binary.wire.ask(lookup(1, "bob@example.com")).await);
    let stderr = binary.finish().await;
    assert!(
        stderr.contains("serving MCP on stdio"),
        "logs belong on stderr: {stderr:?}"
    );
}

#[tokio::test]
async fn stdio_binary_answers_from_a_data_file() {
    let file = dataset_file(&json!({
        "users": [
            {"id": "u-1", "email": "Dana@Example.org", "name": "Dana"},
            {"id": "u-2", "email": "eve@example.org", "name": "Eve"},
        ],
        // The payment server's part may share the file.
        "transactions": [
            {"id": "t1", "userId": "u-1", "amount": "12.50", "currency": "GBP",
             "description": "Tea", "date": "2023-01-15"},
        ],
    }));
    let path = file.path().to_str().unwrap();
    let mut binary = Binary::spawn(&["--data", path]);
    binary.wire.initialize().await;

    let reply = binary.wire.ask(lookup(1, "dana@example.org")).await;
    assert_eq!(
        reply["result"]["structuredContent"],
        json!({"userId": "u-1", "email": "Dana@Example.org", "name": "Dana"}),
        "{reply}"
    );
    // The demo users are not there.
    let reply = binary.wire.ask(lookup(2, "bob@example.com")).await;
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "User with email bob@example.com not found"
    );
    binary.finish().await;
}

#[tokio::test]
async fn stdio_binary_refuses_a_data_file_with_a_bad_record() {
    let file = dataset_file(&json!({"users": [
        {"id": "u-1", "email": "dana@example.org", "name": "Dana"},
        {"id": "x", "email": "DANA@example.org", "name": "Dana again"},
    ]}));
    let path = file.path().to_str().unwrap();
    let (ok, stderr) = run_to_exit(&["--data", path]).await;
    assert!(!ok, "a bad dataset must stop the server; stderr: {stderr}");
    assert!(stderr.contains(path), "names the file: {stderr}");
    assert!(
        stderr.contains("users[1] (id \"x\"): email \"DANA@example.org\" already used by users[0]"),
        "names the record: {stderr}"
    );

    let file = dataset_file(&json!({"users": [{"id": "u-1", "email": "a@b.c", "name": 5}]}));
    let path = file.path().to_str().unwrap();
    let (ok, stderr) = run_to_exit(&["--data", path]).await;
    assert!(!ok, "stderr: {stderr}");
    assert!(stderr.contains(&format!("{path}:1:")), "{stderr}");
    assert!(stderr.contains("at `users[0].name`"), "{stderr}");
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
    let tools = within("tools/list", client.list_all_tools()).await.unwrap();
    assert_eq!(tools[0].name, TOOL);
    let result = call(&client, TOOL, json!({"email": "BOB@example.com"}))
        .await
        .unwrap();
    assert_eq!(text(&result), BOB_ID);
    assert_eq!(result.structured_content.unwrap()["name"], "Bob");
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

    // The same request is fine from a loopback Host, refused from another.
    assert_eq!(http_post_status(addr, &local, &initialize).await, 200);
    assert_eq!(
        http_post_status(addr, "evil.example.com", &initialize).await,
        403
    );

    let oversized = request(2, "ping", json!({"pad": "x".repeat(SMALL_CAP)}));
    let body = serde_json::to_vec(&oversized).unwrap();
    assert!(body.len() > SMALL_CAP);
    assert_eq!(http_post_status(addr, &local, &body).await, 413);

    // A well-behaved client is unaffected.
    let transport =
        rmcp::transport::StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = within("initialize over HTTP", ().serve(transport))
        .await
        .unwrap();
    let result = call(&client, TOOL, json!({"email": "bob@example.com"}))
        .await
        .unwrap();
    assert_eq!(text(&result), BOB_ID);
    let _ = within("client to close", client.cancel()).await;
    shutdown.cancel();
}

#[tokio::test]
async fn answers_from_the_store_it_is_given() {
    let store = UserStore::from_records(vec![user_server::UserRecord {
        id: "only".into(),
        email: "only@example.com".into(),
        name: "Only".into(),
    }])
    .unwrap();
    let (client, _server) = connect(UserServer::new(store)).await;
    let result = call(&client, TOOL, json!({"email": "only@example.com"}))
        .await
        .unwrap();
    assert_eq!(text(&result), "only");
    let result = call(&client, TOOL, json!({"email": "bob@example.com"}))
        .await
        .unwrap();
    assert_tool_error(&result, "User with email bob@example.com not found");
}
