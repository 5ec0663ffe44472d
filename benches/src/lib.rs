//! Shared pieces of the benchmarks: latency statistics and the one JSON
//! line every contender prints (`orchestrator bench --json`, the
//! TypeScript peer's `bench.mjs`, the floor probe).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use mcp_server_kit::{HttpOptions, Limits};
use orchestrator::{
    Connector,
    connector::{HttpConnector, StdioConnector, TcpConnector},
};
use payment_server::{Ledger, PaymentServer};
use rmcp::{RoleServer, Service};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use user_server::{UserServer, UserStore};

/// The question every benchmark asks: the 2-hop demo.
pub const DEMO_QUESTION: &str = "What are the recent transactions for bob@example.com?";

/// Bob's user id in the demo data.
pub const BOB: &str = "b1a7e8c2-1f2d-4e3a-9c4b-1a2b3c4d5e6f";

/// One contender's result, as each prints it on one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub queries: u64,
    #[serde(default = "one")]
    pub concurrency: u64,
    pub transport: String,
    pub p50_us: u64,
    pub p99_us: u64,
    pub qps: u64,
    #[serde(default)]
    pub errors: u64,
    /// Peak resident memory of the measuring process, when it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_peak_kb: Option<u64>,
}

fn one() -> u64 {
    1
}

impl Measured {
    /// Summarises latencies of `queries` queries that took `elapsed`.
    pub fn from_latencies(
        transport: &str,
        concurrency: u64,
        mut latencies: Vec<Duration>,
        elapsed: Duration,
    ) -> Self {
        latencies.sort_unstable();
        let queries = latencies.len() as u64;
        Self {
            queries,
            concurrency,
            transport: transport.to_owned(),
            p50_us: percentile(&latencies, 0.50),
            p99_us: percentile(&latencies, 0.99),
            qps: (queries as f64 / elapsed.as_secs_f64()).round() as u64,
            errors: 0,
            rss_peak_kb: None,
        }
    }
}

/// The transports the benchmarks compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In-memory pipes in one process (`harness::duplex`).
    Duplex,
    /// Child processes on stdin/stdout.
    Stdio,
    /// Loopback TCP, newline-delimited JSON-RPC.
    Tcp,
    /// Loopback streamable HTTP.
    Http,
}

impl Transport {
    pub const ALL: [Transport; 4] = [
        Transport::Duplex,
        Transport::Stdio,
        Transport::Tcp,
        Transport::Http,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Duplex => "duplex",
            Transport::Stdio => "stdio",
            Transport::Tcp => "tcp",
            Transport::Http => "http",
        }
    }
}

/// Both reference servers with the demo data, reachable over `transport`.
/// In-process ones stop when this is dropped; stdio children stop when
/// their connections close.
#[derive(Debug)]
pub struct Servers {
    pub connectors: Vec<(String, Arc<dyn Connector>)>,
    shutdown: CancellationToken,
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Servers {
    /// Starts them; `serve_program` is the `serve` binary (for stdio).
    /// Call inside a tokio runtime.
    pub async fn start(transport: Transport, serve_program: &Path) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let user = UserServer::new(UserStore::demo());
        let payment = PaymentServer::new(Ledger::demo());
        let connectors: Vec<(String, Arc<dyn Connector>)> = match transport {
            Transport::Duplex => vec![
                (
                    "user".into(),
                    Arc::new(harness::duplex::DuplexConnector::new("user", user)),
                ),
                (
                    "payment".into(),
                    Arc::new(harness::duplex::DuplexConnector::new("payment", payment)),
                ),
            ],
            Transport::Stdio => ["user", "payment"]
                .into_iter()
                .map(|role| {
                    let connector: Arc<dyn Connector> = Arc::new(StdioConnector {
                        program: serve_program.to_owned(),
                        args: vec![role.into()],
                    });
                    (role.to_owned(), connector)
                })
                .collect(),
            Transport::Tcp | Transport::Http => vec![
                (
                    "user".into(),
                    listen(user, &user_server::SPEC, transport, &shutdown).await?,
                ),
                (
                    "payment".into(),
                    listen(payment, &payment_server::SPEC, transport, &shutdown).await?,
                ),
            ],
        };
        Ok(Self {
            connectors,
            shutdown,
        })
    }
}

/// Serves `handler` on a loopback port and returns a connector to it. Over
/// HTTP the server is protected as a real one is, with a fresh static token:
/// the figures include checking it.
async fn listen<S>(
    handler: S,
    spec: &mcp_server_kit::ServerSpec,
    transport: Transport,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<dyn Connector>>
where
    S: rmcp::ServerHandler + Service<RoleServer> + Clone + Send + Sync + 'static,
{
    let listener = mcp_server_kit::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let token = shutdown.clone();
    Ok(if transport == Transport::Tcp {
        tokio::spawn(mcp_server_kit::serve_tcp(
            listener,
            handler,
            Limits::DEFAULT,
            token,
        ));
        Arc::new(TcpConnector {
            addr: addr.to_string(),
        })
    } else {
        let secret = mcp_server_kit::generate_token()?;
        let auth = mcp_server_kit::Authenticator::new(mcp_server_kit::AuthSettings {
            resource: format!("http://{addr}/mcp"),
            protection: spec.protection,
            static_tokens: vec![secret.clone()],
            jwt: None,
            token_requests_max: 1024,
            clock: mcp_server_kit::system_clock(),
        })?;
        tokio::spawn(mcp_server_kit::serve_http(
            listener,
            handler,
            Limits::DEFAULT,
            HttpOptions::protected(Arc::new(auth)),
            token,
        ));
        Arc::new(HttpConnector {
            url: format!("http://{addr}/mcp"),
            credential: Some(orchestrator::Credential::Value(orchestrator::Token::new(
                secret.expose(),
            ))),
        })
    })
}

/// Nearest-rank percentile of sorted latencies, in microseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    u64::try_from(sorted[rank - 1].as_micros()).unwrap_or(u64::MAX)
}

/// Peak resident memory of this process (Linux; `None` elsewhere).
pub fn rss_peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 0.50), 50);
        assert_eq!(percentile(&sorted, 0.99), 99);
        assert_eq!(percentile(&sorted[..1], 0.99), 1);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn reads_what_every_contender_prints() {
        let ts = r#"{"impl":"typescript-sdk","transport":"stdio","queries":10,"p50_us":600,"p99_us":4000,"qps":1400,"errors":0}"#;
        let m: Measured = serde_json::from_str(ts).unwrap();
        assert_eq!((m.p50_us, m.concurrency, m.rss_peak_kb), (600, 1, None));
    }

    #[test]
    fn reads_its_own_peak_memory_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_peak_kb().is_some_and(|kb| kb > 0));
        }
    }
}
