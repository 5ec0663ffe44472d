//! Deliberately planted bugs, for proving that the property tests find,
//! shrink and replay a real defect. A bug is planted from outside, as a
//! [`Connector`] that wraps every [`Session`] the orchestrator opens, or
//! as a stream under the HTTP connections the simulation dials ([`Deaf`]):
//! the orchestrator itself runs unmodified and contains no planted bug. A bug
//! acts only in a run whose scenario names it (`planted_bug = "..."`, as
//! `harness explore --planted-bug` writes it out).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use orchestrator::{ConnectError, Connector, Session, SessionError};
use rmcp::model::{CallToolResult, Tool};
use serde_json::{Map, Value};

/// A bug that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// After a failed attempt on a server (the call errored, timed out or
    /// was abandoned) and a reconnect, the retried call re-sends the
    /// arguments of the previous call to that server instead of its own: a
    /// stale request cache. The payment server then returns another user's
    /// transactions.
    StaleRetryArguments,
    /// A 429's `Retry-After` is lost before the client reads it (a client
    /// that drops the header; planted on the HTTP connections the
    /// simulation dials, see [`Deaf`]): it then asks again on its own
    /// backoff, sooner than the server asked. Breaks `retry_after`.
    IgnoreRetryAfter,
}

impl PlantedBug {
    /// Every bug there is.
    pub const ALL: [PlantedBug; 2] = [
        PlantedBug::StaleRetryArguments,
        PlantedBug::IgnoreRetryAfter,
    ];

    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::StaleRetryArguments => "stale-retry-arguments",
            PlantedBug::IgnoreRetryAfter => "ignore-retry-after",
        }
    }

    /// Every bug's name, quoted, for messages.
    pub fn names() -> String {
        Self::ALL.map(|b| format!("\"{}\"", b.name())).join(", ")
    }

    /// The bug a scenario file names, if any is called that.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|bug| bug.name() == name)
    }

    /// `connector`, with this bug planted in every session it opens (a bug
    /// planted on the wire leaves it as it is).
    pub fn plant(self, connector: Arc<dyn Connector>) -> Arc<dyn Connector> {
        match self {
            PlantedBug::StaleRetryArguments => Arc::new(StaleRetries {
                inner: connector,
                memory: Arc::default(),
            }),
            // Planted on the wire instead: see [`Deaf`].
            PlantedBug::IgnoreRetryAfter => connector,
        }
    }
}

/// `connector` with `bug` planted, or as it is without one.
pub(crate) fn wrap(bug: Option<PlantedBug>, connector: Arc<dyn Connector>) -> Arc<dyn Connector> {
    match bug {
        Some(bug) => bug.plant(connector),
        None => connector,
    }
}

/// Failed calls remembered, awaiting their retry; the oldest is forgotten.
const FAILED_CALLS_MAX: usize = 64;

/// The connector of [`PlantedBug::StaleRetryArguments`]: one server's
/// sessions, sharing what was last sent to that server.
#[derive(Debug)]
struct StaleRetries {
    inner: Arc<dyn Connector>,
    memory: Arc<Mutex<Memory>>,
}

/// What the stale request cache remembers about one server.
#[derive(Debug, Default)]
struct Memory {
    /// Sessions opened so far; each knows its number.
    sessions: u64,
    /// The arguments of the last call sent (retries aside).
    last: Option<Map<String, Value>>,
    /// Calls that failed and may be retried.
    failed: VecDeque<Failed>,
}

/// A call that failed on session `session`.
#[derive(Debug)]
struct Failed {
    call: Call,
    session: u64,
}

/// A call as the orchestrator asked for it, and the arguments of the call
/// sent to the same server before it (what the bug re-sends).
#[derive(Debug, Clone)]
struct Call {
    tool: String,
    arguments: Map<String, Value>,
    previous: Option<Map<String, Value>>,
}

impl Memory {
    /// The call the orchestrator asks for on session `session`, and the
    /// arguments the bug sends: a retry (the same tool and arguments as a
    /// call that failed on an older session) gets the previous call's.
    fn outgoing(
        &mut self,
        session: u64,
        tool: &str,
        arguments: Map<String, Value>,
    ) -> (Call, Map<String, Value>) {
        let retried = self.failed.iter().position(|f| {
            f.session < session && f.call.tool == tool && f.call.arguments == arguments
        });
        if let Some(retried) = retried.and_then(|i| self.failed.remove(i)) {
            let sent = retried.call.previous.clone().unwrap_or(arguments);
            return (retried.call, sent);
        }
        let previous = self.last.replace(arguments.clone());
        let call = Call {
            tool: tool.to_owned(),
            arguments: arguments.clone(),
            previous,
        };
        (call, arguments)
    }

    fn failed(&mut self, call: Call, session: u64) {
        if self.failed.len() == FAILED_CALLS_MAX {
            self.failed.pop_front();
        }
        self.failed.push_back(Failed { call, session });
    }
}

