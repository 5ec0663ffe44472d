//! The HTTP listener: one accept loop serving an axum router with hyper's
//! HTTP/1.1, over any [`Accept`] (a real `TcpListener`, a simulated one, an
//! in-memory one in tests), bounded by three [`Limits`]:
//!
//! - `http_connections_max` open connections. One more is accepted and
//!   closed at once: the client learns at once that it must come back,
//!   where a connection left in the kernel's backlog would wait unseen
//!   until the client's own connect timeout.
//! - `http_header_read_timeout`: a request head must be complete this long
//!   after its first byte (after the accept, for a connection's first
//!   request). A client that sends half a head is closed.
//! - `http_idle_timeout`: a kept-alive connection with no request in
//!   progress and no byte of a new one is closed after this long.
//!
//! A connection with a request in progress (head read, response not yet
//! sent in full) is never timed out here: its handler bounds it.
//!
//! hyper's own `header_read_timeout` runs from the moment a connection is
//! ready for a request, so it would also close idle connections after the
//! same time; the two limits are separate here, as in Go's `net/http`
//! (`ReadHeaderTimeout`, `IdleTimeout`), so each connection has a small
//! watchdog of its own on `tokio::time`, which turmoil drives in a
//! simulation.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::serve::Limits;

/// A source of accepted byte streams: what [`serve_http_on`] listens on.
pub trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next accepted connection. An error that
    /// [`is_transient_accept_error`] calls transient (a peer that reset
    /// before the accept, out of file descriptors) keeps the loop going;
    /// any other ends it.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<TcpStream> {
        let (stream, _peer) = TcpListener::accept(self).await?;
        // Small replies in a row must not wait on delayed ACKs.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Whether responses carry a `Date` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateHeader {
    /// As HTTP asks of a server with a clock: real servers.
    Sent,
    /// None: the header reads the wall clock, which a replayable
    /// simulation must not.
    Omitted,
}

/// How long after `shutdown` the loop waits for requests in progress.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on every connection `listener` accepts, within the
/// HTTP limits of `limits` (see the module header), until `shutdown`
/// fires; then stops accepting, lets requests in progress finish (for at
/// most 5 s) and returns. Returns early only on an accept error that is not
/// transient.
pub async fn serve_http_on<L: Accept>(
    mut listener: L,
    router: axum::Router,
    limits: Limits,
    shutdown: CancellationToken,
    date: DateHeader,
) -> io::Result<()> {
    let timeouts = Timeouts {
        header_read: limits.http_header_read_timeout,
        idle: limits.http_idle_timeout,
    };
    let slots = Arc::new(Semaphore::new(limits.http_connections_max));
    let connections = TaskTracker::new();
    let mut refusing = false;
    let ended = loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(stream) => stream,
                Err(error) if crate::serve::is_transient_accept_error(&error) => {
                    tracing::warn!(%error, "accept failed; still serving");
                    // EMFILE persists until a connection closes: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(error) => break Err(error),
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if !std::mem::replace(&mut refusing, true) {
                tracing::warn!(
                    http_connections_max = limits.http_connections_max,
                    "closing new HTTP connections at once: at the limit"
                );
            }
            drop(stream);
            continue;
        };
        refusing = false;
        let connection = Connection {
            router: router.clone(),
            timeouts,
            shutdown: shutdown.clone(),
            date,
            _slot: slot,
        };
        connections.spawn(connection.serve(stream));
    };
    connections.close();
    if tokio::time::timeout(SHUTDOWN_DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "stopped waiting for HTTP connections to finish"
        );
    }
    ended
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header_read: Duration,
    idle: Duration,
}

/// One accepted connection and what serving it needs.
struct Connection {
    router: axum::Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
    date: DateHeader,
    /// Its place under `http_connections_max`, held until it closes.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(self, stream: S) {
        let activity = Arc::new(Activity::new());
        let io = hyper_util::rt::TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = Tracked {
            inner: hyper_util::service::TowerToHyperService::new(self.router),
            activity: activity.clone(),
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .auto_date_header(self.date == DateHeader::Sent)
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "HTTP connection ended");
                }
            }
            expired = activity.expiry(self.timeouts) => {
                // Nothing is in progress on it: dropping it loses no reply.
                tracing::debug!(?expired, "closed an HTTP connection");
            }
            () = self.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    HeaderRead,
    Idle,
}

/// What a connection is doing, as its timeouts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head whose first byte came at this instant (or,
    /// for the first request, whose connection was accepted then).
    Head(Instant),
    /// No request in progress and no byte of a new one since this instant.
    Idle(Instant),
    /// This many requests in progress (head read, response not finished).
    Busy(usize),
}

/// A connection's phase, updated by its stream and its service, and
/// watched by [`Activity::expiry`].
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn update(&self, next: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().expect("phase lock");
        let was = *phase;
        *phase = next(was);
        if *phase != was {
            self.changed.notify_waiters();
        }
    }

    /// Bytes arrived: after idling, they start a request head.
    fn bytes_arrived(&self) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    fn request_started(&self) {
        self.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        });
    }

    fn request_finished(&self) {
        self.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }

    /// Resolves when the connection has been in one phase for longer than
    /// its timeout allows; never while a request is in progress.
    async fn expiry(&self, timeouts: Timeouts) -> Expired {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let phase = *self.phase.lock().expect("phase lock");
            let (deadline, expired) = match phase {
                Phase::Head(since) => {
                    (since.checked_add(timeouts.header_read), Expired::HeaderRead)
                }
                Phase::Idle(since) => (since.checked_add(timeouts.idle), Expired::Idle),
                Phase::Busy(_) => (None, Expired::Idle),
            };
            // Busy, or a timeout too long to reach: wait for a change.
            let Some(deadline) = deadline else {
                changed.await;
                continue;
            };
            if Instant::now() >= deadline {
                return expired;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

type Router = hyper_util::service::TowerToHyperService<axum::Router>;

/// The router, with each request counted as in progress until its response
/// has been sent in full (or abandoned).
struct Tracked {
    inner: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Tracked {
    type Response = hyper::Response<Guarded>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.activity.request_started();
        let guard = InProgress(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Guarded {
                inner: body,
                _in_progress: guard,
            }))
        })
    }
}

/// Marks a request finished when dropped.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request in progress until hyper has sent
/// all of it (or given up) and drops it.
struct Guarded {
    inner: axum::body::Body,
    _in_progress: InProgress,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
