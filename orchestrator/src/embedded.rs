//! The binary's embedded mode: with no `--config`, start both reference
//! servers on a real MCP transport and connect to them as to remote ones.
//! This is the only place the orchestrator links the server crates.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use mcp_server_kit::{
    AuthSettings, Authenticator, HttpOptions, Limits, Secret, ServeArgs, ServerSpec,
};
use orchestrator::{
    Connector, Credential, Token,
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
    let servers: Vec<(String, Arc<dyn Connector>)> = match transport {
        Transport::Stdio => {
            let program = std::env::current_exe().context("cannot find this executable")?;
            [Role::User, Role::Payment]
                .into_iter()
                .map(|role| {
                    let connector: Arc<dyn Connector> = Arc::new(StdioConnector {
                        program: program.clone(),
                        args: vec!["serve-embedded".into(), role.name().into()],
                    });
                    (role.name().to_owned(), connector)
                })
                .collect()
        }
        Transport::Tcp | Transport::Http => {
            // Over HTTP the servers are as secure as when run alone: each
            // gets a fresh random token for this run, and only we hold it.
            let tokens = match transport {
                Transport::Http => Some([
                    mcp_server_kit::generate_token()?,
                    mcp_server_kit::generate_token()?,
                ]),
                _ => None,
            };
            let addrs = spawn_network(transport, tokens.clone(), shutdown.clone()).await?;
            [Role::User, Role::Payment]
                .into_iter()
                .zip(addrs)
                .enumerate()
                .map(|(index, (role, addr))| {
                    let connector: Arc<dyn Connector> = match &tokens {
                        None => Arc::new(TcpConnector {
                            addr: addr.to_string(),
                        }),
                        Some(tokens) => Arc::new(HttpConnector {
                            url: format!("http://{addr}/mcp"),
                            credential: Some(Credential::Value(Token::new(tokens[index].expose()))),
                        }),
                    };
                    (role.name().to_owned(), connector)
                })
                .collect()
        }
    };
    Ok(Embedded { servers, shutdown })
}

/// Starts both servers on loopback ports, on a thread and runtime of their
/// own, as separate processes would be: the orchestrator's runtime stays
/// free for the client. Returns the user and payment servers' addresses.
async fn spawn_network(
    transport: Transport,
    tokens: Option<[Secret; 2]>,
    shutdown: CancellationToken,
) -> anyhow::Result<[SocketAddr; 2]> {
    let (ready, addrs) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("embedded-servers".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                let bind = || mcp_server_kit::bind(SocketAddr::from(([127, 0, 0, 1], 0)));
                let (user, payment) = match (bind().await, bind().await) {
                    (Ok(user), Ok(payment)) => (user, payment),
                    (Err(error), _) | (_, Err(error)) => {
                        let _ = ready.send(Err(error.into()));
                        return;
                    }
                };
                let local = |l: &tokio::net::TcpListener| l.local_addr();
                let addrs_now = match (local(&user), local(&payment)) {
                    (Ok(u), Ok(p)) => {
                        let _ = ready.send(Ok([u, p]));
                        [u, p]
                    }
                    (Err(error), _) | (_, Err(error)) => {
                        let _ = ready.send(Err(error.into()));
                        return;
                    }
                };
                let limits = Limits::DEFAULT;
                let user_server = UserServer::new(UserStore::demo());
                let payment_server = PaymentServer::new(Ledger::demo());
                let (a, b) = if transport == Transport::Tcp {
                    tokio::join!(
                        mcp_server_kit::serve_tcp(
                            user,
                            user_server,
                            limits.clone(),
                            shutdown.clone()
                        ),
                        mcp_server_kit::serve_tcp(payment, payment_server, limits, shutdown),
                    )
                } else {
                    let [user_token, payment_token] =
                        tokens.expect("HTTP servers are started with tokens");
                    let options = |spec: &ServerSpec, addr, token| {
                        protected(spec, addr, token).map_err(|e| e.to_string())
                    };
                    let (user_options, payment_options) = match (
                        options(&user_server::SPEC, addrs_now[0], user_token),
                        options(&payment_server::SPEC, addrs_now[1], payment_token),
                    ) {
                        (Ok(u), Ok(p)) => (u, p),
                        (Err(error), _) | (_, Err(error)) => {
                            tracing::error!(%error, "cannot protect the embedded servers");
                            return;
                        }
                    };
                    tokio::join!(
                        mcp_server_kit::serve_http(
                            user,
                            user_server,
                            limits.clone(),
                            user_options,
                            shutdown.clone(),
                        ),
                        mcp_server_kit::serve_http(
                            payment,
                            payment_server,
                            limits,
                            payment_options,
                            shutdown,
                        ),
                    )
                };
                for result in [a, b] {
                    if let Err(error) = result {
                        tracing::error!(%error, "an embedded server stopped");
                    }
                }
            });
        })
        .context("cannot start the embedded servers' thread")?;
    addrs
        .await
        .context("the embedded servers' thread ended before listening")?
}

/// HTTP options that accept only `token`, for the server `spec` at `addr`.
fn protected(
    spec: &ServerSpec,
    addr: SocketAddr,
    token: Secret,
) -> Result<HttpOptions, mcp_server_kit::AuthConfigError> {
    let auth = Authenticator::new(AuthSettings {
        resource: format!("http://{addr}/mcp"),
        protection: spec.protection,
        static_tokens: vec![token],
        jwt: None,
        // One orchestrator: rmcp's client keeps at most 16 POSTs in flight
        // per session, two sessions with hedging.
        token_requests_max: 64,
        clock: mcp_server_kit::system_clock(),
    })?;
    Ok(HttpOptions::protected(Arc::new(auth)))
}

/// `orchestrator serve-embedded ROLE`: this binary acting as a reference
/// server on stdio, so that embedded stdio mode needs no other binary.
pub(crate) fn serve_stdio(role: Role) -> anyhow::Result<()> {
    let args = ServeArgs::stdio();
    match role {
        Role::User => mcp_server_kit::run(
            &user_server::SPEC,
            UserServer::new(UserStore::demo()),
            &args,
        ),
        Role::Payment => mcp_server_kit::run(
            &payment_server::SPEC,
            PaymentServer::new(Ledger::demo()),
            &args,
        ),
    }
    .context("embedded server failed")
}
