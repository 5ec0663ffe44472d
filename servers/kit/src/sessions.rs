//! [`LocalSessions`]: rmcp's in-memory session manager, with the session ids
//! drawn from a [`SessionIds`] source instead of `Uuid::new_v4()`.
//!
//! rmcp 3.11's `LocalSessionManager` hard-wires its ids to the OS's
//! randomness (`common::server_side_http::session_id()`), and has no hook to
//! change that. Everything else it does is public API
//! (`create_local_session`, `LocalSessionHandle`), so this manager is that
//! one with the id source as a parameter, plus a live-session count the
//! kit's cap can read without a lock. Not supported, as in the kit today:
//! an external event store (rmcp's constructor for that is private).
//!
//! [`OsRandomIds`] is for real servers: an id must not be guessable.
//! [`SeededIds`] is for a replayable run only.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::{
            SessionId, SessionManager,
            session::{
                ServerSseMessage,
                local::{
                    EventId, EventIdParseError, LocalSessionHandle, LocalSessionWorker,
                    SessionConfig, SessionError, create_local_session,
                },
            },
        },
    },
};
use tokio::sync::RwLock;
use tokio_stream::wrappers::ReceiverStream;

/// Where session ids come from.
pub trait SessionIds: std::fmt::Debug + Send + Sync + 'static {
    /// A new id, in the shape of a version-4 UUID.
    fn next_id(&self) -> SessionId;
}

/// A shared source (`Arc<dyn SessionIds>` in the kit's `HttpOptions`).
impl<T: SessionIds + ?Sized> SessionIds for std::sync::Arc<T> {
    fn next_id(&self) -> SessionId {
        (**self).next_id()
    }
}

/// Ids from the OS's randomness, as rmcp's own manager draws them. For real
/// servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandomIds;

impl SessionIds for OsRandomIds {
    fn next_id(&self) -> SessionId {
        rmcp::transport::common::server_side_http::session_id()
    }
}

/// Ids from a seeded generator (SplitMix64: portable, and stable across
/// crate versions, unlike `rand`'s small RNGs). **Guessable**: for
/// simulation only.
///
/// A simulated host's software restarts on `bounce`, and a fresh generator
/// with the same seed would hand out the *same* ids again, so a client's
/// stale id would name a new session instead of getting 404. Seed each
/// incarnation differently: [`SeededIds::for_incarnation`].
#[derive(Debug)]
pub struct SeededIds {
    state: Mutex<u64>,
}

impl SeededIds {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(seed),
        }
    }

    /// The generator for the `incarnation`-th start (0, 1, ...) of `host`
    /// in the run with seed `run_seed`.
    pub fn for_incarnation(run_seed: u64, host: &str, incarnation: u64) -> Self {
        let host = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut state = run_seed ^ host.rotate_left(17);
        let first = splitmix64(&mut state);
        let mut state = first ^ incarnation.wrapping_mul(0xa076_1d64_78bd_642f);
        Self::new(splitmix64(&mut state))
    }

    fn next_u128(&self) -> u128 {
        let mut state = self.state.lock().expect("id generator lock");
        let high = splitmix64(&mut state);
        let low = splitmix64(&mut state);
        (u128::from(high) << 64) | u128::from(low)
    }
}

impl SessionIds for SeededIds {
    fn next_id(&self) -> SessionId {
        let bytes = self.next_u128().to_be_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
            .into()
    }
}

/// One step of SplitMix64 (Steele, Lea, Flood 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Most draws tried for an unused id before giving up (a collision of two
/// 122-bit ids means the source is broken).
const ID_DRAWS_MAX: usize = 4;

/// rmcp's local session manager with ids from `I`.
#[derive(Debug)]
pub struct LocalSessions<I> {
    ids: I,
    sessions: RwLock<HashMap<SessionId, LocalSessionHandle>>,
    live: AtomicUsize,
    config: SessionConfig,
}

/// Why a session operation failed. rmcp answers every one with HTTP 500,
/// except that an unknown id never gets this far (it checks
/// [`SessionManager::has_session`] first and answers 404).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionsError {
    #[error("no session {0}")]
    NotFound(SessionId),
    #[error("the id source repeated an id {ID_DRAWS_MAX} times")]
    IdsExhausted,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    EventId(#[from] EventIdParseError),
}

