//! A conversation with a server at one protocol revision, over a [`Target`].
//!
//! `2025-11-25` does the `initialize` handshake (and carries
//! `Mcp-Session-Id` over HTTP); `2026-07-28` sends `server/discover` and puts
//! the per-request `_meta` (and, over HTTP, the `Mcp-Method`/`Mcp-Name`
//! headers) on every request.

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::target::{
    ANSWER_DEADLINE, HttpReply, HttpRequest, HttpUrl, Line, LinkError, StdioLink, Target, http_send,
};

/// A protocol revision the probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Revision {
    /// Sessions: `initialize`, then `notifications/initialized`.
    #[serde(rename = "2025-11-25")]
    Sessions,
    /// Stateless: `server/discover`, and `_meta` on every request.
    #[serde(rename = "2026-07-28")]
    Stateless,
}

impl Revision {
    pub const ALL: [Revision; 2] = [Revision::Sessions, Revision::Stateless];

    pub fn name(self) -> &'static str {
        match self {
            Revision::Sessions => "2025-11-25",
            Revision::Stateless => "2026-07-28",
        }
    }

    pub fn named(name: &str) -> Option<Revision> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The first id a control ping uses; generated ids stay below it.
pub const CONTROL_ID_BASE: i64 = 1_000_000;

const CLIENT_INFO: &str = "mcp-probe";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// What the server said about itself at the handshake.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The version it answered `initialize` with, or the versions
    /// `server/discover` listed.
    pub versions: Vec<String>,
    pub capabilities: Value,
    pub server_info: Value,
}

/// What one raw message got back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Every message that came back before the control ping's answer.
    pub answers: Vec<Value>,
    /// Lines (stdio) or bodies (HTTP) that were not JSON.
    pub not_json: Vec<String>,
    /// The HTTP response, over HTTP.
    pub http: Option<HttpReply>,
}

#[derive(Debug)]
enum Wire {
    Stdio(StdioLink),
    Http {
        url: HttpUrl,
        headers: Vec<(String, String)>,
        session: Option<String>,
        version: Option<String>,
    },
}

/// A live conversation.
#[derive(Debug)]
pub struct Session {
    wire: Wire,
    revision: Revision,
    handshaken: bool,
    next_control: i64,
    /// Server-to-client messages (notifications, requests) seen on the way.
    pub asides: Vec<Value>,
    pub facts: Facts,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("the server refused the handshake with HTTP {status}: {body}")]
    Refused { status: u64, body: String },
    #[error("the {revision} handshake failed: {detail}")]
    Handshake { revision: Revision, detail: String },
}

impl Session {
    /// Reaches the server but says nothing yet: for checks of what happens
    /// before the handshake.
    pub fn raw(target: &Target, revision: Revision) -> Result<Session, LinkError> {
        let wire = match target {
            Target::Stdio { program, args } => Wire::Stdio(StdioLink::spawn(program, args)?),
            Target::Http { url, headers } => Wire::Http {
                url: url.clone(),
                headers: headers.clone(),
                session: None,
                version: None,
            },
        };
        Ok(Session {
            wire,
            revision,
            handshaken: false,
            next_control: CONTROL_ID_BASE,
            asides: Vec::new(),
            facts: Facts::default(),
        })
    }

    /// Reaches the server and does the revision's handshake.
    pub async fn open(target: &Target, revision: Revision) -> Result<Session, OpenError> {
        let mut session = Session::raw(target, revision)?;
        session.handshake().await?;
        session.spend_reusable_ids().await?;
        Ok(session)
    }

    /// Has the first control ids answered, so that a generated request
    /// reusing one (the hostile generator's reused ids) reuses an id this session
    /// already had answered.
    async fn spend_reusable_ids(&mut self) -> Result<(), LinkError> {
        while self.next_control < CONTROL_ID_BASE + crate::hostile::REUSABLE_CONTROL_IDS {
            let control = self.control_ping();
            self.call_raw(control).await?;
        }
        Ok(())
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.wire {
            Wire::Stdio(link) => link.pid(),
            Wire::Http { .. } => None,
        }
    }

