//! The checks: each named, tied to the spec text it comes from, and a MUST
//! (a failure) or a SHOULD (a warning).

use serde::Serialize;

pub(crate) mod http;
pub(crate) mod jsonrpc;
pub(crate) mod lifecycle;
pub(crate) mod limits;
pub(crate) mod tools;

/// How binding a requirement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Not holding it fails the run.
    Must,
    /// Not holding it is a warning.
    Should,
}

/// One requirement.
#[derive(Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub level: Level,
    /// Where it is written: a page of the MCP specification (under
    /// `https://modelcontextprotocol.io/specification/<revision>/`), or
    /// another standard.
    pub spec: &'static str,
    /// What it requires, in a line.
    pub says: &'static str,
}

macro_rules! checks {
    ($($name:ident = $id:literal, $level:ident, $spec:literal, $says:literal;)*) => {
        $(pub const $name: Check = Check { id: $id, level: Level::$level, spec: $spec, says: $says };)*
        /// Every check, in the order they are reported.
        pub const ALL: &[&Check] = &[$(&$name),*];
    };
}

checks! {
    ANSWER_ID = "jsonrpc.answer-id", Must, "JSON-RPC 2.0 §5",
        "every request gets one response, with its id (null when the id could not be read), holding a result or an error";
    NOTIFICATION_SILENCE = "jsonrpc.notification-unanswered", Must, "JSON-RPC 2.0 §4.1",
        "a notification (no id) is never answered";
    ERROR_CODE = "jsonrpc.error-code", Should, "JSON-RPC 2.0 §5.1",
        "a parse error is -32700, an invalid request -32600, an unknown method -32601, bad params -32602";
    KEEPS_SERVING = "jsonrpc.keeps-serving", Must, "basic/utilities/ping",
        "after any message, the server still answers a ping";
    STDOUT_ONLY_MESSAGES = "stdio.stdout-only-messages", Must, "basic/transports#stdio",
        "the server writes nothing to stdout that is not a valid MCP message";
    INITIALIZE = "lifecycle.initialize", Must, "basic/lifecycle#initialization",
        "initialize is answered with protocolVersion, capabilities and serverInfo";
    VERSION_NEGOTIATION = "lifecycle.version-negotiation", Must, "basic/lifecycle#version-negotiation",
        "a supported version is answered with itself, an unsupported one with a version the server supports";
    BEFORE_INITIALIZE = "lifecycle.before-initialize", Must, "basic/lifecycle#initialization",
        "requests before the handshake get a response with their id, and the handshake still works after";
    PING = "utilities.ping", Must, "basic/utilities/ping",
        "a ping is answered promptly with an empty result";
    CANCEL_UNKNOWN = "utilities.cancel-unknown", Must, "basic/utilities/cancellation",
        "cancelling a request the server does not know gets no answer, and the server goes on";
    TOOLS_LIST = "tools.list", Must, "server/tools#listing-tools",
        "tools/list answers a list of tools, each with a name and an object inputSchema, cursors followed to the end";
    TOOLS_UNIQUE = "tools.unique-names", Should, "server/tools#tool-names",
        "tool names are unique within a server";
    CURSOR_INVALID = "tools.invalid-cursor", Should, "server/utilities/pagination#error-handling",
        "an invalid cursor is an error -32602";
    UNKNOWN_TOOL = "tools.unknown-tool", Must, "server/tools#error-handling",
        "calling a tool that does not exist is an error (a protocol error, or isError)";
    UNKNOWN_TOOL_CODE = "tools.unknown-tool-code", Should, "server/tools#error-handling",
        "calling a tool that does not exist is the protocol error -32602";
    VALID_CALL = "tools.valid-call", Must, "server/tools#calling-tools",
        "a call with arguments valid under inputSchema gets a result with content, not a protocol error";
    INVALID_CALL = "tools.invalid-call", Must, "server/tools#security-considerations",
        "a call with arguments invalid under inputSchema is refused: isError, or -32602";
    OUTPUT_SCHEMA = "tools.output-schema", Must, "server/tools#output-schema",
        "a tool with an outputSchema returns structuredContent that validates against it";
    READ_ONLY_REPEAT = "tools.read-only-repeat", Should, "server/tools#tool-annotations",
        "a tool marked readOnlyHint answers the same call the same way twice";
    HTTP_NOTIFICATION_202 = "http.notification-202", Must, "basic/transports#sending-messages-to-the-server",
        "a notification POSTed is accepted with 202 and no body";
    HTTP_BAD_BODY = "http.bad-body-4xx", Must, "basic/transports#sending-messages-to-the-server",
        "a body that is not a message gets an HTTP error status (4xx), never 2xx or 5xx";
    HTTP_BAD_BODY_400 = "http.bad-body-400", Should, "basic/transports#sending-messages-to-the-server",
        "a body that is not a message gets 400 Bad Request";
    HTTP_ACCEPT_406 = "http.accept-406", Should, "basic/transports#sending-messages-to-the-server",
        "a POST whose Accept lacks application/json or text/event-stream gets 406";
    HTTP_CONTENT_TYPE_415 = "http.content-type-415", Should, "basic/transports#sending-messages-to-the-server",
        "a POST that is not Content-Type application/json gets 415";
    HTTP_METHOD_405 = "http.method-405", Should, "basic/transports#streamable-http",
        "a method the endpoint does not serve (PUT) gets 405";
    HTTP_TOO_LARGE = "http.body-too-large", Should, "RFC 9110 §15.5.14",
        "an 8 MiB body is refused with 413 rather than read";
    HTTP_GET = "http.get-sse-or-405", Must, "basic/transports#listening-for-messages-from-the-server",
        "a GET gets an SSE stream (text/event-stream) or 405";
    HTTP_ORIGIN = "http.origin-403", Must, "basic/transports#security-warning",
        "a request with a present and invalid Origin gets 403";
    HTTP_HOST = "http.host-validated", Should, "basic/transports#security-warning",
        "a request for a foreign Host is refused (DNS rebinding)";
    HTTP_SESSION_REQUIRED = "http.session-required-400", Should, "basic/transports#session-management",
        "a server that issues session ids answers a request without one (other than initialize) with 400";
    HTTP_SESSION_UNKNOWN = "http.session-unknown-404", Should, "basic/transports#session-management",
        "a session id the server never issued gets 404";
    HTTP_SESSION_DELETED = "http.session-deleted-404", Must, "basic/transports#session-management",
        "after the client DELETEs its session (2xx), that session id gets 404";
    HTTP_PROTOCOL_VERSION = "http.protocol-version-400", Must, "basic/transports#protocol-version-header",
        "an invalid or unsupported MCP-Protocol-Version header gets 400";
    AUTH_CHALLENGE = "auth.401-challenge", Must, "basic/authorization#authorization-server-discovery",
        "a 401 carries a WWW-Authenticate challenge";
    AUTH_REQUIRED = "auth.token-required", Should, "basic/authorization#access-token-usage",
        "an HTTP server that holds anyone's data asks for a token";
    LIMITS_ALIVE = "limits.alive", Must, "probe: limits",
        "the process neither exits nor stops answering over the whole run";
    LIMITS_RSS = "limits.rss-bounded", Must, "probe: limits",
        "the child's resident memory stays bounded over the run";
}

