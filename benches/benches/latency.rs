//! criterion benchmarks. `cargo bench -p benches` measures; `cargo test`
//! runs each once (test mode), so they never rot.
//!
//! - `tool_call/<transport>`: one `getUserIdByEmail` round trip;
//! - `two_hop/<transport>`: the demo question end to end;
//! - `throughput/<transport>/<concurrency>`: 2-hop queries per second;
//! - `simulation/flaky`: `scenarios/flaky.toml` seeds per second;
//! - `planner/*`: parsing, planning and catalog building on their own.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use benches::{DEMO_QUESTION, Servers, Transport};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::{Catalog, Orchestrator, Policy};
use tokio::runtime::Runtime;

const SERVE: &str = env!("CARGO_BIN_EXE_serve");

/// The client's (and in-process servers') runtime: tokio's multi-thread
/// scheduler on two workers, or with `BENCH_RUNTIME=current_thread`, one
/// thread, which is faster at low concurrency (no cross-thread wake-ups).
fn runtime() -> Runtime {
    if std::env::var("BENCH_RUNTIME").is_ok_and(|v| v == "current_thread") {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn orchestrator(rt: &Runtime, transport: Transport) -> (Servers, Arc<Orchestrator>) {
    rt.block_on(async {
        let servers = Servers::start(transport, Path::new(SERVE))
            .await
            .expect("servers start");
        let orchestrator = Orchestrator::new(servers.connectors.clone(), Policy::DEFAULT, 0);
        // Warm up: connect both sessions and check the answer once.
        let answer = orchestrator
            .ask(DEMO_QUESTION, &mut Vec::new())
            .await
            .expect("the demo question is answered");
        assert!(answer.render().contains("Coffee"), "{}", answer.render());
        (servers, Arc::new(orchestrator))
    })
}

fn tool_call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("tool_call");
    for transport in Transport::ALL {
        let (servers, _) = orchestrator(&rt, transport);
        let session = rt
            .block_on(servers.connectors[0].1.connect())
            .expect("connects");
        let arguments = serde_json::json!({ "email": "bob@example.com" })
            .as_object()
            .cloned()
            .expect("an object");
        let timeout = Policy::DEFAULT.settings().call_timeout;
        group.bench_function(transport.name(), |b| {
            b.iter(|| {
                rt.block_on(session.call_tool("getUserIdByEmail", arguments.clone(), timeout))
                    .expect("the call succeeds")
            });
        });
        rt.block_on(session.close());
    }
    group.finish();
}

fn two_hop(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("two_hop");
    for transport in Transport::ALL {
        let (_servers, orchestrator) = orchestrator(&rt, transport);
        group.bench_function(transport.name(), |b| {
            b.iter(|| {
                rt.block_on(orchestrator.ask(DEMO_QUESTION, &mut Vec::new()))
                    .expect("answered")
            });
        });
        rt.block_on(orchestrator.shutdown());
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    for transport in [Transport::Tcp, Transport::Http] {
        let (_servers, orchestrator) = orchestrator(&rt, transport);
        for concurrency in [1u64, 16, 256] {
            let id = BenchmarkId::new(transport.name(), concurrency);
            group.bench_function(id, |b| {
                b.iter_custom(|queries| {
                    rt.block_on(run_concurrently(&orchestrator, queries, concurrency))
                });
            });
        }
        rt.block_on(orchestrator.shutdown());
    }
    group.finish();
}

/// Runs `queries` demo queries, `concurrency` at a time; returns the time.
async fn run_concurrently(
    orchestrator: &Arc<Orchestrator>,
    queries: u64,
    concurrency: u64,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(queries.max(1)))
        .map(|_| {
            let (orchestrator, next) = (orchestrator.clone(), next.clone());
            tokio::spawn(async move {
                let mut trace = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < queries {
                    trace.clear();
                    orchestrator
                        .ask(DEMO_QUESTION, &mut trace)
                        .await
                        .expect("answered");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker finished");
    }
    started.elapsed()
}

fn simulation(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/flaky.toml");
    let scenario = harness::Scenario::from_file(&path).expect("flaky.toml parses");
    let mut group = c.benchmark_group("simulation");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let seed = AtomicU64::new(1);
    group.bench_function("flaky", |b| {
        b.iter(|| {
            let report = harness::run(&scenario, seed.fetch_add(1, Ordering::Relaxed))
                .expect("the run completes");
            assert!(report.as_expected);
            report.simulated
        });
    });
    group.finish();
}

fn planner(c: &mut Criterion) {
    let rt = runtime();
    let (_servers, orchestrator) = orchestrator(&rt, Transport::Duplex);
    let (catalog, down) = rt.block_on(orchestrator.catalog());
    assert!(down.is_empty());
    let tools: Vec<(String, Vec<rmcp::model::Tool>)> = ["user", "payment"]
        .into_iter()
        .map(|server| {
            let tools = catalog
                .entries()
                .iter()
                .filter(|e| e.server == server)
                .map(|e| e.tool.clone())
                .collect();
            (server.to_owned(), tools)
        })
        .collect();
    let mut group = c.benchmark_group("planner");
    group.bench_function("parse_question", |b| {
        b.iter(|| orchestrator::parse_question(DEMO_QUESTION).expect("parses"));
    });
    group.bench_function("parse_and_plan", |b| {
        b.iter(|| {
            let question = orchestrator::parse_question(DEMO_QUESTION).expect("parses");
            orchestrator::plan(question, &catalog).expect("plans")
        });
    });
    group.bench_function("catalog_new", |b| {
        b.iter(|| Catalog::new(tools.clone()));
    });
    group.finish();
    rt.block_on(orchestrator.shutdown());
}

criterion_group!(benches, planner, tool_call, two_hop, throughput, simulation);
criterion_main!(benches);
