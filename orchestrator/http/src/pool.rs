//! A bounded pool of idle HTTP/1.1 connections.
//!
//! A connection goes back to the pool only when its response body has been
//! read to the end (see [`crate::sse::BodyStream`]): HTTP/1.1 cannot start a
//! second request while a response (an SSE stream, say) is still arriving.
//! Idle time is measured with `tokio::time`, so under simulation it is
//! simulated time.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tokio::time::Instant;

use crate::dial::Endpoint;

/// The sending half of one HTTP/1.1 connection.
pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// Idle connections, newest last. At most `max_idle` of them, each at most
/// `idle_timeout` old when it is taken.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle {
    endpoint: Endpoint,
    sender: Sender,
    since: Instant,
}

impl Pool {
    /// A pool that keeps up to `max_idle` connections (0: none, every request
    /// opens its own connection).
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(VecDeque::with_capacity(max_idle)),
            max_idle,
            idle_timeout,
        })
    }

    /// The most recently returned live connection to `endpoint`, if any.
    /// Closed and expired connections met on the way are dropped.
    pub(crate) fn checkout(&self, endpoint: &Endpoint) -> Option<Sender> {
        let now = Instant::now();
        let mut idle = self.idle.lock().expect("pool lock");
        idle.retain(|c| {
            !c.sender.is_closed() && now.saturating_duration_since(c.since) < self.idle_timeout
        });
        let at = idle.iter().rposition(|c| &c.endpoint == endpoint)?;
        idle.remove(at).map(|c| c.sender)
    }

    /// Returns a connection whose last response was read in full. When the
    /// pool is full the oldest idle connection is closed to make room.
    pub(crate) fn checkin(&self, endpoint: Endpoint, sender: Sender) {
        if self.max_idle == 0 || !sender.is_ready() {
            return;
        }
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle {
            endpoint,
            sender,
            since: Instant::now(),
        });
    }
}

/// A connection on loan, to give back once its response is complete.
#[derive(Debug)]
pub(crate) struct Loan {
    pub(crate) pool: Arc<Pool>,
    pub(crate) endpoint: Endpoint,
    pub(crate) sender: Sender,
}

impl Loan {
    /// Gives the connection back to its pool.
    pub(crate) fn give_back(self) {
        self.pool.checkin(self.endpoint, self.sender);
    }
}