/// Looks a check up by id.
pub fn named(id: &str) -> Option<&'static Check> {
    ALL.iter().copied().find(|c| c.id == id)
}

/// One message sent and what came back: a step of a minimal exchange.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Step {
    pub sent: String,
    pub got: Vec<String>,
}

/// A requirement that did not hold, with what showed it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub check: &'static Check,
    pub detail: String,
    pub exchange: Vec<Step>,
}

impl Finding {
    pub fn new(check: &'static Check, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            detail: detail.into(),
            exchange: Vec::new(),
        }
    }

    pub fn with(mut self, exchange: Vec<Step>) -> Finding {
        self.exchange = exchange;
        self
    }
}

/// What the deterministic checks of one revision came to: which ran, what
/// they found, and which could not run, with why.
#[derive(Debug, Default)]
pub struct Ledger {
    pub ran: Vec<&'static Check>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<(&'static Check, String)>,
}

impl Ledger {
    pub fn ran(&mut self, check: &'static Check) {
        if !self.ran.iter().any(|c| c.id == check.id) {
            self.ran.push(check);
        }
    }

    /// Records a finding (its check ran).
    pub fn found(&mut self, finding: Finding) {
        self.ran(finding.check);
        self.findings.push(finding);
    }

    /// Records the outcome of `check`: ran, and found `finding` if any.
    pub fn check(&mut self, check: &'static Check, finding: Option<Finding>) {
        self.ran(check);
        self.findings.extend(finding);
    }

    pub fn skip(&mut self, check: &'static Check, reason: impl Into<String>) {
        self.skipped.push((check, reason.into()));
    }
}

/// A step of a minimal exchange from a message and its answer.
pub fn step(sent: &serde_json::Value, got: &serde_json::Value) -> Step {
    Step {
        sent: sent.to_string(),
        got: vec![got.to_string()],
    }
}

/// Shortens `text` to at most `max` characters for a one-line report.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique_and_dotted() {
        let mut ids: Vec<&str> = ALL.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        assert!(ALL.iter().all(|c| c.id.contains('.')));
        assert_eq!(
            named("tools.valid-call").map(|c| c.level),
            Some(Level::Must)
        );
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "hé… (6 bytes)");
        assert_eq!(clip("hi", 5), "hi");
    }
}
