//! `orchestrator bench`: a load generator in the manner of redis-benchmark.
//! It measures; it is not a test.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use anyhow::Context;
use orchestrator::{Config, Orchestrator, Policy};
use tokio::{
    task::JoinSet,
    time::{Duration, Instant},
};

use crate::{
    embedded::{self, Transport},
    signal::{Stop, Stopped},
};
use mcp_server_kit::say;

/// The question every bench query asks: the 2-hop demo.
const DEMO_QUESTION: &str = "What are the recent transactions for bob@example.com?";

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Queries to run, after one warm-up query.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    queries: u32,
    /// Queries in flight at once, all sharing one connection per server.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Transport to the embedded reference servers.
    #[arg(long, value_enum, default_value_t = Transport::Stdio, conflicts_with = "config")]
    transport: Transport,
    /// Load the servers this config file names (as `ask --config` does),
    /// as pgbench loads any database, instead of the embedded ones.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The question every query asks; the warm-up's answer is the one
    /// every later answer must equal.
    #[arg(long, default_value = DEMO_QUESTION)]
    question: String,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
}

/// What the queries measured: each right answer's latency, the number of
/// wrong or failed ones, and the wall time they took.
type Measured = (Vec<Duration>, u64, Duration);

pub(crate) async fn run(args: BenchArgs, stop: impl Future<Output = Stop>) -> anyhow::Result<()> {
    let (orchestrator, embedded, label) = match &args.config {
        Some(path) => {
            let config = Config::from_file(path)?;
            (
                Orchestrator::from_config(&config, 0),
                None,
                "config".to_owned(),
            )
        }
        None => {
            let embedded = embedded::start(args.transport).await?;
            let orchestrator = Orchestrator::new(embedded.servers.clone(), Policy::DEFAULT, 0);
            let label = format!("{:?}", args.transport).to_lowercase();
            (orchestrator, Some(embedded), label)
        }
    };
    let orchestrator = Arc::new(orchestrator);
    let mut workers = JoinSet::new();
    let measured = tokio::select! {
        measured = measure(&orchestrator, &args, &mut workers) => measured,
        stop = stop => Err(Stopped(stop).into()),
    };
    // Stopped: the workers are cancelled and gone before the sessions close.
    workers.shutdown().await;
    orchestrator.shutdown().await;
    drop(embedded);
    let (mut latencies, errors, elapsed) = measured?;
    let total = args.queries as usize;
    latencies.sort_unstable();
    let report = Report {
        queries: args.queries,
        concurrency: args.concurrency,
        transport: label,
        p50_us: micros(orchestrator::percentile(&latencies, 0.50)),
        p99_us: micros(orchestrator::percentile(&latencies, 0.99)),
        qps: (f64::from(args.queries) / elapsed.as_secs_f64()).round() as u64,
        errors,
        rss_peak_kb: rss_peak_kb(),
    };
    if args.json {
        say!("{}", serde_json::to_string(&report)?);
    } else {
        say!("transport  queries  concurrency       p50       p99       qps  errors");
        say!(
            "{:9}  {:>7}  {:>11}  {:>5.3} ms  {:>5.3} ms  {:>8}  {:>6}",
            report.transport,
            report.queries,
            report.concurrency,
            report.p50_us as f64 / 1e3,
            report.p99_us as f64 / 1e3,
            report.qps,
            report.errors
        );
    }
    if errors > 0 {
        anyhow::bail!("{errors} of {total} queries failed or answered wrongly");
    }
    Ok(())
}

/// One warm-up query, then `args.queries` on `args.concurrency` workers.
async fn measure(
    orchestrator: &Arc<Orchestrator>,
    args: &BenchArgs,
    workers: &mut JoinSet<(Vec<Duration>, u64)>,
) -> anyhow::Result<Measured> {
    let expected = orchestrator
        .ask(&args.question, &mut Vec::new())
        .await
        .context("the warm-up query failed")?;
    let total = args.queries as usize;
    let progress = progress_bar(total as u64, args.json);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for _ in 0..args.concurrency {
        let (orchestrator, next, expected, progress, question) = (
            orchestrator.clone(),
            next.clone(),
            expected.clone(),
            progress.clone(),
            args.question.clone(),
        );
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut trace = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                trace.clear();
                let begun = Instant::now();
                match orchestrator.ask(&question, &mut trace).await {
                    Ok(answer) if answer == expected => latencies.push(begun.elapsed()),
                    _ => errors += 1,
                }
                progress.inc(1);
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    while let Some(worker) = workers.join_next().await {
        let (mut l, e) = worker.context("a bench worker panicked")?;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok((latencies, errors, elapsed))
}

#[derive(Debug, serde::Serialize)]
struct Report {
    queries: u32,
    concurrency: u32,
    transport: String,
    p50_us: u64,
    p99_us: u64,
    qps: u64,
    errors: u64,
    /// Peak resident memory of this process, servers included when they
    /// run in process (TCP, HTTP). Linux only.
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_peak_kb: Option<u64>,
}

/// Peak resident memory (`VmHWM`) of this process, on Linux.
fn rss_peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whole microseconds, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} queries {per_sec} eta {eta}")
            .expect("valid template"),
    );
    bar
}
