//! The serving layer on its own, with a handler that has no tools: what the
//! line framing writes on a real socket, the TCP and HTTP connection
//! limits, the initialize deadline, shutdown, and the HTTP Host/Origin
//! checks; in `kit/sessions_http.rs`, HTTP sessions under authentication.
//!
//! Every wait is bounded by [`support::DEADLINE`]. Nothing sleeps.

use std::time::Duration;

use mcp_server_kit::{HttpOptions, Limits};
use serde_json::{Value, json};
use support::*;
use tokio_util::sync::CancellationToken;

#[path = "kit/hostile.rs"]
mod hostile;
#[path = "kit/hostile_http.rs"]
mod hostile_http;
#[path = "kit/sessions_http.rs"]
mod sessions_http;

mod support {
    //! Raw JSON-RPC lines over any byte stream, and the servers under test.

    use std::{net::SocketAddr, time::Duration};

    use mcp_server_kit::{HttpOptions, Limits};
    use rmcp::ServerHandler;
    use serde_json::{Value, json};
    use tokio::{
        io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
        task::JoinHandle,
    };
    use tokio_util::sync::CancellationToken;

    /// The longest any single step may take before the test fails.
    pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
    /// The message cap the tests serve with.
    pub(crate) const SMALL_CAP: usize = 1024;

    /// A server with no tools: enough to exercise everything around them.
    #[derive(Debug, Clone)]
    pub(crate) struct Bare;

    impl ServerHandler for Bare {}

    /// Runs `future` to completion on a fresh single-thread runtime: one
    /// per property case, so that cases share nothing.
    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

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

    pub(crate) fn request(id: i64, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    pub(crate) fn ping(id: i64) -> Value {
        request(id, "ping", json!({}))
    }

    /// Asserts `reply` is a JSON-RPC error with `code` and `id`. An unknown
    /// id (`Value::Null`) may be `null` or left out: rmcp leaves it out, as
    /// MCP 2026-07-28 says, where JSON-RPC 2.0 says `null`.
    pub(crate) fn assert_rpc_error(reply: &Value, code: i64, id: Value) {
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply.get("id").unwrap_or(&Value::Null), &id, "{reply}");
        assert!(reply.get("result").is_none(), "{reply}");
    }

    /// Asserts `reply` is the empty result a ping gets.
    pub(crate) fn assert_pong(reply: &Value) {
        assert_eq!(reply["result"], json!({}), "{reply}");
    }

    /// A client's end of a newline-delimited JSON-RPC conversation.
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

        pub(crate) async fn ask(&mut self, message: Value) -> Value {
            self.send(&message).await;
            let reply = self.recv().await;
            assert_eq!(reply["id"], message["id"], "{reply}");
            reply
        }

