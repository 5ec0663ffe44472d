//! Serving one MCP handler over stdio, TCP or streamable HTTP.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rmcp::{
    ServerHandler, ServiceExt,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::{SessionManager as _, session::local::SessionConfig},
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{Authenticator, Denial, Opening, Principal},
    frame::LineTransport,
    listener::DateHeader,
    sessions::{LocalSessions, OsRandomIds, SessionIds},
};

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
    /// Open HTTP connections. One more is accepted and closed at once, so
    /// that its client learns at once to come back later (in the kernel's
    /// backlog it would wait unseen until its own connect timeout).
    pub http_connections_max: usize,
    /// Time an HTTP request head has to arrive in full, from its first
    /// byte (from the accept, for a connection's first request). A client
    /// that sends half a head is disconnected.
    pub http_header_read_timeout: Duration,
    /// Time a kept-alive HTTP connection may sit with no request in
    /// progress and no byte of a new one before it is closed.
    pub http_idle_timeout: Duration,
}

impl Limits {
    /// The limits the reference servers ship with.
    pub const DEFAULT: Limits = Limits {
        message_bytes_max: crate::frame::MESSAGE_BYTES_MAX,
        connections_max: 1024,
        initialize_timeout: Duration::from_secs(10),
        // Below the usual soft limit of 1024 file descriptors, with room
        // for everything else the process holds open.
        http_connections_max: 512,
        http_header_read_timeout: Duration::from_secs(10),
        http_idle_timeout: Duration::from_secs(60),
    };
}

/// rmcp's default interval of SSE keep-alive comments.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streamable HTTP settings beyond [`Limits`]. There is no `Default`: who
/// may call is always said out loud ([`HttpOptions::protected`] or
/// [`HttpOptions::unauthenticated`]).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Extra `Host` values to accept. Empty means loopback names only.
    pub allowed_hosts: Vec<String>,
    /// Extra browser `Origin` values to accept on top of loopback origins.
    pub allowed_origins: Vec<String>,
    pub access: Access,
    /// Keep a session per client for protocol revisions before 2026-07-28
    /// (`Mcp-Session-Id`); without, every request stands alone and replies
    /// are plain JSON.
    pub sessions: bool,
    /// Where session ids come from: [`OsRandomIds`] for a real server; a
    /// replayable simulation passes `SeededIds` (guessable: never serve
    /// them on a real network).
    pub session_ids: Arc<dyn SessionIds>,
    /// How often an idle SSE stream gets a keep-alive comment; `None` sends
    /// none. A simulation must send none: rmcp's keep-alive timer is reset
    /// from the wall clock (sse-stream's `Timer::reset` takes a std `Instant`), so
    /// on a simulated clock it fires at a rate the wall clock sets.
    pub sse_keep_alive: Option<Duration>,
}

impl HttpOptions {
    /// Bearer tokens checked by `auth`: the default for a real server.
    pub fn protected(auth: Arc<Authenticator>) -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            access: Access::Protected(auth),
            sessions: true,
            session_ids: Arc::new(OsRandomIds),
            sse_keep_alive: Some(SSE_KEEP_ALIVE),
        }
    }

    /// No authentication: every request may do everything. For tests, and
    /// for `--no-auth` on a loopback address.
    pub fn unauthenticated() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            access: Access::Open,
            sessions: true,
            session_ids: Arc::new(OsRandomIds),
            sse_keep_alive: Some(SSE_KEEP_ALIVE),
        }
    }
}

/// Who may use an HTTP endpoint.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone who can reach it (loopback only, by the command line's rule).
    Open,
    /// Holders of a bearer token this authenticator accepts.
    Protected(Arc<Authenticator>),
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
    /// The command line asks for something unsafe or contradictory.
    #[error("{0}")]
    Config(String),
    /// An auth setting (token file, JWKS, ...) cannot be used.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
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
/// unknown methods included, goes on to rmcp unchanged, except a
/// `tools/call` the server's [`crate::CallGuard`] refuses: that is a 403.
async fn check_posts(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    body_max: usize,
    auth: Option<Arc<Authenticator>>,
) -> axum::response::Response {
    use axum::{
        http::{Method, StatusCode, header},
        response::IntoResponse,
    };
    // The same test rmcp applies (any case, parameters allowed), so that
    // nothing rmcp would take skips the checks below.
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split_once(';').map_or(v, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case("application/json")
        });
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
        classified => {
            if let (Some(auth), crate::frame::Classified::Message(message)) = (&auth, &classified)
                && let Some(denial) = guard_denial(auth, &parts, message)
            {
                return denied(auth, &denial);
            }
            let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(request).await
        }
    }
}

