//! Shared pieces of the benchmarks: latency statistics and the one JSON
//! line every contender prints (`orchestrator bench --json`, the
//! TypeScript peer's `bench.mjs`, the floor probe).

use std::{path::Path, sync::Arc, time::Duration};

use orchestrator::Connector;
use reference_servers::{Access, Data};
use serde::{Deserialize, Serialize};

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
            p50_us: micros(orchestrator::percentile(&latencies, 0.50)),
            p99_us: micros(orchestrator::percentile(&latencies, 0.99)),
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

/// Both reference servers with the demo data, reachable over `transport`
/// (started by `reference-servers`). In-process ones stop when this is
/// dropped; stdio children stop when their connections close.
#[derive(Debug)]
pub struct Servers {
    pub connectors: Vec<(String, Arc<dyn Connector>)>,
    _running: reference_servers::Servers,
}

impl Servers {
    /// Starts them; `serve_program` is the `serve` binary (for stdio).
    /// Call inside a tokio runtime.
    pub async fn start(transport: Transport, serve_program: &Path) -> anyhow::Result<Self> {
        let transport = match transport {
            Transport::Duplex => reference_servers::Transport::Duplex,
            Transport::Stdio => reference_servers::Transport::Stdio {
                program: serve_program.to_owned(),
                args: Vec::new(),
            },
            Transport::Tcp => reference_servers::Transport::Tcp,
            // Protected as a real server is, with a fresh static token: the
            // figures include checking it.
            Transport::Http => reference_servers::Transport::Http(Access::GeneratedToken {
                token_requests_max: 1024,
            }),
        };
        let running = reference_servers::Servers::start(&transport, &Data::demo()).await?;
        Ok(Self {
            connectors: running.connectors(),
            _running: running,
        })
    }
}

/// Whole microseconds, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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
    fn latencies_are_summarised_in_microseconds() {
        let latencies: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let m = Measured::from_latencies("tcp", 4, latencies, Duration::from_millis(50));
        assert_eq!((m.queries, m.p50_us, m.p99_us, m.qps), (100, 50, 99, 2000));
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
