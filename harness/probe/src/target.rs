//! How to reach a server: a child process on stdio, or a streamable-HTTP
//! endpoint. Every read has a deadline and a byte cap, and a child is killed
//! when its link drops.

use std::{
    collections::VecDeque,
    ffi::OsString,
    fmt,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, ChildStdin, ChildStdout, Command},
    time::{Instant, timeout_at},
};

/// How long a server has to answer one message.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// Longest message (stdio line or HTTP body) read from a server.
pub const MESSAGE_BYTES_MAX: usize = 8 << 20;
/// How much of a child's stderr is kept, for the error that says why it died.
const STDERR_TAIL_BYTES: usize = 4096;

/// Why talking to the server failed: each ends the session it happened on.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the server did not answer within {0:?}")]
    Silent(Duration),
    #[error("the server process exited ({status}){stderr}")]
    Exited { status: String, stderr: String },
    #[error("the server wrote a message over the {MESSAGE_BYTES_MAX}-byte cap")]
    TooLong,
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("I/O error talking to the server: {0}")]
    Io(#[from] std::io::Error),
}

/// A server to probe.
#[derive(Debug, Clone)]
pub enum Target {
    /// A program that speaks MCP on its stdin and stdout.
    Stdio {
        program: OsString,
        args: Vec<OsString>,
    },
    /// A streamable-HTTP endpoint, with headers sent on every request
    /// (typically `Authorization`).
    Http {
        url: HttpUrl,
        headers: Vec<(String, String)>,
    },
}

impl Target {
    pub fn is_http(&self) -> bool {
        matches!(self, Target::Http { .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Stdio { program, args } => {
                write!(f, "stdio: {}", program.to_string_lossy())?;
                args.iter()
                    .try_for_each(|a| write!(f, " {}", a.to_string_lossy()))
            }
            Target::Http { url, .. } => write!(f, "{url}"),
        }
    }
}

/// An `http://host:port/path` URL, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://HOST[:PORT][/PATH]`. TLS is not spoken: put the probe
    /// in front of the plain endpoint, or behind a TLS-terminating proxy.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{url}: https is not supported; probe the plain-HTTP endpoint behind the TLS terminator"
                ));
            }
            _ => return Err(format!("{url}: expected http://HOST[:PORT]/PATH")),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("{url}: port {port:?} is not a number from 0 to 65535"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// The value of a `Host` header naming this endpoint.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// A running child process, spoken to line by line.
#[derive(Debug)]
pub struct StdioLink {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
}

/// One line the server wrote: a JSON value, or text that is not JSON.
#[derive(Debug, Clone)]
pub enum Line {
    Message(Value),
    NotJson(String),
}

impl StdioLink {
    /// Starts `program`; its stderr is drained into a bounded tail.
    pub fn spawn(program: &OsString, args: &[OsString]) -> Result<StdioLink, LinkError> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LinkError::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            })?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => unreachable!("all three pipes were requested"),
            };
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        tokio::spawn(drain_stderr(stderr, tail.clone()));
        Ok(StdioLink {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr: tail,
        })
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Writes `bytes` as they are (the caller adds any newline).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let deadline = Instant::now() + ANSWER_DEADLINE;
        let write = async {
            self.stdin.write_all(bytes).await?;
            self.stdin.flush().await
        };
        match timeout_at(deadline, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.exited().await),
            Err(_) => Err(LinkError::Silent(ANSWER_DEADLINE)),
        }
    }

    /// The next line the server writes, by `deadline`.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Line, LinkError> {
        let mut line = Vec::new();
        match timeout_at(deadline, read_line_capped(&mut self.stdout, &mut line)).await {
            Err(_) => Err(LinkError::Silent(ANSWER_DEADLINE)),
            Ok(Err(LinkError::Io(_))) | Ok(Ok(0)) => Err(self.exited().await),
            Ok(Err(other)) => Err(other),
            Ok(Ok(_)) => Ok(parse_line(&line)),
        }
    }

    /// Whether the process has exited, and how.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    async fn exited(&mut self) -> LinkError {
        // The pipe closed: give the process a moment to be reaped.
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => "it closed its stdout".to_owned(),
        };
        let tail = self
            .stderr
            .lock()
            .map(|t| t.iter().copied().collect::<Vec<u8>>());
        let tail = String::from_utf8_lossy(&tail.unwrap_or_default())
            .trim()
            .to_owned();
        let stderr = if tail.is_empty() {
            String::new()
        } else {
            format!("; its stderr ended with:\n{tail}")
        };
        LinkError::Exited { status, stderr }
    }
}

fn parse_line(line: &[u8]) -> Line {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    match serde_json::from_str(text) {
        Ok(value) => Line::Message(value),
        Err(_) => Line::NotJson(text.to_owned()),
    }
}

/// Reads one `\n`-terminated line into `line`, refusing to hold more than
/// [`MESSAGE_BYTES_MAX`]. Returns the bytes read (0 at end of stream).
async fn read_line_capped(
    reader: &mut BufReader<ChildStdout>,
    line: &mut Vec<u8>,
) -> Result<usize, LinkError> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(line.len());
        }
        let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => (&buffer[..=at], true),
            None => (buffer, false),
        };
        if line.len() + chunk.len() > MESSAGE_BYTES_MAX {
            return Err(LinkError::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if done {
            return Ok(line.len());
        }
    }
}

