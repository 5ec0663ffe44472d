//! One MCP client over streamable HTTP, for any [`Dialer`]: the code the
//! orchestrator's `HttpConnector` (with [`crate::dial::TcpDialer`]) and the
//! simulation (with the harness's simulated dialer) share.

use std::{sync::Arc, time::Duration};

use rmcp::{
    RoleClient,
    service::{ClientInitializeError, ClientLifecycleMode, ClientServiceExt as _, RunningService},
    transport::{
        StreamableHttpClientTransport,
        common::client_side_sse::ExponentialBackoff,
        streamable_http_client::{StreamableHttpClientTransportConfig, StreamableHttpError},
    },
};

use crate::{
    client::{HttpClient, HttpClientError, Refusal, TransportError},
    dial::{Dialer, Endpoint},
};

/// A live MCP client session over HTTP.
pub type HttpMcpClient = RunningService<RoleClient, ()>;

/// rmcp's transport over [`HttpClient`] with dialer `D`.
pub type HttpTransport<D> = StreamableHttpClientTransport<HttpClient<D>>;

/// Reconnects of an SSE stream (rmcp's default retries forever).
pub const SSE_RECONNECTS_MAX: usize = 3;
/// Longest pause between two SSE reconnects.
pub const SSE_RECONNECT_DELAY_MAX: Duration = Duration::from_secs(4);

/// Why a connect failed, in the terms a caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// Nothing accepted the connection: retry later.
    #[error("cannot connect to {endpoint}: {source}")]
    Unreachable {
        endpoint: Endpoint,
        #[source]
        source: std::io::Error,
    },
    /// The server refused (401/403: fix the credentials; 429: wait).
    #[error("refused with HTTP {}", .0.status)]
    Refused(Refusal),
    /// The transport failed during the handshake (the connection broke, a
    /// timeout, a malformed answer): retry later.
    #[error("MCP handshake failed: {0}")]
    Transport(#[source] Box<TransportError>),
    /// Anything else: the handshake failed (boxed: rmcp's error is large).
    #[error("MCP handshake failed: {0}")]
    Handshake(#[source] Box<ClientInitializeError>),
}

impl ConnectFailure {
    /// Classifies a failed lifecycle start on transport `HttpTransport<D>`:
    /// the transport's own error is taken back by value (rmcp boxes it
    /// without chaining it to the initialize error), so nothing is parsed.
    fn from_initialize<D: Dialer>(error: ClientInitializeError) -> Self {
        let ClientInitializeError::TransportError { error, context } = error else {
            return match Refusal::find(&error) {
                Some(refusal) => Self::Refused(refusal),
                None => Self::Handshake(Box::new(error)),
            };
        };
        let transport_error = match error.downcast::<HttpTransport<D>, RoleClient>() {
            Ok(transport_error) => transport_error,
            Err(error) => {
                return Self::Handshake(Box::new(ClientInitializeError::TransportError {
                    error,
                    context,
                }));
            }
        };
        if let Some(refusal) = Refusal::of(&transport_error) {
            return Self::Refused(refusal);
        }
        match transport_error {
            StreamableHttpError::Client(HttpClientError::Connect { endpoint, source }) => {
                Self::Unreachable { endpoint, source }
            }
            other => Self::Transport(Box::new(other)),
        }
    }
}

/// rmcp's transport settings for `url`: session recovery on 404 on (rmcp's
/// default), SSE reconnects bounded, `Authorization: Bearer <token>` when
/// a token is given.
pub fn transport_config(url: &str, token: Option<&str>) -> StreamableHttpClientTransportConfig {
    let mut backoff = ExponentialBackoff::default();
    backoff.max_times = Some(SSE_RECONNECTS_MAX);
    backoff.max_delay = Some(SSE_RECONNECT_DELAY_MAX);
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(url).reinit_on_expired_session(true);
    config.retry_config = Arc::new(backoff);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    config
}

/// Opens an MCP session at `url` on `http` (its dialer, limits and
/// `Retry-After` notice) and completes the lifecycle. The caller bounds it with a timeout (as for every connector).
pub async fn connect<D: Dialer>(
    http: HttpClient<D>,
    url: &str,
    token: Option<&str>,
    lifecycle: ClientLifecycleMode,
) -> Result<HttpMcpClient, ConnectFailure> {
    let transport = StreamableHttpClientTransport::with_client(http, transport_config(url, token));
    ().serve_with_lifecycle(transport, lifecycle)
        .await
        .map_err(ConnectFailure::from_initialize::<D>)
}
