//! The command line every reference server shares, and the thin `run` that
//! turns it into a served transport.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use crate::serve::{self, HttpOptions, Limits, ServeError};

/// Transport and limit flags. stdio is the default transport.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Serve MCP streamable HTTP at http://ADDR/mcp instead of stdio.
    /// With no ADDR, the server's documented default address.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, conflicts_with = "tcp")]
    pub http: Option<Option<SocketAddr>>,

    /// Serve newline-delimited JSON-RPC over TCP on ADDR instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,

    /// Load the dataset from this JSON file instead of the embedded demo data.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,

    /// Largest JSON-RPC message accepted, in bytes, on every transport.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.message_bytes_max,
          value_parser = parse_message_bytes_max)]
    pub message_bytes_max: usize,

    /// Extra Host header value to accept over HTTP (repeatable). Loopback
    /// names are always accepted; anything else is refused (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Extra browser Origin to accept over HTTP (repeatable), e.g.
    /// https://app.example.com:443. Loopback origins are always accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

impl ServeArgs {
    /// stdio with the embedded data and default limits: what a server
    /// binary does with no flags.
    pub fn stdio() -> Self {
        Self {
            http: None,
            tcp: None,
            data: None,
            message_bytes_max: Limits::DEFAULT.message_bytes_max,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

fn parse_message_bytes_max(raw: &str) -> Result<usize, String> {
    const MIN: usize = 1024;
    const MAX: usize = 64 * 1024 * 1024;
    let bytes: usize = raw.parse().map_err(|e| format!("{e}"))?;
    if (MIN..=MAX).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("must be between {MIN} and {MAX} bytes"))
    }
}

/// Where a server listens, resolved from [`ServeArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Stdio,
    Tcp(SocketAddr),
    Http(SocketAddr),
}

impl ServeArgs {
    /// The transport these flags select; `--http` alone means `default_http`.
    pub fn listen(&self, default_http: SocketAddr) -> Listen {
        match (self.http, self.tcp) {
            (Some(addr), _) => Listen::Http(addr.unwrap_or(default_http)),
            (None, Some(addr)) => Listen::Tcp(addr),
            (None, None) => Listen::Stdio,
        }
    }

    /// The limits these flags select.
    pub fn limits(&self) -> Limits {
        Limits {
            message_bytes_max: self.message_bytes_max,
            ..Limits::DEFAULT
        }
    }
}

/// The whole `main` of a server binary, after clap: load the dataset with
/// `load` (given `--data`, if any), serve it, report any failure on stderr.
/// Exit codes: 0 after a clean stop, 1 on bad data or a serving failure
/// (clap itself exits 2 on bad arguments).
pub fn main<S: ServerHandler + Clone>(
    name: &str,
    args: &ServeArgs,
    default_http: SocketAddr,
    load: impl FnOnce(Option<&std::path::Path>) -> Result<S, crate::DataFileError>,
) -> std::process::ExitCode {
    init_tracing("info,rmcp=warn");
    let result = match load(args.data.as_deref()) {
        Ok(handler) => run(name, handler, args, default_http).map_err(|e| describe(&e)),
        Err(error) => Err(describe(&error)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {name}: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: "a: b: c". A cause
/// whose text the message already contains is not repeated.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Sends logs to stderr (stdout carries the protocol on stdio), with
/// `default_filter` unless `RUST_LOG` says otherwise.
pub fn init_tracing(default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Runs `handler` on the transport `args` selects until the client leaves
/// (stdio) or SIGINT/SIGTERM arrives.
pub fn run<S: ServerHandler + Clone>(
    name: &str,
    handler: S,
    args: &ServeArgs,
    default_http: SocketAddr,
) -> Result<(), ServeError> {
    let listen = args.listen(default_http);
    let runtime = match listen {
        // One client: a single thread is both enough and fastest.
        Listen::Stdio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Listen::Tcp(_) | Listen::Http(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .map_err(|source| ServeError::Listener {
        addr: "runtime".into(),
        source,
    })?;
    let limits = args.limits();
    let http = HttpOptions {
        allowed_hosts: args.allowed_hosts.clone(),
        allowed_origins: args.allowed_origins.clone(),
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let on_signal =
            serve::cancel_on_signal(shutdown.clone()).map_err(|source| ServeError::Listener {
                addr: "signal handlers".into(),
                source,
            })?;
        tokio::spawn(on_signal);
        let result = match listen {
            Listen::Stdio => {
                tracing::info!("{name}: serving MCP on stdio");
                serve::serve_stdio(handler, &limits, shutdown).await
            }
            Listen::Tcp(addr) => {
                let listener = bind(addr).await?;
                let addr = listener.local_addr().unwrap_or(addr);
                tracing::info!("{name}: serving MCP (newline JSON-RPC) on tcp://{addr}");
                serve::serve_tcp(listener, handler, limits, shutdown).await
            }
            Listen::Http(addr) => {
                let listener = bind(addr).await?;
                let addr = listener.local_addr().unwrap_or(addr);
                tracing::info!("{name}: serving MCP streamable HTTP at http://{addr}/mcp");
                serve::serve_http(listener, handler, limits, http, shutdown).await
            }
        };
        tracing::info!("{name}: stopped");
        result
    })?;
    // stdin may still be blocked in a read no cancellation can interrupt.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// Binds a TCP listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listener {
            addr: addr.to_string(),
            source,
        })
}
