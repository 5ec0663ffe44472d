//! The one seam through which the orchestrator reaches servers.
//!
//! A [`Connector`] opens a fresh connection and completes the MCP handshake.
//! stdio, TCP and HTTP implement it here; the simulation harness implements
//! it over turmoil streams. Nothing else in the orchestrator knows which
//! transport is in use.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use rmcp::{
    RoleClient, ServiceExt,
    service::RunningService,
    transport::{
        ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess,
        async_rw::AsyncRwTransport,
    },
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite};

use crate::config::TransportConfig;

/// A live MCP client session. Dropping it closes the connection (and, for
/// stdio, stops the child process).
pub type McpClient = RunningService<RoleClient, ()>;

/// Largest reply line accepted from a server over stdio or TCP, in bytes.
pub const REPLY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Opens connections to one server.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// Where this connects, for messages: `tcp://host:port`, a URL, a command.
    fn target(&self) -> String;
    /// Opens a new connection and completes `initialize`. The caller bounds
    /// it with a timeout.
    fn connect(&self) -> BoxFuture<'_, Result<McpClient, ConnectError>>;
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
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ConnectError::Spawn { .. })
    }
}

/// Builds the connector a config entry describes.
pub fn from_config(transport: &TransportConfig) -> Arc<dyn Connector> {
    match transport {
        TransportConfig::Stdio { program, args } => Arc::new(StdioConnector {
            program: program.clone(),
            args: args.clone(),
        }),
        TransportConfig::Tcp { addr } => Arc::new(TcpConnector { addr: addr.clone() }),
        TransportConfig::Http { url } => Arc::new(HttpConnector { url: url.clone() }),
    }
}

/// Completes the client handshake over any byte stream with newline
/// JSON-RPC framing. Public so that other connectors (the simulation's)
/// frame exactly as the real TCP transport does.
pub async fn handshake_lines<R, W>(
    read: R,
    write: W,
    target: &str,
) -> Result<McpClient, ConnectError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = AsyncRwTransport::new_client(read, write).with_max_line_length(REPLY_BYTES_MAX);
    ().serve(transport)
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

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

/// Launches the server as a child process and speaks MCP on its stdio.
#[derive(Debug, Clone)]
pub struct StdioConnector {
    pub program: PathBuf,
    pub args: Vec<String>,
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

    fn connect(&self) -> BoxFuture<'_, Result<McpClient, ConnectError>> {
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
                Ok(client) => Ok(client),
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
pub struct TcpConnector {
    pub addr: String,
}

impl Connector for TcpConnector {
    fn target(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn connect(&self) -> BoxFuture<'_, Result<McpClient, ConnectError>> {
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

/// Connects with MCP streamable HTTP.
#[derive(Debug, Clone)]
pub struct HttpConnector {
    pub url: String,
}

impl Connector for HttpConnector {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'_, Result<McpClient, ConnectError>> {
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
            let transport = StreamableHttpClientTransport::from_uri(self.url.as_str());
            ().serve(transport)
                .await
                .map_err(|error| ConnectError::Handshake {
                    target: self.target(),
                    message: root_cause(&error),
                    stderr_tail: String::new(),
                })
        })
    }
}
