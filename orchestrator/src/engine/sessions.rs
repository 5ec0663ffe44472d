//! Sessions: each server has a live session (and, for hedged reads, a
//! spare one), each with the generation of the connection that opened it,
//! so that a caller only ever drops the session it saw fail. A slot's lock
//! is held across a reconnect, so concurrent callers wait for one reconnect
//! instead of starting their own.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::model::Tool;
use tokio::time::Instant;

use super::Orchestrator;
use crate::{
    breaker::Breaker,
    connector::{ConnectError, Connector},
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
    breaker: Mutex<Breaker>,
}

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
        let settings = policy.settings();
        Self {
            name,
            connector,
            live: Slot::default(),
            spare: Slot::default(),
            connections: AtomicU64::new(0),
            breaker: Mutex::new(Breaker::new(
                settings.breaker_failures,
                settings.breaker_open,
            )),
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
        self.breaker.lock().expect("breaker lock").trips()
    }

    /// Lets a request through the breaker, or says how long it stays open.
    pub(super) fn admit(&self) -> Result<(), Failure> {
        let mut breaker = self.breaker.lock().expect("breaker lock");
        breaker
            .admit(Instant::now())
            .map_err(|wait| Failure::CircuitOpen {
                retry_after_ms: wait.as_millis(),
            })
    }

    /// Tells the breaker how a request went; returns the transition it
    /// made, if it opened or closed.
    pub(super) fn report(&self, healthy: bool) -> Option<EventKind> {
        let mut breaker = self.breaker.lock().expect("breaker lock");
        let was_open = breaker.trips();
        if healthy {
            return breaker.succeeded().then_some(EventKind::BreakerClosed);
        }
        breaker.failed(Instant::now());
        if breaker.trips() > was_open {
            tracing::warn!(server = %self.name, "circuit breaker opened");
            return Some(EventKind::BreakerOpened);
        }
        None
    }

    /// The live session, if there is one and it has not closed.
    pub(super) async fn open_live(&self) -> Option<Live> {
        let live = self.live.lock().await.clone()?;
        (!live.session.is_closed()).then_some(live)
    }

    /// Closes both sessions, waiting for each that nobody else holds.
    pub(super) async fn close_all(&self) {
        for slot in [&self.live, &self.spare] {
            let Some(mut live) = slot.lock().await.take() else {
                continue;
            };
            match Arc::get_mut(&mut live.session) {
                Some(only) => only.close_and_wait().await,
                None => live.session.close(),
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
                    live.session.close();
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
                slow.session.close();
            }
        }
    }
}

/// Opens connection `generation` to `server` and lists its tools, all
/// within `timeout`.
async fn open(server: &Server, generation: u64, timeout: Duration) -> Result<Live, Failure> {
    let handshake = async {
        let session = server
            .connector
            .connect()
            .await
            .map_err(Failure::connecting)?;
        let tools = session.list_tools().await.map_err(|error| {
            Failure::from_session(error, Request::ListTools, || server.target())
        })?;
        Ok::<_, Failure>((session, tools))
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok((session, tools))) => {
            tracing::debug!(server = %server.name, generation, tools = tools.len(), "connected");
            Ok(Live {
                session: Arc::from(session),
                tools: Arc::new(tools),
                generation,
            })
        }
        Ok(Err(failure)) => Err(failure),
        Err(_elapsed) => Err(Failure::Connect(ConnectError::Handshake {
            target: server.target(),
            message: format!("no answer within {} ms", timeout.as_millis()),
            stderr_tail: String::new(),
        })),
    }
}
