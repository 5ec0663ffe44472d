//! The one seam through which the orchestrator reaches servers.
//!
//! A [`Connector`] opens a fresh connection, completes the MCP handshake and
//! hands back a [`Session`]. stdio, TCP and HTTP implement it here (built
//! from a [`TransportConfig`]); the simulation harness implements it over
//! turmoil streams, and may wrap the sessions. Nothing else in the
//! orchestrator knows which transport is in use.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use mcp_http::{
    client::{HttpClient, HttpClientConfig, Refusal, RetryAfterNotice},
    connect::ConnectFailure,
    dial::Dialer,
};
use rmcp::{
    ServiceExt,
    model::ProtocolVersion,
    service::ClientLifecycleMode,
    transport::{ConfigureCommandExt, TokioChildProcess},
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite};

use crate::{
    config::TransportConfig,
    session::{RmcpSession, Session},
};

/// Largest reply line accepted from a server over stdio or TCP, in bytes.
pub(crate) const REPLY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Opens connections to one server.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// Where this connects, for messages: `tcp://host:port`, a URL, a command.
    fn target(&self) -> String;
    /// Opens a new connection and completes `initialize`. The caller bounds
    /// it with a timeout.
    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>>;
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server's program could not be started. Retrying will not help.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nothing accepted the connection (refused, unreachable, reset).
    #[error("cannot connect to {target}: {source}")]
    Io {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// The server refused our credentials or their scope (HTTP 401/403), or
    /// they could not be read. Retrying will not help: someone must fix the
    /// token or the server's grant.
    #[error("{target}: {refusal}")]
    Denied {
        target: String,
        refusal: HttpRefusal,
    },
    /// The credential could not be read; nothing was sent.
    #[error("{target}: no token to send: {source}")]
    Credential {
        target: String,
        #[source]
        source: crate::config::CredentialError,
    },
    /// The server is shedding load (HTTP 429); try again after the pause.
    #[error("{target}: {refusal}")]
    RateLimited {
        target: String,
        refusal: HttpRefusal,
    },
    /// Connected, but the MCP `initialize` handshake failed.
    #[error("{target}: MCP handshake failed: {message}{stderr_tail}")]
    Handshake {
        target: String,
        message: String,
        /// The last lines the server wrote to stderr, if it is a child process.
        stderr_tail: String,
    },
}

impl ConnectError {
    /// False when trying again cannot succeed without someone fixing things:
    /// also an `https` URL in a build without TLS (`Unsupported`) and a
    /// failed TLS handshake (`InvalidData`: a certificate refused, or no
    /// TLS at the other end).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Spawn { .. }
            | ConnectError::Denied { .. }
            | ConnectError::Credential { .. } => false,
            ConnectError::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::InvalidData
            ),
            _ => true,
        }
    }
}

/// An HTTP refusal found among an error's causes. Built from the status and
/// the `WWW-Authenticate` challenge, which carry no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRefusal {
    /// 401: no token, or one the server does not accept.
    Unauthorized { reason: Option<String> },
    /// 403: the token lacks a scope.
    Forbidden { scope: Option<String> },
    /// 429: too many requests; `Retry-After` in whole seconds, if given (an
    /// HTTP-date `Retry-After` is not read: that needs the wall clock, which
    /// the orchestrator never reads; the backoff applies instead).
    RateLimited { retry_after: Option<Duration> },
}

impl std::fmt::Display for HttpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpRefusal::Unauthorized { reason } => {
                write!(f, "access denied (HTTP 401): ")?;
                f.write_str(
                    reason
                        .as_deref()
                        .unwrap_or("the server wants a valid bearer token"),
                )
            }
            HttpRefusal::Forbidden { scope: Some(scope) } => {
                write!(
                    f,
                    "access denied (HTTP 403): the token lacks the scope {scope}"
                )
            }
            HttpRefusal::Forbidden { scope: None } => {
                write!(f, "access denied (HTTP 403): the token does not grant this")
            }
            HttpRefusal::RateLimited { retry_after } => {
                write!(f, "rate limited (HTTP 429)")?;
                match retry_after {
                    Some(after) => {
                        write!(f, "; retry after {} s", after.as_millis().div_ceil(1000))
                    }
                    None => Ok(()),
                }
            }
        }
    }
}

