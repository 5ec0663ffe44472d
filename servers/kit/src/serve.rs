//! Serving one MCP handler over stdio, TCP or streamable HTTP.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rmcp::{
    ServerHandler, ServiceExt,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;

use crate::frame::LineTransport;

/// Limits every transport enforces. Built once, passed everywhere: there are
/// no hidden defaults below this struct.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON-RPC message accepted on any transport, in bytes.
    pub message_bytes_max: usize,
    /// Concurrent TCP connections (one more is accepted and closed at once),
    /// and live HTTP sessions (one more gets an HTTP error).
    pub connections_max: usize,
    /// Time a new connection has to complete `initialize`.
    pub initialize_timeout: Duration,
}

impl Limits {
    /// The limits the reference servers ship with.
    pub const DEFAULT: Limits = Limits {
        message_bytes_max: crate::frame::MESSAGE_BYTES_MAX,
        connections_max: 1024,
        initialize_timeout: Duration::from_secs(10),
    };
}

/// Streamable HTTP settings beyond [`Limits`].
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Extra `Host` values to accept. Empty means loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Extra browser `Origin` values to accept on top of loopback origins.
    pub allowed_origins: Vec<String>,
}

/// Why a server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket failed; the server cannot accept clients.
    #[error("listener on {addr} failed")]
    Listener {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The single stdio session could not start (usually: the client did not
    /// send `initialize` in time, or closed stdin).
    #[error("stdio session failed to initialize: {0}")]
    Stdio(String),
}

/// Serves one session on `read`/`write` until the peer leaves or `shutdown`
/// fires. Used for stdio, every TCP connection, and simulated streams.
pub async fn serve_connection<S, R, W>(
    handler: S,
    read: R,
    write: W,
    limits: &Limits,
    shutdown: CancellationToken,
) -> Result<(), String>
where
    S: rmcp::Service<rmcp::RoleServer>,
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = LineTransport::new(read, write, limits.message_bytes_max);
    let init = handler.serve_with_ct(transport, shutdown.child_token());
    let service = match tokio::time::timeout(limits.initialize_timeout, init).await {
        Ok(Ok(service)) => service,
        // Asked to stop before the client initialized: a clean stop.
        Ok(Err(_)) if shutdown.is_cancelled() => return Ok(()),
        // The client left before initializing (closed stdin, hung up):
        // the end of a session, not a failure of the server.
        Ok(Err(rmcp::service::ServerInitializeError::ConnectionClosed(_))) => {
            tracing::debug!("the client left before initializing");
            return Ok(());
        }
        Ok(Err(error)) => return Err(format!("initialize failed: {error}")),
        Err(_) => {
            return Err(format!(
                "no initialize within {} ms",
                limits.initialize_timeout.as_millis()
            ));
        }
    };
    service
        .waiting()
        .await
        .map(drop)
        .map_err(|error| format!("session task failed: {error}"))
}

/// Serves one client on this process's stdin/stdout. Logs must go to stderr.
pub async fn serve_stdio<S: ServerHandler>(
    handler: S,
    limits: &Limits,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (stdin, stdout) = stdio_streams();
    serve_connection(handler, stdin, stdout, limits, shutdown)
        .await
        .map_err(ServeError::Stdio)
}

type Input = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Output = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// This process's stdin and stdout. When they are pipes (as when a client
/// spawns the server), they are driven by the reactor directly: tokio's own
/// stdin/stdout hand every read and write to a blocking-pool thread, two
/// thread hops per message, which was most of a stdio round trip. A
/// terminal or a file falls back to tokio's.
fn stdio_streams() -> (Input, Output) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use tokio::net::unix::pipe;
        let input = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| pipe::Receiver::from_file(std::fs::File::from(fd)).ok());
        let output = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| pipe::Sender::from_file(std::fs::File::from(fd)).ok());
        if let (Some(input), Some(output)) = (input, output) {
            return (Box::new(input), Box::new(output));
        }
    }
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

