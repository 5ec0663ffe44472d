//! What the orchestrator did, as it does it: connections, retries, hedges
//! and circuit-breaker transitions, handed to an optional [`Observer`] so
//! that a caller (the harness's run report) can draw them on a timeline.
//! The orchestrator keeps none of them: an observer that stores them
//! bounds its own store.

use std::{fmt, sync::Arc, time::Duration};

/// One thing the orchestrator did to or about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The server's configured name.
    pub server: String,
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Opening connection number `generation` to the server (1 is the
    /// first; more is a reconnect).
    Connect { generation: u64 },
    /// Attempt `attempt` failed and the call is tried again after `pause`.
    Retry { attempt: u32, pause: Duration },
    /// A slow read-only call is sent again on the spare session.
    Hedge,
    /// The server's circuit breaker opened: calls to it fail at once.
    BreakerOpened,
    /// A call succeeded through an open (or half-open) breaker, closing it.
    BreakerClosed,
}

/// Called with every [`Event`], at the moment it happens (read the time
/// from `tokio::time` to place it). It must not block.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Event) + Send + Sync>);

impl Observer {
    pub fn new(f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn emit(&self, server: &str, kind: EventKind) {
        (self.0)(&Event {
            server: server.to_owned(),
            kind,
        });
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