impl HttpRefusal {
    /// The refusal among `error`'s causes, if an HTTP status is why it failed.
    pub(crate) fn find(error: &(dyn std::error::Error + 'static)) -> Option<Self> {
        Refusal::find(error).and_then(Self::from_refusal)
    }

    /// What a 401, 403 or 429 from the HTTP client means to the orchestrator.
    fn from_refusal(refusal: Refusal) -> Option<Self> {
        let challenge = refusal.www_authenticate.as_deref().unwrap_or("");
        match refusal.status {
            401 => Some(HttpRefusal::Unauthorized {
                reason: challenge_param(challenge, "error_description"),
            }),
            403 => Some(HttpRefusal::Forbidden {
                scope: challenge_param(challenge, "scope"),
            }),
            429 => Some(HttpRefusal::RateLimited {
                retry_after: refusal.retry_after,
            }),
            _ => None,
        }
    }

    /// The connect error this refusal is, for `target`.
    fn into_connect_error(self, target: String) -> ConnectError {
        match self {
            HttpRefusal::RateLimited { .. } => ConnectError::RateLimited {
                target,
                refusal: self,
            },
            _ => ConnectError::Denied {
                target,
                refusal: self,
            },
        }
    }
}

/// One `name="value"` parameter of a `WWW-Authenticate` challenge, capped
/// at 200 characters (it is shown to people).
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let value = &challenge[start..];
    let value = &value[..value.find('"')?];
    Some(value.chars().take(200).collect())
}

impl TransportConfig {
    /// A connector that opens sessions over this transport.
    pub fn connector(&self) -> Arc<dyn Connector> {
        match self {
            TransportConfig::Stdio { program, args } => Arc::new(StdioConnector {
                program: program.clone(),
                args: args.clone(),
            }),
            TransportConfig::Tcp { addr } => Arc::new(TcpConnector { addr: addr.clone() }),
            TransportConfig::Http {
                url,
                credential,
                revision,
            } => Arc::new(
                HttpConnector::new(url.clone(), credential.clone(), NetDialer::default())
                    .revision(*revision),
            ),
        }
    }
}

/// The dialer real connections use (HTTP connectors, the LLM planner's
/// model): with the `https` feature `TlsDialer` (TLS for `https` URLs,
/// plain TCP for `http`), without it `TcpDialer` (`https` refused).
#[cfg(feature = "https")]
pub type NetDialer = mcp_http::dial::TlsDialer;
/// The dialer real connections use (HTTP connectors, the LLM planner's
/// model): with the `https` feature `TlsDialer` (TLS for `https` URLs,
/// plain TCP for `http`), without it `TcpDialer` (`https` refused).
#[cfg(not(feature = "https"))]
pub type NetDialer = mcp_http::dial::TcpDialer;

/// Completes the client handshake over any byte stream with newline
/// JSON-RPC framing (replies capped at 16 MiB). Public so that other
/// connectors (the simulation's, the in-process pipes') frame exactly as
/// the real TCP transport does.
pub async fn handshake_lines<R, W>(
    read: R,
    write: W,
    target: &str,
) -> Result<Box<dyn Session>, ConnectError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = crate::lines::ClientLines::new(read, write, REPLY_BYTES_MAX);
    ().serve(transport)
        .await
        .map(RmcpSession::boxed)
        .map_err(|error| ConnectError::Handshake {
            target: target.to_owned(),
            message: root_cause(&error),
            stderr_tail: String::new(),
        })
}

/// The innermost cause of an error: "Connection refused (os error 111)"
/// rather than three layers of transport type names.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Launches the server as a child process and speaks MCP on its stdio.
#[derive(Debug, Clone)]
struct StdioConnector {
    program: PathBuf,
    args: Vec<String>,
}

/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 8;

impl Connector for StdioConnector {
    fn target(&self) -> String {
        TransportConfig::Stdio {
            program: self.program.clone(),
            args: self.args.clone(),
        }
        .to_string()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let command = tokio::process::Command::new(&self.program).configure(|c| {
                c.args(&self.args);
            });
            let (transport, stderr) = TokioChildProcess::builder(command)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| ConnectError::Spawn {
                    program: self.program.clone(),
                    source,
                })?;
            let tail = Arc::new(Mutex::new(VecDeque::new()));
            let reader = stderr.map(|stderr| tokio::spawn(keep_tail(stderr, tail.clone())));
            match ().serve(transport).await {
                Ok(client) => Ok(RmcpSession::boxed(client)),
                Err(error) => {
                    // The child usually explains itself on stderr as it exits.
                    if let Some(reader) = reader {
                        let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
                    }
                    let lines: Vec<String> = tail.lock().expect("tail lock").drain(..).collect();
                    let stderr_tail = if lines.is_empty() {
                        String::new()
                    } else {
                        format!("\n  server stderr:\n    {}", lines.join("\n    "))
                    };
                    Err(ConnectError::Handshake {
                        target: self.target(),
                        message: root_cause(&error),
                        stderr_tail,
                    })
                }
            }
        })
    }
}