/// Serves newline-delimited JSON-RPC on every connection `listener` accepts,
/// one MCP session per connection, until `shutdown` fires.
pub async fn serve_tcp<S: ServerHandler + Clone>(
    listener: TcpListener,
    handler: S,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let addr = local_addr(&listener);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Per-connection errors (e.g. the peer reset before accept)
                // must not stop the server.
                Err(error) if is_transient_accept_error(&error) => {
                    tracing::warn!(%error, "accept failed; still serving");
                    // EMFILE persists until a connection closes: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(source) => return Err(ServeError::Listener { addr, source }),
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, connections_max = limits.connections_max, "refused a connection: at the limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let handler = handler.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "connection opened");
            if let Err(error) = serve_connection(handler, read, write, &limits, shutdown).await {
                tracing::info!(%peer, %error, "connection ended");
            }
            drop(slot);
        });
    }
}

/// Answers a POST whose body is not a usable JSON-RPC message the way
/// JSON-RPC and the streamable HTTP transport require: 400 Bad Request with
/// the JSON-RPC error (-32700 not JSON, -32600 not a request, -32602 bad
/// params), where rmcp alone answers 415 for all of them. Everything else,
/// unknown methods included, goes on to rmcp unchanged.
async fn malformed_posts_get_400(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    body_max: usize,
) -> axum::response::Response {
    use axum::{
        http::{Method, StatusCode, header},
        response::IntoResponse,
    };
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if request.method() != Method::POST || !is_json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, body_max).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds {body_max} bytes"),
        )
            .into_response();
    };
    match crate::frame::classify(&bytes) {
        crate::frame::Classified::Reply(error, id)
            if error.code != rmcp::model::ErrorCode::METHOD_NOT_FOUND =>
        {
            let body = serde_json::json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": error,
            });
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        crate::frame::Classified::Ignore => (
            StatusCode::BAD_REQUEST,
            "not a JSON-RPC request, notification or response",
        )
            .into_response(),
        _ => {
            let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(request).await
        }
    }
}

/// Serves MCP streamable HTTP at `/mcp` until `shutdown` fires.
///
/// `Host` is checked against loopback names plus `options.allowed_hosts`,
/// and a browser `Origin`, when present, against loopback origins plus
/// `options.allowed_origins`: both on by default, against DNS rebinding.
pub async fn serve_http<S: ServerHandler + Clone>(
    listener: TcpListener,
    handler: S,
    limits: Limits,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let addr = local_addr(&listener);
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .map(String::from)
        .into();
    hosts.extend(options.allowed_hosts);
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .map(String::from)
        .into();
    origins.extend(options.allowed_origins);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(limits.message_bytes_max)
        .with_cancellation_token(shutdown.child_token());
    let sessions = Arc::new(LocalSessionManager::default());
    let sessions_max = limits.connections_max;
    let counted = sessions.clone();
    // rmcp asks for a handler just before it creates a session; refusing
    // here caps live sessions (idle ones expire after rmcp's keep-alive).
    let factory = move || {
        let live = counted.sessions.try_read().map_or(0, |s| s.len());
        if live >= sessions_max {
            tracing::warn!(sessions_max, "refused a new HTTP session: at the limit");
            return Err(std::io::Error::other("too many sessions"));
        }
        Ok(handler.clone())
    };
    let service = StreamableHttpService::new(factory, sessions, config);
    let body_max = limits.message_bytes_max;
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(move |request, next| {
                malformed_posts_get_400(request, next, body_max)
            }));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| ServeError::Listener { addr, source })
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a: SocketAddr| a.to_string())
}

fn is_transient_accept_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || error.raw_os_error() == Some(24) // EMFILE: out of file descriptors, may recover
}

/// Installs SIGINT and SIGTERM handlers now (so a signal that arrives the
/// moment after this returns is already caught) and returns a future that
/// cancels `shutdown` when one arrives. Must be called inside a runtime.
#[cfg(unix)]
pub fn cancel_on_signal(
    shutdown: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            () = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    })
}

/// Returns a future that cancels `shutdown` on Ctrl-C.
#[cfg(not(unix))]
pub fn cancel_on_signal(
    shutdown: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
            () = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    })
}
