//! The **reference servers**, user and payment, started on a transport, with
//! the orchestrator's connectors to them. This is the one way to do that:
//! the `orchestrator` binary's embedded mode, the benchmarks, the
//! end-to-end tests and the harness's in-process runs all start them here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reference_servers::StartError> {
//! use reference_servers::{Data, Servers, Transport};
//! let servers = Servers::start(&Transport::Tcp, &Data::demo()).await?;
//! let orchestrator = orchestrator::Orchestrator::new(
//!     servers.connectors(),
//!     orchestrator::Policy::DEFAULT,
//!     1,
//! );
//! # drop(orchestrator);
//! # Ok(())
//! # }
//! ```
//!
//! Servers in this process listen on loopback only. Over HTTP they are
//! protected as when run alone, unless [`Access::Open`] is asked for by
//! name. The simulation (`harness/src/sim.rs`) does not use this crate: it
//! puts the servers on turmoil hosts of its own.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc};

use futures::future::BoxFuture;
use mcp_server_kit::{
    AuthConfigError, AuthSettings, Authenticator, HttpOptions, Limits, ServeArgs, ServeError,
    ServerSpec,
};
use orchestrator::{ConnectError, Connector, Credential, Session, Token, TransportConfig};
use payment_server::{Ledger, PaymentServer};
use rmcp::{RoleServer, Service};
use tokio_util::sync::CancellationToken;
use user_server::{UserServer, UserStore};

/// One of the reference servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Payment,
}

impl Role {
    /// Both, in the order servers are started and configured.
    pub const ALL: [Role; 2] = [Role::User, Role::Payment];

    /// The server's name in an orchestrator (`user`, `payment`).
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Payment => "payment",
        }
    }

    /// What the server is and protects (its HTTP scope and call rules).
    pub fn spec(self) -> &'static ServerSpec {
        match self {
            Role::User => &user_server::SPEC,
            Role::Payment => &payment_server::SPEC,
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .ok_or_else(|| UnknownRole(name.to_owned()))
    }
}

/// A name that is not `user` or `payment`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no reference server is called {0:?}: give user or payment")]
pub struct UnknownRole(String);

/// What the servers serve.
#[derive(Debug, Clone)]
pub struct Data {
    users: UserStore,
    ledger: Ledger,
}

impl Data {
    /// The original demo's users and transactions.
    pub fn demo() -> Self {
        Self::new(UserStore::demo(), Ledger::demo())
    }

    pub fn new(users: UserStore, ledger: Ledger) -> Self {
        Self { users, ledger }
    }
}

/// How the servers are reached.
#[derive(Debug, Clone)]
pub enum Transport {
    /// In this process, over in-memory pipes (`tokio::io::duplex`) with the
    /// same newline framing as stdio and TCP: no network at all.
    Duplex,
    /// A child process per session, speaking MCP on its stdin/stdout:
    /// `program args… ROLE`, which serves the demo data (see
    /// [`serve_stdio`]).
    Stdio { program: PathBuf, args: Vec<String> },
    /// In this process, on a loopback TCP port (newline-delimited JSON-RPC).
    Tcp,
    /// In this process, on loopback streamable HTTP, with this access control.
    Http(Access),
}

/// Who an HTTP server lets in.
#[derive(Clone)]
pub enum Access {
    /// Anyone: authentication off (loopback only).
    Open,
    /// A fresh random static token per server, which only its connector
    /// holds and sends; at most `token_requests_max` requests in flight.
    GeneratedToken { token_requests_max: usize },
    /// Settings of the caller's own for each server, given its resource URL
    /// (JWTs, chosen static tokens, a fixed clock); the connectors send no
    /// token, so the caller connects with its own credentials.
    Settings(Arc<dyn Fn(Role, String) -> AuthSettings + Send + Sync>),
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Open => f.write_str("Open"),
            Access::GeneratedToken { token_requests_max } => f
                .debug_struct("GeneratedToken")
                .field("token_requests_max", token_requests_max)
                .finish(),
            Access::Settings(_) => f.write_str("Settings(..)"),
        }
    }
}