/// Forwards a child's stderr to our log at debug level and keeps its last lines.
async fn keep_tail(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "orchestrator::child", "{line}");
        let mut tail = tail.lock().expect("tail lock");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.chars().take(500).collect());
    }
}

/// Connects over TCP with newline-delimited JSON-RPC.
#[derive(Debug, Clone)]
struct TcpConnector {
    addr: String,
}

impl Connector for TcpConnector {
    fn target(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(&self.addr)
                .await
                .map_err(|source| ConnectError::Io {
                    target: self.target(),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            handshake_lines(read, write, &self.target()).await
        })
    }
}

/// The MCP revision an HTTP connector negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpRevision {
    /// `initialize`, then one `Mcp-Session-Id` session: a server restart
    /// loses it, and the client starts a new one on the 404.
    #[default]
    Sessions2025_11_25,
    /// `server/discover`, then self-contained requests: no session.
    Stateless2026_07_28,
}

impl HttpRevision {
    /// Both revisions, by their names.
    pub const ALL: [(&'static str, HttpRevision); 2] = [
        ("2025-11-25", HttpRevision::Sessions2025_11_25),
        ("2026-07-28", HttpRevision::Stateless2026_07_28),
    ];

    /// The revision called `name` ("2025-11-25" or "2026-07-28").
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// Its name, as `named` reads it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("?", |(n, _)| n)
    }

    fn lifecycle(self) -> ClientLifecycleMode {
        match self {
            HttpRevision::Sessions2025_11_25 => ClientLifecycleMode::Initialize,
            HttpRevision::Stateless2026_07_28 => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

/// Connects with MCP streamable HTTP through a [`Dialer`] (real TCP for
/// deployments, simulated TCP in the harness), sending `Authorization:
/// Bearer` with the token `credential` names (read at every connect).
#[derive(Debug, Clone)]
pub struct HttpConnector<D = NetDialer> {
    url: String,
    credential: Option<crate::config::Credential>,
    dialer: D,
    revision: HttpRevision,
    client: HttpClientConfig,
    /// The latest `Retry-After` any of its sessions was told, on any
    /// request (rmcp's background ones too): a connect before it has
    /// passed is refused here, as a 429, without asking the server.
    told_to_wait: RetryAfterNotice,
}

impl<D: Dialer + std::fmt::Debug> HttpConnector<D> {
    /// A connector for the endpoint at `url` (e.g. `http://127.0.0.1:8082/mcp`),
    /// negotiating 2025-11-25 with a session unless told otherwise.
    pub fn new(url: String, credential: Option<crate::config::Credential>, dialer: D) -> Self {
        Self {
            url,
            credential,
            dialer,
            revision: HttpRevision::default(),
            client: HttpClientConfig::DEFAULT,
            told_to_wait: RetryAfterNotice::default(),
        }
    }

    /// Negotiates `revision` instead.
    pub fn revision(mut self, revision: HttpRevision) -> Self {
        self.revision = revision;
        self
    }

    fn token(&self) -> Result<Option<crate::config::Token>, ConnectError> {
        let Some(credential) = &self.credential else {
            return Ok(None);
        };
        credential
            .resolve()
            .map(Some)
            .map_err(|source| ConnectError::Credential {
                target: self.target(),
                source,
            })
    }

    /// What a failed connect means to the caller.
    fn classify(&self, failure: ConnectFailure) -> ConnectError {
        match failure {
            ConnectFailure::Unreachable { source, .. } => ConnectError::Io {
                target: self.target(),
                source,
            },
            ConnectFailure::Refused(refusal) => match HttpRefusal::from_refusal(refusal) {
                Some(refusal) => refusal.into_connect_error(self.target()),
                None => ConnectError::Handshake {
                    target: self.target(),
                    message: "refused with an unexpected HTTP status".into(),
                    stderr_tail: String::new(),
                },
            },
            ConnectFailure::Transport(error) => ConnectError::Handshake {
                target: self.target(),
                message: root_cause(&*error),
                stderr_tail: String::new(),
            },
            ConnectFailure::Handshake(error) => ConnectError::Handshake {
                target: self.target(),
                message: root_cause(&*error),
                stderr_tail: String::new(),
            },
        }
    }
}

impl<D: Dialer + std::fmt::Debug> Connector for HttpConnector<D> {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            if let Some(wait) = self.told_to_wait.remaining() {
                let refusal = HttpRefusal::RateLimited {
                    retry_after: Some(wait),
                };
                return Err(refusal.into_connect_error(self.target()));
            }
            let token = self.token()?;
            let http = HttpClient::noticing(
                self.dialer.clone(),
                self.client.clone(),
                self.told_to_wait.clone(),
            );
            let client = mcp_http::connect::connect(
                http,
                &self.url,
                token.as_ref().map(|t| t.expose()),
                self.revision.lifecycle(),
            )
            .await
            .map_err(|failure| self.classify(failure))?;
            Ok(RmcpSession::boxed(client))
        })
    }
}

