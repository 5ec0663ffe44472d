//! The workload over streamable HTTP (`[workload] transport = "http"`): each
//! server host serves the kit's real `http_router`, with authentication as
//! deployed (JWTs of the simulated issuer, on simulated time) and session
//! ids from the run's seed; each client reaches it with the orchestrator's
//! real `HttpConnector` through a dialer onto simulated TCP.
//!
//! Nothing here reads the wall clock: hyper's `Date` header is off, every
//! timeout runs on `tokio::time` (simulated), and session ids come from
//! [`SeededIds`], seeded per server and per incarnation.

use std::{
    borrow::Cow,
    io,
    net::{IpAddr, Ipv4Addr},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use mcp_server_kit::{Accept, DateHeader, HttpOptions, Limits, ServerSpec, sessions::SeededIds};
use orchestrator::{Dialer, Endpoint};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ServerConfig, Tool,
    },
    service::RequestContext,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::{
    PORT,
    clients::{Recorded, Wire},
    hosts::Probe,
};
use crate::planted::Deaf;

/// The resource URL of `server`'s workload endpoint: the audience of the
/// clients' tokens.
pub(super) fn resource(server: &str) -> String {
    format!("http://{server}:{PORT}/mcp")
}

/// What one server host needs to serve HTTP, fixed for the whole run.
#[derive(Debug, Clone)]
pub(super) struct HttpServing {
    pub(super) revision: orchestrator::HttpRevision,
    /// The run's seed, for session ids.
    pub(super) seed: u64,
    /// `Host` names clients use: the server's own, and the proxy's.
    pub(super) allowed_hosts: Vec<String>,
    /// Counts the host's (re)starts, so each incarnation draws new session
    /// ids: a restarted server must not hand out its predecessor's ids, or
    /// a stale id would name a new session instead of getting 404. Lives
    /// outside the host closure, which turmoil runs again on restart.
    pub(super) incarnations: Arc<AtomicU64>,
    /// How late a request may come after its client was told to wait and
    /// still have left before the 429 arrived: a round trip at the
    /// network's slowest.
    pub(super) grace: Duration,
}

impl HttpServing {
    /// Serves `handler` on [`PORT`] until the host stops.
    pub(super) async fn serve<S: ServerHandler + Clone>(
        self,
        handler: S,
        spec: &'static ServerSpec,
        host: String,
        probe: Arc<Probe>,
    ) -> turmoil::Result {
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let options = HttpOptions {
            allowed_hosts: self.allowed_hosts,
            allowed_origins: Vec::new(),
            access: mcp_server_kit::Access::Protected(crate::attacker::simulated_auth(
                spec,
                resource(&host),
            )),
            sessions: self.revision == orchestrator::HttpRevision::Sessions2025_11_25,
            session_ids: Arc::new(SeededIds::for_incarnation(self.seed, &host, incarnation)),
            // rmcp's keep-alive timer reads the wall clock (see the field).
            sse_keep_alive: None,
        };
        let router = mcp_server_kit::http_router(
            Counted {
                inner: handler,
                probe: probe.clone(),
            },
            &Limits::DEFAULT,
            options,
            &CancellationToken::new(),
        );
        let limited = (probe.clone(), self.grace);
        let router = router.layer(axum::middleware::from_fn(move |request, next| {
            rate_limited(limited.clone(), request, next)
        }));
        listen(router, probe).await?;
        Ok(())
    }
}

/// A rate limiter in front of the router, as `rate_limit` faults set it:
/// 429 (with `Retry-After` if the fault sets one) instead of the answer,
/// and every request checked against the waits its client was told.
async fn rate_limited(
    (probe, grace): (Arc<Probe>, Duration),
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let credential = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let now = turmoil::sim_elapsed().unwrap_or_default();
    let Some(retry_after) = probe.limit.admit(&credential, now, grace) else {
        return next.run(request).await;
    };
    let body = r#"{"error":"too_many_requests","error_description":"rate limited (simulated)"}"#;
    let mut response = axum::response::IntoResponse::into_response((
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    ));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Serves `router` on [`PORT`] with the kit's own HTTP listener (its
/// connection cap, header-read and idle timeouts, all on simulated time),
/// without `Date`; each open connection counts in the probe's `sessions`.
async fn listen(router: axum::Router, probe: Arc<Probe>) -> io::Result<()> {
    let listener =
        turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    let listener = SimListener { listener, probe };
    mcp_server_kit::serve_http_on(
        listener,
        router,
        Limits::DEFAULT,
        CancellationToken::new(),
        DateHeader::Omitted,
    )
    .await
}

/// A simulated host's listener, as the kit's loop accepts from.
struct SimListener {
    listener: turmoil::net::TcpListener,
    probe: Arc<Probe>,
}

impl Accept for SimListener {
    type Stream = Open;

    async fn accept(&mut self) -> io::Result<Open> {
        let (stream, _) = self.listener.accept().await?;
        self.probe.sessions.open();
        Ok(Open {
            stream,
            probe: self.probe.clone(),
        })
    }
}

/// An accepted connection, counted open until it drops.
struct Open {
    stream: turmoil::net::TcpStream,
    probe: Arc<Probe>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.probe.sessions.close();
    }
}

impl AsyncRead for Open {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Open {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The server's handler as rmcp's HTTP service needs it (a
/// `ServerHandler`), counted and stalled by the harness as over TCP.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    probe: Arc<Probe>,
}

impl<S: ServerHandler> ServerHandler for Counted<S> {
    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let _counted = self.probe.in_flight.enter();
        self.inner.list_tools(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let _counted = self.probe.in_flight.enter();
        self.probe.stall().await;
        self.inner.call_tool(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }
}

/// Dials simulated TCP and records every byte of the connection in the
/// run's wire log, as the TCP transport's connector does.
#[derive(Debug, Clone)]
pub(super) struct SimDialer {
    pub(super) wire: Wire,
    /// Names the wire log's lines.
    pub(super) server: String,
    /// The planted bug `ignore-retry-after`: the client reads every
    /// `Retry-After` as another header.
    pub(super) deaf: bool,
}

impl Dialer for SimDialer {
    type Stream = Deaf<Recorded<turmoil::net::TcpStream>>;

    async fn dial(&self, endpoint: &Endpoint) -> io::Result<Self::Stream> {
        if endpoint.tls {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the simulated network has no TLS",
            ));
        }
        let stream =
            turmoil::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
        let recorded = Recorded::new(stream, self.wire.clone(), &self.server);
        Ok(Deaf::new(recorded, self.deaf))
    }
}
