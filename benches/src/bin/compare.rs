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
//! the floor probe (`floor`), two processes speaking newline JSON-RPC on
//! pipes with no MCP layer. Prints a table, the targets, and one JSON line.

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
    let orchestrator = built_binary(&dir, "orchestrator", "orchestrator")?;
    let floor = built_binary(&dir, "benches", "floor")?;
    let q = args.queries.to_string();
    let ours = |transport: &str, concurrency: u32, queries: &str| -> anyhow::Result<Measured> {
        measure(
            &format!("orchestrator bench --transport {transport} --concurrency {concurrency}"),
            Command::new(&orchestrator).args([
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
    };
    let mut rows = vec![
        Row {
            name: "ours stdio",
            measured: ours("stdio", 1, &q)?,
        },
        Row {
            name: "ours tcp",
            measured: ours("tcp", 1, &q)?,
        },
        Row {
            name: "ours http",
            measured: ours("http", 1, &q)?,
        },
        Row {
            name: "ours tcp c=64",
            measured: ours(
                "tcp",
                64,
                &args
                    .throughput_queries
                    .unwrap_or(args.queries.saturating_mul(10))
                    .to_string(),
            )?,
        },
    ];
    rows.push(Row {
        name: "floor stdio",
        measured: measure(
            "floor probe",
            Command::new(&floor).args(["client", "--queries", &q]),
        )?,
    });
    if !args.skip_ts {
        let peer = typescript_peer()?;
        let ts_http = args
            .ts_http_queries
            .unwrap_or(args.queries / 2)
            .max(1)
            .to_string();
        for (name, transport, queries) in [
            ("typescript stdio", "stdio", q.as_str()),
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
    }

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
    for row in &rows {
        let m = &row.measured;
        say!(
            "{:18} {:>8} {:>6} {:>7.3} ms {:>7.3} ms {:>9} {:>9}",
            row.name,
            m.queries,
            m.concurrency,
            m.p50_us as f64 / 1e3,
            m.p99_us as f64 / 1e3,
            m.qps,
            m.rss_peak_kb
                .map(|kb| format!("{:.1} MB", kb as f64 / 1024.0))
                .unwrap_or_default()
        );
    }

    let get = |name: &str| rows.iter().find(|r| r.name == name).map(|r| &r.measured);
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    let (stdio, http, c64, floor) = (
        get("ours stdio").context("missing")?,
        get("ours http").context("missing")?,
        get("ours tcp c=64").context("missing")?,
        get("floor stdio").context("missing")?,
    );
    let (ts_stdio, ts_http) = (get("typescript stdio"), get("typescript http"));

    // (target, measured, met)
    let mut targets: Vec<(String, String, Option<bool>)> = vec![
        (
            "stdio p50 <= 1.5x floor".into(),
            format!("{:.2}x", ratio(stdio.p50_us, floor.p50_us)),
            Some(ratio(stdio.p50_us, floor.p50_us) <= 1.5),
        ),
        (
            "p99 <= 3x our p50 (stdio)".into(),
            format!("{:.2}x", ratio(stdio.p99_us, stdio.p50_us)),
            Some(ratio(stdio.p99_us, stdio.p50_us) <= 3.0),
        ),
        (
            ">= 20,000 qps over tcp at c=64".into(),
            format!("{} qps", c64.qps),
            Some(c64.qps >= 20_000),
        ),
        (
            "orchestrator rss <= 30 MB at c=64".into(),
            c64.rss_peak_kb
                .map(|kb| format!("{:.1} MB", kb as f64 / 1024.0))
                .unwrap_or_else(|| "unknown".into()),
            c64.rss_peak_kb.map(|kb| kb <= 30 * 1024),
        ),
    ];
    if let (Some(ts_stdio), Some(ts_http)) = (ts_stdio, ts_http) {
        targets.push((
            "stdio p50 >= 4x faster than TypeScript".into(),
            format!("{:.2}x", ratio(ts_stdio.p50_us, stdio.p50_us)),
            Some(ratio(ts_stdio.p50_us, stdio.p50_us) >= 4.0),
        ));
        targets.push((
            "http p50 >= 5x faster than TypeScript".into(),
            format!("{:.2}x", ratio(ts_http.p50_us, http.p50_us)),
            Some(ratio(ts_http.p50_us, http.p50_us) >= 5.0),
        ));
    }
    say!("\n{:40} {:>12}  met", "target", "measured");
    for (target, measured, met) in &targets {
        let mark = match met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "?",
        };
        say!("{target:40} {measured:>12}  {mark}");
    }

    let json = json!({
        "build": if dir.ends_with("release") { "release" } else { "debug" },
        "contenders": rows.iter().map(|r| (r.name.to_owned(), serde_json::to_value(&r.measured).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
        "ratios": {
            "ours_over_floor_stdio_p50": ratio(stdio.p50_us, floor.p50_us),
            "typescript_over_ours_stdio_p50": ts_stdio.map(|t| ratio(t.p50_us, stdio.p50_us)),
            "typescript_over_ours_http_p50": ts_http.map(|t| ratio(t.p50_us, http.p50_us)),
        },
        "targets": targets.iter().map(|(t, m, met)| json!({"target": t, "measured": m, "met": met})).collect::<Vec<_>>(),
    });
    say!("\n{json}");
    if !dir.ends_with("release") {
        say!(
            "\nnote: a debug build; its timings say nothing about the targets. \
             Measure with: cargo run --release -p benches --bin compare"
        );
    }
    let all_met = targets.iter().all(|(_, _, met)| *met != Some(false));
    if args.smoke {
        return Ok(true);
    }
    Ok(all_met)
}