#[cfg(test)]
mod tests {
    use mcp_http::client::{HttpClientError, StatusError, TransportError};
    use rmcp::transport::streamable_http_client::{AuthRequiredError, HttpStatusError};

    use super::*;

    fn status(
        status: u16,
        www_authenticate: Option<&str>,
        retry_after: Option<&str>,
    ) -> TransportError {
        TransportError::Client(HttpClientError::Status(StatusError {
            status,
            www_authenticate: www_authenticate.map(str::to_owned),
            retry_after: retry_after.map(str::to_owned),
            body: String::new(),
        }))
    }

    #[test]
    fn refusals_are_found_with_or_without_a_challenge() {
        let challenge =
            r#"Bearer error="invalid_token", error_description="the token has expired""#;
        let scoped = r#"Bearer error="insufficient_scope", scope="transactions:read""#;
        let cases: [(TransportError, HttpRefusal); 6] = [
            (
                TransportError::AuthRequired(AuthRequiredError::new(challenge.into())),
                HttpRefusal::Unauthorized {
                    reason: Some("the token has expired".into()),
                },
            ),
            (
                status(403, Some(scoped), None),
                HttpRefusal::Forbidden {
                    scope: Some("transactions:read".into()),
                },
            ),
            // rmcp's own Host check, a proxy: no challenge.
            (
                status(403, None, None),
                HttpRefusal::Forbidden { scope: None },
            ),
            (
                status(401, None, None),
                HttpRefusal::Unauthorized { reason: None },
            ),
            (
                TransportError::HttpStatus(HttpStatusError::new(429, Some("3".into()))),
                HttpRefusal::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                },
            ),
            (
                status(429, None, Some("Wed, 21 Oct 2026 07:28:00 GMT")),
                HttpRefusal::RateLimited { retry_after: None },
            ),
        ];
        for (error, refusal) in cases {
            assert_eq!(HttpRefusal::find(&error), Some(refusal), "{error}");
        }
        assert_eq!(HttpRefusal::find(&status(500, None, None)), None);
        // Found through a chain, as rmcp wraps it in a service error.
        let wrapped =
            rmcp::ServiceError::TransportSend(rmcp::transport::DynamicTransportError::new::<
                mcp_http::connect::HttpTransport<mcp_http::dial::TcpDialer>,
                rmcp::RoleClient,
            >(status(401, None, None)));
        assert_eq!(
            HttpRefusal::find(&wrapped),
            Some(HttpRefusal::Unauthorized { reason: None })
        );
    }

    #[test]
    fn no_tls_and_a_failed_tls_handshake_are_final_a_refused_connection_is_not() {
        let io = |kind| ConnectError::Io {
            target: "https://h/mcp".into(),
            source: std::io::Error::new(kind, "x"),
        };
        assert!(!io(std::io::ErrorKind::Unsupported).is_retryable());
        assert!(!io(std::io::ErrorKind::InvalidData).is_retryable());
        assert!(io(std::io::ErrorKind::ConnectionRefused).is_retryable());
    }

    #[test]
    fn a_wait_under_a_second_is_shown_rounded_up_not_as_zero() {
        let refusal = HttpRefusal::RateLimited {
            retry_after: Some(Duration::from_millis(300)),
        };
        assert_eq!(
            refusal.to_string(),
            "rate limited (HTTP 429); retry after 1 s"
        );
    }

    #[test]
    fn revisions_are_read_by_name() {
        for (name, revision) in HttpRevision::ALL {
            assert_eq!(HttpRevision::named(name), Some(revision));
            assert_eq!(revision.name(), name);
        }
        assert_eq!(HttpRevision::named("2024-11-05"), None);
    }
}
