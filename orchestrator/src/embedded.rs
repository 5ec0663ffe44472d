//! The binary's embedded mode: with no `--config`, start both reference
//! servers on a real MCP transport and connect to them as to remote ones.
//! This is the only place the orchestrator links the server crates.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use mcp_server_kit::{HttpOptions, Limits, ServeArgs};
use orchestrator::{
    Connector,
    connector::{HttpConnector, StdioConnector, TcpConnector},
};
use payment_server::{Ledger, PaymentServer};
use tokio_util::sync::CancellationToken;
use user_server::{UserServer, UserStore};

/// Which real transport the embedded servers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Transport {
    /// Child processes on stdin/stdout (this binary, re-executed).
    Stdio,
    /// In-process servers on loopback TCP, newline-delimited JSON-RPC.
    Tcp,
    /// In-process servers on loopback streamable HTTP.
    Http,
}

/// One of the two reference servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    User,
    Payment,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Payment => "payment",
        }
    }
}

/// Running embedded servers. Dropping it stops the in-process ones; stdio
/// children stop when the orchestrator closes their connections.
#[derive(Debug)]
pub(crate) struct Embedded {
    pub(crate) servers: Vec<(String, Arc<dyn Connector>)>,
    shutdown: CancellationToken,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts both reference servers with the demo dataset.
pub(crate) async fn start(transport: Transport) -> anyhow::Result<Embedded> {
    let shutdown = CancellationToken::new();
    let mut servers: Vec<(String, Arc<dyn Connector>)> = Vec::new();
    for role in [Role::User, Role::Payment] {
        let connector: Arc<dyn Connector> = match transport {
            Transport::Stdio => Arc::new(StdioConnector {
                program: std::env::current_exe().context("cannot find this executable")?,
                args: vec!["serve-embedded".into(), role.name().into()],
            }),
            Transport::Tcp => {
                let addr = spawn_network(role, transport, &shutdown).await?;
                Arc::new(TcpConnector {
                    addr: addr.to_string(),
                })
            }
            Transport::Http => {
                let addr = spawn_network(role, transport, &shutdown).await?;
                Arc::new(HttpConnector {
                    url: format!("http://{addr}/mcp"),
                })
            }
        };
        servers.push((role.name().to_owned(), connector));
    }
    Ok(Embedded { servers, shutdown })
}

async fn spawn_network(
    role: Role,
    transport: Transport,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = mcp_server_kit::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let token = shutdown.clone();
    let limits = Limits::DEFAULT;
    match (role, transport) {
        (Role::User, Transport::Tcp) => {
            let server = UserServer::new(UserStore::demo());
            tokio::spawn(mcp_server_kit::serve_tcp(listener, server, limits, token));
        }
        (Role::Payment, Transport::Tcp) => {
            let server = PaymentServer::new(Ledger::demo());
            tokio::spawn(mcp_server_kit::serve_tcp(listener, server, limits, token));
        }
        (Role::User, _) => {
            let server = UserServer::new(UserStore::demo());
            let http = HttpOptions::default();
            tokio::spawn(mcp_server_kit::serve_http(
                listener, server, limits, http, token,
            ));
        }
        (Role::Payment, _) => {
            let server = PaymentServer::new(Ledger::demo());
            let http = HttpOptions::default();
            tokio::spawn(mcp_server_kit::serve_http(
                listener, server, limits, http, token,
            ));
        }
    }
    Ok(addr)
}

/// `orchestrator serve-embedded ROLE`: this binary acting as a reference
/// server on stdio, so that embedded stdio mode needs no other binary.
pub(crate) fn serve_stdio(role: Role) -> anyhow::Result<()> {
    let args = ServeArgs {
        http: None,
        tcp: None,
        data: None,
        message_bytes_max: Limits::DEFAULT.message_bytes_max,
        allowed_hosts: Vec::new(),
        allowed_origins: Vec::new(),
    };
    let unused = user_server::DEFAULT_HTTP_ADDR;
    match role {
        Role::User => mcp_server_kit::run(
            "user-server",
            UserServer::new(UserStore::demo()),
            &args,
            unused,
        ),
        Role::Payment => mcp_server_kit::run(
            "payment-server",
            PaymentServer::new(Ledger::demo()),
            &args,
            unused,
        ),
    }
    .context("embedded server failed")
}
