//! The binary's embedded mode: with no `--config`, start both reference
//! servers on a real MCP transport (with `reference-servers`) and connect
//! to them as to remote ones. The orchestrator library never links them.

use std::sync::Arc;

use anyhow::Context;
use orchestrator::Connector;
use reference_servers::{Access, Data, Role, Servers};
use tokio_util::sync::CancellationToken;

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
    let servers = match transport {
        Transport::Stdio => {
            let program = std::env::current_exe().context("cannot find this executable")?;
            let stdio = reference_servers::Transport::Stdio {
                program,
                args: vec!["serve-embedded".into()],
            };
            // Child processes: nothing runs here to keep alive.
            Servers::start(&stdio, &Data::demo()).await?.connectors()
        }
        // Over HTTP the servers are as secure as when run alone: each gets a
        // fresh random token for this run, and only we hold it. One
        // orchestrator: rmcp's client keeps at most 16 POSTs in flight per
        // session, two sessions with hedging.
        Transport::Tcp => spawn_network(reference_servers::Transport::Tcp, &shutdown).await?,
        Transport::Http => {
            let access = Access::GeneratedToken {
                token_requests_max: 64,
            };
            spawn_network(reference_servers::Transport::Http(access), &shutdown).await?
        }
    };
    Ok(Embedded { servers, shutdown })
}

/// Starts both servers on loopback ports, on a thread and runtime of their
/// own, as separate processes would be: the orchestrator's runtime stays
/// free for the client. They run until `shutdown`.
async fn spawn_network(
    transport: reference_servers::Transport,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<(String, Arc<dyn Connector>)>> {
    let (ready, started) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
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
                match Servers::start(&transport, &Data::demo()).await {
                    Ok(servers) => {
                        let _ = ready.send(Ok(servers.connectors()));
                        stop.cancelled().await;
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error.into()));
                    }
                }
            });
        })
        .context("cannot start the embedded servers' thread")?;
    started
        .await
        .context("the embedded servers' thread ended before listening")?
}

/// `orchestrator serve-embedded ROLE`: this binary acting as a reference
/// server on stdio, so that embedded stdio mode needs no other binary.
pub(crate) fn serve_stdio(role: Role) -> anyhow::Result<()> {
    reference_servers::serve_stdio(role).context("embedded server failed")
}
