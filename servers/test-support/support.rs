//! Test support shared by the server crates' integration tests: bounded
//! waits, in-memory sessions, raw JSON-RPC lines, TCP and HTTP servers, and
//! the server binary as a child process. Each test binary includes it with
//! `#[path]` and defines `Handler` (its server type) and `BIN` (its binary).

use std::{net::SocketAddr, process::Stdio, time::Duration};

use mcp_server_kit::Limits;
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

/// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?}"))
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
    handler: super::Handler,
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

/// The kit's TCP server on an ephemeral loopback port.
pub(crate) struct TcpServer {
    pub(crate) addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), mcp_server_kit::ServeError>>,
}

impl TcpServer {
    pub(crate) async fn start(handler: super::Handler, limits: Limits) -> Self {
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
    handler: super::Handler,
    limits: Limits,
) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(mcp_server_kit::serve_http(
        listener,
        handler,
        limits,
        mcp_server_kit::HttpOptions::unauthenticated(),
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

/// the server binary on stdio with extra `args`; stderr is collected apart.
pub(crate) struct Binary {
    pub(crate) wire: Wire,
    child: Child,
    stderr: JoinHandle<String>,
}

impl Binary {
    pub(crate) fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(super::BIN)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawns {}: {e}", super::BIN));
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

/// Runs the server binary with `args` and no input; returns (success, stderr).
pub(crate) async fn run_to_exit(args: &[&str]) -> (bool, String) {
    let output = within(
        "the server to exit",
        Command::new(super::BIN)
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
