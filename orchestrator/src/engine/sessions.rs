//! Sessions: each server has a live session (and, for hedged reads, a
//! spare one), each with the generation of the connection that opened it,
//! so that a caller only ever drops the session it saw fail. A slot's lock
//! is held across a reconnect, so concurrent callers wait for one reconnect
//! instead of starting their own.
//!
//! A session the orchestrator gives up on (its call failed or timed out,
//! its handshake did not finish, a hedge beat it) is closed, not only
//! dropped: over HTTP that deletes it on the server, which would otherwise
//! keep it for minutes. The close runs in the background, so that a retry
//! never waits on a server that may be gone; [`Server::close_all`] (on
//! shutdown) waits for those closes too. Every close is bounded by
//! [`SESSION_CLOSE_TIMEOUT`].

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::model::Tool;
use tokio::{task::JoinSet, time::Instant};

use super::Orchestrator;
use crate::{
    breaker::SharedBreaker,
    connector::{ConnectError, Connector, HttpRefusal},
    error::{Failure, Request},
    event::EventKind,
    policy::Policy,
    session::Session,
};

/// One configured server and the sessions open to it.
pub(super) struct Server {
    pub(super) name: String,
    connector: Arc<dyn Connector>,
    /// The live session, if any.
    pub(super) live: Slot,
    /// A second session for hedged reads (only with `hedge_after`).
    pub(super) spare: Slot,
    /// Connections made so far; the next one gets this plus one.
    connections: AtomicU64,
    breaker: SharedBreaker,
    /// Sessions being closed in the background, at most
    /// [`CLOSING_MAX`]; shutdown waits for them.
    closing: Mutex<JoinSet<()>>,
}

/// The longest a session's close is waited for: enough for a DELETE to a
/// live server, short enough that Ctrl-C never hangs on a dead one.
pub(crate) const SESSION_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a retired session waits for the calls of other queries
/// still on it, and how often it looks.
const SESSION_SHARED_WAIT: Duration = Duration::from_secs(5);
const SESSION_SHARED_POLL: Duration = Duration::from_millis(20);

/// Most background closes per server. Past it a session is only dropped,
/// which still closes it in rmcp's own task, unwaited.
const CLOSING_MAX: usize = 32;

/// Where a session is kept: the server's live or spare one.
pub(super) type Slot = tokio::sync::Mutex<Option<Live>>;

/// An open session and what it offered when it opened.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) session: Arc<dyn Session>,
    pub(super) tools: Arc<Vec<Tool>>,
    /// Counts connections to this server, so that a caller only drops the
    /// session it saw fail, never a newer one.
    pub(super) generation: u64,
}

impl Server {
    pub(super) fn new(name: String, connector: Arc<dyn Connector>, policy: &Policy) -> Self {
        let breaker = SharedBreaker::new(name.clone(), policy);
        Self {
            name,
            connector,
            live: Slot::default(),
            spare: Slot::default(),
            connections: AtomicU64::new(0),
            breaker,
            closing: Mutex::new(JoinSet::new()),
        }
    }

    /// Where the connector connects, for messages.
    pub(super) fn target(&self) -> String {
        self.connector.target()
    }

    pub(super) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(super) fn breaker_trips(&self) -> u64 {
        self.breaker.trips()
    }

    /// Lets a request through the breaker, or says how long it stays open.
    pub(super) fn admit(&self) -> Result<(), Failure> {
        self.breaker.admit()
    }

    /// Tells the breaker how a request went; returns the transition it
    /// made, if it opened or closed.
    pub(super) fn report(&self, healthy: bool) -> Option<EventKind> {
        self.breaker.report(healthy)
    }

    /// The server answered 429 with `Retry-After: after`: no call goes to
    /// it, from any query, until that has passed.
    pub(super) fn hold_for(&self, after: Duration) {
        self.breaker.hold_for(after);
    }