async fn drain_stderr(mut stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        if let Ok(mut tail) = tail.lock() {
            tail.extend(&chunk[..n]);
            let over = tail.len().saturating_sub(STDERR_TAIL_BYTES);
            tail.drain(..over);
        }
    }
}

/// One HTTP request, as the probe builds it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Return once the status and headers are in (a GET's SSE stream stays
    /// open).
    pub headers_only: bool,
}

impl HttpRequest {
    /// Sets header `name` (any case) to `value`, or removes it for `None`.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
    }
}

/// One HTTP response: the status, the headers (names in lower case) and the
/// body, read up to the first answer for `awaiting` on an SSE stream.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/event-stream"))
    }

    /// The JSON-RPC messages in the body: one JSON value (an array counts
    /// as its elements), or the `data` of each SSE event. Text that is not
    /// JSON comes back as `Line::NotJson`.
    pub fn messages(&self) -> Vec<Line> {
        let text = String::from_utf8_lossy(&self.body);
        if self.is_sse() {
            return sse_data(&text)
                .iter()
                .map(|d| parse_line(d.as_bytes()))
                .collect();
        }
        if text.trim().is_empty() {
            return Vec::new();
        }
        match parse_line(text.trim().as_bytes()) {
            Line::Message(Value::Array(items)) => items.into_iter().map(Line::Message).collect(),
            line => vec![line],
        }
    }
}

/// The `data` of each event of an SSE stream (lines joined by `\n`); events
/// with no data (keep-alives, retry hints) are left out.
fn sse_data(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .filter(|d| !d.trim().is_empty())
        .collect()
}

/// Sends `request` to `url` on a fresh connection. An SSE body is read
/// until it ends or carries a response whose id is `awaiting`.
pub async fn http_send(
    url: &HttpUrl,
    request: &HttpRequest,
    awaiting: Option<&Value>,
) -> Result<HttpReply, LinkError> {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    match timeout_at(deadline, http_exchange(url, request, awaiting)).await {
        Ok(result) => result,
        Err(_) => Err(LinkError::Silent(ANSWER_DEADLINE)),
    }
}

async fn http_exchange(
    url: &HttpUrl,
    request: &HttpRequest,
    awaiting: Option<&Value>,
) -> Result<HttpReply, LinkError> {
    let unreachable = |reason: String| LinkError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let stream = TcpStream::connect((url.host.trim_matches(['[', ']']), url.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(build(url, request).map_err(unreachable)?)
        .await
        .map_err(|e| unreachable(format!("the request failed: {e}")))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut reply = HttpReply {
        status,
        headers,
        body: Vec::new(),
    };
    if request.headers_only {
        return Ok(reply);
    }
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unreachable(format!("the body broke off: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if reply.body.len() + data.len() > MESSAGE_BYTES_MAX {
                return Err(LinkError::TooLong);
            }
            reply.body.extend_from_slice(data);
        }
        if reply.is_sse() && answered(&reply, awaiting) {
            break;
        }
    }
    Ok(reply)
}

fn answered(reply: &HttpReply, awaiting: Option<&Value>) -> bool {
    let Some(id) = awaiting else { return false };
    reply.messages().iter().any(|line| match line {
        Line::Message(m) => m.get("id") == Some(id) && m.get("method").is_none(),
        Line::NotJson(_) => false,
    })
}

fn build(url: &HttpUrl, request: &HttpRequest) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut builder = hyper::Request::builder()
        .method(request.method)
        .uri(&url.path);
    if !request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        builder = builder.header("Host", url.authority());
    }
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| format!("the request could not be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_say_why() {
        let url = HttpUrl::parse("http://127.0.0.1:8082/mcp").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8082, "/mcp")
        );
        assert_eq!(HttpUrl::parse("http://localhost").unwrap().port, 80);
        assert_eq!(HttpUrl::parse("http://[::1]:9/x").unwrap().host, "[::1]");
        assert!(
            HttpUrl::parse("https://a/mcp")
                .unwrap_err()
                .contains("https is not supported")
        );
        assert!(
            HttpUrl::parse("a:1/mcp")
                .unwrap_err()
                .contains("expected http://")
        );
        assert!(
            HttpUrl::parse("http://a:99999/")
                .unwrap_err()
                .contains("port")
        );
    }

    #[test]
    fn sse_events_are_split_and_keep_alives_dropped() {
        let text = "event: message\ndata: {\"a\":1}\n\n: ping\n\ndata:\n\nid: 3\ndata: {\"b\":\r\ndata: 2}\r\n\r\n";
        assert_eq!(sse_data(text), vec!["{\"a\":1}", "{\"b\":\n2}"]);
    }

    #[test]
    fn a_json_body_holding_an_array_counts_as_its_messages() {
        let reply = HttpReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"[{"id":1},{"id":2}]"#.to_vec(),
        };
        assert_eq!(reply.messages().len(), 2);
    }
}