impl<I: SessionIds> LocalSessions<I> {
    /// A manager whose sessions behave as `config` says (rmcp's
    /// `SessionConfig`: keep-alive, channel capacity, init timeout, all on
    /// `tokio::time`).
    pub fn new(ids: I, config: SessionConfig) -> Self {
        Self {
            ids,
            sessions: RwLock::new(HashMap::new()),
            live: AtomicUsize::new(0),
            config,
        }
    }

    /// Sessions open now. Lock-free, for a cap checked in a sync context.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    async fn handle(&self, id: &SessionId) -> Result<LocalSessionHandle, SessionsError> {
        self.sessions
            .read()
            .await
            .get(id)
            .cloned()
            .ok_or_else(|| SessionsError::NotFound(id.clone()))
    }
}

impl<I: SessionIds> SessionManager for LocalSessions<I> {
    type Error = SessionsError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let mut sessions = self.sessions.write().await;
        let id = (0..ID_DRAWS_MAX)
            .map(|_| self.ids.next_id())
            .find(|id| !sessions.contains_key(id))
            .ok_or(SessionsError::IdsExhausted)?;
        let (handle, worker) = create_local_session(id.clone(), self.config.clone());
        sessions.insert(id.clone(), handle);
        self.live.store(sessions.len(), Ordering::Relaxed);
        Ok((id, WorkerTransport::spawn(worker)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.handle(id).await?.initialize(message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.sessions.read().await.contains_key(id))
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let handle = {
            let mut sessions = self.sessions.write().await;
            let handle = sessions.remove(id);
            self.live.store(sessions.len(), Ordering::Relaxed);
            handle
        };
        let Some(handle) = handle else {
            return Ok(());
        };
        match handle.close().await {
            // The worker had already stopped: nothing left to close.
            Ok(()) | Err(SessionError::SessionServiceTerminated) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let handle = self.handle(id).await?;
        let receiver = handle.establish_request_wise_channel().await?;
        handle
            .push_message(message, receiver.http_request_id)
            .await?;
        Ok(ReceiverStream::new(receiver.inner))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.handle(id).await?.push_message(message, None).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let receiver = self.handle(id).await?.establish_common_channel().await?;
        Ok(ReceiverStream::new(receiver.inner))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let last: EventId = last_event_id.parse()?;
        let receiver = self.handle(id).await?.resume(last).await?;
        Ok(ReceiverStream::new(receiver.inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_replay_and_differ_by_seed_host_and_incarnation() {
        let draw = |ids: SeededIds| (0..3).map(|_| ids.next_id()).collect::<Vec<_>>();
        let a = draw(SeededIds::for_incarnation(1, "user", 0));
        assert_eq!(a, draw(SeededIds::for_incarnation(1, "user", 0)));
        assert_ne!(a, draw(SeededIds::for_incarnation(2, "user", 0)));
        assert_ne!(a, draw(SeededIds::for_incarnation(1, "payment", 0)));
        assert_ne!(a[0], draw(SeededIds::for_incarnation(1, "user", 1))[0]);
        let parsed = uuid::Uuid::parse_str(&a[0]).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[tokio::test]
    async fn sessions_are_counted_and_closed() {
        let sessions = LocalSessions::new(SeededIds::new(7), SessionConfig::default());
        let (id, _transport) = sessions.create_session().await.unwrap();
        assert_eq!(sessions.live(), 1);
        assert!(sessions.has_session(&id).await.unwrap());
        sessions.close_session(&id).await.unwrap();
        assert_eq!(sessions.live(), 0);
        assert!(!sessions.has_session(&id).await.unwrap());
        assert!(sessions.close_session(&id).await.is_ok());
    }

    /// Closing a session stops its worker, so that what it held goes (the
    /// kit evicts a token's oldest session this way).
    #[tokio::test(start_paused = true)]
    async fn closing_a_session_stops_its_worker() {
        use rmcp::transport::Transport as _;
        let sessions = LocalSessions::new(SeededIds::new(7), SessionConfig::default());
        let (id, mut transport) = sessions.create_session().await.unwrap();
        sessions.close_session(&id).await.unwrap();
        // Well before the session's keep-alive would end it (5 minutes).
        let bound = std::time::Duration::from_secs(10);
        let next = tokio::time::timeout(bound, transport.receive()).await;
        assert!(
            matches!(next, Ok(None)),
            "the worker stops at once: {next:?}"
        );
    }
}