    /// Waits out any `Retry-After` the server gave, including one given
    /// while waiting; fails at once (429, with the wait left) if it
    /// outlasts `deadline`: the retry loop then gives up, as waiting would
    /// only fail later.
    pub(super) async fn wait_out_retry_after(&self, deadline: Instant) -> Result<(), Failure> {
        while let Some(wait) = self.breaker.held_for() {
            if Instant::now() + wait >= deadline {
                return Err(Failure::RateLimited(HttpRefusal::RateLimited {
                    retry_after: Some(wait),
                }));
            }
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The live session, if there is one and it has not closed.
    pub(super) async fn open_live(&self) -> Option<Live> {
        let live = self.live.lock().await.clone()?;
        (!live.session.is_closed()).then_some(live)
    }

    /// Closes `session` in the background, within [`SESSION_CLOSE_TIMEOUT`],
    /// once no other call holds it (or after [`SESSION_SHARED_WAIT`]): other
    /// queries may share a session, and closing it under them would fail
    /// their calls.
    pub(super) fn retire(&self, session: Arc<dyn Session>) {
        let mut closing = self.closing.lock().expect("closing lock");
        while closing.try_join_next().is_some() {}
        if closing.len() >= CLOSING_MAX {
            tracing::debug!(server = %self.name, "too many sessions closing; dropping one unwaited");
            return;
        }
        let name = self.name.clone();
        closing.spawn(async move {
            let shared_until = Instant::now() + SESSION_SHARED_WAIT;
            while Arc::strong_count(&session) > 1 && Instant::now() < shared_until {
                tokio::time::sleep(SESSION_SHARED_POLL).await;
            }
            if tokio::time::timeout(SESSION_CLOSE_TIMEOUT, session.close())
                .await
                .is_err()
            {
                tracing::debug!(server = %name, "a session did not close in time");
            }
        });
    }

    /// Closes both sessions, and waits (each within
    /// [`SESSION_CLOSE_TIMEOUT`]) for them and every session still closing.
    pub(super) async fn close_all(&self) {
        for slot in [&self.live, &self.spare] {
            if let Some(live) = slot.lock().await.take() {
                self.retire(live.session);
            }
        }
        let mut closing = std::mem::take(&mut *self.closing.lock().expect("closing lock"));
        while let Some(closed) = closing.join_next().await {
            if let Err(error) = closed {
                tracing::warn!(server = %self.name, %error, "closing a session failed");
            }
        }
    }
}

impl Orchestrator {
    /// The session in `slot` (the server's live or spare one), connecting
    /// (and listing its tools) if there is none or it has closed.
    pub(super) async fn live(
        &self,
        server: &Server,
        slot: &Slot,
        deadline: Instant,
    ) -> Result<Live, Failure> {
        let mut slot = slot.lock().await;
        if let Some(live) = slot.as_ref() {
            if !live.session.is_closed() {
                return Ok(live.clone());
            }
            tracing::info!(server = %server.name, "connection closed; reconnecting");
        }
        *slot = None;
        let generation = server.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.emit(server, EventKind::Connect { generation });
        let timeout = self
            .policy
            .settings()
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let live = open(server, generation, timeout).await?;
        *slot = Some(live.clone());
        Ok(live)
    }

    /// Drops the session `generation` of `server`, unless a newer one
    /// already replaced it.
    pub(super) async fn drop_live(&self, server: &Server, generation: u64) {
        for slot in [&server.live, &server.spare] {
            let mut slot = slot.lock().await;
            if slot.as_ref().is_some_and(|l| l.generation == generation) {
                tracing::info!(server = %server.name, generation, "dropping connection");
                if let Some(live) = slot.take() {
                    server.retire(live.session);
                }
            }
        }
    }

    /// Makes the spare session the live one, closing the live one.
    pub(super) async fn promote_spare(&self, server: &Server) {
        let mut live = server.live.lock().await;
        let mut spare = server.spare.lock().await;
        if let Some(fresh) = spare.take()
            && !fresh.session.is_closed()
        {
            tracing::info!(server = %server.name, generation = fresh.generation, "the hedge won: its connection becomes the live one");
            if let Some(slow) = live.replace(fresh) {
                server.retire(slow.session);
            }
        }
    }
}

/// Opens connection `generation` to `server` and lists its tools, all
/// within `timeout`. A session whose tools could not be listed is closed.
async fn open(server: &Server, generation: u64, timeout: Duration) -> Result<Live, Failure> {
    let until = Instant::now() + timeout;
    let late = || {
        Failure::Connect(ConnectError::Handshake {
            target: server.target(),
            message: format!("no answer within {} ms", timeout.as_millis()),
            stderr_tail: String::new(),
        })
    };
    let session = match tokio::time::timeout_at(until, server.connector.connect()).await {
        Ok(connected) => Arc::<dyn Session>::from(connected.map_err(Failure::connecting)?),
        Err(_elapsed) => return Err(late()),
    };
    let listed = tokio::time::timeout_at(until, session.list_tools()).await;
    let tools = match listed {
        Ok(Ok(tools)) => tools,
        Ok(Err(error)) => {
            server.retire(session);
            return Err(Failure::from_session(error, Request::ListTools, || {
                server.target()
            }));
        }
        Err(_elapsed) => {
            server.retire(session);
            return Err(late());
        }
    };
    tracing::debug!(server = %server.name, generation, tools = tools.len(), "connected");
    Ok(Live {
        session,
        tools: Arc::new(tools),
        generation,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use futures::future::BoxFuture;
    use rmcp::model::{CallToolResult, JsonObject};
    use serde_json::{Map, Value};

    use super::*;
    use crate::{planner::ToolRef, session::SessionError};

    /// What one fake session does.
    #[derive(Debug, Clone, Copy, Default)]
    struct Script {
        list_fails: bool,
        call_fails: bool,
        /// How long its close takes (virtual time).
        close_takes: Duration,
    }

    /// Which fake sessions (numbered from 0 in connection order) began and
    /// finished closing.
    #[derive(Debug, Default)]
    struct Closes {
        begun: Vec<usize>,
        done: Vec<usize>,
    }

    #[derive(Debug)]
    struct Fake {
        number: usize,
        script: Script,
        closes: Arc<Mutex<Closes>>,
        closed: AtomicBool,
    }

    fn reset() -> SessionError {
        SessionError::Transport("connection reset".into())
    }

    impl Session for Fake {
        fn list_tools(&self) -> BoxFuture<'_, Result<Vec<Tool>, SessionError>> {
            let listed = match self.script.list_fails {
                true => Err(reset()),
                false => Ok(vec![Tool::new("echo", "echo", JsonObject::new())]),
            };
            Box::pin(async move { listed })
        }

        fn call_tool(
            &self,
            _tool: &str,
            _arguments: Map<String, Value>,
            _timeout: Duration,
        ) -> BoxFuture<'_, Result<CallToolResult, SessionError>> {
            let reply = match self.script.call_fails {
                true => Err(reset()),
                false => Ok(CallToolResult::success(Vec::new())),
            };
            Box::pin(async move { reply })
        }

        fn is_closed(&self) -> bool {
            self.closed.load(Ordering::Relaxed)
        }

        fn close(&self) -> BoxFuture<'_, ()> {
            self.closed.store(true, Ordering::Relaxed);
            self.closes.lock().unwrap().begun.push(self.number);
            Box::pin(async move {
                tokio::time::sleep(self.script.close_takes).await;
                self.closes.lock().unwrap().done.push(self.number);
            })
        }
    }

    /// Connection n gets `scripts[n]` (the last one once they run out).
    #[derive(Debug)]
    struct Scripted {
        scripts: Vec<Script>,
        opened: AtomicUsize,
        closes: Arc<Mutex<Closes>>,
    }

    impl Connector for Scripted {
        fn target(&self) -> String {
            "fake://server".into()
        }

        fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
            let number = self.opened.fetch_add(1, Ordering::Relaxed);
            let script = self.scripts[number.min(self.scripts.len() - 1)];
            let session = Fake {
                number,
                script,
                closes: self.closes.clone(),
                closed: AtomicBool::new(false),
            };
            Box::pin(async move { Ok(Box::new(session) as Box<dyn Session>) })
        }
    }

