//! `compare`: the side-by-side latency comparison, in one run on one
//! machine, so that the ratios mean something.
//!
//! ```sh
//! cargo run --release -p benches --bin compare                 # the full comparison
//! cargo run --release -p benches --bin compare -- --queries 200 --smoke
//! ```
//!
//! Contenders: this project's `orchestrator bench` over stdio, TCP and
//! HTTP (and TCP at concurrency 64); the same demo written with the official
//! TypeScript SDK (`benches/peers/ts`) over stdio and streamable HTTP; and
//! the floor probe (`floor`), two processes with no MCP layer, over pipes
//! (newline JSON-RPC) and over HTTP/1.1 keep-alive (hyper, JSON POSTs).
//! Prints a table, the targets, and one JSON line.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
};

use anyhow::{Context, bail};
use benches::Measured;
use clap::Parser;
use mcp_server_kit::say;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Compare this project's 2-hop latency with the TypeScript SDK and the floor")]
struct Args {
    /// Sequential queries per contender.
    #[arg(long, default_value_t = 5000)]
    queries: u32,
    /// Queries for the TypeScript SDK over HTTP (slower; default: queries / 2).
    #[arg(long)]
    ts_http_queries: Option<u32>,
    /// Queries for the concurrency-64 throughput run (default: queries * 10).
    #[arg(long)]
    throughput_queries: Option<u32>,
    /// Skip the TypeScript peer (no node, or no npm registry).
    #[arg(long)]
    skip_ts: bool,
    /// A smoke check (CI): report the targets but do not fail on them.
    #[arg(long)]
    smoke: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The directory this binary sits in: target/release or target/debug.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    Ok(exe.parent().context("no parent directory")?.to_owned())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command that prints one JSON line, and reads it.
fn measure(what: &str, command: &mut Command) -> anyhow::Result<Measured> {
    eprintln!("measuring {what} ...");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("{what}: cannot start {command:?}"))?;
    if !output.status.success() {
        bail!("{what}: {command:?} failed with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what}: no JSON line in: {stdout}"))?;
    let measured: Measured =
        serde_json::from_str(line).with_context(|| format!("{what}: unreadable: {line}"))?;
    if measured.errors > 0 {
        bail!("{what}: {} queries failed", measured.errors);
    }
    Ok(measured)
}

