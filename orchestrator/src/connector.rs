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
use rmcp::{
    ServiceExt,
    transport::{
        ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess,
        async_rw::AsyncRwTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
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
    /// False when trying again cannot succeed without someone fixing things.
    pub(crate) fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ConnectError::Spawn { .. }
                | ConnectError::Denied { .. }
                | ConnectError::Credential { .. }
        )
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
                    Some(after) => write!(f, "; retry after {} s", after.as_secs()),
                    None => Ok(()),
                }
            }
        }
    }
}

impl HttpRefusal {
    /// The refusal among `error`'s causes, if an HTTP status is why it failed.
    pub(crate) fn find(error: &(dyn std::error::Error + 'static)) -> Option<Self> {
        use rmcp::transport::streamable_http_client::{
            AuthRequiredError, InsufficientScopeError, StreamableHttpError,
        };
        let mut cause = Some(error);
        while let Some(current) = cause {
            if let Some(e) = current.downcast_ref::<AuthRequiredError>() {
                return Some(HttpRefusal::Unauthorized {
                    reason: challenge_param(&e.www_authenticate_header, "error_description"),
                });
            }
            if let Some(e) = current.downcast_ref::<InsufficientScopeError>() {
                return Some(HttpRefusal::Forbidden {
                    scope: e
                        .required_scope
                        .clone()
                        .or_else(|| challenge_param(&e.www_authenticate_header, "scope")),
                });
            }
            match current.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
                // A 401/403 without a challenge (rmcp's own Host check, a
                // proxy): rmcp reports it as "HTTP 403 Forbidden: body".
                Some(StreamableHttpError::UnexpectedServerResponse(text))
                    if text.starts_with("HTTP 401") =>
                {
                    return Some(HttpRefusal::Unauthorized { reason: None });
                }
                Some(StreamableHttpError::UnexpectedServerResponse(text))
                    if text.starts_with("HTTP 403") =>
                {
                    return Some(HttpRefusal::Forbidden { scope: None });
                }
                Some(StreamableHttpError::HttpStatus(status)) if status.status == 429 => {
                    let retry_after = status
                        .retry_after
                        .as_deref()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    return Some(HttpRefusal::RateLimited { retry_after });
                }
                _ => {}
            }
            cause = current.source();
        }
        None
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
            TransportConfig::Http { url, credential } => Arc::new(HttpConnector {
                url: url.clone(),
                credential: credential.clone(),
            }),
        }
    }
}

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
    let transport = AsyncRwTransport::new_client(read, write).with_max_line_length(REPLY_BYTES_MAX);
    ().serve(transport)
        .await
        .map(RmcpSession::boxed)
        .map_err(|error| ConnectError::Handshake {
            target: target.to_owned(),
            message: root_cause(&error),
            stderr_tail: String::new(),
        })
}

/// `host:port` of an http(s) URL, with the scheme's default port.
fn authority(url: &str) -> Option<String> {
    let (rest, default_port) = match url.split_once("://")? {
        ("http", rest) => (rest, 80),
        ("https", rest) => (rest, 443),
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
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

/// Connects with MCP streamable HTTP, sending `Authorization: Bearer` with
/// the token `credential` names (read at every connect).
#[derive(Debug, Clone)]
struct HttpConnector {
    url: String,
    credential: Option<crate::config::Credential>,
}

impl Connector for HttpConnector {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            // rmcp flattens the cause of a failed request into one long
            // string; probing first names a refused or unreachable server plainly.
            if let Some(authority) = authority(&self.url) {
                tokio::net::TcpStream::connect(&authority)
                    .await
                    .map_err(|source| ConnectError::Io {
                        target: self.target(),
                        source,
                    })?;
            }
            let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str());
            if let Some(credential) = &self.credential {
                let token = credential
                    .resolve()
                    .map_err(|source| ConnectError::Credential {
                        target: self.target(),
                        source,
                    })?;
                config = config.auth_header(token.expose());
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            let service = ().serve(transport).await.map_err(|error| {
                // rmcp does not chain a failed initialize to its cause.
                let refusal = match &error {
                    rmcp::service::ClientInitializeError::TransportError { error, .. } => {
                        HttpRefusal::find(error)
                    }
                    other => HttpRefusal::find(other),
                };
                match refusal {
                    Some(refusal) => refusal.into_connect_error(self.target()),
                    None => ConnectError::Handshake {
                        target: self.target(),
                        message: root_cause(&error),
                        stderr_tail: String::new(),
                    },
                }
            })?;
            Ok(RmcpSession::boxed(service))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_found_with_or_without_a_challenge() {
        use rmcp::transport::streamable_http_client::{
            AuthRequiredError, HttpStatusError, StreamableHttpError,
        };
        type E = StreamableHttpError<reqwest::Error>;
        let challenge =
            r#"Bearer error="invalid_token", error_description="the token has expired""#;
        let cases: [(E, HttpRefusal); 4] = [
            (
                E::AuthRequired(AuthRequiredError::new(challenge.into())),
                HttpRefusal::Unauthorized {
                    reason: Some("the token has expired".into()),
                },
            ),
            (
                E::UnexpectedServerResponse(
                    "HTTP 403 Forbidden: Host header is not allowed".into(),
                ),
                HttpRefusal::Forbidden { scope: None },
            ),
            (
                E::UnexpectedServerResponse("HTTP 401 Unauthorized: ".into()),
                HttpRefusal::Unauthorized { reason: None },
            ),
            (
                E::HttpStatus(HttpStatusError::new(429, Some("3".into()))),
                HttpRefusal::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                },
            ),
        ];
        for (error, refusal) in cases {
            assert_eq!(HttpRefusal::find(&error), Some(refusal), "{error}");
        }
        let other = E::UnexpectedServerResponse("HTTP 500 Internal Server Error: x".into());
        assert_eq!(HttpRefusal::find(&other), None);
        let date = E::HttpStatus(HttpStatusError::new(
            429,
            Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
        ));
        assert_eq!(
            HttpRefusal::find(&date),
            Some(HttpRefusal::RateLimited { retry_after: None })
        );
    }

    #[test]
    fn authority_defaults_the_port_by_scheme() {
        assert_eq!(
            authority("http://127.0.0.1:8082/mcp").as_deref(),
            Some("127.0.0.1:8082")
        );
        assert_eq!(
            authority("https://example.com/mcp").as_deref(),
            Some("example.com:443")
        );
        assert_eq!(authority("http://u:p@[::1]/x").as_deref(), Some("[::1]:80"));
        assert_eq!(authority("http://[::1]:9/x").as_deref(), Some("[::1]:9"));
        assert_eq!(authority("ftp://x"), None);
    }
}