        pub(crate) async fn initialize(&mut self) {
            let params = json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "kit-test", "version": "0"},
            });
            let reply = self.ask(request(0, "initialize", params)).await;
            assert_eq!(reply["result"]["protocolVersion"], "2025-06-18", "{reply}");
            self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
        }

        /// The next line as it is, or `None` at end of file or on an error.
        pub(crate) async fn try_recv_line(&mut self) -> Option<String> {
            let mut line = String::new();
            match within("read a line", self.reader.read_line(&mut line)).await {
                Ok(n) if n > 0 => Some(line),
                _ => None,
            }
        }

        /// Asserts the server closes the connection without another line.
        /// A reset counts as closed too.
        pub(crate) async fn assert_closed(&mut self) {
            let mut rest = Vec::new();
            match within("the server to close", self.reader.read_to_end(&mut rest)).await {
                Ok(_) => assert!(
                    rest.is_empty(),
                    "unexpected output: {:?}",
                    String::from_utf8_lossy(&rest)
                ),
                Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
            }
        }
    }

    /// The kit's TCP server on an ephemeral loopback port.
    pub(crate) struct TcpServer {
        pub(crate) addr: SocketAddr,
        pub(crate) shutdown: CancellationToken,
        task: JoinHandle<Result<(), mcp_server_kit::ServeError>>,
    }

    impl TcpServer {
        pub(crate) async fn start(limits: Limits) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(mcp_server_kit::serve_tcp(
                listener,
                Bare,
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
    pub(crate) async fn start_http(options: HttpOptions) -> (SocketAddr, CancellationToken) {
        start_http_with(small_limits(), options).await
    }

    pub(crate) async fn start_http_with(
        limits: Limits,
        options: HttpOptions,
    ) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(mcp_server_kit::serve_http(
            listener,
            Bare,
            limits,
            options,
            shutdown.clone(),
        ));
        (addr, shutdown)
    }

    /// An HTTP response as read off the wire: status, headers (names in
    /// lower case) and the body as sent (chunked framing included).
    #[derive(Debug)]
    pub(crate) struct HttpReply {
        pub(crate) status: u16,
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: String,
    }

    impl HttpReply {
        /// The value of header `name` (lower case), if there is one.
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one `method` request to `/mcp` with `headers` (plus the ones
    /// every MCP request needs and `Connection: close`) over a fresh
    /// connection, and reads the whole response.
    pub(crate) async fn http_exchange(
        addr: SocketAddr,
        method: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpReply {
        let mut stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connects");
        let mut head = format!("{method} /mcp HTTP/1.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        within("write", stream.write_all(head.as_bytes()))
            .await
            .expect("write head");
        // The server may answer and close before reading a refused body.
        let _ = within("write", stream.write_all(body)).await;
        let mut response = Vec::new();
        let _ = within("read", stream.read_to_end(&mut response)).await;
        parse_reply(&String::from_utf8_lossy(&response))
    }

    fn parse_reply(response: &str) -> HttpReply {
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.strip_prefix("HTTP/1.1 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        HttpReply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// POSTs `body` to `/mcp` with `headers` (plus the ones every MCP POST
    /// needs) over a fresh connection; returns the status code.
    pub(crate) async fn http_post_status(
        addr: SocketAddr,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> u16 {
        http_exchange(addr, "POST", headers, body).await.status
    }

    pub(crate) fn initialize_body() -> Vec<u8> {
        serde_json::to_vec(&request(
            1,
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "kit-http-test", "version": "0"},
            }),
        ))
        .expect("serialises")
    }
}

// ---- line framing on a real socket -----------------------------------------------

#[tokio::test]
async fn every_kind_of_bad_line_gets_its_json_rpc_error_or_is_ignored() {
    let server = TcpServer::start(small_limits()).await;
    let mut wire = Wire::tcp(server.addr).await;
    wire.initialize().await;

    // Each line with the error code and id it must get back, or `None`
    // where JSON-RPC says to stay silent.
    let null = Value::Null;
    let cases = [
        ("not json", Some((-32700, null.clone()))),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            Some((-32600, null.clone())),
        ),
        ("42", Some((-32600, null.clone()))),
        (
            r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#,
            Some((-32600, json!("a"))),
        ),
        (r#"{"id":3,"method":"ping"}"#, Some((-32600, json!(3)))),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            Some((-32600, null.clone())),
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
            Some((-32600, null.clone())),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":5}"#,
            Some((-32602, json!(4))),
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"no/such/method"}"#,
            Some((-32601, json!(5))),
        ),
        (r#"{"jsonrpc":"1.0","method":"notifications/x"}"#, None),
        (r#"{"jsonrpc":"2.0","method":7}"#, None),
        ("   ", None),
    ];
    for (line, expected) in cases {
        wire.send_raw(format!("{line}\n").as_bytes()).await;
        if let Some((code, id)) = expected {
            let reply = wire.recv().await;
            assert_eq!(reply["error"]["code"], code, "{line} -> {reply}");
            assert_eq!(reply.get("id").unwrap_or(&null), &id, "{line} -> {reply}");
        }
        // The next reply is the ping's: nothing extra was written.
        assert_pong(&wire.ask(ping(100)).await);
    }
    server.stop().await;
}

#[tokio::test]
async fn crlf_and_a_byte_order_mark_are_accepted() {
    let server = TcpServer::start(small_limits()).await;
    let mut wire = Wire::tcp(server.addr).await;
    wire.initialize().await;
    wire.send_raw(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n")
        .await;
    let reply = wire.recv().await;
    assert_eq!(reply["id"], 1, "{reply}");
    assert_pong(&reply);
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_line_is_refused_whole_and_a_line_at_the_cap_is_not() {
    let server = TcpServer::start(small_limits()).await;
    let mut wire = Wire::tcp(server.addr).await;
    wire.initialize().await;

    let mut at_cap = ping(1);
    at_cap["params"] = json!({"_meta": {"pad": ""}});
    let padding = SMALL_CAP - serde_json::to_vec(&at_cap).unwrap().len();
    at_cap["params"]["_meta"]["pad"] = json!("x".repeat(padding));
    assert_eq!(serde_json::to_vec(&at_cap).unwrap().len(), SMALL_CAP);
    assert_pong(&wire.ask(at_cap.clone()).await);

    // One byte more, and many times more: each is one error, id null.
    for extra in [1, 10 * SMALL_CAP] {
        at_cap["params"]["_meta"]["pad"] = json!("x".repeat(padding + extra));
        wire.send(&at_cap).await;
        let reply = wire.recv().await;
        assert_rpc_error(&reply, -32600, Value::Null);
        assert_eq!(
            reply["error"]["message"],
            "message exceeds the 1024-byte limit and was dropped"
        );
        assert_pong(&wire.ask(ping(2)).await);
    }
    server.stop().await;
}

// ---- connections -------------------------------------------------------------------

#[tokio::test]
async fn tcp_closes_connections_over_the_limit_and_frees_slots() {
    let limits = Limits {
        connections_max: 1,
        ..small_limits()
    };
    let server = TcpServer::start(limits).await;
    let mut first = Wire::tcp(server.addr).await;
    first.initialize().await;

    let mut second = Wire::tcp(server.addr).await;
    second.assert_closed().await;
    assert_pong(&first.ask(ping(1)).await);

    // Once the first client leaves, its slot serves someone else. Its
    // session may take a moment to wind down: retry, boundedly.
    drop(first);
    within("a freed slot", async {
        loop {
            let mut next = Wire::tcp(server.addr).await;
            next.send(&ping(1)).await;
            if let Some(line) = next.try_recv_line().await {
                assert_pong(&serde_json::from_str(&line).unwrap());
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_initialize_in_time_is_disconnected() {
    let (client, server_io) = tokio::io::duplex(4096);
    let (read, write) = tokio::io::split(server_io);
    let limits = Limits {
        // Zero polls the handshake once: nothing has arrived, so it is late.
        initialize_timeout: Duration::ZERO,
        ..Limits::DEFAULT
    };
    let result = within(
        "serve_connection",
        mcp_server_kit::serve_connection(Bare, read, write, &limits, CancellationToken::new()),
    )
    .await;
    assert_eq!(result, Err("no initialize within 0 ms".to_owned()));
    let (read, write) = tokio::io::split(client);
    Wire::new(read, write).assert_closed().await;
}

#[tokio::test]
async fn shutdown_ends_live_sessions_and_the_listener() {
    let server = TcpServer::start(small_limits()).await;
    let mut idle = Wire::tcp(server.addr).await;
    idle.initialize().await;
    let addr = server.addr;
    server.stop().await;
    idle.assert_closed().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn a_crlf_line_at_the_cap_is_accepted_when_its_newline_comes_late() {
    let (client, server_io) = tokio::io::duplex(64 * 1024);
    let (read, write) = tokio::io::split(server_io);
    tokio::spawn(async move {
        let limits = small_limits();
        mcp_server_kit::serve_connection(Bare, read, write, &limits, CancellationToken::new()).await
    });
    let (read, write) = tokio::io::split(client);
    let mut wire = Wire::new(read, write);
    wire.initialize().await;

    let mut at_cap = ping(1);
    at_cap["params"] = json!({"_meta": {"pad": ""}});
    let padding = SMALL_CAP - serde_json::to_vec(&at_cap).unwrap().len();
    at_cap["params"]["_meta"]["pad"] = json!("x".repeat(padding));
    let mut line = serde_json::to_vec(&at_cap).unwrap();
    assert_eq!(line.len(), SMALL_CAP);
    line.push(b'\r');
    wire.send_raw(&line).await;
    // Let the server read the `\r` before its `\n` exists.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    wire.send_raw(b"\n").await;
    let reply = wire.recv().await;
    assert_eq!(reply["id"], 1, "{reply}");
    assert_pong(&reply);
}

#[tokio::test]
async fn a_session_ends_cleanly_when_the_client_hangs_up() {
    let (client, server_io) = tokio::io::duplex(4096);
    let (read, write) = tokio::io::split(server_io);
    let server = tokio::spawn(async move {
        mcp_server_kit::serve_connection(
            Bare,
            read,
            write,
            &Limits::DEFAULT,
            CancellationToken::new(),
        )
        .await
    });
    let (read, write) = tokio::io::split(client);
    let mut wire = Wire::new(read, write);
    wire.initialize().await;
    assert_pong(&wire.ask(ping(1)).await);
    drop(wire);
    let result = within("the session to end", server).await.expect("task");
    assert_eq!(result, Ok(()));
}

// ---- HTTP Host and Origin checks ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_accepts_loopback_hosts_and_origins_and_refuses_others() {
    let (addr, shutdown) = start_http(HttpOptions::unauthenticated()).await;
    let body = initialize_body();
    let local = addr.to_string();
    let port = addr.port();
    let localhost = format!("localhost:{port}");

    for (headers, status) in [
        (vec![("Host", local.as_str())], 200),
        (vec![("Host", localhost.as_str())], 200),
        (vec![("Host", "evil.example.com")], 403),
        (vec![("Host", &format!("evil.example.com:{port}"))], 403),
        (
            vec![
                ("Host", local.as_str()),
                ("Origin", "http://localhost:5173"),
            ],
            200,
        ),
        (
            vec![
                ("Host", local.as_str()),
                ("Origin", "http://evil.example.com"),
            ],
            403,
        ),
    ] {
        assert_eq!(
            http_post_status(addr, &headers, &body).await,
            status,
            "{headers:?}"
        );
    }

    let oversized =
        serde_json::to_vec(&request(2, "ping", json!({"pad": "x".repeat(SMALL_CAP)}))).unwrap();
    assert_eq!(
        http_post_status(addr, &[("Host", &local)], &oversized).await,
        413
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_extra_hosts_and_origins_are_accepted_when_configured() {
    let options = HttpOptions {
        allowed_hosts: vec!["mcp.internal".into()],
        allowed_origins: vec!["https://app.example.com:443".into()],
        ..HttpOptions::unauthenticated()
    };
    let (addr, shutdown) = start_http(options).await;
    let body = initialize_body();
    for (headers, status) in [
        (vec![("Host", "mcp.internal")], 200),
        (vec![("Host", "other.internal")], 403),
        (
            vec![
                ("Host", "mcp.internal"),
                ("Origin", "https://app.example.com"),
            ],
            200,
        ),
        (
            vec![
                ("Host", "mcp.internal"),
                ("Origin", "https://evil.example.com"),
            ],
            403,
        ),
    ] {
        assert_eq!(
            http_post_status(addr, &headers, &body).await,
            status,
            "{headers:?}"
        );
    }
    shutdown.cancel();
}

#[tokio::test]
async fn http_caps_live_sessions() {
    let limits = Limits {
        connections_max: 2,
        ..small_limits()
    };
    let (addr, shutdown) = start_http_with(limits, HttpOptions::unauthenticated()).await;
    let host = [("Host", "127.0.0.1")];
    assert_eq!(http_post_status(addr, &host, &initialize_body()).await, 200);
    assert_eq!(http_post_status(addr, &host, &initialize_body()).await, 200);
    let refused = http_post_status(addr, &host, &initialize_body()).await;
    assert!(
        refused >= 500,
        "a third live session is refused, got {refused}"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_closes_connections_over_the_limit_at_once_and_frees_places() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = Limits {
        http_connections_max: 2,
        // Far longer than the test: nothing here is closed by a timeout.
        http_header_read_timeout: Duration::from_secs(600),
        ..small_limits()
    };
    let (addr, shutdown) = start_http_with(limits, HttpOptions::unauthenticated()).await;
    let connect = || async {
        within("connect", tokio::net::TcpStream::connect(addr))
            .await
            .expect("connects")
    };
    // Two clients each send half a request head, and hold on.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect().await;
        stream
            .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.")
            .await
            .unwrap();
        held.push(stream);
    }
    // A third is closed at once, without a byte.
    let mut third = connect().await;
    let mut rest = Vec::new();
    match within("the server to close", third.read_to_end(&mut rest)).await {
        Ok(_) => assert!(rest.is_empty(), "{rest:?}"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }

    // Once a held one leaves, its place serves someone else. The server
    // sees the close a moment later: retry, boundedly.
    drop(held.pop());
    within("a freed place", async {
        loop {
            let mut next = connect().await;
            let body = initialize_body();
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut response = Vec::new();
            let sent = next.write_all(head.as_bytes()).await.is_ok() && next.write_all(&body).await.is_ok();
            if sent && next.read_to_end(&mut response).await.is_ok() && response.starts_with(b"HTTP/1.1 200") {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    shutdown.cancel();
}
