//! The servers and the orchestrator in one process, speaking real MCP over
//! in-memory pipes (`tokio::io::duplex`) with the same newline framing as
//! stdio and TCP. No network, no faults: the fastest way to ask the whole
//! stack a question, for the property tests and the benchmarks.

use std::sync::Arc;

use futures::future::BoxFuture;
use mcp_server_kit::Limits;
use orchestrator::{
    ConnectError, Connector, McpClient, Orchestrator, Policy, connector::handshake_lines,
};
use payment_server::PaymentServer;
use rmcp::{RoleServer, Service};
use tokio_util::sync::CancellationToken;
use user_server::UserServer;

use crate::{Dataset, dataset::DatasetError};

/// Bytes buffered in each direction of a pipe.
const PIPE_BYTES: usize = 64 * 1024;

/// Opens a fresh in-memory session with a server handler per connection.
#[derive(Debug, Clone)]
pub struct DuplexConnector<S> {
    name: &'static str,
    handler: S,
    /// Ends every session this connector started when cancelled (on drop
    /// of the last clone of the orchestrator's connector, sessions end when
    /// their client side closes anyway).
    shutdown: CancellationToken,
}

impl<S> DuplexConnector<S> {
    pub fn new(name: &'static str, handler: S) -> Self {
        Self {
            name,
            handler,
            shutdown: CancellationToken::new(),
        }
    }
}

impl<S> Connector for DuplexConnector<S>
where
    S: Service<RoleServer> + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    fn target(&self) -> String {
        format!("duplex://{}", self.name)
    }

    fn connect(&self) -> BoxFuture<'_, Result<McpClient, ConnectError>> {
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(PIPE_BYTES);
            let (server_read, server_write) = tokio::io::split(server);
            let handler = self.handler.clone();
            let shutdown = self.shutdown.child_token();
            tokio::spawn(async move {
                if let Err(error) = mcp_server_kit::serve_connection(
                    handler,
                    server_read,
                    server_write,
                    &Limits::DEFAULT,
                    shutdown,
                )
                .await
                {
                    tracing::debug!(%error, "in-process session ended");
                }
            });
            let (client_read, client_write) = tokio::io::split(client);
            handshake_lines(client_read, client_write, &self.target()).await
        })
    }
}

/// An orchestrator over the reference servers loaded with `dataset`, all in
/// this process. Call it inside a tokio runtime.
pub fn orchestrator(
    dataset: &Dataset,
    policy: Policy,
    seed: u64,
) -> Result<Orchestrator, DatasetError> {
    let (users, ledger) = dataset.stores()?;
    let user: Arc<dyn Connector> = Arc::new(DuplexConnector::new("user", UserServer::new(users)));
    let payment: Arc<dyn Connector> =
        Arc::new(DuplexConnector::new("payment", PaymentServer::new(ledger)));
    Ok(Orchestrator::new(
        vec![("user".into(), user), ("payment".into(), payment)],
        policy,
        seed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Oracle;

    #[tokio::test]
    async fn answers_the_demo_question_like_the_oracle() {
        let dataset = Dataset::demo();
        let orchestrator = orchestrator(&dataset, Policy::DEFAULT, 1).unwrap();
        let question = "What are the recent transactions for bob@example.com?";
        let mut trace = Vec::new();
        let got = orchestrator.ask(question, &mut trace).await.unwrap();
        assert_eq!(
            Oracle::new(dataset)
                .answer(question)
                .check(&got, &got.render()),
            Ok(())
        );
        assert_eq!(trace.len(), 2, "two hops: {trace:?}");
        orchestrator.shutdown().await;
    }
}