    /// The HTTP session id the server gave, if any.
    pub fn http_session(&self) -> Option<&str> {
        match &self.wire {
            Wire::Http { session, .. } => session.as_deref(),
            Wire::Stdio(_) => None,
        }
    }

    /// The initialize request this probe sends for `version`.
    pub fn initialize_request(id: Value, version: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": CLIENT_INFO, "version": env!("CARGO_PKG_VERSION")},
        }})
    }

    /// The handshake of this session's revision.
    pub async fn handshake(&mut self) -> Result<(), OpenError> {
        let revision = self.revision;
        let failed = |reply: &Value| match reply["http"]["status"].as_u64() {
            Some(status @ (401 | 403)) => OpenError::Refused {
                status,
                body: reply["http"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
            _ => OpenError::Handshake {
                revision,
                detail: reply.to_string(),
            },
        };
        match revision {
            Revision::Sessions => {
                let reply = self
                    .call_raw(Self::initialize_request(json!(0), revision.name()))
                    .await?;
                let result = reply.get("result").ok_or_else(|| failed(&reply))?;
                let version = result["protocolVersion"].as_str().unwrap_or_default();
                self.facts = Facts {
                    versions: vec![version.to_owned()],
                    capabilities: result["capabilities"].clone(),
                    server_info: result["serverInfo"].clone(),
                };
                if let Wire::Http { version: v, .. } = &mut self.wire {
                    *v = Some(version.to_owned());
                }
                self.handshaken = true;
                self.notify("notifications/initialized", None).await?;
            }
            Revision::Stateless => {
                self.handshaken = true;
                let reply = self.request("server/discover", None).await?;
                let result = reply.get("result").ok_or_else(|| failed(&reply))?;
                let versions = result["supportedVersions"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                self.facts = Facts {
                    versions,
                    capabilities: result["capabilities"].clone(),
                    server_info: result["_meta"]["io.modelcontextprotocol/serverInfo"].clone(),
                };
                if !self.facts.versions.iter().any(|v| v == revision.name()) {
                    return Err(OpenError::Handshake {
                        revision,
                        detail: format!("server/discover does not list {revision}: {result}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends a request this session builds (with the next control id and the
    /// revision's `_meta`) and returns its answer.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, LinkError> {
        let id = self.next_control_id();
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.call_raw(message).await
    }

    /// Sends a notification (with the revision's `_meta`).
    pub async fn notify(&mut self, method: &str, params: Option<Value>) -> Result<(), LinkError> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        let bytes = self.decorate(message).to_string().into_bytes();
        match &mut self.wire {
            Wire::Stdio(link) => link.send(&with_newline(bytes)).await,
            Wire::Http { .. } => self.post(bytes, None).await.map(drop),
        }
    }

    /// Sends `message` (decorated for the revision) and waits for the
    /// answer with its id; other messages on the way are kept as asides.
    pub async fn call_raw(&mut self, message: Value) -> Result<Value, LinkError> {
        let id = message["id"].clone();
        let message = self.decorate(message);
        match &mut self.wire {
            Wire::Stdio(link) => {
                link.send(&with_newline(message.to_string().into_bytes()))
                    .await?;
                self.await_answer(&id).await
            }
            Wire::Http { .. } => {
                let reply = self
                    .post(message.to_string().into_bytes(), Some(&id))
                    .await?;
                let found = take_answer(&reply, &id, &mut self.asides);
                Ok(found.unwrap_or_else(|| http_non_answer(&reply)))
            }
        }
    }

    /// Sends raw bytes as one message (a stdio line, an HTTP body), then a
    /// control ping; returns what came back before the ping's answer.
    /// Fails if the server stops answering: the control ping is how
    /// "keeps serving" is checked.
    pub async fn exchange(&mut self, line: &[u8]) -> Result<Exchange, LinkError> {
        let line = self.decorate_bytes(line);
        let control = self.control_ping();
        let control_id = control["id"].clone();
        match &mut self.wire {
            Wire::Stdio(link) => {
                let mut bytes = with_newline(line);
                bytes.extend(with_newline(control.to_string().into_bytes()));
                link.send(&bytes).await?;
                let (exchange, pong) = self.collect_until(&control_id).await?;
                match pong.get("result") {
                    Some(_) => Ok(exchange),
                    None => Err(LinkError::Unreachable {
                        url: self.describe(),
                        reason: format!("the control ping got {pong}"),
                    }),
                }
            }
            Wire::Http { .. } => {
                let reply = self.post(line, None).await?;
                let mut exchange = Exchange::default();
                for message in reply.messages() {
                    match message {
                        Line::Message(m) => exchange.answers.push(m),
                        Line::NotJson(t) => exchange.not_json.push(t),
                    }
                }
                exchange.http = Some(reply);
                let pong = self.call_raw(control).await?;
                if pong.get("result").is_none() {
                    return Err(LinkError::Unreachable {
                        url: self.describe(),
                        reason: format!("the control ping got {pong}"),
                    });
                }
                Ok(exchange)
            }
        }
    }

    /// The control request with the next control id, decorated for the
    /// revision: a ping, or at 2026-07-28 (which has no ping) a
    /// `server/discover`.
    pub fn control_ping(&mut self) -> Value {
        let id = self.next_control_id();
        let method = match self.revision {
            Revision::Sessions => "ping",
            Revision::Stateless => "server/discover",
        };
        self.decorate(json!({"jsonrpc": "2.0", "id": id, "method": method}))
    }

    /// The next id from the probe's own range (above any generated id).
    pub fn next_id(&mut self) -> Value {
        self.next_control_id()
    }

    fn next_control_id(&mut self) -> Value {
        self.next_control += 1;
        json!(self.next_control)
    }

    fn describe(&self) -> String {
        match &self.wire {
            Wire::Stdio(_) => "the child process".to_owned(),
            Wire::Http { url, .. } => url.to_string(),
        }
    }

    /// The request this session would POST for `body`, over HTTP: the
    /// target's URL and headers, the session id and protocol version.
    pub fn http_base(&self, body: Vec<u8>) -> Option<(HttpUrl, HttpRequest)> {
        let Wire::Http {
            url,
            headers,
            session,
            version,
        } = &self.wire
        else {
            return None;
        };
        let mut all = vec![
            (
                "Accept".to_owned(),
                "application/json, text/event-stream".to_owned(),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        all.extend(headers.iter().cloned());
        if let Some(id) = session {
            all.push(("Mcp-Session-Id".to_owned(), id.clone()));
        }
        if let Some(v) = version.as_ref().filter(|_| self.handshaken) {
            all.push(("MCP-Protocol-Version".to_owned(), v.clone()));
        }
        if self.revision == Revision::Stateless {
            all.push((
                "MCP-Protocol-Version".to_owned(),
                self.revision.name().to_owned(),
            ));
            all.extend(standard_headers(&body));
        }
        let request = HttpRequest {
            method: "POST",
            headers: all,
            body,
            headers_only: false,
        };
        Some((url.clone(), request))
    }

    /// Posts `body` with this session's headers; remembers a session id the
    /// server hands out.
    async fn post(
        &mut self,
        body: Vec<u8>,
        awaiting: Option<&Value>,
    ) -> Result<HttpReply, LinkError> {
        let (url, request) = self.http_base(body).expect("post is only called over HTTP");
        let reply = http_send(&url, &request, awaiting).await?;
        if let (Some(id), Wire::Http { session, .. }) =
            (reply.header("mcp-session-id"), &mut self.wire)
        {
            *session = Some(id.to_owned());
        }
        Ok(reply)
    }

    /// Adds the revision's request `_meta` to a request or notification.
    fn decorate(&self, mut message: Value) -> Value {
        if self.revision != Revision::Stateless || !self.handshaken {
            return message;
        }
        let is_request = message.get("id").is_some();
        let Some(object) = message.as_object_mut() else {
            return message;
        };
        if !object.get("method").is_some_and(Value::is_string) {
            return message;
        }
        let params = object.entry("params").or_insert_with(|| json!({}));
        let Some(params) = params.as_object_mut() else {
            return message;
        };
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if let (Some(meta), true) = (meta.as_object_mut(), is_request) {
            meta.entry(META_VERSION)
                .or_insert(json!(Revision::Stateless.name()));
            meta.entry(META_CAPABILITIES).or_insert(json!({}));
            meta.entry(META_CLIENT_INFO)
                .or_insert(json!({"name": CLIENT_INFO, "version": env!("CARGO_PKG_VERSION")}));
        }
        message
    }

    /// [`Session::decorate`] for raw bytes that parse as one JSON object;
    /// anything else goes out as it is.
    fn decorate_bytes(&self, line: &[u8]) -> Vec<u8> {
        if self.revision != Revision::Stateless {
            return line.to_vec();
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(value @ Value::Object(_)) => self.decorate(value).to_string().into_bytes(),
            _ => line.to_vec(),
        }
    }

    async fn await_answer(&mut self, id: &Value) -> Result<Value, LinkError> {
        let (_, answer) = self.collect_until(id).await?;
        Ok(answer)
    }

    /// Reads stdio lines until the answer with `id`: returns everything
    /// that came before it, and the answer itself.
    async fn collect_until(&mut self, id: &Value) -> Result<(Exchange, Value), LinkError> {
        let Wire::Stdio(link) = &mut self.wire else {
            unreachable!("only stdio reads line by line")
        };
        let deadline = Instant::now() + ANSWER_DEADLINE;
        let mut exchange = Exchange::default();
        loop {
            match link.recv(deadline).await? {
                Line::NotJson(text) => exchange.not_json.push(text),
                Line::Message(m) if is_server_message(&m) => self.asides.push(m),
                Line::Message(m) if m.get("id") == Some(id) && is_answer(&m) => {
                    return Ok((exchange, m));
                }
                Line::Message(m) => exchange.answers.push(m),
            }
        }
    }
}

fn with_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(b'\n');
    bytes
}

/// A message the server sends on its own: a request or notification.
fn is_server_message(message: &Value) -> bool {
    message.get("method").is_some_and(Value::is_string)
        && message.get("result").is_none()
        && message.get("error").is_none()
}

fn is_answer(message: &Value) -> bool {
    message.get("result").is_some() || message.get("error").is_some()
}

/// Takes the answer with `id` out of an HTTP reply; other messages are asides.
fn take_answer(reply: &HttpReply, id: &Value, asides: &mut Vec<Value>) -> Option<Value> {
    let mut found = None;
    for line in reply.messages() {
        match line {
            Line::Message(m) if m.get("id") == Some(id) && is_answer(&m) => found = Some(m),
            Line::Message(m) => asides.push(m),
            Line::NotJson(_) => {}
        }
    }
    found
}

/// What a request that got no JSON-RPC answer over HTTP is reported as:
/// the status and body, so the check can say what happened.
fn http_non_answer(reply: &HttpReply) -> Value {
    json!({"http": {"status": reply.status, "body": String::from_utf8_lossy(&reply.body)}})
}

/// SEP-2243's `Mcp-Method` and `Mcp-Name` headers for a body, at 2026-07-28.
pub(crate) fn standard_headers(body: &[u8]) -> Vec<(String, String)> {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(method) = message["method"].as_str() else {
        return Vec::new();
    };
    let mut headers = vec![("Mcp-Method".to_owned(), method.to_owned())];
    let name = match method {
        "tools/call" | "prompts/get" => message["params"]["name"].as_str(),
        "resources/read" => message["params"]["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = name {
        headers.push(("Mcp-Name".to_owned(), header_value(name)));
    }
    headers
}

/// A header value as SEP-2243 writes it: as is when it is visible ASCII,
/// else `=?base64?…?=`.
fn header_value(text: &str) -> String {
    if text.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        text.to_owned()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        format!("=?base64?{encoded}?=")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_named_as_the_spec_names_them() {
        assert_eq!(Revision::named("2026-07-28"), Some(Revision::Stateless));
        assert_eq!(Revision::named("2025-06-18"), None);
        assert_eq!(
            serde_json::to_string(&Revision::Sessions).unwrap(),
            "\"2025-11-25\""
        );
    }

    #[test]
    fn standard_headers_name_the_method_and_the_tool() {
        let body =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caf\u00e9"}}"#;
        let headers = standard_headers(body);
        assert_eq!(headers[0], ("Mcp-Method".into(), "tools/call".into()));
        assert_eq!(headers[1].1, "=?base64?Y2Fmw6k=?=");
        assert!(standard_headers(b"not json").is_empty());
    }
}