/// Why the servers could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A loopback port could not be bound.
    #[error(transparent)]
    Listen(#[from] ServeError),
    /// A bound listener has no address.
    #[error("cannot read a listener's address: {0}")]
    Address(#[from] std::io::Error),
    /// The HTTP access settings cannot be used.
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
}

/// One started server.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub role: Role,
    /// Opens sessions to it (with its token, under
    /// [`Access::GeneratedToken`]).
    pub connector: Arc<dyn Connector>,
    /// Where it listens, if on the network.
    pub addr: Option<SocketAddr>,
}

/// Started reference servers. Dropping this stops those in this process;
/// stdio children and in-memory sessions end when their sessions close.
#[derive(Debug, Default)]
pub struct Servers {
    endpoints: Vec<Endpoint>,
    shutdown: CancellationToken,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Servers {
    /// Both servers, user then payment, over `transport`, serving `data`
    /// (stdio children serve the demo data). Call inside a tokio runtime.
    pub async fn start(transport: &Transport, data: &Data) -> Result<Self, StartError> {
        let mut servers = Servers::default();
        for role in Role::ALL {
            servers.add(role, transport, data).await?;
        }
        Ok(servers)
    }

    /// Starts one more server: `role` over `transport`, serving `data`.
    pub async fn add(
        &mut self,
        role: Role,
        transport: &Transport,
        data: &Data,
    ) -> Result<&Endpoint, StartError> {
        let shutdown = &self.shutdown;
        let endpoint = match role {
            Role::User => {
                let handler = UserServer::new(data.users.clone());
                start(role, handler, transport, shutdown).await?
            }
            Role::Payment => {
                let handler = PaymentServer::new(data.ledger.clone());
                start(role, handler, transport, shutdown).await?
            }
        };
        self.endpoints.push(endpoint);
        Ok(self.endpoints.last().expect("just pushed"))
    }

    /// Every server's connector under its name, in the order started: what
    /// [`orchestrator::Orchestrator::new`] takes.
    pub fn connectors(&self) -> Vec<(String, Arc<dyn Connector>)> {
        self.endpoints
            .iter()
            .map(|e| (e.role.name().to_owned(), e.connector.clone()))
            .collect()
    }

    /// Where the first server of `role` listens, if on the network.
    pub fn addr(&self, role: Role) -> Option<SocketAddr> {
        self.endpoints
            .iter()
            .find(|e| e.role == role)
            .and_then(|e| e.addr)
    }
}

/// Both servers in this process over in-memory pipes: the fastest way to
/// ask the whole stack a question. Nothing to stop: each session's server
/// side ends when its client side closes.
pub fn in_process(data: &Data) -> Vec<(String, Arc<dyn Connector>)> {
    Role::ALL
        .into_iter()
        .map(|role| {
            let connector: Arc<dyn Connector> = match role {
                Role::User => Arc::new(DuplexConnector::new(
                    role,
                    UserServer::new(data.users.clone()),
                )),
                Role::Payment => Arc::new(DuplexConnector::new(
                    role,
                    PaymentServer::new(data.ledger.clone()),
                )),
            };
            (role.name().to_owned(), connector)
        })
        .collect()
}

/// This process as the reference server `role` on stdio, with the demo
/// data, exactly as `user-server` / `payment-server` run it: what a
/// [`Transport::Stdio`] program runs.
pub fn serve_stdio(role: Role) -> Result<(), ServeError> {
    let args = ServeArgs::stdio();
    let spec = role.spec();
    match role {
        Role::User => mcp_server_kit::run(spec, UserServer::new(UserStore::demo()), &args),
        Role::Payment => mcp_server_kit::run(spec, PaymentServer::new(Ledger::demo()), &args),
    }
}

/// Starts `handler` as `role` over `transport`.
async fn start<S>(
    role: Role,
    handler: S,
    transport: &Transport,
    shutdown: &CancellationToken,
) -> Result<Endpoint, StartError>
where
    S: rmcp::ServerHandler + Service<RoleServer> + Clone + Send + Sync + fmt::Debug + 'static,
{
    let (connector, addr): (Arc<dyn Connector>, _) = match transport {
        Transport::Duplex => (Arc::new(DuplexConnector::new(role, handler)), None),
        Transport::Stdio { program, args } => {
            let mut args = args.clone();
            args.push(role.name().to_owned());
            let stdio = TransportConfig::Stdio {
                program: program.clone(),
                args,
            };
            (stdio.connector(), None)
        }
        Transport::Tcp => {
            let (listener, addr) = listen().await?;
            let serving =
                mcp_server_kit::serve_tcp(listener, handler, Limits::DEFAULT, shutdown.clone());
            tokio::spawn(report_stop(role, serving));
            let tcp = TransportConfig::Tcp {
                addr: addr.to_string(),
            };
            (tcp.connector(), Some(addr))
        }
        Transport::Http(access) => {
            let (listener, addr) = listen().await?;
            let url = format!("http://{addr}/mcp");
            let (options, credential) = protect(role, access, &url)?;
            let serving = mcp_server_kit::serve_http(
                listener,
                handler,
                Limits::DEFAULT,
                options,
                shutdown.clone(),
            );
            tokio::spawn(report_stop(role, serving));
            let http = TransportConfig::Http {
                url,
                credential,
                revision: orchestrator::HttpRevision::default(),
            };
            (http.connector(), Some(addr))
        }
    };
    Ok(Endpoint {
        role,
        connector,
        addr,
    })
}

/// Serves until stopped, and logs why if that was not a clean stop.
async fn report_stop(role: Role, serving: impl Future<Output = Result<(), ServeError>>) {
    if let Err(error) = serving.await {
        tracing::error!(server = role.name(), %error, "a reference server stopped");
    }
}

/// A listener on a free loopback port, and its address.
async fn listen() -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let listener = mcp_server_kit::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The HTTP options `access` asks for at `resource`, and the credential the
/// connector sends.
fn protect(
    role: Role,
    access: &Access,
    resource: &str,
) -> Result<(HttpOptions, Option<Credential>), StartError> {
    let (settings, credential) = match access {
        Access::Open => return Ok((HttpOptions::unauthenticated(), None)),
        Access::GeneratedToken { token_requests_max } => {
            let secret = mcp_server_kit::generate_token()?;
            let credential = Credential::Value(Token::new(secret.expose()));
            let settings = AuthSettings {
                resource: resource.to_owned(),
                protection: role.spec().protection,
                static_tokens: vec![secret],
                jwt: None,
                token_requests_max: *token_requests_max,
                clock: mcp_server_kit::system_clock(),
            };
            (settings, Some(credential))
        }
        Access::Settings(settings_for) => (settings_for(role, resource.to_owned()), None),
    };
    let auth = Authenticator::new(settings)?;
    Ok((HttpOptions::protected(Arc::new(auth)), credential))
}

/// Bytes buffered in each direction of an in-memory pipe.
const PIPE_BYTES: usize = 64 * 1024;

/// Opens a fresh in-memory session with a server handler per connection.
#[derive(Debug, Clone)]
struct DuplexConnector<S> {
    role: Role,
    handler: S,
}

impl<S> DuplexConnector<S> {
    fn new(role: Role, handler: S) -> Self {
        Self { role, handler }
    }
}

impl<S> Connector for DuplexConnector<S>
where
    S: Service<RoleServer> + Clone + Send + Sync + fmt::Debug + 'static,
{
    fn target(&self) -> String {
        format!("duplex://{}", self.role.name())
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn Session>, ConnectError>> {
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(PIPE_BYTES);
            let (server_read, server_write) = tokio::io::split(server);
            let handler = self.handler.clone();
            tokio::spawn(async move {
                if let Err(error) = mcp_server_kit::serve_connection(
                    handler,
                    server_read,
                    server_write,
                    &Limits::DEFAULT,
                    CancellationToken::new(),
                )
                .await
                {
                    tracing::debug!(%error, "in-process session ended");
                }
            });
            let (client_read, client_write) = tokio::io::split(client);
            orchestrator::handshake_lines(client_read, client_write, &self.target()).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_by_name() {
        for role in Role::ALL {
            assert_eq!(role.name().parse(), Ok(role));
        }
        assert_eq!(
            "ledger".parse::<Role>().unwrap_err().to_string(),
            "no reference server is called \"ledger\": give user or payment"
        );
    }

    #[tokio::test]
    async fn in_process_servers_list_their_tools() {
        for (name, connector) in in_process(&Data::demo()) {
            let session = connector.connect().await.unwrap();
            let tools = session.list_tools().await.unwrap();
            assert_eq!(tools.len(), 1, "{name}: {tools:?}");
            assert_eq!(connector.target(), format!("duplex://{name}"));
            session.close().await;
        }
    }
}