/// The server's verdict on a `tools/call`, for the principal the auth layer
/// attached. A request with no principal is refused: fail closed.
fn guard_denial(
    auth: &Authenticator,
    parts: &axum::http::request::Parts,
    message: &rmcp::service::RxJsonRpcMessage<rmcp::RoleServer>,
) -> Option<Denial> {
    let guard = auth.protection().guard?;
    let rmcp::model::JsonRpcMessage::Request(request) = message else {
        return None;
    };
    let rmcp::model::ClientRequest::CallToolRequest(call) = &request.request else {
        return None;
    };
    let Some(principal) = parts.extensions.get::<Principal>() else {
        return Some(Denial::Missing);
    };
    let empty = serde_json::Map::new();
    let arguments = call.params.arguments.as_ref().unwrap_or(&empty);
    guard(principal, &call.params.name, arguments)
        .err()
        .map(Denial::Scope)
}

/// The session manager of an HTTP endpoint.
type Sessions = LocalSessions<Arc<dyn SessionIds>>;

/// What the auth layer needs: the authenticator, and the session manager in
/// which to close a session evicted to make room (none when sessions are
/// off: every request stands alone).
#[derive(Clone)]
struct Gate {
    auth: Arc<Authenticator>,
    sessions: Option<Arc<Sessions>>,
}

/// Checks the bearer token of every request to `/mcp`, attaches its
/// [`Principal`], and holds one of the token's slots until the reply has
/// been sent in full (a POST's reply may stream after its headers). A
/// request that names a session must be of that session's token; one that
/// opens a session gets a place under the token's cap.
async fn authenticate(
    gate: Gate,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let auth = &gate.auth;
    let values = request
        .headers()
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes());
    let (principal, digest) = match auth.authenticate(values) {
        Ok(admitted) => admitted,
        Err(denial) => {
            tracing::debug!(?denial, "refused a request");
            return denied(auth, &denial);
        }
    };
    let Some(slot) = auth.admit(digest) else {
        return denied(auth, &Denial::Busy);
    };
    let session = request
        .headers()
        .get("mcp-session-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let method = request.method().clone();
    let opening = match admit_session(&gate, session.as_deref(), &method, digest).await {
        Ok(opening) => opening,
        Err(denial) => return denied(auth, &denial),
    };
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    if response.status().is_success() {
        match (&session, response.headers().get("mcp-session-id"), opening) {
            (None, Some(opened), Some(opening)) => {
                opening.opened(&String::from_utf8_lossy(opened.as_bytes()));
            }
            (Some(id), _, _) if method == axum::http::Method::DELETE => {
                auth.session_closed(id, &digest);
            }
            _ => {}
        }
    }
    if method != axum::http::Method::POST {
        // A GET is the long-lived event stream: it must not pin a slot.
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::Body::from_stream(futures::StreamExt::map(
        body.into_data_stream(),
        move |chunk| {
            let _held = &slot;
            chunk
        },
    ));
    axum::response::Response::from_parts(parts, body)
}

/// A request naming session `session` must be of that session's token. A
/// POST naming none, when sessions are on, may open one: it gets a place
/// under the token's cap, and if the token's least recently used session
/// had to go to make room, that session is closed here, so that its
/// resources go and the manager's live count drops before the new one is
/// counted.
async fn admit_session(
    gate: &Gate,
    session: Option<&str>,
    method: &axum::http::Method,
    digest: [u8; 32],
) -> Result<Option<Opening>, Denial> {
    if let Some(id) = session {
        return gate.auth.use_session(id, &digest).map(|()| None);
    }
    let Some(sessions) = &gate.sessions else {
        return Ok(None);
    };
    if method != axum::http::Method::POST {
        return Ok(None);
    }
    let opening = gate.auth.open_session(digest)?;
    if let Some(evicted) = opening.evicted() {
        tracing::info!(
            "a token at its session cap opened another: closing its least recently used session"
        );
        if let Err(error) = sessions.close_session(&evicted.into()).await {
            tracing::warn!(%error, "closing an evicted session failed");
        }
    }
    Ok(Some(opening))
}

/// The response to a refused request: its status, a `WWW-Authenticate`
/// challenge, and a body that says why and carries no data.
fn denied(auth: &Authenticator, denial: &Denial) -> axum::response::Response {
    use axum::{
        http::{StatusCode, header},
        response::IntoResponse,
    };
    let (status, error, description) = match denial {
        Denial::Missing => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs a bearer token: see resource_metadata in WWW-Authenticate",
        ),
        Denial::Invalid { code, description } => (StatusCode::UNAUTHORIZED, *code, *description),
        Denial::Scope(_) => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token does not grant this request",
        ),
        Denial::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "this token has too many requests in flight",
        ),
        Denial::TooManySessions { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            "this token is opening too many sessions at once, or the server tracks too many tokens",
        ),
        Denial::ForeignSession => (
            StatusCode::NOT_FOUND,
            "unknown_session",
            "no such session for this token",
        ),
    };
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::WWW_AUTHENTICATE, auth.challenge(denial)),
        ],
        body.to_string(),
    )
        .into_response();
    if let Some(seconds) = denial.retry_after_s() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    }
    response
}