impl Connector for StaleRetries {
    fn target(&self) -> String {
        self.inner.target()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let inner = self.inner.connect().await?;
            let number = {
                let mut memory = self.memory.lock().expect("planted-bug lock");
                memory.sessions += 1;
                memory.sessions
            };
            let session: Box<dyn Session> = Box::new(StaleSession {
                inner,
                number,
                memory: self.memory.clone(),
            });
            Ok(session)
        })
    }
}

#[derive(Debug)]
struct StaleSession {
    inner: Box<dyn Session>,
    number: u64,
    memory: Arc<Mutex<Memory>>,
}

/// Remembers its call as failed unless disarmed by a reply: a call whose
/// future is dropped unfinished (abandoned) failed too.
struct UntilReplied {
    call: Option<Call>,
    session: u64,
    memory: Arc<Mutex<Memory>>,
}

impl Drop for UntilReplied {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let mut memory = self.memory.lock().expect("planted-bug lock");
            memory.failed(call, self.session);
        }
    }
}

impl Session for StaleSession {
    fn list_tools(&self) -> BoxFuture<'_, Result<Vec<Tool>, SessionError>> {
        self.inner.list_tools()
    }

    fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CallToolResult, SessionError>> {
        let (call, sent) =
            self.memory
                .lock()
                .expect("planted-bug lock")
                .outgoing(self.number, tool, arguments);
        let pending = UntilReplied {
            call: Some(call),
            session: self.number,
            memory: self.memory.clone(),
        };
        let reply = self.inner.call_tool(tool, sent, timeout);
        Box::pin(async move {
            // The whole guard moves into the future, so that dropping the
            // future unfinished drops it too.
            let mut pending = pending;
            let reply = reply.await;
            if reply.is_ok() {
                pending.call = None;
            }
            reply
        })
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.inner.close()
    }
}

/// What the client of [`PlantedBug::IgnoreRetryAfter`] reads off an HTTP
/// connection: the bytes as they came, except that every `retry-after`
/// (in any case) reads `xetry-after`, so no layer of the client ever sees
/// the header. The wire log records the bytes as sent.
#[derive(Debug)]
pub(crate) struct Deaf<T> {
    inner: T,
    deaf: bool,
}

impl<T> Deaf<T> {
    /// `inner`, deaf to `Retry-After` when `deaf` is set.
    pub(crate) fn new(inner: T, deaf: bool) -> Self {
        Self { inner, deaf }
    }
}

/// Rewrites each `retry-after` in `bytes` (ASCII, any case) in place.
fn deafen(bytes: &mut [u8]) {
    const NAME: &[u8] = b"retry-after";
    let mut at = 0;
    while at + NAME.len() <= bytes.len() {
        if bytes[at..at + NAME.len()].eq_ignore_ascii_case(NAME) {
            bytes[at] = b'x';
            at += NAME.len();
        } else {
            at += 1;
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Deaf<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.deaf {
            deafen(&mut buf.filled_mut()[before..]);
        }
        poll
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Deaf<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, bytes)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(user: &str) -> Map<String, Value> {
        Map::from_iter([("userId".to_owned(), Value::from(user))])
    }

    #[test]
    fn names_round_trip() {
        for bug in PlantedBug::ALL {
            assert_eq!(PlantedBug::from_name(bug.name()), Some(bug));
        }
        assert_eq!(PlantedBug::from_name("nonsense"), None);
        assert_eq!(
            PlantedBug::names(),
            "\"stale-retry-arguments\", \"ignore-retry-after\""
        );
    }

    #[test]
    fn a_retry_on_a_new_session_resends_the_previous_calls_arguments() {
        let mut memory = Memory::default();
        let (_, sent) = memory.outgoing(1, "list", args("a"));
        assert_eq!(sent, args("a"));
        let (failing, sent) = memory.outgoing(1, "list", args("b"));
        assert_eq!(sent, args("b"), "a first attempt is sent as asked");
        memory.failed(failing, 1);
        let (_, sent) = memory.outgoing(1, "list", args("b"));
        assert_eq!(sent, args("b"), "no reconnect, no stale arguments");
        let (again, sent) = memory.outgoing(2, "list", args("b"));
        assert_eq!(sent, args("a"), "the retry after a reconnect is stale");
        memory.failed(again, 2);
        let (_, sent) = memory.outgoing(3, "list", args("b"));
        assert_eq!(sent, args("a"), "and so is the next one");
        let (_, sent) = memory.outgoing(3, "list", args("c"));
        assert_eq!(sent, args("c"), "a call that never failed is not");
    }

    #[test]
    fn a_deaf_client_reads_retry_after_as_another_header() {
        let mut head =
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nx: retry-after\r\n".to_vec();
        deafen(&mut head);
        assert_eq!(
            head,
            b"HTTP/1.1 429 Too Many Requests\r\nxetry-After: 1\r\nx: xetry-after\r\n".to_vec()
        );
    }
}