    fn orchestrator(scripts: Vec<Script>) -> (Orchestrator, Arc<Mutex<Closes>>) {
        let closes = Arc::new(Mutex::new(Closes::default()));
        let connector = Scripted {
            scripts,
            opened: AtomicUsize::new(0),
            closes: closes.clone(),
        };
        let servers = vec![("fake".to_owned(), Arc::new(connector) as Arc<dyn Connector>)];
        (Orchestrator::new(servers, Policy::DEFAULT, 1), closes)
    }

    async fn call_echo(orchestrator: &Orchestrator) -> u32 {
        let tool = ToolRef {
            server: "fake".into(),
            tool: "echo".into(),
            input: "x".into(),
            count_input: None,
            retry_safe: true,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let (_reply, attempts) = orchestrator
            .call(&tool, &Map::new(), deadline)
            .await
            .expect("the retry succeeds");
        attempts
    }

    const FAILS: Script = Script {
        list_fails: false,
        call_fails: true,
        close_takes: Duration::ZERO,
    };
    const WORKS: Script = Script {
        list_fails: false,
        call_fails: false,
        close_takes: Duration::ZERO,
    };

    fn begun_and_done(closes: &Mutex<Closes>) -> (Vec<usize>, Vec<usize>) {
        let closes = closes.lock().unwrap();
        (closes.begun.clone(), closes.done.clone())
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_replaced_after_a_failed_call_is_closed() {
        let (orchestrator, closes) = orchestrator(vec![FAILS, WORKS]);
        assert_eq!(call_echo(&orchestrator).await, 2);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            begun_and_done(&closes),
            (vec![0], vec![0]),
            "the failed session is closed, the live one is not"
        );
        orchestrator.shutdown().await;
        assert_eq!(begun_and_done(&closes), (vec![0, 1], vec![0, 1]));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_sessions_still_closing() {
        let slow_close = Script {
            close_takes: Duration::from_secs(1),
            ..FAILS
        };
        let (orchestrator, closes) = orchestrator(vec![slow_close, WORKS]);
        assert_eq!(call_echo(&orchestrator).await, 2);
        assert_eq!(begun_and_done(&closes), (vec![0], vec![]), "still closing");
        let started = Instant::now();
        orchestrator.shutdown().await;
        assert_eq!(
            begun_and_done(&closes).1.len(),
            2,
            "it waited for the close under way, and closed the live one"
        );
        assert!(started.elapsed() <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_whose_tools_cannot_be_listed_is_closed() {
        let unlisted = Script {
            list_fails: true,
            ..WORKS
        };
        let (orchestrator, closes) = orchestrator(vec![unlisted, WORKS]);
        let (catalog, down) = orchestrator.catalog().await;
        assert!(down.is_empty(), "{down:?}");
        assert_eq!(catalog.entries().len(), 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(begun_and_done(&closes), (vec![0], vec![0]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_that_never_finishes_is_given_up_on_in_time() {
        let stuck = Script {
            close_takes: Duration::from_secs(3600),
            ..WORKS
        };
        let (orchestrator, closes) = orchestrator(vec![stuck]);
        assert_eq!(call_echo(&orchestrator).await, 1);
        let started = Instant::now();
        orchestrator.shutdown().await;
        assert_eq!(started.elapsed(), SESSION_CLOSE_TIMEOUT);
        assert_eq!(begun_and_done(&closes), (vec![0], vec![]));
    }
}
