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

mod support {
    //! Sessions, raw JSON-RPC lines and child processes, shared by every test.

    use std::{net::SocketAddr, process::Stdio, time::Duration};

    use mcp_server_kit::Limits;
    use payment_server::{Ledger, PaymentServer};
    use rmcp::{
        RoleClient, ServiceExt,
        model::{CallToolRequestParams, CallToolResult},
        service::{RunningService, ServiceError},
    };
    use serde_json::{Value, json};
    use tokio::{
        io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
        process::{Child, Command},
        task::JoinHandle,
    };
    use tokio_util::sync::CancellationToken;

    /// The longest any single step may take before the test fails.
    pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
    /// The message cap the TCP and HTTP tests serve with.
    pub(crate) const SMALL_CAP: usize = 4096;
    pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_payment-server");

    /// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
    pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
        tokio::time::timeout(DEADLINE, future)
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?}"))
    }

    pub(crate) fn demo() -> PaymentServer {
        PaymentServer::new(Ledger::demo())
    }

    pub(crate) fn small_limits() -> Limits {
        Limits {
            message_bytes_max: SMALL_CAP,
            ..Limits::DEFAULT
        }
    }

    /// A client session with `handler`, served by the kit over an in-memory
    /// duplex. The handle yields the server's result once the client leaves.
    pub(crate) async fn connect(
        handler: PaymentServer,
    ) -> (
        RunningService<RoleClient, ()>,
        JoinHandle<Result<(), String>>,
    ) {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(server_io);
        let server = tokio::spawn(async move {
            mcp_server_kit::serve_connection(
                handler,
                read,
                write,
                &Limits::DEFAULT,
                CancellationToken::new(),
            )
            .await
        });
        let client = within("initialize", ().serve(client_io))
            .await
            .expect("client initializes");
        (client, server)
    }

    /// Calls `tool` with `arguments`, which must be a
    /// JSON object.
    pub(crate) async fn call(
        client: &RunningService<RoleClient, ()>,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ServiceError> {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object: {arguments}");
        };
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        within("tools/call", client.call_tool(params)).await
    }

    /// The only content block of `result`, as text.
    pub(crate) fn text(result: &CallToolResult) -> &str {
        assert_eq!(result.content.len(), 1, "{result:?}");
        &result.content[0].as_text().expect("text content").text
    }

    /// Asserts `result` is a tool error whose text is exactly `message`.
    pub(crate) fn assert_tool_error(result: &CallToolResult, message: &str) {
        assert_eq!(result.is_error, Some(true), "{result:?}");
        assert_eq!(text(result), message);
    }

    /// Asserts `result` is a tool error whose text starts with `prefix`.
    pub(crate) fn assert_tool_error_starts(result: &CallToolResult, prefix: &str) {
        assert_eq!(result.is_error, Some(true), "{result:?}");
        let got = text(result);
        assert!(
            got.starts_with(prefix),
            "{got:?} should start with {prefix:?}"
        );
    }

    // ---- raw JSON-RPC lines --------------------------------------------------

    pub(crate) fn request(id: i64, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    pub(crate) fn tool_call(id: i64, tool: &str, arguments: Value) -> Value {
        request(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
    }

    /// A `getTransactionsUsingUserId` request; `count: None` leaves it out.
    pub(crate) fn history(id: i64, user_id: &str, count: Option<Value>) -> Value {
        let mut arguments = json!({"userId": user_id});
        if let Some(count) = count {
            arguments["count"] = count;
        }
        tool_call(id, super::TOOL, arguments)
    }

    /// One side of a newline-delimited JSON-RPC conversation, as a client.
    pub(crate) struct Wire {
        reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
        writer: Box<dyn AsyncWrite + Send + Unpin>,
    }

    impl Wire {
        pub(crate) fn new(
            read: impl AsyncRead + Send + Unpin + 'static,
            write: impl AsyncWrite + Send + Unpin + 'static,
        ) -> Self {
            Self {
                reader: BufReader::new(Box::new(read)),
                writer: Box::new(write),
            }
        }

        pub(crate) async fn tcp(addr: SocketAddr) -> Self {
            let stream = within("connect", TcpStream::connect(addr))
                .await
                .expect("connects");
            // Small writes in a row must not wait on delayed ACKs.
            stream.set_nodelay(true).expect("nodelay");
            let (read, write) = stream.into_split();
            Self::new(read, write)
        }

        /// Writes `bytes` as they are; the caller supplies any newline.
        pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
            within("write", self.writer.write_all(bytes))
                .await
                .expect("write");
            within("flush", self.writer.flush()).await.expect("flush");
        }

        pub(crate) async fn send(&mut self, message: &Value) {
            let mut line = serde_json::to_vec(message).expect("serialises");
            line.push(b'\n');
            self.send_raw(&line).await;
        }

        /// The next line, which must be one JSON-RPC 2.0 message.
        pub(crate) async fn recv(&mut self) -> Value {
            let mut line = String::new();
            let read = within("read a reply line", self.reader.read_line(&mut line))
                .await
                .expect("read");
            assert!(read > 0, "the server closed the connection");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            message
        }

        /// Sends a request and returns its reply, which must carry its id.
        pub(crate) async fn ask(&mut self, message: Value) -> Value {
            self.send(&message).await;
            let reply = self.recv().await;
            assert_eq!(reply["id"], message["id"], "{reply}");
            reply
        }

        /// The `initialize` / `notifications/initialized` handshake.
        pub(crate) async fn initialize(&mut self) -> Value {
            let params = json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-wire-test", "version": "0"},
            });
            let reply = self.ask(request(0, "initialize", params)).await;
            assert_eq!(reply["result"]["protocolVersion"], "2025-06-18", "{reply}");
            self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
            reply
        }

        /// Everything left on the read side until end of file.
        pub(crate) async fn rest(&mut self) -> String {
            let mut rest = String::new();
            within("read to EOF", self.reader.read_to_string(&mut rest))
                .await
                .expect("read");
            rest
        }

        /// Closes the write side: the peer reads end of file.
        pub(crate) async fn close(&mut self) {
            within("shutdown", self.writer.shutdown())
                .await
                .expect("shutdown");
            // A child's stdin pipe only closes when dropped.
            self.writer = Box::new(tokio::io::sink());
        }
    }

    /// Asserts `reply` is a JSON-RPC error with `code` and `id`. An unknown
    /// id (`Value::Null`) may be `null` or left out: rmcp leaves it out, as
    /// MCP 2026-07-28 says, where JSON-RPC 2.0 says `null`.
    pub(crate) fn assert_rpc_error(reply: &Value, code: i64, id: Value) {
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply.get("id").unwrap_or(&Value::Null), &id, "{reply}");
        assert!(reply.get("result").is_none(), "{reply}");
    }

    /// Descriptions of the transactions in a structured result, in order.
    pub(crate) fn descriptions(structured: &Value) -> Vec<&str> {
        structured["transactions"]
            .as_array()
            .unwrap_or_else(|| panic!("no transactions in {structured}"))
            .iter()
            .map(|t| t["description"].as_str().expect("description"))
            .collect()
    }

    /// Asserts `reply` answered a history request with Bob's newest `count`.
    pub(crate) fn assert_bob(reply: &Value, count: usize) {
        let result = &reply["result"];
        assert_eq!(result["isError"], false, "{reply}");
        let structured = &result["structuredContent"];
        assert_eq!(
            descriptions(structured),
            super::BOB_NEWEST_FIRST[..count],
            "{reply}"
        );
        assert_eq!(structured["total"], 4, "{reply}");
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().expect("text"))
                .expect("the text is JSON");
        assert_eq!(text, structured["transactions"], "{reply}");
    }

    /// The kit's TCP server on an ephemeral loopback port.
    pub(crate) struct TcpServer {
        pub(crate) addr: SocketAddr,
        shutdown: CancellationToken,
        task: JoinHandle<Result<(), mcp_server_kit::ServeError>>,
    }

    impl TcpServer {
        pub(crate) async fn start(handler: PaymentServer, limits: Limits) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(mcp_server_kit::serve_tcp(
                listener,
                handler,
                limits,
                shutdown.clone(),
            ));
            Self {
                addr,
                shutdown,
                task,
            }
        }

        /// Cancels the server and asserts it stops cleanly.
        pub(crate) async fn stop(self) {
            self.shutdown.cancel();
            within("serve_tcp to stop", self.task)
                .await
                .expect("task")
                .expect("serve_tcp stops without error");
        }
    }

    /// The kit's streamable HTTP server on an ephemeral loopback port.
    pub(crate) async fn start_http(
        handler: PaymentServer,
        limits: Limits,
    ) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(mcp_server_kit::serve_http(
            listener,
            handler,
            limits,
            mcp_server_kit::HttpOptions::default(),
            shutdown.clone(),
        ));
        (addr, shutdown)
    }

    /// POSTs `body` to `/mcp` with the given `Host` header over a fresh
    /// connection and returns the response's status code.
    pub(crate) async fn http_post_status(addr: SocketAddr, host: &str, body: &[u8]) -> u16 {
        let mut stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connects");
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAccept: application/json, text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        within("write", stream.write_all(head.as_bytes()))
            .await
            .expect("write head");
        // The server may answer and close before reading a refused body.
        let _ = within("write", stream.write_all(body)).await;
        let mut response = Vec::new();
        let _ = within("read", stream.read_to_end(&mut response)).await;
        let response = String::from_utf8_lossy(&response);
        let status = response
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        status.parse().expect("numeric status")
    }

    // ---- the binary ------------------------------------------------------------

    /// `payment-server` on stdio with extra `args`; stderr is collected apart.
    pub(crate) struct Binary {
        pub(crate) wire: Wire,
        child: Child,
        stderr: JoinHandle<String>,
    }

    impl Binary {
        pub(crate) fn spawn(args: &[&str]) -> Self {
            let mut child = Command::new(BIN)
                .args(args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawns payment-server");
            let stdin = child.stdin.take().expect("stdin");
            let stdout = child.stdout.take().expect("stdout");
            let mut stderr = child.stderr.take().expect("stderr");
            let stderr = tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                text
            });
            Self {
                wire: Wire::new(stdout, stdin),
                child,
                stderr,
            }
        }

        /// Closes stdin, then asserts the process exits successfully having
        /// written nothing more to stdout. Returns its stderr.
        pub(crate) async fn finish(mut self) -> String {
            self.wire.close().await;
            let rest = self.wire.rest().await;
            assert!(
                rest.is_empty(),
                "stray stdout after the last reply: {rest:?}"
            );
            let status = within("exit", self.child.wait()).await.expect("wait");
            assert!(status.success(), "exit status {status}");
            within("stderr", self.stderr).await.expect("stderr task")
        }
    }

    /// Runs `payment-server` with `args` and no input; returns (success, stderr).
    pub(crate) async fn run_to_exit(args: &[&str]) -> (bool, String) {
        let output = within(
            "payment-server to exit",
            Command::new(BIN)
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.is_empty(), "stdout must stay clean: {stdout:?}");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// A dataset file holding `dataset`.
    pub(crate) fn dataset_file(dataset: &Value) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), dataset.to_string()).expect("write dataset");
        file
    }
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