/// The axum app a server's HTTP endpoint is: MCP streamable HTTP at `/mcp`
/// behind the access check, and, when protected, its Protected Resource
/// Metadata (RFC 9728) at `/.well-known/oauth-protected-resource` (and the
/// same with `/mcp` appended), open to all.
///
/// `Host` is checked against loopback names plus `options.allowed_hosts`,
/// and a browser `Origin`, when present, against loopback origins plus
/// `options.allowed_origins`: both on by default, against DNS rebinding.
pub fn http_router<S: ServerHandler + Clone>(
    handler: S,
    limits: &Limits,
    options: HttpOptions,
    shutdown: &CancellationToken,
) -> axum::Router {
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
        .with_legacy_session_mode(options.sessions)
        .with_json_response(!options.sessions)
        .with_sse_keep_alive(options.sse_keep_alive)
        .with_cancellation_token(shutdown.child_token());
    let sessions: Arc<Sessions> = Arc::new(LocalSessions::new(
        options.session_ids.clone(),
        SessionConfig::default(),
    ));
    let evict_in = options.sessions.then(|| sessions.clone());
    let sessions_max = limits.connections_max;
    let counted = sessions.clone();
    // rmcp asks for a handler just before it creates a session; refusing
    // here caps live sessions (idle ones expire after rmcp's keep-alive).
    // `live()` is a counter: `try_read` on the map read 0 whenever a
    // writer held the lock, letting a burst of initializes past the cap.
    let factory = move || {
        let live = counted.live();
        if live >= sessions_max {
            tracing::warn!(sessions_max, "refused a new HTTP session: at the limit");
            return Err(std::io::Error::other("too many sessions"));
        }
        Ok(handler.clone())
    };
    let service = StreamableHttpService::new(factory, sessions, config);
    let body_max = limits.message_bytes_max;
    let auth = match &options.access {
        Access::Open => None,
        Access::Protected(auth) => Some(auth.clone()),
    };
    let guarded = auth.clone();
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(move |request, next| {
                check_posts(request, next, body_max, guarded.clone())
            }));
    match auth {
        None => router.layer(axum::middleware::from_fn(
            |mut request: axum::extract::Request, next: axum::middleware::Next| {
                request
                    .extensions_mut()
                    .insert(Principal::unauthenticated());
                next.run(request)
            },
        )),
        Some(auth) => {
            let metadata = auth.metadata().to_string();
            let document = move || {
                let metadata = metadata.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        metadata,
                    )
                }
            };
            let gate = Gate {
                auth: auth.clone(),
                sessions: evict_in,
            };
            router
                .layer(axum::middleware::from_fn(move |request, next| {
                    authenticate(gate.clone(), request, next)
                }))
                .route(
                    "/.well-known/oauth-protected-resource",
                    axum::routing::get(document.clone()),
                )
                .route(
                    "/.well-known/oauth-protected-resource/mcp",
                    axum::routing::get(document),
                )
        }
    }
}

/// Serves [`http_router`] on `listener` until `shutdown` fires, with
/// [`serve_http_on`]'s limits and a `Date` header.
pub async fn serve_http<S: ServerHandler + Clone>(
    listener: TcpListener,
    handler: S,
    limits: Limits,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let addr = local_addr(&listener);
    let router = http_router(handler, &limits, options, &shutdown);
    crate::listener::serve_http_on(listener, router, limits, shutdown, DateHeader::Sent)
        .await
        .map_err(|source| ServeError::Listener { addr, source })
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a: SocketAddr| a.to_string())
}

/// Whether a failed accept concerns one connection only (the listener
/// itself still works).
pub(crate) fn is_transient_accept_error(error: &std::io::Error) -> bool {
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
pub(crate) fn cancel_on_signal(
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
pub(crate) fn cancel_on_signal(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthSettings, Protection, Secret};

    fn authenticator() -> Authenticator {
        Authenticator::new(AuthSettings {
            resource: "http://127.0.0.1:8082/mcp".into(),
            protection: Protection {
                scope: "users:read",
                scopes_supported: &["users:read"],
                guard: None,
            },
            static_tokens: vec![Secret::new("0123456789abcdef0123".into())],
            jwt: None,
            token_requests_max: 2,
            clock: Arc::new(|| 1_700_000_000),
        })
        .unwrap()
    }

    #[test]
    fn every_429_carries_retry_after_in_delta_seconds() {
        let auth = authenticator();
        for (denial, seconds) in [
            (Denial::Busy, "1"),
            (Denial::TooManySessions { retry_after_s: 1 }, "1"),
            (Denial::TooManySessions { retry_after_s: 240 }, "240"),
        ] {
            let response = denied(&auth, &denial);
            assert_eq!(response.status(), 429, "{denial:?}");
            assert_eq!(
                response.headers().get(axum::http::header::RETRY_AFTER),
                Some(&axum::http::HeaderValue::from_static(seconds)),
                "{denial:?}"
            );
        }
        for denial in [Denial::Missing, Denial::ForeignSession] {
            let response = denied(&auth, &denial);
            assert_ne!(response.status(), 429);
            assert!(
                !response
                    .headers()
                    .contains_key(axum::http::header::RETRY_AFTER)
            );
        }
    }
}