/// `dir/bin`, built first with this binary's profile if it is not there
/// (as after `cargo run --bin compare`, which builds only this one).
fn built_binary(dir: &Path, package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(bin);
    if !path.exists() {
        let release = dir.ends_with("release");
        eprintln!(
            "building {bin} ({})",
            if release { "release" } else { "debug" }
        );
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(["build", "-p", package, "--bin", bin]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().context("cannot run cargo")?;
        if !status.success() {
            bail!("building {bin} failed");
        }
    }
    Ok(path)
}

/// The TypeScript peer's folder, with its pinned dependencies installed.
fn typescript_peer() -> anyhow::Result<PathBuf> {
    let dir = repo_root().join("benches/peers/ts");
    if !dir.join("node_modules/@modelcontextprotocol/sdk").exists() {
        eprintln!("installing the TypeScript peer's dependencies (npm ci) ...");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .context("cannot run npm (is node installed?)")?;
        if !status.success() {
            bail!("npm ci failed in {}", dir.display());
        }
    }
    Ok(dir)
}

struct Row {
    name: &'static str,
    measured: Measured,
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let dir = bin_dir()?;
    let release = dir.ends_with("release");
    let rows = contenders(args, &dir)?;
    print_table(&rows);
    let key = Key::of(&rows)?;
    let targets = targets(&key);
    print_targets(&targets);
    say!("\n{}", report(release, &rows, &key, &targets));
    if !release {
        say!(
            "\nnote: a debug build; its timings say nothing about the targets. \
             Measure with: cargo run --release -p benches --bin compare"
        );
    }
    let all_met = targets.iter().all(|t| t.met != Some(false));
    Ok(args.smoke || all_met)
}

/// Measures every contender in turn: ours over each transport, the floor,
/// then the TypeScript peer unless skipped.
fn contenders(args: &Args, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let orchestrator = built_binary(dir, "orchestrator", "orchestrator")?;
    let floor = built_binary(dir, "benches", "floor")?;
    let q = args.queries.to_string();
    let throughput = args
        .throughput_queries
        .unwrap_or(args.queries.saturating_mul(10))
        .to_string();
    let mut rows = Vec::new();
    for (name, transport, concurrency, queries) in [
        ("ours stdio", "stdio", 1, &q),
        ("ours tcp", "tcp", 1, &q),
        ("ours http", "http", 1, &q),
        ("ours tcp c=64", "tcp", 64, &throughput),
    ] {
        rows.push(Row {
            name,
            measured: ours(&orchestrator, transport, concurrency, queries)?,
        });
    }
    for (name, client) in [("floor stdio", "client"), ("floor http", "http-client")] {
        rows.push(Row {
            name,
            measured: measure(
                &format!("floor {client}"),
                Command::new(&floor).args([client, "--queries", &q]),
            )?,
        });
    }
    if !args.skip_ts {
        rows.extend(typescript(args, &q)?);
    }
    Ok(rows)
}

/// `orchestrator bench` over `transport`.
fn ours(
    orchestrator: &Path,
    transport: &str,
    concurrency: u32,
    queries: &str,
) -> anyhow::Result<Measured> {
    measure(
        &format!("orchestrator bench --transport {transport} --concurrency {concurrency}"),
        Command::new(orchestrator).args([
            "bench",
            "--json",
            "--transport",
            transport,
            "--concurrency",
            &concurrency.to_string(),
            "--queries",
            queries,
        ]),
    )
}

/// The TypeScript SDK peer over stdio and over HTTP.
fn typescript(args: &Args, q: &str) -> anyhow::Result<Vec<Row>> {
    let peer = typescript_peer()?;
    let ts_http = args
        .ts_http_queries
        .unwrap_or(args.queries / 2)
        .max(1)
        .to_string();
    let mut rows = Vec::new();
    for (name, transport, queries) in [
        ("typescript stdio", "stdio", q),
        ("typescript http", "http", ts_http.as_str()),
    ] {
        rows.push(Row {
            name,
            measured: measure(
                &format!("TypeScript SDK over {transport}"),
                Command::new("node")
                    .args(["bench.mjs", "--transport", transport, "--queries", queries])
                    .current_dir(&peer),
            )?,
        });
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    say!(
        "\n{:18} {:>8} {:>6} {:>10} {:>10} {:>9} {:>9}",
        "contender",
        "queries",
        "conc.",
        "p50",
        "p99",
        "qps",
        "rss"
    );
    for row in rows {
        let m = &row.measured;
        say!(
            "{:18} {:>8} {:>6} {:>7.3} ms {:>7.3} ms {:>9} {:>9}",
            row.name,
            m.queries,
            m.concurrency,
            m.p50_us as f64 / 1e3,
            m.p99_us as f64 / 1e3,
            m.qps,
            m.rss_peak_kb.map(megabytes).unwrap_or_default()
        );
    }
}

fn megabytes(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

/// The measurements the targets compare.
struct Key<'a> {
    stdio: &'a Measured,
    http: &'a Measured,
    c64: &'a Measured,
    floor: &'a Measured,
    floor_http: &'a Measured,
    ts_stdio: Option<&'a Measured>,
    ts_http: Option<&'a Measured>,
}

impl<'a> Key<'a> {
    fn of(rows: &'a [Row]) -> anyhow::Result<Self> {
        let get = |name: &str| rows.iter().find(|r| r.name == name).map(|r| &r.measured);
        Ok(Self {
            stdio: get("ours stdio").context("missing")?,
            http: get("ours http").context("missing")?,
            c64: get("ours tcp c=64").context("missing")?,
            floor: get("floor stdio").context("missing")?,
            floor_http: get("floor http").context("missing")?,
            ts_stdio: get("typescript stdio"),
            ts_http: get("typescript http"),
        })
    }
}

/// One target: what it asks, what was measured, and whether it was met
/// (`None`: not measurable here).
struct Target {
    target: &'static str,
    measured: String,
    met: Option<bool>,
}

fn targets(key: &Key<'_>) -> Vec<Target> {
    let Key {
        stdio,
        http,
        c64,
        floor,
        floor_http,
        ..
    } = key;
    let times = |target, ratio: f64, met: bool| Target {
        target,
        measured: format!("{ratio:.2}x"),
        met: Some(met),
    };
    let over_floor = ratio(stdio.p50_us, floor.p50_us);
    let http_over_floor = ratio(http.p50_us, floor_http.p50_us);
    let tail = ratio(stdio.p99_us, stdio.p50_us);
    let mut targets = vec![
        times("stdio p50 <= 1.5x floor", over_floor, over_floor <= 1.5),
        times(
            "http p50 <= 2x floor (http)",
            http_over_floor,
            http_over_floor <= 2.0,
        ),
        times("p99 <= 3x our p50 (stdio)", tail, tail <= 3.0),
        Target {
            target: ">= 20,000 qps over tcp at c=64",
            measured: format!("{} qps", c64.qps),
            met: Some(c64.qps >= 20_000),
        },
        Target {
            target: "orchestrator rss <= 30 MB at c=64",
            measured: c64
                .rss_peak_kb
                .map(megabytes)
                .unwrap_or_else(|| "unknown".into()),
            met: c64.rss_peak_kb.map(|kb| kb <= 30 * 1024),
        },
    ];
    if let (Some(ts_stdio), Some(ts_http)) = (key.ts_stdio, key.ts_http) {
        let faster_stdio = ratio(ts_stdio.p50_us, stdio.p50_us);
        let faster_http = ratio(ts_http.p50_us, http.p50_us);
        targets.push(times(
            "stdio p50 >= 4x faster than TypeScript",
            faster_stdio,
            faster_stdio >= 4.0,
        ));
        targets.push(times(
            "http p50 >= 5x faster than TypeScript",
            faster_http,
            faster_http >= 5.0,
        ));
    }
    targets
}

fn print_targets(targets: &[Target]) {
    say!("\n{:40} {:>12}  met", "target", "measured");
    for Target {
        target,
        measured,
        met,
    } in targets
    {
        let mark = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "?",
        };
        say!("{target:40} {measured:>12}  {mark}");
    }
}

/// The one JSON line: every contender, the ratios and the targets.
fn report(release: bool, rows: &[Row], key: &Key<'_>, targets: &[Target]) -> serde_json::Value {
    json!({
        "build": if release { "release" } else { "debug" },
        "contenders": rows.iter().map(|r| (r.name.to_owned(), serde_json::to_value(&r.measured).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
        "ratios": {
            "ours_over_floor_stdio_p50": ratio(key.stdio.p50_us, key.floor.p50_us),
            "ours_over_floor_http_p50": ratio(key.http.p50_us, key.floor_http.p50_us),
            "typescript_over_ours_stdio_p50": key.ts_stdio.map(|t| ratio(t.p50_us, key.stdio.p50_us)),
            "typescript_over_ours_http_p50": key.ts_http.map(|t| ratio(t.p50_us, key.http.p50_us)),
        },
        "targets": targets.iter().map(|t| json!({"target": t.target, "measured": t.measured, "met": t.met})).collect::<Vec<_>>(),
    })
}
